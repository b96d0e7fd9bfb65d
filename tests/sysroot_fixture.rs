//! The test sysroot (`tests/fixtures/make-sysroot`, reached through `common::test_sysroot`):
//! Debian bookworm arm64 packages unpacked into a tree that behaves like an installed system.
//! The shape is checked directly: merged /usr, `/bin/sh` -> dash, no absolute symlinks, the
//! files maintainer scripts would have made, and every program an aarch64 ELF whose interpreter
//! and libraries resolve inside the tree. Then each program runs once under
//! `qemu-aarch64 -L SYSROOT`, the reference, on input whose output is known.
//!
//! Nothing here makes a guest exec another program: qemu-user hands a guest's `execve` to the
//! host kernel with the guest's path, so the child would be the host's program of that name (or
//! fail with "exec format error"), not the sysroot's. That rules out pipelines, `tar -z` (it
//! runs gzip), make recipes and Python's `subprocess` in these checks.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use goblin::elf::Elf;
use goblin::elf::header::EM_AARCH64;

use common::{Run, build_musl_guest, scratch, test_sysroot};

/// Programs the tests rely on, as paths inside the sysroot.
const PROGRAMS: &[&str] = &[
    "/bin/sh",
    "/bin/dash",
    "/bin/bash",
    "/usr/bin/ls",
    "/usr/bin/sort",
    "/usr/bin/sha256sum",
    "/usr/bin/find",
    "/usr/bin/grep",
    "/usr/bin/sed",
    "/usr/bin/awk",
    "/usr/bin/diff",
    "/usr/bin/tar",
    "/usr/bin/gzip",
    "/usr/bin/xz",
    "/usr/bin/python3",
    "/usr/bin/perl",
    "/usr/bin/sqlite3",
    "/usr/bin/jq",
    "/usr/bin/lua5.4",
    "/usr/bin/make",
    "/usr/bin/busybox",
    "/usr/bin/ip",
    "/usr/bin/nc",
    "/usr/bin/curl",
];

/// Where glibc's ld.so looks for libraries when there is no `/etc/ld.so.cache`.
const GLIBC_LIB_DIRS: &[&str] = &[
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib",
    "/usr/lib",
];

/// The environment every program gets under qemu (and nothing else).
const ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/bin:/bin"),
    ("LC_ALL", "C"),
    ("TZ", "UTC"),
    ("PYTHONDONTWRITEBYTECODE", "1"),
];

/// `guest` (an absolute path inside the sysroot) resolved through every symlink; panics if it
/// does not exist or resolves outside the sysroot.
fn resolve(root: &Path, guest: &str) -> PathBuf {
    let root = fs::canonicalize(root).expect("canonicalize the sysroot");
    let path = root.join(guest.trim_start_matches('/'));
    let real = fs::canonicalize(&path)
        .unwrap_or_else(|e| panic!("{guest} does not resolve in the sysroot: {e}"));
    assert!(
        real.starts_with(&root),
        "{guest} resolves outside the sysroot, to {}",
        real.display()
    );
    real
}

/// The ELF at `path`, checked to be a 64-bit aarch64 one; `f` gets it with its bytes.
fn with_aarch64_elf<T>(path: &Path, f: impl FnOnce(&Elf) -> T) -> T {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let elf = Elf::parse(&bytes).unwrap_or_else(|e| panic!("{} is no ELF: {e}", path.display()));
    assert!(elf.is_64, "{} is not 64-bit", path.display());
    assert_eq!(
        elf.header.e_machine,
        EM_AARCH64,
        "{} is not aarch64",
        path.display()
    );
    f(&elf)
}

/// Every symlink under `dir` whose target is absolute.
fn absolute_symlinks(dir: &Path, found: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("read a directory entry").path();
        let meta = fs::symlink_metadata(&path).expect("lstat");
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).expect("readlink");
            if target.is_absolute() {
                found.push(format!("{} -> {}", path.display(), target.display()));
            }
        } else if meta.is_dir() {
            absolute_symlinks(&path, found);
        }
    }
}

/// Runs `qemu-aarch64 -L SYSROOT SYSROOT/<program> ARGS` in `dir` with `stdin` as input.
fn qemu_in(dir: &Path, program: &str, args: &[&str], stdin: &str) -> Run {
    let root = test_sysroot();
    let mut child = Command::new("qemu-aarch64")
        .arg("-L")
        .arg(&root)
        .arg(root.join(program.trim_start_matches('/')))
        .args(args)
        .env_clear()
        .envs(ENV.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run qemu-aarch64 ({e}); install it with `apt-get install qemu-user`")
        });
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child
        .wait_with_output()
        .expect("wait for qemu-aarch64")
        .into()
}

/// Runs `program ARGS` under qemu in a scratch directory and checks it exits with `code` and
/// prints exactly `expected`, and nothing on stderr.
fn expect_output(program: &str, args: &[&str], stdin: &str, code: i32, expected: &str) {
    let dir = scratch();
    let run = qemu_in(dir.path(), program, args, stdin);
    assert_eq!(
        (run.code(), run.stdout().as_str(), run.stderr().as_str()),
        (code, expected, ""),
        "{program} {args:?}"
    );
}

/// Like `expect_output` for a zero exit status, checking only the first line's beginning (for
/// version banners, which a security update may change further on).
fn expect_first_line(program: &str, args: &[&str], prefix: &str) {
    let dir = scratch();
    let run = qemu_in(dir.path(), program, args, "");
    let stdout = run.stdout();
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        run.code() == 0 && first.starts_with(prefix),
        "{program} {args:?}: exit {}, first line {first:?}, stderr {:?}",
        run.code(),
        run.stderr()
    );
}

#[test]
fn usr_is_merged_like_debootstrap_does() {
    let root = test_sysroot();
    for dir in ["bin", "sbin", "lib"] {
        let target = fs::read_link(root.join(dir)).unwrap_or_else(|e| panic!("/{dir}: {e}"));
        assert_eq!(target, Path::new("usr").join(dir), "/{dir}");
    }
}

#[test]
fn bin_sh_is_dash() {
    let root = test_sysroot();
    assert_eq!(resolve(&root, "/bin/sh"), resolve(&root, "/usr/bin/dash"));
}

#[test]
fn interpreters_resolve_inside_the_sysroot() {
    let root = test_sysroot();
    for interp in ["/lib/ld-linux-aarch64.so.1", "/lib/ld-musl-aarch64.so.1"] {
        let real = resolve(&root, interp);
        with_aarch64_elf(&real, |_| ());
    }
}

#[test]
fn no_symlink_is_absolute() {
    let mut found = Vec::new();
    absolute_symlinks(&test_sysroot(), &mut found);
    assert!(found.is_empty(), "absolute symlinks: {found:#?}");
}

#[test]
fn programs_are_aarch64_elfs_whose_interpreter_and_libraries_resolve() {
    let root = test_sysroot();
    let mut pending: Vec<PathBuf> = PROGRAMS.iter().map(|p| resolve(&root, p)).collect();
    let mut seen = Vec::new();
    while let Some(path) = pending.pop() {
        if seen.contains(&path) {
            continue;
        }
        let needed: Vec<String> = with_aarch64_elf(&path, |elf| {
            if let Some(interp) = elf.interpreter {
                assert_eq!(interp, "/lib/ld-linux-aarch64.so.1", "{}", path.display());
                resolve(&root, interp);
            }
            elf.libraries.iter().map(|l| l.to_string()).collect()
        });
        for lib in needed {
            let dir = GLIBC_LIB_DIRS
                .iter()
                .find(|dir| root.join(&dir[1..]).join(&lib).exists())
                .unwrap_or_else(|| panic!("{}: no {lib} in the library path", path.display()));
            pending.push(resolve(&root, &format!("{dir}/{lib}")));
        }
        seen.push(path);
    }
}

#[test]
fn the_files_maintainer_scripts_make_are_there() {
    let root = test_sysroot();
    let passwd = fs::read_to_string(root.join("etc/passwd")).expect("read /etc/passwd");
    assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");
    assert!(passwd.contains("\nnobody:x:65534:65534:"), "{passwd}");
    for tmp in ["tmp", "var/tmp"] {
        let mode = fs::metadata(root.join(tmp))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o1777, "/{tmp}");
    }
    assert!(resolve(&root, "/usr/bin/awk").ends_with("usr/bin/gawk"));
    assert!(resolve(&root, "/usr/bin/lua").ends_with("usr/bin/lua5.4"));
    assert!(resolve(&root, "/usr/bin/python3").ends_with("usr/bin/python3.11"));
    assert!(
        !root.join("etc/ld.so.cache").exists(),
        "ld.so works without a cache"
    );
}

#[test]
fn dash_runs_a_script() {
    expect_output(
        "/bin/sh",
        &["-c", "x=6; echo dash $((x * 7))"],
        "",
        0,
        "dash 42\n",
    );
}

#[test]
fn bash_runs_a_script() {
    let script = "a=(b c); printf '%s %s\\n' \"${#a[@]}\" \"${a[1]^^}\"";
    expect_output("/bin/bash", &["-c", script], "", 0, "2 C\n");
}

#[test]
fn ls_lists_a_file() {
    let dir = scratch();
    let file = dir.path().join("f");
    fs::write(&file, "hello").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let day = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_923_200); // 2020-01-02
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(day)
        .unwrap();
    let run = qemu_in(
        dir.path(),
        "/usr/bin/ls",
        &["-go", "--time-style=+%F", "f"],
        "",
    );
    assert_eq!(
        run.stdout(),
        "-rw-r--r-- 1 5 2020-01-02 f\n",
        "{}",
        run.stderr()
    );
}

#[test]
fn id_finds_nobody_in_passwd_and_group() {
    let expected = "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n";
    expect_output("/usr/bin/id", &["nobody"], "", 0, expected);
}

#[test]
fn sort_sorts_numerically() {
    expect_output("/usr/bin/sort", &["-n"], "10\n9\n100\n", 0, "9\n10\n100\n");
}

#[test]
fn sha256sum_hashes_stdin() {
    let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  -\n";
    expect_output("/usr/bin/sha256sum", &[], "abc", 0, expected);
}

#[test]
fn grep_matches_perl_regexes() {
    expect_output(
        "/usr/bin/grep",
        &["-oP", r"\d+(?=px)"],
        "w 12px h 7px\n",
        0,
        "12\n7\n",
    );
}

#[test]
fn sed_substitutes_extended_regexes() {
    expect_output(
        "/usr/bin/sed",
        &["-E", r"s/(a+)-(b+)/\2-\1/"],
        "aa-bbb\n",
        0,
        "bbb-aa\n",
    );
}

#[test]
fn awk_is_gawk() {
    // gensub is a gawk extension: mawk or busybox awk would fail.
    let program = r#"BEGIN { printf "%s %d\n", gensub(/o/, "0", "g", "foo"), length("abc") }"#;
    expect_output("/usr/bin/awk", &[program], "", 0, "f00 3\n");
}

#[test]
fn diff_prints_a_unified_diff() {
    let dir = scratch();
    fs::write(dir.path().join("a"), "x\n").unwrap();
    fs::write(dir.path().join("b"), "y\n").unwrap();
    let args = ["-u", "--label", "a", "--label", "b", "a", "b"];
    let run = qemu_in(dir.path(), "/usr/bin/diff", &args, "");
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert_eq!(run.stdout(), "--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n");
}

#[test]
fn tar_gzip_and_xz_round_trip_a_file() {
    let dir = scratch();
    fs::write(dir.path().join("f"), "payload\n").unwrap();
    let steps: &[(&str, &[&str])] = &[
        ("/usr/bin/tar", &["cf", "f.tar", "f"]),
        ("/usr/bin/gzip", &["-k", "f.tar"]),
        ("/usr/bin/xz", &["-k", "f"]),
        ("/usr/bin/rm", &["f", "f.tar"]),
        ("/usr/bin/gzip", &["-d", "f.tar.gz"]),
        ("/usr/bin/tar", &["xf", "f.tar"]),
    ];
    for (program, args) in steps {
        let run = qemu_in(dir.path(), program, args, "");
        assert_eq!(run.code(), 0, "{program} {args:?}: {}", run.stderr());
    }
    assert_eq!(
        fs::read_to_string(dir.path().join("f")).unwrap(),
        "payload\n"
    );
    let run = qemu_in(dir.path(), "/usr/bin/xz", &["-dc", "f.xz"], "");
    assert_eq!(run.stdout(), "payload\n", "{}", run.stderr());
}

#[test]
fn python3_imports_its_stdlib() {
    let program = "import json, re, hashlib, sqlite3, threading, subprocess, tempfile, zlib\n\
                   n = sqlite3.connect(':memory:').execute('select 6 * 7').fetchone()[0]\n\
                   print(json.dumps({'n': n}), hashlib.sha256(b'abc').hexdigest()[:8], \
                   zlib.crc32(b'abc'), re.sub('b+', '-', 'abbbc'))";
    let expected = "{\"n\": 42} ba7816bf 891568578 a-c\n";
    expect_output("/usr/bin/python3", &["-c", program], "", 0, expected);
}

#[test]
fn perl_runs_with_its_modules() {
    let program =
        r#"printf "%s %d %s\n", join(",", map { $_ * 2 } 1..3), floor(2.5), wrap("", "", "x")"#;
    let args = ["-MPOSIX", "-MText::Wrap", "-e", program];
    expect_output("/usr/bin/perl", &args, "", 0, "2,4,6 2 x\n");
}

#[test]
fn sqlite3_evaluates_sql() {
    expect_output(
        "/usr/bin/sqlite3",
        &[":memory:", "select 6 * 7;"],
        "",
        0,
        "42\n",
    );
}

#[test]
fn jq_filters_json() {
    expect_output(
        "/usr/bin/jq",
        &["-c", "{s: (.a | add)}"],
        r#"{"a": [1, 2, 3]}"#,
        0,
        "{\"s\":6}\n",
    );
}

#[test]
fn lua_runs_through_its_alternative() {
    let program = "print(string.format('%s %d', _VERSION, 6 * 7))";
    expect_output("/usr/bin/lua", &["-e", program], "", 0, "Lua 5.4 42\n");
}

#[test]
fn make_evaluates_a_makefile() {
    let dir = scratch();
    fs::write(
        dir.path().join("Makefile"),
        "all: ;\n$(info $(words a b c))\n",
    )
    .unwrap();
    let run = qemu_in(dir.path(), "/usr/bin/make", &["-s"], "");
    assert_eq!(
        (run.code(), run.stdout()),
        (0, "3\n".to_string()),
        "{}",
        run.stderr()
    );
    expect_first_line("/usr/bin/make", &["--version"], "GNU Make 4.3");
}

#[test]
fn busybox_runs() {
    expect_output("/usr/bin/busybox", &["echo", "hi"], "", 0, "hi\n");
}

#[test]
fn network_tools_start() {
    expect_first_line("/usr/bin/curl", &["--version"], "curl 7.88");
    expect_first_line("/usr/bin/ip", &["-V"], "ip utility, iproute2-");
}

#[test]
fn a_musl_program_runs_with_musls_loader() {
    let bin = build_musl_guest("musl_hello", "musl_hello");
    let bytes = fs::read(&bin).unwrap();
    let elf = Elf::parse(&bytes).expect("parse musl_hello");
    assert_eq!(elf.interpreter, Some("/lib/ld-musl-aarch64.so.1"));
    assert_eq!(elf.libraries, ["libc.so"]);

    let dir = scratch();
    let run: Run = Command::new("qemu-aarch64")
        .arg("-L")
        .arg(test_sysroot())
        .arg(&bin)
        .args(["a", "b"])
        .env_clear()
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run qemu-aarch64")
        .into();
    assert_eq!(
        (run.code(), run.stdout().as_str(), run.stderr().as_str()),
        (2, "hello from musl\na\nb\n", "")
    );
}
