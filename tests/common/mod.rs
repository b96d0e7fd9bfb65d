//! Shared helpers for the integration tests: building guest programs, running elfuse and
//! the reference `qemu-aarch64`, and locating the Debian fixtures.
//!
//! Guest programs are C sources under `tests/guest/`, compiled with `aarch64-linux-gnu-gcc`
//! into the test target directory (rebuilt when the source or a header is newer). A missing
//! cross compiler or fixture is a test failure with the command that installs it, never a
//! silent skip.

#![allow(dead_code)]

pub mod debian;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
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
    // No sysroot from the developer's environment or configuration: a test names its own.
    let unconfigured = std::env::temp_dir().join("elfuse-tests-unconfigured");
    cmd.env_remove("ELFUSE_SYSROOT");
    cmd.env("XDG_CONFIG_HOME", unconfigured.join("config"));
    cmd.env("XDG_DATA_HOME", unconfigured.join("data"));
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

/// The Debian bookworm arm64 root tree that `tests/fixtures/make-sysroot` assembles: every
/// program the tests run with what it needs at run time, merged /usr, `/bin/sh` -> dash, and
/// only relative symlinks, so it works as a path prefix. Built once per process (the script
/// itself is fast when its cache is in place and serializes concurrent processes); panics with
/// the script's stderr if it fails.
pub fn test_sysroot() -> PathBuf {
    static SYSROOT: OnceLock<PathBuf> = OnceLock::new();
    SYSROOT
        .get_or_init(|| {
            let script = repo().join("tests/fixtures/make-sysroot");
            let out = Command::new(&script)
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "tests/fixtures/make-sysroot failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            let root = PathBuf::from(stdout.lines().last().unwrap_or_default());
            assert!(
                root.is_dir(),
                "tests/fixtures/make-sysroot printed no directory as its last line: {stdout:?}"
            );
            root
        })
        .clone()
}

/// Asks the cross compiler where one of its own files is (`-print-file-name=...` and the like).
fn cross_gcc_file(query: &str) -> PathBuf {
    let out = Command::new("aarch64-linux-gnu-gcc")
        .arg(query)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run aarch64-linux-gnu-gcc ({e}); install it with \
                 `apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross`"
            )
        });
    assert!(out.status.success(), "aarch64-linux-gnu-gcc {query} failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Builds `tests/guest/<name>.c` against the musl of `test_sysroot()` and returns the binary
/// (named `out`): a PIE dynamically linked with `/lib/ld-musl-aarch64.so.1`. There is no aarch64
/// musl-gcc, so this links by hand the way Debian's `musl-gcc.specs` does (the command is in
/// `tests/guest/musl_hello.c`); run the result with the sysroot as its root.
pub fn build_musl_guest(name: &str, out: &str) -> PathBuf {
    let sysroot = test_sysroot();
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let src = repo().join("tests/guest").join(format!("{name}.c"));
    let bin = build_dir().join(out);
    if bin.exists() && modified(&bin) >= modified(&src) {
        return bin;
    }
    let musl = sysroot.join("usr/lib/aarch64-linux-musl");
    let status = Command::new("aarch64-linux-gnu-gcc")
        .args([
            "-O1",
            "-Wall",
            "-Werror",
            "-nostdinc",
            "-nostdlib",
            "-nostartfiles",
        ])
        .arg("-isystem")
        .arg(sysroot.join("usr/include/aarch64-linux-musl"))
        .arg("-isystem")
        .arg(cross_gcc_file("-print-file-name=include"))
        .arg("-Wl,-dynamic-linker,/lib/ld-musl-aarch64.so.1")
        .arg(musl.join("Scrt1.o"))
        .arg(musl.join("crti.o"))
        .arg(cross_gcc_file("-print-file-name=crtbeginS.o"))
        .arg(&src)
        .arg("-L")
        .arg(&musl)
        .arg("-lc")
        .arg(cross_gcc_file("-print-libgcc-file-name"))
        .arg(cross_gcc_file("-print-file-name=crtendS.o"))
        .arg(musl.join("crtn.o"))
        .arg("-o")
        .arg(&bin)
        .status()
        .expect("run aarch64-linux-gnu-gcc");
    assert!(
        status.success(),
        "building {} against musl failed",
        src.display()
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
