//! `elfuse install-hooks` and `elfuse uninstall-hooks` on real start-up files: a round trip
//! keeps every byte (files without a final newline, CRLF files, empty files), installing twice
//! changes nothing, a backup is kept, `--dry-run` only shows the diff, `ZDOTDIR` is honoured,
//! and a read-only file is refused with one clear line.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Run, elfuse, elfuse_cmd, scratch};

fn run(home: &Path, env: &[(&str, &Path)], args: &[&str]) -> Run {
    let mut cmd = elfuse_cmd();
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("SHELL", "/bin/zsh")
        .env_remove("ZDOTDIR")
        .args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("run elfuse").into()
}

fn ok(run: Run) -> String {
    assert_eq!((run.code(), run.stderr()), (0, String::new()));
    run.stdout()
}

fn block(shell: &str, eol: &str, added_newline: bool) -> String {
    let begin = if added_newline {
        "# >>> elfuse hooks (no final newline) >>>"
    } else {
        "# >>> elfuse hooks >>>"
    };
    let eval = format!(
        "eval \"$('{}' init {shell})\"",
        std::fs::canonicalize(elfuse()).unwrap().display()
    );
    let load = if shell == "bash" {
        format!("if [ -n \"${{BASH_VERSION-}}\" ]; then {eval}; fi")
    } else {
        eval
    };
    format!(
        "{begin}{eol}# Added by 'elfuse install-hooks'; 'elfuse uninstall-hooks' removes it.{eol}\
         {load}{eol}# <<< elfuse hooks <<<{eol}"
    )
}

#[test]
fn a_round_trip_keeps_every_byte_of_every_kind_of_file() {
    let cases: [(&str, &[u8], &str, bool); 5] = [
        ("plain", b"alias ll='ls -l'\nexport A=1\n", "\n", false),
        ("no final newline", b"export A=1", "\n", true),
        ("crlf", b"export A=1\r\nexport B=2\r\n", "\r\n", false),
        (
            "crlf without final newline",
            b"export A=1\r\nexport B=2",
            "\r\n",
            true,
        ),
        ("empty", b"", "\n", false),
    ];
    for (what, original, eol, added_newline) in cases {
        let home = scratch();
        let rc = home.path().join(".zshrc");
        std::fs::write(&rc, original).unwrap();
        let out = ok(run(home.path(), &[], &["install-hooks"]));
        assert_eq!(
            out,
            format!("installed hooks in {}\n", rc.display()),
            "{what}"
        );

        let mut expected = original.to_vec();
        if added_newline {
            expected.extend_from_slice(eol.as_bytes());
        }
        expected.extend_from_slice(block("zsh", eol, added_newline).as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&std::fs::read(&rc).unwrap()),
            String::from_utf8_lossy(&expected),
            "{what}"
        );
        assert_eq!(
            std::fs::read(home.path().join(".zshrc.elfuse.bak")).unwrap(),
            original
        );

        let out = ok(run(home.path(), &[], &["install-hooks", "--shell", "zsh"]));
        assert_eq!(
            out,
            format!("hooks already in {}\n", rc.display()),
            "{what}"
        );
        assert_eq!(
            std::fs::read(&rc).unwrap(),
            expected,
            "{what}: second install"
        );

        let out = ok(run(home.path(), &[], &["uninstall-hooks"]));
        assert_eq!(
            out,
            format!("removed hooks from {}\n", rc.display()),
            "{what}"
        );
        assert_eq!(
            std::fs::read(&rc).unwrap(),
            original,
            "{what}: after uninstall"
        );
        assert_eq!(
            ok(run(home.path(), &[], &["uninstall-hooks"])),
            "",
            "{what}"
        );
    }
}

#[test]
fn a_missing_start_up_file_is_created_and_zdotdir_is_honoured() {
    let home = scratch();
    let zdotdir: PathBuf = home.path().join("zdot");
    std::fs::create_dir_all(&zdotdir).unwrap();
    ok(run(
        home.path(),
        &[("ZDOTDIR", &zdotdir)],
        &["install-hooks"],
    ));
    assert!(!home.path().join(".zshrc").exists());
    assert_eq!(
        std::fs::read_to_string(zdotdir.join(".zshrc")).unwrap(),
        block("zsh", "\n", false)
    );
    ok(run(home.path(), &[], &["install-hooks", "--shell", "bash"]));
    assert_eq!(
        std::fs::read_to_string(home.path().join(".bashrc")).unwrap(),
        block("bash", "\n", false)
    );
    // The bash block may land in ~/.profile on macOS: sh reads it without complaint.
    let sh = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            ". {}; echo loaded",
            home.path().join(".bashrc").display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        (
            String::from_utf8_lossy(&sh.stdout),
            String::from_utf8_lossy(&sh.stderr)
        ),
        ("loaded\n".into(), "".into())
    );
}

#[test]
fn dry_run_shows_the_diff_and_changes_nothing() {
    let home = scratch();
    let rc = home.path().join(".zshrc");
    std::fs::write(&rc, "export A=1\n").unwrap();
    let out = ok(run(home.path(), &[], &["install-hooks", "--dry-run"]));
    let name = rc.display();
    let added: String = block("zsh", "\n", false)
        .lines()
        .map(|l| format!("+{l}\n"))
        .collect();
    assert_eq!(
        out,
        format!("--- {name}\n+++ {name}\n@@ -1 +1,5 @@\n export A=1\n{added}")
    );
    assert_eq!(std::fs::read_to_string(&rc).unwrap(), "export A=1\n");
    assert!(!home.path().join(".zshrc.elfuse.bak").exists());
}

#[test]
fn a_read_only_start_up_file_is_refused_and_left_alone() {
    let home = scratch();
    let rc = home.path().join(".zshrc");
    std::fs::write(&rc, "export A=1\n").unwrap();
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o444)).unwrap();
    let result = run(home.path(), &[], &["install-hooks"]);
    assert_eq!(
        (result.code(), result.stdout(), result.stderr()),
        (
            1,
            String::new(),
            format!(
                "elfuse: {}: the file is read-only; make it writable or add the lines yourself\n",
                rc.display()
            )
        )
    );
    assert_eq!(std::fs::read_to_string(&rc).unwrap(), "export A=1\n");
}

#[test]
fn an_unknown_login_shell_asks_for_shell() {
    let home = scratch();
    let mut cmd = elfuse_cmd();
    let result: Run = cmd
        .env("HOME", home.path())
        .env("SHELL", "/usr/bin/fish")
        .arg("install-hooks")
        .output()
        .unwrap()
        .into();
    assert_eq!(
        (result.code(), result.stderr()),
        (
            1,
            "elfuse: cannot tell which shell to use from SHELL=\"/usr/bin/fish\": give --shell \
             zsh or --shell bash\n"
                .to_string()
        )
    );
}
