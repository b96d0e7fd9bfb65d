//! `execve`: replacing the program a process runs.
//!
//! The rules are Linux's. The argument and environment strings share one budget, a quarter of
//! the stack limit (at most 6 MiB, at least 128 KiB) less the pointers to them, and no string
//! may exceed `MAX_ARG_STRLEN`. A file starting with `#!` names an interpreter that runs with
//! the script's path as an argument; interpreters may themselves be scripts, five deep. The
//! new image is built in a fresh address space before anything else changes, so a failure up
//! to that point leaves the caller intact ([`commit`] is the point of no return): then the
//! other threads end, handled signals return to their default action, every action's flags
//! and mask are cleared, close-on-exec descriptors close, and the alternate signal stack,
//! robust list, POSIX timers and `vfork` parent are let go. The pid, the signal mask, pending
//! signals, interval timers (`alarm`), the working directory, umask, limits and ignored
//! dispositions carry over.
//!
//! A program for the host itself (an ELF for the host's machine, a Mach-O file on macOS) is
//! `ENOEXEC` unless the user set `ELFUSE_HOST_EXEC=1`: then the process becomes that host
//! program, keeping its pid, descriptors, signal mask and ignored signals.
//!
//! # Limitations
//! Set-user-ID and set-group-ID bits are not honoured: the new program keeps the caller's
//! credentials, as the host process does.

use crate::host;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::signal as sig;
use crate::kernel::abi::structs::{KernelSigaction, SigaltStack};
use crate::kernel::futex;
use crate::kernel::image::Image;
use crate::kernel::process::lock;
use crate::kernel::sched;
use crate::kernel::task::{self, Outcome, Task, comm_of};

/// Whether guests may run host programs (`ELFUSE_HOST_EXEC=1`): an `execve` of a program for
/// the host itself then replaces elfuse with it. Otherwise such an `execve` is `ENOEXEC`.
pub fn host_exec_allowed() -> bool {
    static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ALLOWED.get_or_init(|| std::env::var_os("ELFUSE_HOST_EXEC").is_some_and(|v| v == "1"))
}

/// The longest argument or environment string, counting its NUL (`MAX_ARG_STRLEN`).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;

/// The most argument or environment strings (`MAX_ARG_STRINGS`).
pub const MAX_ARG_STRINGS: usize = 0x7fff_ffff;

/// How much of a file the `#!` line may use (`BINPRM_BUF_SIZE`).
pub const BINPRM_BUF_SIZE: usize = 256;

/// How many interpreters may stand between the named file and the program that runs.
pub const MAX_INTERPRETER_DEPTH: usize = 5;

/// Linux's `_STK_LIM`: the default stack limit, whose three quarters cap the budget.
const STK_LIM: u64 = 8 << 20;

/// Linux's `ARG_MAX`: the budget never drops below 32 pages.
const ARG_MAX: u64 = 32 * 4096;

/// The space left for strings, given the stack limit and the number of pointers (`argc` is
/// counted as at least one, for the empty `argv[0]` an empty `argv` gets).
pub fn string_budget(stack_limit: u64, argc: usize, envc: usize) -> SysResult<u64> {
    let limit = (STK_LIM / 4 * 3).min(stack_limit / 4).max(ARG_MAX);
    let pointers = (argc.max(1) as u64 + envc as u64) * 8;
    if limit <= pointers {
        return Err(Errno::E2BIG);
    }
    Ok(limit - pointers)
}

/// The strings a new image starts with, charged against the budget as they are added.
#[derive(Debug)]
pub struct ArgStrings {
    pub argv: Vec<Vec<u8>>,
    pub env: Vec<Vec<u8>>,
    budget: u64,
}

impl ArgStrings {
    /// No strings yet, with `budget` bytes for them.
    pub fn new(budget: u64) -> ArgStrings {
        ArgStrings {
            argv: Vec::new(),
            env: Vec::new(),
            budget,
        }
    }

    /// Charges a string of `len` bytes plus its NUL: `E2BIG` past `MAX_ARG_STRLEN` or the
    /// budget.
    pub fn charge(&mut self, len: usize) -> SysResult<()> {
        let size = len as u64 + 1;
        if len + 1 > MAX_ARG_STRLEN || size > self.budget {
            return Err(Errno::E2BIG);
        }
        self.budget -= size;
        Ok(())
    }

    /// Replaces `argv[0]` with the interpreter line of a script: the interpreter, its
    /// optional argument, then `script`, the path the script was run by.
    pub fn splice_interpreter(&mut self, shebang: &Shebang, script: &[u8]) -> SysResult<()> {
        let mut front = vec![shebang.interpreter.clone()];
        front.extend(shebang.argument.clone());
        front.push(script.to_vec());
        for s in &front {
            self.charge(s.len())?;
        }
        let rest = if self.argv.is_empty() {
            Vec::new()
        } else {
            self.argv.split_off(1)
        };
        front.extend(rest);
        self.argv = front;
        Ok(())
    }
}

/// What a `#!` line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shebang {
    /// The interpreter's path.
    pub interpreter: Vec<u8>,
    /// Everything after it on the line, as one argument (inner blanks kept).
    pub argument: Option<Vec<u8>>,
}

fn blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The first non-blank byte in `buf[from..to]`.
fn next_non_blank(buf: &[u8], from: usize, to: usize) -> Option<usize> {
    (from..to).find(|&i| !blank(buf[i]))
}

/// The first blank or NUL in `buf[from..to]`.
fn next_terminator(buf: &[u8], from: usize, to: usize) -> Option<usize> {
    (from..to).find(|&i| blank(buf[i]) || buf[i] == 0)
}

/// The C string starting at `buf[from]`, ending at `to` or at a NUL before it.
fn c_string(buf: &[u8], from: usize, to: usize) -> Vec<u8> {
    let end = (from..to).find(|&i| buf[i] == 0).unwrap_or(to);
    buf[from..end].to_vec()
}

/// Reads the `#!` line at the start of a file (`head`, its first bytes). `None` if the file
/// is not a script; `ENOEXEC` if the line names no interpreter or one too long for the line.
pub fn parse_shebang(head: &[u8]) -> Option<SysResult<Shebang>> {
    if !head.starts_with(b"#!") {
        return None;
    }
    let mut buf = [0u8; BINPRM_BUF_SIZE];
    let n = head.len().min(BINPRM_BUF_SIZE);
    buf[..n].copy_from_slice(&head[..n]);
    Some(parse_line(&buf))
}

fn parse_line(buf: &[u8; BINPRM_BUF_SIZE]) -> SysResult<Shebang> {
    // The last byte is kept for a terminator, as Linux keeps it.
    let buf_end = BINPRM_BUF_SIZE - 1;
    let mut end = match buf.iter().position(|&b| b == b'\n') {
        Some(newline) => newline,
        None => {
            // No newline: the line fills the buffer, and the interpreter's name must end
            // inside it, or it may have been cut short.
            let start = next_non_blank(buf, 2, buf_end).ok_or(Errno::ENOEXEC)?;
            next_terminator(buf, start, buf_end).ok_or(Errno::ENOEXEC)?;
            buf_end
        }
    };
    while blank(buf[end - 1]) {
        end -= 1;
    }
    let name = match next_non_blank(buf, 2, end) {
        Some(name) if name < end => name,
        _ => return Err(Errno::ENOEXEC),
    };
    let separator = next_terminator(buf, name, end);
    let argument = separator
        .filter(|&sep| buf[sep] != 0)
        .and_then(|sep| next_non_blank(buf, sep, end))
        .map(|arg| c_string(buf, arg, end));
    Ok(Shebang {
        interpreter: c_string(buf, name, separator.unwrap_or(end)),
        argument,
    })
}

/// An action as `execve` leaves it: a handler becomes the default action, an ignored signal
/// stays ignored, and flags, restorer and mask are cleared.
fn reset_action(action: &mut KernelSigaction) {
    if action.handler != sig::SIG_IGN {
        action.handler = sig::SIG_DFL;
    }
    action.flags = 0;
    action.restorer = 0;
    action.mask = 0;
}

/// Makes `image` the program of `task`'s process. Past this point `execve` cannot fail: the
/// other threads end, and the thread continues as the process's only one, with the pid as its
/// thread id, once its vCPU stops and [`crate::kernel::thread`] starts it on the new image.
pub fn commit(task: &mut Task, image: Image, comm: &[u8]) {
    let process = task.process.clone();

    // The other threads end first, on the old image.
    sched::blocking(|| process.end_other_threads(task.tid));
    futex::exec_thread(&process, &task.memory, &task.shared);
    if task.tid != process.pid {
        let pending = std::mem::take(&mut *lock(&task.shared.pending));
        process.remove_thread(task.tid);
        let shared = process.add_thread(process.pid, task.sigmask());
        *lock(&shared.pending) = pending;
        task.shared = shared.clone();
        task.tid = process.pid;
        task::set_current(Some(shared));
    }

    // The new address space.
    process.set_memory(image.memory.clone());
    task.memory = image.memory;
    *lock(&process.mm) = image.mm;
    *lock(&process.exec) = image.exec;

    // What does not survive: close-on-exec descriptors, handlers, the vfork parent's wait,
    // POSIX timers.
    let closed = lock(&process.fds).take_cloexec();
    drop(closed);
    let child_ignored = {
        let mut actions = lock(&process.sigactions);
        actions.iter_mut().for_each(reset_action);
        actions[sig::SIGCHLD as usize - 1].handler == sig::SIG_IGN
    };
    host::signals::set_child_action(host::signals::ChildAction {
        ignore: child_ignored,
        ..Default::default()
    });
    *lock(&process.vfork_done) = None;
    crate::kernel::handover::on_exec();
    process.timers.on_exec();

    // The thread's own state.
    task.altstack = SigaltStack {
        ss_flags: sig::SS_DISABLE,
        ..SigaltStack::default()
    };
    task.clear_child_tid = 0;
    task.comm = comm_of(comm);
    task.saved_mask = None;
    task.interrupted = None;
    task.restart_block = None;
    task.exec_regs = Some(image.regs);
    task.outcome = Some(Outcome::Exec);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shebang(line: &[u8]) -> SysResult<Shebang> {
        parse_shebang(line).expect("a script")
    }

    fn script(interpreter: &str, argument: Option<&str>) -> SysResult<Shebang> {
        Ok(Shebang {
            interpreter: interpreter.as_bytes().to_vec(),
            argument: argument.map(|a| a.as_bytes().to_vec()),
        })
    }

    #[test]
    fn shebang_lines_split_like_linux() {
        assert_eq!(parse_shebang(b"\x7fELF"), None);
        assert_eq!(shebang(b"#!/bin/sh\n"), script("/bin/sh", None));
        assert_eq!(
            shebang(b"#!/bin/sh -e\nbody"),
            script("/bin/sh", Some("-e"))
        );
        assert_eq!(
            shebang(b"#! \t/usr/bin/env  python3 -u \t \n"),
            script("/usr/bin/env", Some("python3 -u"))
        );
        assert_eq!(shebang(b"#!/bin/sh"), script("/bin/sh", None));
        assert_eq!(shebang(b"#!/bin/a\0b c\n"), script("/bin/a", None));
    }

    #[test]
    fn shebang_without_an_interpreter_is_enoexec() {
        assert_eq!(shebang(b"#!\n"), Err(Errno::ENOEXEC));
        assert_eq!(shebang(b"#!   \t\n"), Err(Errno::ENOEXEC));
    }

    #[test]
    fn a_line_without_newline_or_name_names_the_empty_path() {
        // Linux then opens "" as the interpreter, which finds the working directory: EACCES.
        assert_eq!(shebang(b"#!"), script("", None));
        assert_eq!(shebang(b"#!  "), script("", None));
    }

    #[test]
    fn shebang_longer_than_the_buffer() {
        // A name cut by the end of the buffer is refused...
        let mut long = b"#!/".to_vec();
        long.extend(std::iter::repeat_n(b'x', 400));
        assert_eq!(shebang(&long), Err(Errno::ENOEXEC));
        // ...but a name that ends inside it runs, with the argument cut at 255 bytes.
        let mut cut = b"#!/bin/sh ".to_vec();
        cut.extend(std::iter::repeat_n(b'a', 400));
        let parsed = shebang(&cut).expect("parsed");
        assert_eq!(parsed.interpreter, b"/bin/sh");
        assert_eq!(parsed.argument.expect("argument").len(), 255 - 10);
    }

    #[test]
    fn the_budget_follows_the_stack_limit() {
        // 8 MiB stack: a quarter, 2 MiB, less the pointers.
        assert_eq!(string_budget(8 << 20, 2, 1), Ok((2 << 20) - 24));
        // Unlimited: capped at 6 MiB.
        assert_eq!(string_budget(u64::MAX, 0, 0), Ok((6 << 20) - 8));
        // Tiny: never below 128 KiB.
        assert_eq!(string_budget(4096, 1, 0), Ok(ARG_MAX - 8));
        assert_eq!(string_budget(4096, 1, 16383), Err(Errno::E2BIG));
    }

    #[test]
    fn strings_are_charged_with_their_nul() {
        let mut strings = ArgStrings::new(10);
        assert_eq!(strings.charge(4), Ok(()));
        assert_eq!(strings.charge(4), Ok(()));
        assert_eq!(strings.charge(0), Err(Errno::E2BIG));
        let mut big = ArgStrings::new(u64::MAX);
        assert_eq!(big.charge(MAX_ARG_STRLEN - 1), Ok(()));
        assert_eq!(big.charge(MAX_ARG_STRLEN), Err(Errno::E2BIG));
    }

    #[test]
    fn interpreters_replace_argv0() {
        let mut strings = ArgStrings::new(1000);
        strings.argv = vec![b"ignored".to_vec(), b"x".to_vec()];
        let line = script("/bin/sh", Some("-e")).expect("script");
        strings.splice_interpreter(&line, b"./s").expect("fits");
        assert_eq!(
            strings.argv,
            vec![
                b"/bin/sh".to_vec(),
                b"-e".to_vec(),
                b"./s".to_vec(),
                b"x".to_vec()
            ]
        );
    }
}
