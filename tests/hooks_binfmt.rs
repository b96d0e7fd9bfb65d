//! `elfuse install-hooks --binfmt` for real, as root: once registered, an aarch64 program
//! runs when `sh -c` or a host C program `execv`s it (with its own `argv[0]`, and its exit
//! status); after `uninstall-hooks --binfmt` the kernel says "Exec format error" again.
//!
//! Registration is kernel-wide, so the test uses its own entry name, removes a stale entry of
//! that name first and always unregisters, also when an assertion fails. It is skipped, with
//! the reason printed, only when `binfmt_misc` cannot be mounted (not root, or a container
//! without the file system).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Link, Run, build_guest, elfuse_cmd, scratch};

const NAME: &str = "elfuse-test-binfmt";
const MOUNT: &str = "/proc/sys/fs/binfmt_misc";

/// Removes the test's entry, if there is one.
fn unregister() {
    let entry = Path::new(MOUNT).join(NAME);
    if entry.exists() {
        let _ = std::fs::write(entry, "-1");
    }
}

/// Unregisters the test's entry when dropped, so that a failed assertion leaves none.
struct Unregister;

impl Drop for Unregister {
    fn drop(&mut self) {
        unregister();
    }
}

/// Mounts binfmt_misc if needed; the reason it cannot be used otherwise.
fn binfmt_available() -> Result<(), String> {
    if Path::new(MOUNT).join("register").exists() {
        return Ok(());
    }
    let out = Command::new("mount")
        .args(["-t", "binfmt_misc", "binfmt_misc", MOUNT])
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() && Path::new(MOUNT).join("register").exists() {
        Ok(())
    } else {
        Err(format!(
            "cannot mount binfmt_misc on {MOUNT}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Builds `tests/host/exec_probe.c` for the host.
fn exec_probe() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("exec_probe");
    let status = Command::new("cc")
        .arg(common::repo().join("tests/host/exec_probe.c"))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run cc");
    assert!(status.success(), "building exec_probe failed");
    out
}

fn run(program: &Path, args: &[&str], dir: &Path) -> Run {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run")
        .into()
}

fn elfuse(home: &Path, args: &[&str]) -> Run {
    let mut cmd = elfuse_cmd();
    cmd.env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .args(args);
    cmd.output().expect("run elfuse").into()
}

#[test]
fn binfmt_registration_runs_aarch64_programs_from_any_execve() {
    if let Err(reason) = binfmt_available() {
        println!("skipped: {reason}");
        return;
    }
    unregister();
    let _guard = Unregister;

    let dir = scratch();
    let program = dir.path().join("aarch64-program");
    std::fs::copy(
        build_guest("cli_probe", "cli_probe", Link::Static),
        &program,
    )
    .unwrap();
    let probe = exec_probe();
    let sh = Path::new("/bin/sh");

    // Before: the kernel refuses (and no other handler, such as qemu-user-binfmt, answers).
    let before = run(sh, &["-c", "./aarch64-program args"], dir.path());
    assert_eq!(before.code(), 126, "{}{}", before.stdout(), before.stderr());
    assert!(
        before.stderr().contains("Exec format error"),
        "{}",
        before.stderr()
    );

    let installed = elfuse(
        dir.path(),
        &[
            "install-hooks",
            "--shell",
            "bash",
            "--binfmt",
            "--binfmt-name",
            NAME,
        ],
    );
    assert_eq!((installed.code(), installed.stderr()), (0, String::new()));
    let status = std::fs::read_to_string(Path::new(MOUNT).join(NAME)).unwrap();
    assert!(status.starts_with("enabled\n"), "{status}");
    assert!(status.contains("flags: POF\n"), "{status}");

    let from_sh = run(
        sh,
        &[
            "-c",
            "./aarch64-program args \"a  b\"; ./aarch64-program exit 7",
        ],
        dir.path(),
    );
    assert_eq!(
        (from_sh.code(), from_sh.stdout(), from_sh.stderr()),
        (
            7,
            "./aarch64-program\nargs\na  b\n".to_string(),
            String::new()
        )
    );
    // argv[0] is the caller's, not the file name (flag P).
    let from_c = run(
        &probe,
        &["./aarch64-program", "my-name", "args", "x"],
        dir.path(),
    );
    assert_eq!(
        (from_c.code(), from_c.stdout(), from_c.stderr()),
        (0, "my-name\nargs\nx\n".to_string(), String::new())
    );
    // The kernel's descriptor for the program (the lowest free one, 3) is elfuse's alone.
    let fd = run(&program, &["cat-fd", "3"], dir.path());
    assert_eq!(
        (fd.code(), fd.stdout.len()),
        (1, 0),
        "the guest inherited AT_EXECFD"
    );
    let failing = run(&probe, &["./aarch64-program", "p", "exit", "9"], dir.path());
    assert_eq!(failing.code(), 9);

    let removed = elfuse(
        dir.path(),
        &["uninstall-hooks", "--binfmt", "--binfmt-name", NAME],
    );
    assert_eq!((removed.code(), removed.stderr()), (0, String::new()));
    assert!(!Path::new(MOUNT).join(NAME).exists());
    let after = run(&probe, &["./aarch64-program", "p", "args"], dir.path());
    assert_eq!(
        (after.code(), after.stdout()),
        (1, "execv: Exec format error\n".to_string())
    );
    let after = run(sh, &["-c", "./aarch64-program args"], dir.path());
    assert_eq!(after.code(), 126);
}
