//! `elfuse sysroot ...` as users meet it: adding, listing, defaulting and removing sysroots,
//! unpacking tarballs, `which` at every precedence level, trusting `.elfuse.toml`, and the
//! exact one-line failures with their exit statuses.
//!
//! Each test points `XDG_CONFIG_HOME`, `XDG_DATA_HOME` and `HOME` at its own scratch
//! directory, so nothing touches the real home.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use common::{Link, Run, build_guest, elfuse_cmd, scratch};

/// A scratch home: configuration, data and home directories, and a project directory.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let home = Home { dir: scratch() };
        std::fs::create_dir_all(home.path("project")).unwrap();
        home
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn config(&self) -> PathBuf {
        self.path("config/elfuse/config.toml")
    }

    fn write_config(&self, text: &str) {
        std::fs::create_dir_all(self.config().parent().unwrap()).unwrap();
        std::fs::write(self.config(), text).unwrap();
    }

    /// A directory `rel` that can serve as a sysroot.
    fn tree(&self, rel: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.join("lib")).unwrap();
        path
    }

    /// Runs `elfuse ARGS` in `cwd` (relative to the home) with this home's directories.
    fn run_in(&self, cwd: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = elfuse_cmd();
        cmd.args(args)
            .current_dir(self.path(cwd))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("HOME", self.dir.path())
            .env_remove("ELFUSE_SYSROOT");
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd.output().expect("run elfuse").into()
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_in("project", args, &[])
    }

    /// Runs and checks for success with nothing on stderr; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(
            (run.code(), run.stderr()),
            (0, String::new()),
            "elfuse {args:?}"
        );
        run.stdout()
    }

    /// Replaces this home's path with `~` in `text`.
    fn rel(&self, text: &str) -> String {
        text.replace(&self.dir.path().display().to_string(), "~")
    }
}

/// Checks a failure: status 1, nothing on stdout, one line on stderr.
fn fails(run: &Run, message: &str) {
    assert_eq!(run.code(), 1, "stderr: {}", run.stderr());
    assert_eq!(run.stderr(), format!("elfuse: {message}\n"));
    assert_eq!(run.stdout(), "");
}

static BUILD: Mutex<()> = Mutex::new(());

/// A dynamically linked aarch64 program (the cross compiler's default linking).
fn dynamic_program() -> PathBuf {
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sysroot-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("dyn_hello");
    if !bin.exists() {
        let src = dir.join("dyn_hello.c");
        std::fs::write(
            &src,
            "#include <stdio.h>\nint main(void) { puts(\"hi\"); }\n",
        )
        .unwrap();
        let status = Command::new("aarch64-linux-gnu-gcc")
            .arg(&src)
            .arg("-o")
            .arg(&bin)
            .status()
            .expect("run aarch64-linux-gnu-gcc (apt-get install gcc-aarch64-linux-gnu)");
        assert!(status.success(), "building {} failed", src.display());
    }
    bin
}

fn static_program() -> PathBuf {
    build_guest("argv_exit", "argv_exit", Link::Static)
}

const GLIBC: &str = "/lib/ld-linux-aarch64.so.1";

#[test]
fn add_list_default_and_remove_a_directory_sysroot() {
    let home = Home::new();
    assert_eq!(
        home.ok(&["sysroot", "list"]),
        "no sysroots configured; add one with 'elfuse sysroot add NAME DIR|TARBALL'\n"
    );

    home.tree("roots/deb");
    home.tree("roots/musl");
    let out = home.ok(&["sysroot", "add", "deb", "../roots/deb"]);
    assert_eq!(
        home.rel(&out),
        "added sysroot deb at ~/roots/deb (the default)\n"
    );
    let out = home.ok(&["sysroot", "add", "musl-1.2", "../roots/musl"]);
    assert_eq!(home.rel(&out), "added sysroot musl-1.2 at ~/roots/musl\n");
    assert_eq!(
        home.rel(&home.ok(&["sysroot", "list"])),
        "* deb       ~/roots/deb\n  musl-1.2  ~/roots/musl\n"
    );

    assert_eq!(
        home.ok(&["sysroot", "default", "musl-1.2"]),
        "default sysroot: musl-1.2\n"
    );
    std::fs::remove_dir_all(home.path("roots/deb")).unwrap();
    assert_eq!(
        home.rel(&home.ok(&["sysroot", "list"])),
        "  deb       ~/roots/deb  (No such file or directory)\n* musl-1.2  ~/roots/musl\n"
    );

    let out = home.ok(&["sysroot", "remove", "musl-1.2"]);
    assert_eq!(
        home.rel(&out),
        "removed sysroot musl-1.2 from ~/config/elfuse/config.toml\n\
         it was the default; there is no default sysroot now\n\
         left ~/roots/musl in place (elfuse did not unpack it)\n"
    );
    assert!(home.path("roots/musl/lib").is_dir());
    assert_eq!(
        home.rel(&home.ok(&["sysroot", "list"])),
        "  deb  ~/roots/deb  (No such file or directory)\n"
    );
}

#[test]
fn a_users_comments_survive_the_commands() {
    let home = Home::new();
    home.tree("roots/a");
    home.tree("roots/b");
    let original = format!(
        "# elfuse sysroots\ndefault = \"a\" # for now\n\n[sysroots.a]\n# Debian\npath = \"{}\"\n",
        home.path("roots/a").display()
    );
    home.write_config(&original);
    home.ok(&["sysroot", "add", "b", "../roots/b"]);
    home.ok(&["sysroot", "default", "b"]);
    home.ok(&["sysroot", "remove", "b"]);
    assert_eq!(
        std::fs::read_to_string(home.config()).unwrap(),
        original.replace("default = \"a\" # for now\n", "")
    );
}

#[test]
fn failures_are_one_line_with_status_1_and_bad_usage_is_2() {
    let home = Home::new();
    home.tree("roots/a");
    home.ok(&["sysroot", "add", "a", "../roots/a"]);
    let config = home.config().display().to_string();

    fails(
        &home.run(&["sysroot", "add", "a", "../roots/a"]),
        &format!("{config}: sysroot \"a\" is already defined"),
    );
    fails(
        &home.run(&["sysroot", "remove", "zz"]),
        &format!("{config}: no sysroot named \"zz\""),
    );
    fails(
        &home.run(&["sysroot", "default", "zz"]),
        &format!("{config}: no sysroot named \"zz\""),
    );
    fails(
        &home.run(&["sysroot", "add", "x", "../nowhere"]),
        "../nowhere: No such file or directory (os error 2)",
    );
    std::fs::write(home.path("project/notes.txt"), "x").unwrap();
    fails(
        &home.run(&["sysroot", "add", "x", "notes.txt"]),
        "notes.txt: not a directory nor a .tar, .tar.gz, .tgz, .tar.xz or .txz file",
    );

    let usage = home.run(&["sysroot", "frobnicate"]);
    assert_eq!(usage.code(), 2);
    let usage = home.run(&["sysroot", "add", "onlyname"]);
    assert_eq!(usage.code(), 2);
}

#[test]
fn a_malformed_configuration_is_reported_with_file_and_line() {
    let home = Home::new();
    let config = home.config().display().to_string();
    let cases = [
        (
            "[sysroots.a]\npath = \"/a\"\n\ncolour = \"red\"\n",
            4,
            "unknown field `colour`, expected `path`",
        ),
        (
            "default = \"b\"\n",
            1,
            "default names sysroot \"b\", which is not defined",
        ),
        ("[sysroots.a\n", 1, "unclosed table, expected `]`"),
        (
            "[sysroots.a]\npath = \"/a\"\n[[rules]]\ninterpreter = \"/x\"\nsysroot = \"q\"\n",
            5,
            "rule 1 names sysroot \"q\", which is not defined",
        ),
    ];
    for (text, line, problem) in cases {
        home.write_config(text);
        fails(
            &home.run(&["sysroot", "list"]),
            &format!("{config}:{line}: {problem}"),
        );
    }
}

/// Builds a tree with a 0755 program, a relative symlink and a hard link, and packs it with
/// the host's tar using `flag` (`z` for gzip, `J` for xz, empty for none).
fn pack(home: &Home, name: &str, flag: &str) -> PathBuf {
    let tree = home.path("pack-src");
    if !tree.exists() {
        std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
        let prog = tree.join("usr/bin/tool");
        std::fs::write(&prog, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("usr/bin", tree.join("bin")).unwrap();
        std::fs::hard_link(&prog, tree.join("usr/bin/tool-again")).unwrap();
    }
    let archive = home.path(name);
    let status = Command::new("tar")
        .arg(format!("-c{flag}f"))
        .arg(&archive)
        .arg("-C")
        .arg(&tree)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(status.success());
    archive
}

#[test]
fn tarballs_are_unpacked_keeping_symlinks_hard_links_and_modes() {
    let home = Home::new();
    for (name, file, flag) in [
        ("plain", "root.tar", ""),
        ("gz", "root.tar.gz", "z"),
        ("xz", "root.txz", "J"),
    ] {
        let archive = pack(&home, file, flag);
        let out = home.ok(&["sysroot", "add", name, archive.to_str().unwrap()]);
        let dest = home.path(&format!("data/elfuse/sysroots/{name}"));
        let default = if name == "plain" {
            " (the default)"
        } else {
            ""
        };
        assert_eq!(
            home.rel(&out),
            format!(
                "unpacked 6 entries into ~/data/elfuse/sysroots/{name}\n\
                 added sysroot {name} at ~/data/elfuse/sysroots/{name}{default}\n"
            )
        );
        let tool = std::fs::metadata(dest.join("usr/bin/tool")).unwrap();
        assert_eq!(tool.permissions().mode() & 0o7777, 0o755);
        assert_eq!(
            std::fs::read_link(dest.join("bin")).unwrap(),
            Path::new("usr/bin")
        );
        let again = std::fs::metadata(dest.join("usr/bin/tool-again")).unwrap();
        assert_eq!((again.ino(), tool.nlink()), (tool.ino(), 2));
    }

    let out = home.ok(&["sysroot", "remove", "gz"]);
    assert_eq!(
        home.rel(&out),
        "removed sysroot gz from ~/config/elfuse/config.toml\n\
         deleted ~/data/elfuse/sysroots/gz\n"
    );
    assert!(!home.path("data/elfuse/sysroots/gz").exists());
    assert!(home.path("data/elfuse/sysroots/xz/usr/bin/tool").exists());
}

#[test]
fn a_tarball_with_parent_directory_members_is_refused() {
    let home = Home::new();
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(0);
    header.as_old_mut().name[..14].copy_from_slice(b"./../../escape");
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(&[0; 1024]);
    let archive = home.path("evil.tar");
    std::fs::write(&archive, bytes).unwrap();

    fails(
        &home.run(&["sysroot", "add", "evil", archive.to_str().unwrap()]),
        &format!(
            "{}: member ./../../escape points outside the sysroot; refusing the archive",
            archive.display()
        ),
    );
    assert!(!home.path("escape").exists() && !home.path("data/escape").exists());
    assert!(!home.config().exists());
    let sysroots = home.path("data/elfuse/sysroots");
    assert_eq!(std::fs::read_dir(sysroots).unwrap().count(), 0);
}

/// `which` in `project/` for the dynamic program, with `extra` arguments and environment;
/// stdout with the home shown as `~`.
fn which(home: &Home, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let prog = dynamic_program();
    let mut args = vec!["sysroot", "which"];
    args.extend_from_slice(extra);
    args.push(prog.to_str().unwrap());
    home.run_in("project", &args, env)
}

fn chosen(home: &Home, extra: &[&str], env: &[(&str, &str)]) -> String {
    let run = which(home, extra, env);
    assert_eq!((run.code(), run.stderr()), (0, String::new()));
    let out = home.rel(&run.stdout());
    let program = dynamic_program().display().to_string();
    let expected_head = format!("program: {program}\ninterpreter: {GLIBC}\n");
    assert!(out.starts_with(&expected_head), "{out}");
    out[expected_head.len()..].to_string()
}

#[test]
fn which_explains_each_precedence_level() {
    let home = Home::new();
    for name in ["cli", "env", "local", "rule", "def"] {
        home.tree(&format!("roots/{name}"));
    }
    let prog_dir = dynamic_program().parent().unwrap().display().to_string();
    home.write_config(&format!(
        "default = \"def\"\n\
         [sysroots.cli]\npath = \"~/roots/cli\"\n[sysroots.env]\npath = \"~/roots/env\"\n\
         [sysroots.rule]\npath = \"~/roots/rule\"\n[sysroots.def]\npath = \"~/roots/def\"\n\
         [[rules]]\ninterpreter = \"/lib/ld-musl-aarch64.so.1\"\nsysroot = \"env\"\n\
         [[rules]]\npath = \"{prog_dir}\"\nsysroot = \"rule\"\n"
    ));
    std::fs::write(
        home.path("project/.elfuse.toml"),
        "sysroot = \"../roots/local\"\n",
    )
    .unwrap();
    home.ok(&["sysroot", "trust"]);
    let all_env = [("ELFUSE_SYSROOT", "env")];

    assert_eq!(
        chosen(&home, &["--sysroot", "cli"], &all_env),
        "sysroot: cli\npath: ~/roots/cli\nchosen by: --sysroot\n"
    );
    assert_eq!(
        chosen(&home, &[], &all_env),
        "sysroot: env\npath: ~/roots/env\nchosen by: ELFUSE_SYSROOT\n"
    );
    assert_eq!(
        chosen(&home, &[], &[]),
        "path: ~/roots/local\nchosen by: ~/project/.elfuse.toml\n"
    );
    home.ok(&["sysroot", "untrust"]);
    std::fs::remove_file(home.path("project/.elfuse.toml")).unwrap();
    assert_eq!(
        chosen(&home, &[], &[]),
        format!(
            "sysroot: rule\npath: ~/roots/rule\n\
             chosen by: rule 2 in ~/config/elfuse/config.toml (path {prog_dir})\n"
        )
    );
    let text = std::fs::read_to_string(home.config()).unwrap();
    home.write_config(&text.replace(&prog_dir, "/elsewhere"));
    assert_eq!(
        chosen(&home, &[], &[]),
        "sysroot: def\npath: ~/roots/def\nchosen by: default in ~/config/elfuse/config.toml\n"
    );
}

#[test]
fn which_says_a_static_program_needs_none_and_a_dynamic_one_needs_one() {
    let home = Home::new();
    let prog = static_program();
    let out = home.ok(&["sysroot", "which", prog.to_str().unwrap()]);
    assert_eq!(
        out,
        format!(
            "program: {}\ninterpreter: none (statically linked)\nsysroot: none needed\n",
            prog.display()
        )
    );

    fails(
        &which(&home, &[], &[]),
        &format!(
            "{}: dynamically linked (interpreter {GLIBC}) and no sysroot is configured; add \
             one with 'elfuse sysroot add NAME DIR|TARBALL' or pass --sysroot DIR",
            dynamic_program().display()
        ),
    );

    fails(
        &which(&home, &["--sysroot", "nosuch"], &[]),
        &format!(
            "--sysroot nosuch: no sysroot of that name in {} and no such directory",
            home.config().display()
        ),
    );
}

#[test]
fn an_untrusted_local_file_is_ignored_with_one_line_until_trusted() {
    let home = Home::new();
    home.tree("roots/local");
    let sub = home.path("project/sub");
    std::fs::create_dir_all(&sub).unwrap();
    let file = home.path("project/.elfuse.toml");
    std::fs::write(&file, "sysroot = \"../roots/local\"\n").unwrap();
    let prog = dynamic_program();
    let which_in_sub = || {
        home.run_in(
            "project/sub",
            &["sysroot", "which", prog.to_str().unwrap()],
            &[],
        )
    };

    let run = which_in_sub();
    assert_eq!(run.code(), 1);
    let project = home.path("project").display().to_string();
    let stderr = run.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(
        lines[0],
        format!(
            "elfuse: ignoring {project}/.elfuse.toml (not trusted; run 'elfuse sysroot trust \
             {project}' to use it)"
        )
    );

    let out = home.run_in("project/sub", &["sysroot", "trust"], &[]);
    assert_eq!(out.stdout(), format!("trusted {project}/.elfuse.toml\n"));
    let run = which_in_sub();
    assert_eq!((run.code(), run.stderr()), (0, String::new()));
    assert!(
        home.rel(&run.stdout())
            .ends_with("chosen by: ~/project/.elfuse.toml\n")
    );

    // Changed: untrusted again.
    std::fs::write(&file, "sysroot = \"../roots/local\" # edited\n").unwrap();
    let run = which_in_sub();
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr().starts_with("elfuse: ignoring "),
        "{}",
        run.stderr()
    );

    fails(
        &home.run_in("", &["sysroot", "trust", "/"], &[]),
        "no .elfuse.toml in / or its parent directories",
    );
}

#[test]
fn a_static_program_ignores_a_broken_configuration_but_which_reports_it_for_a_dynamic_one() {
    let home = Home::new();
    home.write_config("default = \n");
    let prog = static_program();
    let out = home.ok(&["sysroot", "which", prog.to_str().unwrap()]);
    assert!(out.ends_with("sysroot: none needed\n"), "{out}");

    let run = which(&home, &[], &[]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr()
            .starts_with(&format!("elfuse: {}:1: ", home.config().display())),
        "{}",
        run.stderr()
    );
}
