//! Running the Debian test sysroot's programs (`tests/debian_programs.rs`,
//! `tests/debian_interpreters.rs`): under elfuse with `--sysroot` and a clean environment, and
//! under `qemu-aarch64 -L SYSROOT`, the reference, with checks of exit status and output.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use super::{Run, elfuse_cmd, test_sysroot};

/// The environment every program gets, under elfuse and under qemu (and nothing else).
pub const ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/bin:/bin"),
    ("LC_ALL", "C"),
    ("TZ", "UTC"),
    ("PYTHONDONTWRITEBYTECODE", "1"),
];

thread_local! {
    /// How elfuse makes a guest's `fork` child in this test thread (`ELFUSE_FORK`): the
    /// host's `fork()`, Linux's default, unless [`handed_over`] chose the hand-over.
    pub static FORK_MODE: std::cell::Cell<&'static str> = const { std::cell::Cell::new("fork") };
}

/// `program` (a file name in the sysroot's `/usr/bin`) as a host path.
pub fn program_path(program: &str) -> PathBuf {
    let path = test_sysroot().join("usr/bin").join(program);
    assert!(
        path.exists(),
        "{} is not in the test sysroot",
        path.display()
    );
    path
}

/// Spawns `cmd` with `stdin` as its input and collects the result.
pub fn run_with_input(cmd: &mut Command, stdin: &str) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let input = stdin.as_bytes().to_vec();
    let writer = std::thread::spawn(move || pipe.write_all(&input));
    let out = child.wait_with_output().expect("wait for the program");
    // A program may exit without reading its input; a broken pipe is no failure then.
    let _ = writer.join();
    out.into()
}

/// Runs the sysroot's `program ARGS` under elfuse in `dir`, with `program` as `argv[0]` (as a
/// shell would pass it) and [`ENV`] as the whole environment.
pub fn elfuse_in(dir: &Path, program: &str, args: &[&str], stdin: &str) -> Run {
    elfuse_with_env(dir, &[], program, args, stdin)
}

/// [`elfuse_in`] with `extra` added to the environment.
pub fn elfuse_with_env(
    dir: &Path,
    extra: &[(&str, &str)],
    program: &str,
    args: &[&str],
    stdin: &str,
) -> Run {
    let mut cmd = elfuse_cmd();
    cmd.env("ELFUSE_FORK", FORK_MODE.get())
        .arg("--sysroot")
        .arg(test_sysroot())
        .arg("--clear-env")
        .args(
            ENV.iter()
                .chain(extra)
                .flat_map(|(k, v)| ["--env".to_string(), format!("{k}={v}")]),
        )
        .args(["--argv0", program])
        .arg(program_path(program))
        .args(args)
        .current_dir(dir);
    run_with_input(&mut cmd, stdin)
}

/// Runs the same command under `qemu-aarch64 -L SYSROOT`, the reference.
pub fn qemu_in(dir: &Path, program: &str, args: &[&str], stdin: &str) -> Run {
    let mut cmd = Command::new("qemu-aarch64");
    cmd.arg("-L")
        .arg(test_sysroot())
        .args(["-0", program])
        .arg(program_path(program))
        .args(args)
        .env_clear()
        .envs(ENV.iter().copied())
        .current_dir(dir);
    run_with_input(&mut cmd, stdin)
}

/// Checks that `program ARGS` under elfuse exits with `code` and prints exactly `expected`,
/// with nothing on stderr.
pub fn expect(dir: &Path, program: &str, args: &[&str], stdin: &str, code: i32, expected: &str) {
    let run = elfuse_in(dir, program, args, stdin);
    assert_eq!(
        (run.code(), run.stdout().as_str(), run.stderr().as_str()),
        (code, expected, ""),
        "elfuse: {program} {args:?}"
    );
}

/// [`expect`], and the same command under qemu must give the same exit status and output.
pub fn expect_like_qemu(
    dir: &Path,
    program: &str,
    args: &[&str],
    stdin: &str,
    code: i32,
    expected: &str,
) {
    let qemu = qemu_in(dir, program, args, stdin);
    assert_eq!(
        (qemu.code(), qemu.stdout().as_str()),
        (code, expected),
        "qemu: {program} {args:?}: {}",
        qemu.stderr()
    );
    expect(dir, program, args, stdin, code, expected);
}

/// Sets the modification time of `path` to `secs` after the epoch.
pub fn set_mtime(path: &Path, secs: u64) {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    fs::File::options()
        .read(true)
        .open(path)
        .and_then(|f| f.set_modified(time))
        .unwrap_or_else(|e| panic!("set the mtime of {}: {e}", path.display()));
}

/// Sets the permission bits of `path`.
pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The permission bits of `path`.
pub fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

/// Puts the host's `fork()` back when a test ends, even by a panic (with one test thread,
/// libtest may run every test on the same thread).
struct RestoreForkMode;

impl Drop for RestoreForkMode {
    fn drop(&mut self) {
        FORK_MODE.set("fork");
    }
}

/// Runs `test` with each guest `fork` in this thread handed over to a fresh elfuse process
/// (`ELFUSE_FORK=handover`), the way macOS must make them.
pub fn handed_over(test: fn()) {
    let _restore = RestoreForkMode;
    FORK_MODE.set("handover");
    test();
}
