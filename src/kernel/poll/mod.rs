//! Readiness and waiting: what `ppoll`, `pselect6` and epoll ask of every kind of file, the
//! runtime's own pollable objects (eventfd, timerfd, epoll), and the one wait that covers host
//! descriptors, those objects, deadlines and signals.
//!
//! A wait is a loop: scan every file once (ready files end it), then block in one host
//! `poll(2)` over the host descriptors involved plus the calling thread's wake-up pipe
//! ([`Waiter`]). Runtime objects keep a [`WaitQueue`]; a scan subscribes the thread to the
//! queue of every object it looks at, under the object's lock, and every change of an object's
//! state wakes its queue, so no wake-up is lost between the scan and the block. Timers add a
//! deadline to the wait instead. A signal for the thread interrupts the host `poll` through
//! [`interruptible`] (the thread's kick), and the wait returns `ERESTARTSYS`, which each system
//! call turns into its own restart code. The same code runs on Linux and macOS hosts: the only
//! host facilities it needs are `poll(2)` and a pipe.
//!
//! # Limitations
//! Readiness of host descriptors is the host's `poll(2)` answer (see [`crate::host::poll`] for
//! what macOS cannot poll). The runtime's objects live in one elfuse process: after a guest
//! `fork` the child has copies of them, not the parent's objects (see [`EventObject`]).

pub mod epoll;
pub mod eventfd;
pub mod timerfd;

use std::cell::RefCell;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

pub use crate::host::poll::linux_bits as ev;
use crate::host::poll::{self as host_poll, PollFd, WakePipe};
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::file::{Device, FileKind, OpenFile};
use crate::kernel::process::lock;
use crate::kernel::task::interruptible;

pub use self::epoll::Epoll;
pub use self::eventfd::EventFd;
pub use self::timerfd::TimerFd;

/// What files without a poll method report on Linux (`DEFAULT_POLLMASK`).
pub const DEFAULT_POLLMASK: u32 = ev::POLLIN | ev::POLLOUT | ev::POLLRDNORM | ev::POLLWRNORM;

/// A runtime object behind a guest descriptor (an "anonymous inode" on Linux).
pub enum EventObject {
    /// An `eventfd(2)` counter.
    EventFd(EventFd),
    /// A `timerfd_create(2)` timer.
    TimerFd(TimerFd),
    /// An `epoll_create1(2)` instance.
    Epoll(Epoll),
}

impl EventObject {
    /// The name `/proc/self/fd` shows (`anon_inode:[...]`).
    pub fn link_name(&self) -> &'static str {
        match self {
            EventObject::EventFd(_) => "anon_inode:[eventfd]",
            EventObject::TimerFd(_) => "anon_inode:[timerfd]",
            EventObject::Epoll(_) => "anon_inode:[eventpoll]",
        }
    }

    /// The object's readiness now; subscribes `set` to its changes.
    fn poll(&self, set: &mut WaitSet) -> Ready {
        match self {
            EventObject::EventFd(e) => e.poll(set),
            EventObject::TimerFd(t) => t.poll(set),
            EventObject::Epoll(e) => e.poll(set),
        }
    }
}

/// A file's readiness: Linux event bits, and a counter that grows with every event the file
/// signals while it stays ready (what edge-triggered epoll reports again).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Ready events.
    pub events: u32,
    /// Grows with each new event (bytes available, for host descriptors).
    pub token: u64,
}

// ---- waking -----------------------------------------------------------------------------------

/// A host thread's wake-up pipe, which every wait of the thread polls.
pub struct Waiter {
    pipe: WakePipe,
    /// The host process that made it: a host-forked child makes its own.
    pid: u32,
}

impl Waiter {
    /// Ends the thread's current (or next) wait.
    pub fn wake(&self) {
        self.pipe.wake();
    }
}

thread_local! {
    static WAITER: RefCell<Option<Arc<Waiter>>> = const { RefCell::new(None) };
}

/// The calling thread's waiter, made on first use (and again in a host-forked child, which
/// must not share its parent's pipe).
fn current_waiter() -> SysResult<Arc<Waiter>> {
    WAITER.with(|cell| {
        let mut cell = cell.borrow_mut();
        let pid = std::process::id();
        if let Some(w) = cell.as_ref().filter(|w| w.pid == pid) {
            return Ok(w.clone());
        }
        let waiter = Arc::new(Waiter {
            pipe: WakePipe::new().map_err(Errno::from)?,
            pid,
        });
        *cell = Some(waiter.clone());
        Ok(waiter)
    })
}

/// The threads waiting for a runtime object to change.
#[derive(Default)]
pub struct WaitQueue {
    waiters: Mutex<Vec<Weak<Waiter>>>,
}

impl WaitQueue {
    /// A queue without waiters.
    pub fn new() -> Arc<WaitQueue> {
        Arc::new(WaitQueue::default())
    }

    /// Wakes every waiter (the object changed).
    pub fn wake_all(&self) {
        let mut waiters = lock(&self.waiters);
        waiters.retain(|w| match w.upgrade() {
            Some(w) => {
                w.wake();
                true
            }
            None => false,
        });
    }

    fn add(&self, waiter: &Arc<Waiter>) {
        let mut waiters = lock(&self.waiters);
        let weak = Arc::downgrade(waiter);
        if !waiters.iter().any(|w| w.ptr_eq(&weak)) {
            waiters.push(weak);
        }
    }

    fn remove(&self, waiter: &Arc<Waiter>) {
        let weak = Arc::downgrade(waiter);
        lock(&self.waiters).retain(|w| !w.ptr_eq(&weak) && w.strong_count() > 0);
    }
}

/// What one blocking step of a wait watches: host descriptors, object queues, a deadline.
pub struct WaitSet {
    waiter: Option<Arc<Waiter>>,
    host: Vec<PollFd>,
    queues: Vec<Arc<WaitQueue>>,
    wake_at: Option<Instant>,
}

impl WaitSet {
    /// A set that only scans (no wait follows).
    pub fn scan_only() -> WaitSet {
        WaitSet {
            waiter: None,
            host: Vec::new(),
            queues: Vec::new(),
            wake_at: None,
        }
    }

    fn for_waiter(waiter: Arc<Waiter>) -> WaitSet {
        WaitSet {
            waiter: Some(waiter),
            host: Vec::new(),
            queues: Vec::new(),
            wake_at: None,
        }
    }

    /// Watches host descriptor `fd` for the Linux `events`.
    pub fn watch_host(&mut self, fd: BorrowedFd<'_>, events: u32) {
        if self.waiter.is_some() {
            self.host.push(host_poll::poll_fd(fd, events));
        }
    }

    /// Subscribes the waiting thread to `queue` (call with the object's state locked).
    pub fn subscribe(&mut self, queue: &Arc<WaitQueue>) {
        let Some(waiter) = &self.waiter else {
            return;
        };
        if !self.queues.iter().any(|q| Arc::ptr_eq(q, queue)) {
            queue.add(waiter);
            self.queues.push(queue.clone());
        }
    }

    /// Ends the blocking step by `at` at the latest (a timer's expiry, a re-check).
    pub fn wake_at(&mut self, at: Instant) {
        self.wake_at = Some(self.wake_at.map_or(at, |t| t.min(at)));
    }
}

impl Drop for WaitSet {
    fn drop(&mut self) {
        if let Some(waiter) = &self.waiter {
            for queue in &self.queues {
                queue.remove(waiter);
            }
        }
    }
}

/// Waits until `scan` finds what it looks for (`Ok(Some)`), `deadline` passes (`Ok(None)`;
/// `scan` has run at least once), or a signal for the thread comes (`ERESTARTSYS`). Ready
/// files win over a pending signal, as on Linux. The run lock is released while blocked.
pub fn wait<R>(
    deadline: Option<Instant>,
    mut scan: impl FnMut(&mut WaitSet) -> SysResult<Option<R>>,
) -> SysResult<Option<R>> {
    let waiter = current_waiter()?;
    loop {
        waiter.pipe.drain();
        let mut set = WaitSet::for_waiter(waiter.clone());
        if let Some(found) = scan(&mut set)? {
            return Ok(Some(found));
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Ok(None);
        }
        let until = match (deadline, set.wake_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = until.map(|t| t.saturating_duration_since(now));
        set.host
            .push(host_poll::poll_fd(waiter.pipe.fd(), ev::POLLIN));
        interruptible(|| host_poll::poll(&mut set.host, timeout))?;
    }
}

/// Waits for `file` to have one of `events` (a blocking `read` or `write` on a runtime object):
/// `ERESTARTSYS` if a signal comes first.
pub fn wait_for(file: &EventObject, events: u32) -> SysResult<()> {
    wait(None, |set| {
        Ok((file.poll(set).events & events != 0).then_some(()))
    })
    .map(|_| ())
}

// ---- readiness of files -------------------------------------------------------------------------

/// How a file answers a poll.
pub enum Pollee<'a> {
    /// A host descriptor: the host's `poll` decides.
    Host(BorrowedFd<'a>),
    /// A runtime object.
    Object(&'a EventObject),
    /// Always these events (runtime devices).
    Fixed(u32),
    /// Not pollable at all (`O_PATH`): `POLLNVAL`.
    Invalid,
}

/// How `file` answers a poll.
pub fn pollee(file: &OpenFile) -> Pollee<'_> {
    match file.kind() {
        FileKind::Host { fd, .. } => Pollee::Host(std::os::fd::AsFd::as_fd(fd)),
        FileKind::Event(object) => Pollee::Object(object),
        // The random pool is always initialized here, which makes it readable only.
        FileKind::Device(Device::Random) => Pollee::Fixed(ev::POLLIN | ev::POLLRDNORM),
        FileKind::Device(_) => Pollee::Fixed(DEFAULT_POLLMASK),
        FileKind::Path { .. } => Pollee::Invalid,
    }
}

/// Whether epoll can watch `file`: Linux refuses files without a poll method (regular files,
/// directories, block devices, `/dev/null` and the other memory devices except `/dev/random`)
/// with `EPERM`.
pub fn epoll_can_watch(file: &OpenFile) -> bool {
    use crate::kernel::abi::mode;
    match file.kind() {
        FileKind::Host { .. } => file
            .stat()
            .is_ok_and(|st| !matches!(st.kind(), mode::S_IFREG | mode::S_IFDIR | mode::S_IFBLK)),
        FileKind::Device(device) => *device == Device::Random,
        FileKind::Event(_) => true,
        FileKind::Path { .. } => false,
    }
}

/// The readiness of each of `files` for its events (which should include `POLLERR` and
/// `POLLHUP`, reported whether asked for or not), masked by them: host descriptors in one host
/// `poll`, runtime objects subscribing `set`. With `tokens`, a readable host descriptor's
/// token is the number of bytes it holds. Host descriptors are not added to `set`: the caller
/// decides which to block on.
pub fn check(files: &[(&OpenFile, u32)], set: &mut WaitSet, tokens: bool) -> Vec<Ready> {
    let mut out = vec![Ready::default(); files.len()];
    let mut host = Vec::new();
    let mut host_index = Vec::new();
    for (i, (file, events)) in files.iter().enumerate() {
        match pollee(file) {
            Pollee::Host(fd) => {
                host.push(host_poll::poll_fd(fd, *events));
                host_index.push(i);
            }
            Pollee::Object(object) => {
                let ready = object.poll(set);
                out[i] = Ready {
                    events: ready.events & events,
                    token: ready.token,
                };
            }
            Pollee::Fixed(mask) => out[i].events = mask & events,
            Pollee::Invalid => out[i].events = ev::POLLNVAL,
        }
    }
    if !host.is_empty() && host_poll::poll(&mut host, Some(Duration::ZERO)).is_ok() {
        for (pfd, &i) in host.iter().zip(&host_index) {
            let events = host_poll::from_host(pfd.revents) & (files[i].1 | ev::POLLNVAL);
            out[i].events = events;
            if tokens && events & ev::POLLIN != 0 {
                let fd = files[i].0.host_fd().expect("a host descriptor");
                out[i].token = crate::host::io::bytes_available(fd).map_or(0, |n| n as u64);
            }
        }
    }
    out
}
