//! `--trace`: one strace-shaped line per syscall.
//!
//! ```text
//! 4242 openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)
//! ```
//!
//! Lines go to a private duplicate of elfuse's stderr (so the guest closing its fd 2 does not
//! silence them) or to the file given with `--trace-file`. Arguments are decoded by the kind
//! the syscall table gives each one; strings are quoted, escaped and cut after 32 bytes.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Mutex;

use crate::kernel::abi::errno::Errno;
use crate::kernel::abi::{at, fcntl, futex, mman, open as lo, signal, sysno};
use crate::kernel::syscalls::SyscallDef;
use crate::vm::memory::GuestMemory;

/// How an argument is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// Signed decimal.
    Int,
    /// Unsigned decimal.
    Uint,
    /// Hexadecimal (pointers).
    Hex,
    /// A descriptor.
    Fd,
    /// A directory descriptor (`AT_FDCWD`).
    Dirfd,
    /// A path string.
    Path,
    /// A string.
    Str,
    /// A buffer the call reads, its length in the next argument.
    InBuf,
    /// A buffer the call fills, its length in the return value.
    OutBuf,
    /// `open` flags.
    Oflags,
    /// A mode in octal.
    Mode,
    /// The mode of `open`: shown only when the flags before it create a file.
    OpenMode,
    /// `AT_*` flags.
    AtFlags,
    /// `PROT_*` bits.
    Prot,
    /// `MAP_*` flags.
    MapFlags,
    /// A signal number.
    Signal,
    /// A `sigprocmask` operation.
    SigHow,
    /// A clock id.
    Clock,
    /// An `fcntl` command.
    Fcntl,
    /// An `ioctl` request.
    Ioctl,
    /// An `lseek` whence.
    Whence,
    /// A `futex` operation word.
    FutexOp,
}

/// How a result is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    /// Decimal, or `-1 ERRNO (message)`.
    Int,
    /// Hexadecimal (addresses), or `-1 ERRNO (message)`.
    Hex,
    /// Octal (`umask`).
    Mode,
}

/// Where trace lines go.
pub struct Tracer {
    out: Mutex<File>,
}

impl Tracer {
    /// Traces to a private duplicate of this process's stderr.
    pub fn stderr() -> io::Result<Tracer> {
        let fd = io::stderr().as_fd().try_clone_to_owned()?;
        Ok(Tracer {
            out: Mutex::new(File::from(fd)),
        })
    }

    /// Traces to an already open file (a forked process's share of its parent's trace).
    pub fn from_fd(fd: std::os::fd::OwnedFd) -> Tracer {
        Tracer {
            out: Mutex::new(File::from(fd)),
        }
    }

    /// A duplicate of the trace's descriptor, for a forked process to write to.
    pub fn clone_fd(&self) -> io::Result<std::os::fd::OwnedFd> {
        let out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.as_fd().try_clone_to_owned()
    }

    /// Traces to `path` (created or truncated).
    pub fn file(path: &Path) -> io::Result<Tracer> {
        Ok(Tracer {
            out: Mutex::new(File::create(path)?),
        })
    }

    /// Writes one line for a completed syscall.
    pub fn syscall(
        &self,
        memory: &GuestMemory,
        tid: i32,
        nr: u64,
        def: Option<&SyscallDef>,
        args: &[u64; 6],
        ret: u64,
    ) {
        let line = format_call(memory, tid, nr, def, args, ret);
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.write_all(line.as_bytes());
    }

    /// Writes a free-form line (signals, exits).
    pub fn note(&self, tid: i32, text: &str) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{tid} {text}");
    }
}

/// The kernel-internal restart codes a call interrupted by a signal ends with: the name and
/// what becomes of the call.
fn restart_label(raw: i32) -> Option<(&'static str, &'static str)> {
    Some(match raw {
        512 => (
            "ERESTARTSYS",
            "restarted if the handler has SA_RESTART, else EINTR",
        ),
        513 => ("ERESTARTNOINTR", "always restarted"),
        514 => ("ERESTARTNOHAND", "restarted unless a handler runs"),
        516 => ("ERESTART_RESTARTBLOCK", "resumed through restart_syscall"),
        _ => return None,
    })
}

/// The trace line for one call, newline included.
pub fn format_call(
    memory: &GuestMemory,
    tid: i32,
    nr: u64,
    def: Option<&SyscallDef>,
    args: &[u64; 6],
    ret: u64,
) -> String {
    let mut line = format!("{tid} ");
    match def {
        Some(def) => {
            line.push_str(def.name);
            line.push('(');
            for (i, kind) in def.args.iter().enumerate() {
                let creates = |flags: u64| flags & (lo::O_CREAT | lo::O_TMPFILE) != 0;
                if *kind == Arg::OpenMode && !(i > 0 && creates(args[i - 1])) {
                    continue;
                }
                if i > 0 {
                    line.push_str(", ");
                }
                let next = args.get(i + 1).copied().unwrap_or(0);
                format_arg(&mut line, memory, *kind, args[i], next, ret);
            }
            line.push(')');
        }
        None => {
            let name = sysno::name(nr).map_or_else(|| format!("syscall_{nr}"), str::to_string);
            let _ = write!(
                line,
                "{name}({:#x}, {:#x}, {:#x}, ...)",
                args[0], args[1], args[2]
            );
        }
    }
    line.push_str(" = ");
    match Errno::from_return(ret) {
        Some(errno) => match restart_label(errno.raw()) {
            Some((name, meaning)) => {
                let _ = write!(line, "? {name} ({meaning})");
            }
            None => {
                let name = errno
                    .name()
                    .map_or_else(|| errno.raw().to_string(), str::to_string);
                let _ = write!(line, "-1 {name} ({})", errno.message());
            }
        },
        None => match def.map_or(Ret::Int, |d| d.ret) {
            Ret::Int => {
                let _ = write!(line, "{}", ret as i64);
            }
            Ret::Hex => {
                let _ = write!(line, "{ret:#x}");
            }
            Ret::Mode => {
                let _ = write!(line, "{ret:#05o}");
            }
        },
    }
    line.push('\n');
    line
}

fn format_arg(out: &mut String, memory: &GuestMemory, kind: Arg, value: u64, next: u64, ret: u64) {
    match kind {
        Arg::Int => {
            let _ = write!(out, "{}", value as i64);
        }
        Arg::Uint => {
            let _ = write!(out, "{value}");
        }
        Arg::Hex => hex(out, value),
        Arg::Fd => {
            let _ = write!(out, "{}", value as u32 as i32);
        }
        Arg::Dirfd => {
            if value as u32 as i32 == at::AT_FDCWD {
                out.push_str("AT_FDCWD");
            } else {
                let _ = write!(out, "{}", value as u32 as i32);
            }
        }
        Arg::Path | Arg::Str => string(out, memory, value, None),
        Arg::InBuf => string(out, memory, value, Some(next)),
        Arg::OutBuf => {
            if Errno::from_return(ret).is_some() {
                hex(out, value);
            } else {
                string(out, memory, value, Some(ret));
            }
        }
        Arg::Oflags => open_flags(out, value),
        Arg::Mode | Arg::OpenMode => mode(out, value),
        Arg::AtFlags => flags(
            out,
            value,
            &[
                (at::AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW"),
                (at::AT_REMOVEDIR, "AT_REMOVEDIR"),
                (at::AT_SYMLINK_FOLLOW, "AT_SYMLINK_FOLLOW"),
                (at::AT_NO_AUTOMOUNT, "AT_NO_AUTOMOUNT"),
                (at::AT_EMPTY_PATH, "AT_EMPTY_PATH"),
            ],
            "0",
        ),
        Arg::Prot => flags(
            out,
            value,
            &[
                (mman::PROT_READ, "PROT_READ"),
                (mman::PROT_WRITE, "PROT_WRITE"),
                (mman::PROT_EXEC, "PROT_EXEC"),
            ],
            "PROT_NONE",
        ),
        Arg::MapFlags => {
            let kind = match value & mman::MAP_TYPE {
                mman::MAP_SHARED => "MAP_SHARED",
                mman::MAP_PRIVATE => "MAP_PRIVATE",
                mman::MAP_SHARED_VALIDATE => "MAP_SHARED_VALIDATE",
                _ => "",
            };
            out.push_str(kind);
            let rest = value & !mman::MAP_TYPE;
            if rest != 0 {
                if !kind.is_empty() {
                    out.push('|');
                }
                flags(
                    out,
                    rest,
                    &[
                        (mman::MAP_FIXED, "MAP_FIXED"),
                        (mman::MAP_ANONYMOUS, "MAP_ANONYMOUS"),
                        (mman::MAP_GROWSDOWN, "MAP_GROWSDOWN"),
                        (mman::MAP_DENYWRITE, "MAP_DENYWRITE"),
                        (mman::MAP_NORESERVE, "MAP_NORESERVE"),
                        (mman::MAP_POPULATE, "MAP_POPULATE"),
                        (mman::MAP_STACK, "MAP_STACK"),
                        (mman::MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"),
                    ],
                    "0",
                );
            } else if kind.is_empty() {
                out.push('0');
            }
        }
        Arg::Signal => match signal::name(value as u32) {
            Some(name) => {
                let _ = write!(out, "SIG{name}");
            }
            None => {
                let _ = write!(out, "{}", value as i64);
            }
        },
        Arg::SigHow => {
            let name = match value {
                signal::SIG_BLOCK => "SIG_BLOCK",
                signal::SIG_UNBLOCK => "SIG_UNBLOCK",
                signal::SIG_SETMASK => "SIG_SETMASK",
                _ => "",
            };
            if name.is_empty() {
                let _ = write!(out, "{value}");
            } else {
                out.push_str(name);
            }
        }
        Arg::Clock => {
            const NAMES: [&str; 12] = [
                "CLOCK_REALTIME",
                "CLOCK_MONOTONIC",
                "CLOCK_PROCESS_CPUTIME_ID",
                "CLOCK_THREAD_CPUTIME_ID",
                "CLOCK_MONOTONIC_RAW",
                "CLOCK_REALTIME_COARSE",
                "CLOCK_MONOTONIC_COARSE",
                "CLOCK_BOOTTIME",
                "CLOCK_REALTIME_ALARM",
                "CLOCK_BOOTTIME_ALARM",
                "",
                "CLOCK_TAI",
            ];
            match NAMES.get(value as usize).filter(|n| !n.is_empty()) {
                Some(name) => out.push_str(name),
                None => {
                    let _ = write!(out, "{}", value as i64);
                }
            }
        }
        Arg::Fcntl => {
            let name = match value {
                fcntl::F_DUPFD => "F_DUPFD",
                fcntl::F_GETFD => "F_GETFD",
                fcntl::F_SETFD => "F_SETFD",
                fcntl::F_GETFL => "F_GETFL",
                fcntl::F_SETFL => "F_SETFL",
                fcntl::F_GETLK => "F_GETLK",
                fcntl::F_SETLK => "F_SETLK",
                fcntl::F_SETLKW => "F_SETLKW",
                fcntl::F_DUPFD_CLOEXEC => "F_DUPFD_CLOEXEC",
                _ => "",
            };
            if name.is_empty() {
                let _ = write!(out, "{value}");
            } else {
                out.push_str(name);
            }
        }
        Arg::Ioctl => {
            let _ = write!(out, "{value:#x}");
        }
        Arg::Whence => {
            let name = ["SEEK_SET", "SEEK_CUR", "SEEK_END", "SEEK_DATA", "SEEK_HOLE"];
            match name.get(value as usize) {
                Some(name) => out.push_str(name),
                None => {
                    let _ = write!(out, "{value}");
                }
            }
        }
        Arg::FutexOp => futex_op(out, value as u32),
    }
}

/// A `futex` operation as strace shows it: `FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME`.
fn futex_op(out: &mut String, op: u32) {
    const NAMES: [&str; 14] = [
        "FUTEX_WAIT",
        "FUTEX_WAKE",
        "FUTEX_FD",
        "FUTEX_REQUEUE",
        "FUTEX_CMP_REQUEUE",
        "FUTEX_WAKE_OP",
        "FUTEX_LOCK_PI",
        "FUTEX_UNLOCK_PI",
        "FUTEX_TRYLOCK_PI",
        "FUTEX_WAIT_BITSET",
        "FUTEX_WAKE_BITSET",
        "FUTEX_WAIT_REQUEUE_PI",
        "FUTEX_CMP_REQUEUE_PI",
        "FUTEX_LOCK_PI2",
    ];
    let Some(name) = NAMES.get((op & futex::FUTEX_CMD_MASK) as usize) else {
        let _ = write!(out, "{op:#x}");
        return;
    };
    out.push_str(name);
    if op & futex::FUTEX_PRIVATE_FLAG != 0 {
        out.push_str("_PRIVATE");
    }
    if op & futex::FUTEX_CLOCK_REALTIME != 0 {
        out.push_str("|FUTEX_CLOCK_REALTIME");
    }
}

fn mode(out: &mut String, value: u64) {
    let value = value as u32;
    if value == 0 {
        out.push('0');
    } else {
        let _ = write!(out, "0{value:o}");
    }
}

fn hex(out: &mut String, value: u64) {
    if value == 0 {
        out.push_str("NULL");
    } else {
        let _ = write!(out, "{value:#x}");
    }
}

/// The longest string shown before it is cut.
const STRING_LIMIT: usize = 32;

fn string(out: &mut String, memory: &GuestMemory, addr: u64, len: Option<u64>) {
    if addr == 0 {
        out.push_str("NULL");
        return;
    }
    let bytes = match len {
        Some(len) => {
            let shown = len.min(STRING_LIMIT as u64 + 1) as usize;
            let mut buf = vec![0u8; shown];
            match memory.read(addr, &mut buf) {
                Ok(()) => buf,
                Err(_) => return hex(out, addr),
            }
        }
        None => match memory.read_cstr(addr, STRING_LIMIT + 1) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                let mut buf = vec![0u8; STRING_LIMIT + 1];
                let _ = memory.read(addr, &mut buf);
                buf
            }
            Err(_) => return hex(out, addr),
        },
    };
    let cut = bytes.len() > STRING_LIMIT;
    out.push('"');
    for &b in bytes.iter().take(STRING_LIMIT) {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:o}");
            }
        }
    }
    out.push('"');
    if cut {
        out.push_str("...");
    }
}

fn flags(out: &mut String, value: u64, names: &[(u64, &str)], zero: &str) {
    if value == 0 {
        out.push_str(zero);
        return;
    }
    let mut rest = value;
    let mut first = true;
    for &(bit, name) in names {
        if bit != 0 && rest & bit == bit {
            if !first {
                out.push('|');
            }
            out.push_str(name);
            rest &= !bit;
            first = false;
        }
    }
    if rest != 0 {
        if !first {
            out.push('|');
        }
        let _ = write!(out, "{rest:#x}");
    }
}

fn open_flags(out: &mut String, value: u64) {
    out.push_str(match value & lo::O_ACCMODE {
        lo::O_RDONLY => "O_RDONLY",
        lo::O_WRONLY => "O_WRONLY",
        lo::O_RDWR => "O_RDWR",
        _ => "O_ACCMODE",
    });
    let rest = value & !lo::O_ACCMODE;
    if rest == 0 {
        return;
    }
    out.push('|');
    flags(
        out,
        rest,
        &[
            (lo::O_CREAT, "O_CREAT"),
            (lo::O_EXCL, "O_EXCL"),
            (lo::O_NOCTTY, "O_NOCTTY"),
            (lo::O_TRUNC, "O_TRUNC"),
            (lo::O_APPEND, "O_APPEND"),
            (lo::O_NONBLOCK, "O_NONBLOCK"),
            (lo::O_SYNC, "O_SYNC"),
            (lo::O_DSYNC, "O_DSYNC"),
            (lo::O_ASYNC, "O_ASYNC"),
            (lo::O_TMPFILE, "O_TMPFILE"),
            (lo::O_DIRECTORY, "O_DIRECTORY"),
            (lo::O_NOFOLLOW, "O_NOFOLLOW"),
            (lo::O_DIRECT, "O_DIRECT"),
            (lo::O_LARGEFILE, "O_LARGEFILE"),
            (lo::O_NOATIME, "O_NOATIME"),
            (lo::O_CLOEXEC, "O_CLOEXEC"),
            (lo::O_PATH, "O_PATH"),
        ],
        "0",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::syscalls::lookup;
    use crate::vm::vma::{Prot, Vma};

    #[test]
    fn openat_line_matches_strace() {
        let memory = GuestMemory::new(1 << 30).unwrap();
        memory.map(Vma::anonymous(0x10000..0x11000, Prot::READ | Prot::WRITE));
        memory.write(0x10000, b"/etc/passwd\0").unwrap();
        let args = [
            (-100i64) as u64,
            0x10000,
            lo::O_RDONLY | lo::O_CLOEXEC,
            0,
            0,
            0,
        ];
        let line = format_call(&memory, 7, 56, lookup(56), &args, Errno::ENOENT.as_return());
        assert_eq!(
            line,
            "7 openat(AT_FDCWD, \"/etc/passwd\", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)\n"
        );
    }

    #[test]
    fn interrupted_calls_show_their_restart_code() {
        let memory = GuestMemory::new(1 << 30).unwrap();
        let restart = crate::kernel::signal::restart::ERESTARTSYS.as_return();
        let line = format_call(
            &memory,
            3,
            63,
            lookup(63),
            &[0, 0x10000, 10, 0, 0, 0],
            restart,
        );
        assert_eq!(
            line,
            "3 read(0, 0x10000, 10) = ? ERESTARTSYS (restarted if the handler has SA_RESTART, else EINTR)\n"
        );
    }

    #[test]
    fn buffers_are_escaped_and_cut() {
        let memory = GuestMemory::new(1 << 30).unwrap();
        memory.map(Vma::anonymous(0x10000..0x11000, Prot::READ | Prot::WRITE));
        memory.write(0x10000, b"hi\n\"there\"\x01").unwrap();
        let line = format_call(&memory, 1, 64, lookup(64), &[1, 0x10000, 11, 0, 0, 0], 11);
        assert_eq!(line, "1 write(1, \"hi\\n\\\"there\\\"\\1\", 11) = 11\n");
        let long = [b'x'; 40];
        memory.write(0x10100, &long).unwrap();
        let line = format_call(&memory, 1, 64, lookup(64), &[1, 0x10100, 40, 0, 0, 0], 40);
        assert!(
            line.contains(&format!("\"{}\"...", "x".repeat(32))),
            "{line}"
        );
    }

    #[test]
    fn mmap_prints_flags_and_hex_result() {
        let memory = GuestMemory::new(1 << 30).unwrap();
        let args = [
            0,
            4096,
            3,
            mman::MAP_PRIVATE | mman::MAP_ANONYMOUS,
            u64::MAX,
            0,
        ];
        let line = format_call(&memory, 1, 222, lookup(222), &args, 0x7000_0000);
        assert_eq!(
            line,
            "1 mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, NULL) = 0x70000000\n"
        );
    }
}
