//! Shared helpers for the integration tests: building guest programs, running elfuse and
//! the reference `qemu-aarch64`, and locating the Debian fixtures.
//!
//! Guest programs are C sources under `tests/guest/`, compiled with `aarch64-linux-gnu-gcc`
//! into the test target directory (rebuilt when the source or a header is newer). A missing
//! cross compiler or fixture is a test failure with the command that installs it, never a
//! silent skip.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::SystemTime;

/// The elfuse binary under test.
pub fn elfuse() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_elfuse"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where built guest programs go.
fn build_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guest");
    std::fs::create_dir_all(&dir).expect("create the guest build directory");
    dir
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// How a guest program is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// `-static`.
    Static,
    /// `-static-pie`.
    StaticPie,
    /// Dynamically linked against the cross toolchain's glibc (interpreter
    /// `/lib/ld-linux-aarch64.so.1`).
    Dynamic,
}

/// Serializes builds of the same output across test threads.
static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Builds `tests/guest/<name>.c` and returns the binary (named `out`).
pub fn build_guest(name: &str, out: &str, link: Link) -> PathBuf {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let src = repo().join("tests/guest").join(format!("{name}.c"));
    let include = repo().join("tests/guest/include");
    let bin = build_dir().join(out);
    let newest_input = std::fs::read_dir(&include)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| modified(&e.path()))
        .chain([modified(&src)])
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    if bin.exists() && modified(&bin) >= newest_input {
        return bin;
    }
    let link_flag = match link {
        Link::Static => "-static",
        Link::StaticPie => "-static-pie",
        Link::Dynamic => "-pie",
    };
    let status = Command::new("aarch64-linux-gnu-gcc")
        .args([link_flag, "-O1", "-g", "-Wall", "-Werror", "-pthread"])
        .arg("-I")
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(&bin)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run aarch64-linux-gnu-gcc ({e}); install it with \
                 `apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross`"
            )
        });
    assert!(status.success(), "building {} failed", src.display());
    bin
}

/// The result of running a command.
#[derive(Debug)]
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Run {
    /// Standard output as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The exit code (panics if killed by a signal).
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {:?}", self.status))
    }

    /// The signal that killed the process, if any.
    pub fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.status.signal()
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            status: o.status,
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }
}

/// A command builder for elfuse with the environment tests rely on.
pub fn elfuse_cmd() -> Command {
    let mut cmd = Command::new(elfuse());
    cmd.env_remove("ELFUSE_LOG");
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `elfuse ARGS...` in `dir` and collects the result.
pub fn run_elfuse<I, S>(args: I, dir: &Path) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    elfuse_cmd()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run elfuse")
        .into()
}

/// Runs `qemu-aarch64 ARGS...` in `dir`: the reference the tests compare with.
pub fn run_qemu<I, S>(args: I, dir: &Path) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new("qemu-aarch64")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run qemu-aarch64 ({e}); install it with `apt-get install qemu-user`")
        })
        .into()
}

/// The root of the unpacked Debian arm64 fixture packages for `suite`, fetching `packages`
/// first (the fetcher is idempotent and fast when they are cached).
pub fn fixtures(packages: &[&str]) -> PathBuf {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let status = Command::new(repo().join("tests/fixtures/fetch-debs"))
        .args(packages)
        .stderr(Stdio::null())
        .status()
        .expect("run tests/fixtures/fetch-debs");
    assert!(
        status.success(),
        "tests/fixtures/fetch-debs {packages:?} failed"
    );
    let cache = std::env::var_os("ELFUSE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache")
                });
            base.join("elfuse-fixtures")
        });
    cache.join("bookworm/root")
}

/// The statically linked aarch64 BusyBox from Debian's `busybox-static`.
pub fn arm64_busybox() -> PathBuf {
    let bin = fixtures(&["busybox-static"]).join("bin/busybox");
    assert!(
        bin.is_file(),
        "{} is missing after fetching busybox-static",
        bin.display()
    );
    bin
}

/// A fresh scratch directory, removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("elfuse-test-")
        .tempdir()
        .expect("create a scratch directory")
}
