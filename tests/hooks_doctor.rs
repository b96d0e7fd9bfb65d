//! `elfuse doctor` on a scratch home (what it reports, the problems it finds with their fixes,
//! its exit status) and `elfuse completions` (scripts the shells accept).

mod common;

use std::path::Path;
use std::process::Command;

use common::{Run, arm64_busybox, elfuse_cmd, scratch};

fn elfuse(home: &Path, args: &[&str]) -> Run {
    let mut cmd = elfuse_cmd();
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env_remove("ZDOTDIR")
        .current_dir(home)
        .args(args);
    cmd.output().expect("run elfuse").into()
}

#[test]
fn doctor_reports_hooks_shims_and_problems_with_fixes() {
    let home = scratch();
    let h = home.path();
    std::fs::copy(arm64_busybox(), h.join("busybox")).unwrap();
    assert_eq!(elfuse(h, &["install-hooks", "--shell", "zsh"]).code(), 0);
    assert_eq!(elfuse(h, &["shim", "add", "busybox"]).code(), 0);

    let healthy = elfuse(h, &["doctor"]);
    let out = healthy.stdout();
    assert_eq!(
        (healthy.code(), healthy.stderr()),
        (0, String::new()),
        "{out}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("backend: emu"), "{out}");
    assert!(
        lines.contains(&"entitlement: not needed on this host"),
        "{out}"
    );
    let zshrc = format!("hooks: zsh: installed in {}", h.join(".zshrc").display());
    assert!(lines.contains(&zshrc.as_str()), "{out}");
    assert!(
        lines.contains(&"hooks: bash: not installed (elfuse install-hooks --shell bash)"),
        "{out}"
    );
    let shims = format!(
        "shims: 1 in {} (not on PATH)",
        h.join("data/elfuse/shims/bin").display()
    );
    assert!(lines.contains(&shims.as_str()), "{out}");
    assert!(lines.contains(&"sysroots: 0 configured"), "{out}");
    assert_eq!(lines.last(), Some(&"problems: none"));

    std::fs::remove_file(h.join("busybox")).unwrap();
    let broken = elfuse(h, &["doctor"]);
    assert_eq!(broken.code(), 1);
    let out = broken.stdout();
    let tail = format!(
        "problems: 1\n- shim busybox: {} is missing\n  fix: elfuse shim rm busybox\n",
        h.join("busybox").display()
    );
    assert!(out.ends_with(&tail), "{out}");
}

#[test]
fn completion_scripts_load_in_their_shells() {
    let home = scratch();
    for (shell, checker) in [("bash", ["bash", "-n"]), ("zsh", ["zsh", "-n"])] {
        let run = elfuse(home.path(), &["completions", shell]);
        assert_eq!(run.code(), 0);
        assert!(run.stdout().contains("install-hooks"), "{shell}");
        let file = home.path().join(format!("completions.{shell}"));
        std::fs::write(&file, &run.stdout).unwrap();
        let status = Command::new(checker[0])
            .arg(checker[1])
            .arg(&file)
            .status()
            .unwrap();
        assert!(status.success(), "{shell} rejects its completions");
    }
    let shellcheck = Command::new("shellcheck")
        .arg(home.path().join("completions.bash"))
        .output()
        .expect("run shellcheck");
    assert!(
        shellcheck.status.success(),
        "{}",
        String::from_utf8_lossy(&shellcheck.stdout)
    );
    let fish = elfuse(home.path(), &["completions", "fish"]);
    assert!(fish.stdout().contains("complete -c elfuse"));
}
