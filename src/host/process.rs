//! Host processes: `fork`, waiting for children, process handles, and replacing this process
//! with a host program.

use std::ffi::{CStr, CString};
use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::RawFd;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{Usage, usage_from};

/// Which side of a `fork` the caller is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forked {
    /// The new process.
    Child,
    /// The original process, with the child's pid.
    Parent(i32),
}

/// Forks this host process.
///
/// Only the calling thread continues in the child. The runtime rebuilds its per-process
/// threads there and touches nothing another thread may have locked at the moment of the fork
/// (the C library makes its own allocator fork-safe).
pub fn fork() -> io::Result<Forked> {
    // SAFETY: see above; the child only uses state owned by the calling thread and fresh
    // structures it creates itself.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// How a child changed state, with Linux signal numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildState {
    /// It called `exit` with this status.
    Exited(i32),
    /// A signal ended it; `core` if it dumped core.
    Killed { signal: u32, core: bool },
    /// A signal stopped it.
    Stopped(u32),
    /// `SIGCONT` resumed it.
    Continued,
}

/// A child's state change, as `wait4` and `waitid` report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildEvent {
    pub pid: i32,
    pub uid: u32,
    pub state: ChildState,
}

/// Which children a wait is for, in `waitid` terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitTarget {
    Any,
    Pid(i32),
    Group(i32),
}

/// What a wait reports and whether it blocks (the `W*` options, host-neutral).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitFlags {
    pub exited: bool,
    pub stopped: bool,
    pub continued: bool,
    pub no_hang: bool,
    /// Leave the child waitable (`WNOWAIT`).
    pub no_wait: bool,
}

fn signal_from_host(signal: libc::c_int) -> u32 {
    super::signals::from_host(signal).unwrap_or(signal as u32)
}

/// A descriptor for process `pid` that becomes readable when it ends (a Linux pidfd): the
/// host's own pidfd on Linux, elsewhere a kqueue watching the process's exit. Close-on-exec.
pub fn process_handle(pid: i32, nonblock: bool) -> io::Result<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        let flags = if nonblock { libc::O_NONBLOCK } else { 0 };
        // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a new descriptor owned by nothing else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }
    #[cfg(not(target_os = "linux"))]
    {
        // SAFETY: kqueue takes no arguments and returns a new descriptor or -1.
        let kq = unsafe { libc::kqueue() };
        if kq < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: kq is a new descriptor owned by nothing else.
        let kq = unsafe { OwnedFd::from_raw_fd(kq) };
        // SAFETY: plain descriptor calls; the kevent struct is fully initialized.
        unsafe {
            libc::fcntl(kq.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
            if nonblock {
                libc::fcntl(kq.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
            }
            let mut change: libc::kevent = std::mem::zeroed();
            change.ident = pid as libc::uintptr_t;
            change.filter = libc::EVFILT_PROC;
            change.flags = libc::EV_ADD;
            change.fflags = libc::NOTE_EXIT;
            if libc::kevent(
                kq.as_raw_fd(),
                &change,
                1,
                std::ptr::null_mut(),
                0,
                std::ptr::null(),
            ) < 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(kq)
    }
}

/// Makes this process the one that adopts orphaned descendants (Linux's
/// `PR_SET_CHILD_SUBREAPER`), since guest processes are host processes. Other hosts have no
/// such role: orphans go to the system's init process there.
pub fn set_child_subreaper(on: bool) {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, libc::c_ulong::from(on));
    }
    #[cfg(not(target_os = "linux"))]
    let _ = on;
}

/// Asks the host to send Linux signal `signal` (0: none) to this process when the host thread
/// that created it ends, as Linux's `PR_SET_PDEATHSIG` does for the guest; the signal then
/// reaches the guest through forwarding. Other hosts have no such request: there it is
/// recorded by the caller but never sent.
pub fn set_parent_death_signal(signal: u32) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let host = if signal == 0 {
            0
        } else {
            super::signals::to_host(signal)
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?
        };
        // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, host as libc::c_ulong) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = signal;
    Ok(())
}

/// The state change a `SIGCHLD` siginfo describes, from its host `si_code` and `si_status`;
/// `None` for a code that is not a child's.
pub(super) fn child_state(code: libc::c_int, status: libc::c_int) -> Option<ChildState> {
    Some(match code {
        libc::CLD_EXITED => ChildState::Exited(status),
        libc::CLD_KILLED => ChildState::Killed {
            signal: signal_from_host(status),
            core: false,
        },
        libc::CLD_DUMPED => ChildState::Killed {
            signal: signal_from_host(status),
            core: true,
        },
        libc::CLD_STOPPED | libc::CLD_TRAPPED => ChildState::Stopped(signal_from_host(status)),
        libc::CLD_CONTINUED => ChildState::Continued,
        _ => return None,
    })
}

/// `wait4`: waits for a child matching `pid` (as `waitpid` reads it). `Ok(None)` means
/// `no_hang` was set and no child had changed state.
pub fn wait4(pid: i32, flags: WaitFlags) -> io::Result<Option<(ChildEvent, Usage)>> {
    let mut options = 0;
    if flags.no_hang {
        options |= libc::WNOHANG;
    }
    if flags.stopped {
        options |= libc::WUNTRACED;
    }
    if flags.continued {
        options |= libc::WCONTINUED;
    }
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid, and wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `usage` are valid for writes for the duration of the call.
    let child = unsafe { libc::wait4(pid, &mut status, options, &mut usage) };
    if child < 0 {
        return Err(io::Error::last_os_error());
    }
    if child == 0 {
        return Ok(None);
    }

    let state = if libc::WIFEXITED(status) {
        ChildState::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        ChildState::Killed {
            signal: signal_from_host(libc::WTERMSIG(status)),
            core: libc::WCOREDUMP(status),
        }
    } else if libc::WIFSTOPPED(status) {
        ChildState::Stopped(signal_from_host(libc::WSTOPSIG(status)))
    } else {
        ChildState::Continued
    };
    let event = ChildEvent {
        pid: child,
        uid: 0,
        state,
    };
    Ok(Some((event, usage_from(&usage))))
}

/// `waitid`: waits for a child matching `target`. `Ok(None)` means `no_hang` was set and no
/// child had changed state. The usage is all zeros on hosts whose `waitid` does not report it.
pub fn waitid(target: WaitTarget, flags: WaitFlags) -> io::Result<Option<(ChildEvent, Usage)>> {
    let (idtype, id) = match target {
        WaitTarget::Any => (libc::P_ALL, 0),
        WaitTarget::Pid(pid) => (libc::P_PID, pid as libc::id_t),
        WaitTarget::Group(pgid) => (libc::P_PGID, pgid as libc::id_t),
    };
    let mut options = 0;
    for (set, bit) in [
        (flags.exited, libc::WEXITED),
        (flags.stopped, libc::WSTOPPED),
        (flags.continued, libc::WCONTINUED),
        (flags.no_hang, libc::WNOHANG),
        (flags.no_wait, libc::WNOWAIT),
    ] {
        if set {
            options |= bit;
        }
    }
    // SAFETY: all-zero siginfo_t and rusage are valid; waitid fills them in.
    let (mut info, mut usage): (libc::siginfo_t, libc::rusage) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    if raw_waitid(idtype, id, &mut info, options, &mut usage) < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: waitid filled `info` for SIGCHLD (or left it zeroed), so the child fields are
    // the ones to read.
    let (pid, uid, status) = unsafe { (info.si_pid(), info.si_uid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }

    let state = child_state(info.si_code, status).unwrap_or(ChildState::Continued);
    let event = ChildEvent {
        pid,
        uid: uid as u32,
        state,
    };
    Ok(Some((event, usage_from(&usage))))
}

/// Linux's `waitid` system call, which also reports the child's resource usage.
#[cfg(target_os = "linux")]
fn raw_waitid(
    idtype: libc::idtype_t,
    id: libc::id_t,
    info: &mut libc::siginfo_t,
    options: libc::c_int,
    usage: &mut libc::rusage,
) -> libc::c_long {
    // SAFETY: `info` and `usage` are valid for writes for the duration of the call.
    unsafe {
        libc::syscall(
            libc::SYS_waitid,
            idtype,
            id,
            info as *mut libc::siginfo_t,
            options,
            usage as *mut libc::rusage,
        )
    }
}

/// The C library's `waitid`, which has no resource usage: `usage` stays zeroed.
#[cfg(not(target_os = "linux"))]
fn raw_waitid(
    idtype: libc::idtype_t,
    id: libc::id_t,
    info: &mut libc::siginfo_t,
    options: libc::c_int,
    _usage: &mut libc::rusage,
) -> libc::c_long {
    // SAFETY: `info` is valid for writes for the duration of the call.
    libc::c_long::from(unsafe { libc::waitid(idtype, id, info, options) })
}

/// What a host program started by a guest `execve` inherits: descriptors by number, the
/// signal mask and the ignored signals (host numbers).
pub struct HostExec<'a> {
    pub path: &'a CStr,
    pub argv: &'a [CString],
    pub env: &'a [CString],
    /// `(number, descriptor)`: each descriptor is installed at its number.
    pub fds: &'a [(i32, BorrowedFd<'a>)],
    pub blocked: &'a [libc::c_int],
    pub ignored: &'a [libc::c_int],
}

/// Replaces this process with a host program (`execve(2)` of the host). Returns only on
/// failure, with every descriptor number and signal setting it changed put back.
pub fn exec_host(spec: &HostExec<'_>) -> io::Error {
    let mut argv: Vec<*const libc::c_char> = spec.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = spec.env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());

    // Copies of the sources above every target, so installing one never clobbers another.
    let above = spec.fds.iter().map(|(n, _)| *n).max().unwrap_or(0) + 1;
    let mut sources = Vec::new();
    for (_, fd) in spec.fds {
        // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor; the result is checked.
        let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, above) };
        if copy < 0 {
            let err = io::Error::last_os_error();
            close_all(&sources);
            return err;
        }
        sources.push(copy);
    }
    // Whatever sits at each target number now is kept aside, to put back on failure.
    let mut saved = Vec::new();
    for ((target, _), &source) in spec.fds.iter().zip(&sources) {
        // SAFETY: plain descriptor calls on numbers this function manages.
        unsafe {
            let old = libc::fcntl(*target, libc::F_DUPFD_CLOEXEC, above);
            saved.push((*target, old));
            libc::dup2(source, *target);
        }
    }

    // SAFETY: sigset and sigaction calls on local, fully initialized structures.
    let (old_mask, old_actions) = unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut mask);
        for &sig in spec.blocked {
            libc::sigaddset(&mut mask, sig);
        }
        let mut old_mask: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask, &mut old_mask);
        let mut old_actions = Vec::new();
        // The guest's ignored signals; SIGPIPE, which elfuse ignores for itself, returns to
        // its default unless the guest ignores it too.
        let settings = spec.ignored.iter().map(|&sig| (sig, libc::SIG_IGN)).chain(
            (!spec.ignored.contains(&libc::SIGPIPE)).then_some((libc::SIGPIPE, libc::SIG_DFL)),
        );
        for (sig, handler) in settings {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler;
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, &action, &mut old) == 0 {
                old_actions.push((sig, old));
            }
        }
        (old_mask, old_actions)
    };

    // SAFETY: path, argv and envp are NUL-terminated arrays of NUL-terminated strings that
    // outlive the call.
    unsafe {
        libc::execve(spec.path.as_ptr(), argv.as_ptr(), envp.as_ptr());
    }
    let err = io::Error::last_os_error();

    // Put everything back.
    // SAFETY: as above, restoring what was saved.
    unsafe {
        for (sig, old) in &old_actions {
            libc::sigaction(*sig, old, std::ptr::null_mut());
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut());
        for &(target, old) in &saved {
            if old >= 0 {
                libc::dup2(old, target);
                libc::close(old);
            } else {
                libc::close(target);
            }
        }
    }
    close_all(&sources);
    err
}

fn close_all(fds: &[libc::c_int]) {
    for &fd in fds {
        // SAFETY: each is a descriptor this module created.
        unsafe {
            libc::close(fd);
        }
    }
}
