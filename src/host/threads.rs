//! Host threads and the process-wide host signal set-up the runtime needs: a kick signal that
//! interrupts one thread's blocking host call, and the forwarding of signals sent to elfuse
//! (from the terminal, other processes, child exits) to the guest.
//!
//! Forwarded signals are blocked in every thread and collected by one thread (or by a guest
//! thread that needs them handed over at once, see [`drain`]), so they never interrupt runtime code at an arbitrary point and their default actions (stop,
//! terminate) happen only through the guest's own dispositions. Each arrives with what the host
//! says about its origin: the sender, or the child whose state change raised `SIGCHLD`.
//!
//! # Limitations
//! On Linux hosts the kick signal is `SIGRTMAX` and real-time signals 32 and 33 belong to the C
//! library, so guest signals 32, 33 and 64 cannot travel between processes. macOS hosts have
//! no real-time signals: guest real-time signals stay within one process. macOS's `sigwait`
//! reports no origin: a forwarded signal there looks sent by an unknown process, and a
//! `SIGCHLD` names the child a non-consuming `waitid` finds first.

use std::sync::{Mutex, MutexGuard, OnceLock};

use super::process::ChildEvent;
use super::signals::{from_host, to_host};
use crate::kernel::abi::signal as ls;

/// Where a forwarded signal came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Sent by a process: Linux `si_code` (`SI_USER`, `SI_QUEUE`, `SI_TKILL`), the sender's
    /// pid and uid, and the `sigqueue` value.
    Sent {
        code: i32,
        pid: i32,
        uid: u32,
        value: u64,
    },
    /// A child of this process changed state (`SIGCHLD`).
    Child(ChildEvent),
    /// Raised by the host kernel itself, for example from the terminal (`SI_KERNEL`).
    Kernel,
}

/// A forwarded signal: its Linux number and origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostSignal {
    pub signo: u32,
    pub origin: Origin,
}

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

/// Held while a kick is sent, and across a host `fork` (see [`pause_forwarding`]).
/// `pthread_kill` holds a lock of the target thread's descriptor while it signals; a fork in
/// that moment would copy the lock held into the child, where the kicking thread does not
/// exist, and the child's first kick of the thread that forked would then wait forever.
static KICKING: Mutex<()> = Mutex::new(());

/// Sends the kick signal to `thread`: a blocking host call there returns `EINTR`.
pub fn kick(thread: ThreadId) {
    let _kicking = KICKING.lock().unwrap_or_else(|e| e.into_inner());
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
static DELIVER: OnceLock<fn(HostSignal)> = OnceLock::new();

/// Held while signals are taken from the host and handed to the guest, so that a [`drain`]
/// returns only once every signal the host had queued has reached the guest.
static HAND_OVER: Mutex<()> = Mutex::new(());

/// One-time set-up, on the thread that will run the guest, before any other thread exists:
/// installs the kick handler and starts forwarding host signals to `deliver` (called with the
/// hand-over lock held, on the forwarding thread or in [`drain`]).
pub fn init(deliver: fn(HostSignal)) {
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
    if DELIVER.get().is_none() {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("elfuse-signals".into())
        .spawn(|| {
            loop {
                queue::wait();
                drain();
            }
        });
}

/// Hands every forwarded signal the host has queued for this process to the guest now.
///
/// A guest that changes its signal mask or actions, or looks at its pending signals, calls
/// this first: a signal the host raised before that point (a child's `SIGCHLD`, say) is then
/// treated by the guest's state at that point, as Linux would have, rather than whenever the
/// forwarding thread gets to it.
pub fn drain() {
    let Some(&deliver) = DELIVER.get() else {
        return;
    };
    let _hand_over = HAND_OVER.lock().unwrap_or_else(|e| e.into_inner());
    while let Some(signal) = queue::take() {
        deliver(signal);
    }
}

/// What [`pause_forwarding`] holds until it is dropped.
pub struct Paused {
    _hand_over: MutexGuard<'static, ()>,
    _kicking: MutexGuard<'static, ()>,
}

/// Keeps signals from being handed over and kicks from being sent until the guard is dropped:
/// held across a host `fork`, so the child never starts with a hand-over or a kick half done.
pub fn pause_forwarding() -> Paused {
    // Always in this order: a hand-over kicks while it holds HAND_OVER.
    let hand_over = HAND_OVER.lock().unwrap_or_else(|e| e.into_inner());
    let kicking = KICKING.lock().unwrap_or_else(|e| e.into_inner());
    Paused {
        _hand_over: hand_over,
        _kicking: kicking,
    }
}

/// Linux: a non-blocking `signalfd` reports the queued signals with their origin, and can be
/// waited on without taking anything from the queue.
#[cfg(target_os = "linux")]
mod queue {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::OnceLock;

    use super::{ChildEvent, HostSignal, Origin, forwarded_set, from_host};

    /// The descriptor, shared with forked children (a read there returns the child's own
    /// signals).
    static FD: OnceLock<OwnedFd> = OnceLock::new();

    fn fd() -> libc::c_int {
        FD.get_or_init(|| {
            let set = forwarded_set();
            // SAFETY: `set` is a valid signal set; the result is checked below.
            let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
            assert!(fd >= 0, "signalfd: {}", std::io::Error::last_os_error());
            // SAFETY: fd is a new descriptor owned by nothing else.
            unsafe { OwnedFd::from_raw_fd(fd) }
        })
        .as_raw_fd()
    }

    /// Blocks until a forwarded signal is queued.
    pub(super) fn wait() {
        let mut poll = libc::pollfd {
            fd: fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; EINTR (the kick signal) just returns early.
        unsafe {
            libc::poll(&mut poll, 1, -1);
        }
    }

    /// Takes one queued signal, if any.
    pub(super) fn take() -> Option<HostSignal> {
        loop {
            // SAFETY: an all-zero signalfd_siginfo is valid; read fills it in.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: reads at most `size` bytes into `info`.
            let n = unsafe { libc::read(fd(), (&raw mut info).cast(), size) };
            if n != size as isize {
                return None;
            }
            if let Some(signal) = convert(&info) {
                return Some(signal);
            }
        }
    }

    fn convert(info: &libc::signalfd_siginfo) -> Option<HostSignal> {
        let host = info.ssi_signo as libc::c_int;
        let signo = from_host(host)?;
        let code = info.ssi_code;
        let child = if host == libc::SIGCHLD {
            crate::host::process::child_state(code, info.ssi_status)
        } else {
            None
        };
        let origin = match (child, code) {
            (Some(state), _) => Origin::Child(ChildEvent {
                pid: info.ssi_pid as i32,
                uid: info.ssi_uid,
                state,
            }),
            (None, libc::SI_USER | libc::SI_QUEUE | libc::SI_TKILL) => Origin::Sent {
                code,
                pid: info.ssi_pid as i32,
                uid: info.ssi_uid,
                value: info.ssi_ptr,
            },
            _ => Origin::Kernel,
        };
        Some(HostSignal { signo, origin })
    }
}

/// Other hosts: `sigwait` takes a signal without its origin, so a `SIGCHLD` is matched to a
/// child that has changed state, without consuming that state. A signal the forwarding thread
/// has taken but not yet handed over can still arrive after a [`drain`].
#[cfg(not(target_os = "linux"))]
mod queue {
    use super::{HostSignal, Origin, forwarded_set, from_host, ls};
    use crate::host::process::{WaitFlags, WaitTarget, waitid};

    /// Signals the forwarding thread took, not yet handed over.
    static TAKEN: std::sync::Mutex<Vec<HostSignal>> = std::sync::Mutex::new(Vec::new());

    /// Blocks until a forwarded signal arrives, and takes it.
    pub(super) fn wait() {
        let set = forwarded_set();
        let mut host: libc::c_int = 0;
        // SAFETY: set is a valid signal set and host a valid out parameter.
        if unsafe { libc::sigwait(&set, &mut host) } == 0
            && let Some(signal) = convert(host)
        {
            TAKEN.lock().unwrap_or_else(|e| e.into_inner()).push(signal);
        }
    }

    /// Takes one signal: one the forwarding thread took, else one still pending.
    pub(super) fn take() -> Option<HostSignal> {
        if let Some(signal) = TAKEN.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Some(signal);
        }
        let forwarded = forwarded_set();
        // SAFETY: sigset operations on local sets; sigwait returns at once for a pending
        // signal.
        unsafe {
            let mut pending: libc::sigset_t = std::mem::zeroed();
            libc::sigpending(&mut pending);
            for host in 1..32 {
                if libc::sigismember(&pending, host) == 1
                    && libc::sigismember(&forwarded, host) == 1
                {
                    let mut one: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut one);
                    libc::sigaddset(&mut one, host);
                    let mut got = 0;
                    if libc::sigwait(&one, &mut got) == 0 {
                        return convert(got);
                    }
                }
            }
        }
        None
    }

    fn convert(host: libc::c_int) -> Option<HostSignal> {
        let signo = from_host(host)?;
        let sent = Origin::Sent {
            code: ls::code::SI_USER,
            pid: 0,
            uid: 0,
            value: 0,
        };
        if host != libc::SIGCHLD {
            return Some(HostSignal {
                signo,
                origin: sent,
            });
        }
        let peek = WaitFlags {
            exited: true,
            stopped: true,
            continued: true,
            no_hang: true,
            no_wait: true,
        };
        let origin = match waitid(WaitTarget::Any, peek) {
            Ok(Some((event, _))) => Origin::Child(event),
            _ => sent,
        };
        Some(HostSignal { signo, origin })
    }
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
