//! Host signals: numbering and the runtime's own process-level signal setup.
//!
//! Linux and macOS number most signals differently (`SIGUSR1` is 10 on Linux and 30 on macOS),
//! so a guest signal reaches the host, and a host signal reaches the guest, through
//! [`to_host`] and [`from_host`].

use crate::kernel::abi::signal as ls;

/// The host number of Linux signal `sig`, if the host has it.
pub fn to_host(sig: u32) -> Option<libc::c_int> {
    Some(match sig {
        ls::SIGHUP => libc::SIGHUP,
        ls::SIGINT => libc::SIGINT,
        ls::SIGQUIT => libc::SIGQUIT,
        ls::SIGILL => libc::SIGILL,
        ls::SIGTRAP => libc::SIGTRAP,
        ls::SIGABRT => libc::SIGABRT,
        ls::SIGBUS => libc::SIGBUS,
        ls::SIGFPE => libc::SIGFPE,
        ls::SIGKILL => libc::SIGKILL,
        ls::SIGUSR1 => libc::SIGUSR1,
        ls::SIGSEGV => libc::SIGSEGV,
        ls::SIGUSR2 => libc::SIGUSR2,
        ls::SIGPIPE => libc::SIGPIPE,
        ls::SIGALRM => libc::SIGALRM,
        ls::SIGTERM => libc::SIGTERM,
        ls::SIGCHLD => libc::SIGCHLD,
        ls::SIGCONT => libc::SIGCONT,
        ls::SIGSTOP => libc::SIGSTOP,
        ls::SIGTSTP => libc::SIGTSTP,
        ls::SIGTTIN => libc::SIGTTIN,
        ls::SIGTTOU => libc::SIGTTOU,
        ls::SIGURG => libc::SIGURG,
        ls::SIGXCPU => libc::SIGXCPU,
        ls::SIGXFSZ => libc::SIGXFSZ,
        ls::SIGVTALRM => libc::SIGVTALRM,
        ls::SIGPROF => libc::SIGPROF,
        ls::SIGWINCH => libc::SIGWINCH,
        ls::SIGIO => libc::SIGIO,
        ls::SIGSYS => libc::SIGSYS,
        #[cfg(target_os = "linux")]
        ls::SIGSTKFLT => libc::SIGSTKFLT,
        #[cfg(target_os = "linux")]
        ls::SIGPWR => libc::SIGPWR,
        // Real-time signals keep their kernel numbers on a Linux host.
        #[cfg(target_os = "linux")]
        n @ ls::SIGRTMIN..=ls::NSIG => n as libc::c_int,
        _ => return None,
    })
}

/// The Linux number of host signal `sig`.
pub fn from_host(sig: libc::c_int) -> Option<u32> {
    (1..=ls::NSIG).find(|&linux| to_host(linux) == Some(sig))
}

/// Ends this process the way a process killed by `sig` (a Linux number) ends, so the parent
/// shell reports the same signal, without a core file or crash report.
///
/// Falls back to exiting with `128 + sig` when the host has no such signal or the signal
/// does not kill.
pub fn die_by_signal(sig: u32) -> ! {
    if let Some(host) = to_host(sig) {
        super::suppress_crash_reports();
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain calls on this process's own limits and dispositions; nothing here
        // touches memory the runtime still uses.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            libc::signal(host, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, host);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(host);
        }
    }
    std::process::exit(128 + sig as i32)
}

/// Stops this process by the stop signal `sig` (a Linux number), so the parent shell sees a
/// job stopped by that signal (`SIGTSTP` from the terminal reads "suspended", `SIGSTOP`
/// "suspended (signal)"). Returns once the process is continued.
///
/// The forwarded stop signals are blocked in every thread (the forwarding thread takes them);
/// this thread unblocks the one it raises for just as long as the raise takes, so the host
/// applies its default action, stopping the whole process, before the call returns.
pub fn stop_self(sig: u32) {
    let host = to_host(sig).unwrap_or(libc::SIGSTOP);
    if host == libc::SIGSTOP {
        // SAFETY: sending a signal to this process has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGSTOP);
        }
        return;
    }
    // SAFETY: signal-set operations on a local set, and a signal raised in this thread whose
    // default action (stop) touches no memory; the mask is restored afterwards.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, host);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, &mut old);
        libc::raise(host);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}

/// Ignores `SIGPIPE` for the runtime: a write to a broken pipe then fails with `EPIPE`, and
/// the syscall layer raises the guest's own `SIGPIPE`.
pub fn ignore_sigpipe() {
    // SAFETY: setting a disposition to SIG_IGN has no memory effects.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// What the guest's `SIGCHLD` action asks of the host kernel, which owns the children.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildAction {
    /// `SIGCHLD` is ignored: children are reaped at once and no signal is sent.
    pub ignore: bool,
    /// `SA_NOCLDWAIT`: children are reaped at once, the signal is still sent.
    pub no_wait: bool,
    /// `SA_NOCLDSTOP`: no signal when a child stops or continues.
    pub no_stop: bool,
}

/// Mirrors the guest's `SIGCHLD` action on the host's, so that children are reaped and
/// reported as the guest asked. Forwarded signals stay blocked and are still collected by the
/// forwarding thread whatever the disposition.
pub fn set_child_action(action: ChildAction) {
    let mut flags = 0;
    if action.no_wait {
        flags |= libc::SA_NOCLDWAIT;
    }
    if action.no_stop {
        flags |= libc::SA_NOCLDSTOP;
    }
    let handler = if action.ignore {
        libc::SIG_IGN
    } else {
        libc::SIG_DFL
    };
    // SAFETY: the sigaction struct is fully initialized and names no handler function.
    unsafe {
        let mut host: libc::sigaction = std::mem::zeroed();
        host.sa_sigaction = handler;
        host.sa_flags = flags;
        libc::sigemptyset(&mut host.sa_mask);
        libc::sigaction(libc::SIGCHLD, &host, std::ptr::null_mut());
    }
}

/// `kill(2)` with a host signal number (0 checks that the target exists).
pub fn kill(pid: i32, sig: libc::c_int) -> Result<(), crate::kernel::abi::errno::Errno> {
    // SAFETY: sending a signal has no memory effects in this process.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(crate::kernel::abi::errno::Errno::last_host());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_numbers_round_trip() {
        for sig in 1..=31 {
            if let Some(host) = to_host(sig) {
                assert_eq!(from_host(host), Some(sig), "signal {sig}");
            }
        }
        assert_eq!(to_host(ls::SIGUSR1), Some(libc::SIGUSR1));
        assert_eq!(to_host(0), None);
        assert_eq!(to_host(65), None);
    }
}
