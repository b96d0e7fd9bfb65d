//! `installer/install.sh`: shellcheck-clean POSIX sh that installs a binary under a prefix
//! (here the test build, with `--binary`, so the test does not build a release), re-points
//! shims at it and adds the hooks only when asked.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Run, elfuse, repo, scratch};

fn install(home: &Path, args: &[&str]) -> Run {
    Command::new("/bin/sh")
        .arg(repo().join("installer/install.sh"))
        .arg("--binary")
        .arg(elfuse())
        .args(args)
        .env("HOME", home)
        .env("SHELL", "/bin/bash")
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run install.sh")
        .into()
}

#[test]
fn the_installer_passes_shellcheck() {
    let out = Command::new("shellcheck")
        .arg(repo().join("installer/install.sh"))
        .output()
        .expect("run shellcheck (apt-get install shellcheck)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_installer_installs_the_binary_and_hooks_only_when_asked() {
    let home = scratch();
    let prefix = home.path().join("prefix");
    let run = install(
        home.path(),
        &["--prefix", prefix.to_str().unwrap(), "--hooks", "no"],
    );
    let installed = prefix.join("bin/elfuse");
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        run.stdout()
            .starts_with(&format!("installed {}\n", installed.display()))
    );
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(elfuse()).unwrap()
    );
    assert!(
        !home.path().join(".bashrc").exists(),
        "hooks installed unasked"
    );

    let run = install(
        home.path(),
        &["--prefix", prefix.to_str().unwrap(), "--hooks", "yes"],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let bashrc = std::fs::read_to_string(home.path().join(".bashrc")).unwrap();
    assert!(
        bashrc.contains(&format!("eval \"$('{}' init bash)\"", installed.display())),
        "{bashrc}"
    );

    let bad = install(home.path(), &["--hooks", "maybe"]);
    assert_eq!(bad.code(), 2);
}
