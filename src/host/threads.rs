//! Host threads and the process-wide host signal set-up the runtime needs: a kick signal that
//! interrupts one thread's blocking host call, and the forwarding of signals sent to elfuse
//! (from the terminal, other processes, child exits) to the guest.
//!
//! Forwarded signals are blocked in every thread and collected by one thread with `sigwait`,
//! so they never interrupt runtime code at an arbitrary point and their default actions (stop,
//! terminate) happen only through the guest's own dispositions.
//!
//! # Limitations
//! On Linux hosts the kick signal is `SIGRTMAX` and real-time signals 32 and 33 belong to the C
//! library, so guest signals 32, 33 and 64 cannot travel between processes. macOS hosts have
//! no real-time signals: guest real-time signals stay within one process.

use std::sync::OnceLock;

use super::signals::{from_host, to_host};
use crate::kernel::abi::signal as ls;

/// A host thread, for [`kick`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadId(libc::pthread_t);

// SAFETY: a pthread_t is an opaque identifier; sending it to another thread to pass to
// pthread_kill is what it is for.
unsafe impl Send for ThreadId {}
// SAFETY: as above; it is never dereferenced.
unsafe impl Sync for ThreadId {}

/// The calling host thread.
pub fn current() -> ThreadId {
    // SAFETY: pthread_self has no preconditions.
    ThreadId(unsafe { libc::pthread_self() })
}

/// A thread id for the calling thread that no other host thread or process has: the kernel's
/// on Linux; on other hosts one allocated above Linux's default `pid_max`, so it cannot
/// collide with a process id.
pub fn thread_id() -> i32 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::gettid() }
    }
    #[cfg(not(target_os = "linux"))]
    {
        use std::sync::atomic::{AtomicI32, Ordering};
        static NEXT: AtomicI32 = AtomicI32::new(4_194_304);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}

/// The host signal that interrupts a blocking call of one thread.
#[cfg(target_os = "linux")]
fn kick_signal() -> libc::c_int {
    libc::SIGRTMAX()
}

/// The host signal that interrupts a blocking call of one thread (`SIGINFO`, which Linux
/// guests do not have).
#[cfg(target_os = "macos")]
fn kick_signal() -> libc::c_int {
    libc::SIGINFO
}

extern "C" fn on_kick(_: libc::c_int) {}

/// Sends the kick signal to `thread`: a blocking host call there returns `EINTR`.
pub fn kick(thread: ThreadId) {
    // SAFETY: pthread_kill with a valid signal; a thread that has exited makes it fail with
    // ESRCH, which is fine to ignore.
    unsafe {
        libc::pthread_kill(thread.0, kick_signal());
    }
}

/// The Linux signals forwarded from the host to the guest.
fn forwarded() -> Vec<u32> {
    let mut list = vec![
        ls::SIGHUP,
        ls::SIGINT,
        ls::SIGQUIT,
        ls::SIGUSR1,
        ls::SIGUSR2,
        ls::SIGALRM,
        ls::SIGTERM,
        ls::SIGSTKFLT,
        ls::SIGCHLD,
        ls::SIGCONT,
        ls::SIGTSTP,
        ls::SIGTTIN,
        ls::SIGTTOU,
        ls::SIGURG,
        ls::SIGXCPU,
        ls::SIGXFSZ,
        ls::SIGVTALRM,
        ls::SIGPROF,
        ls::SIGWINCH,
        ls::SIGIO,
        ls::SIGPWR,
        ls::SIGSYS,
    ];
    #[cfg(target_os = "linux")]
    list.extend(34..ls::NSIG);
    list.retain(|&sig| to_host(sig).is_some_and(|h| h != kick_signal()));
    list
}

fn forwarded_set() -> libc::sigset_t {
    // SAFETY: sigset operations on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in forwarded() {
            if let Some(host) = to_host(sig) {
                libc::sigaddset(&mut set, host);
            }
        }
        set
    }
}

/// Where forwarded signals go, once [`init`] has run.
static DELIVER: OnceLock<fn(u32)> = OnceLock::new();

/// One-time set-up, on the thread that will run the guest, before any other thread exists:
/// installs the kick handler and starts forwarding host signals to `deliver` (called on the
/// forwarding thread with the Linux signal number).
pub fn init(deliver: fn(u32)) {
    if DELIVER.set(deliver).is_err() {
        return;
    }
    // SAFETY: installs a handler that does nothing, without SA_RESTART, so a blocking call
    // returns EINTR; the sigaction struct is fully initialized.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_kick as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_flags = 0;
        libc::sigaction(kick_signal(), &action, std::ptr::null_mut());
    }
    let set = forwarded_set();
    // SAFETY: blocks the forwarded signals in this thread; threads created later inherit.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    start_forwarder();
}

/// Starts the thread that collects forwarded signals.
fn start_forwarder() {
    let Some(&deliver) = DELIVER.get() else {
        return;
    };
    let set = forwarded_set();
    let _ = std::thread::Builder::new()
        .name("elfuse-signals".into())
        .spawn(move || {
            loop {
                let mut host: libc::c_int = 0;
                // SAFETY: set is a valid signal set and host a valid out parameter.
                let rc = unsafe { libc::sigwait(&set, &mut host) };
                if rc == 0
                    && let Some(linux) = from_host(host)
                {
                    deliver(linux);
                }
            }
        });
}

/// In a forked child: the forwarding thread did not survive the fork; start a new one.
pub fn after_fork() {
    start_forwarder();
}

/// Restores default handling of the forwarded signals in this thread (before a host `exec`
/// or when dying by one of them).
pub fn unblock_forwarded() {
    let set = forwarded_set();
    // SAFETY: unblocks signals in the calling thread.
    unsafe {
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}
