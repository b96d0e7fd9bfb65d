//! epoll instances: an interest list of (descriptor, open file description) pairs, scanned for
//! readiness when the guest waits.
//!
//! Each entry keeps the readiness it last reported ([`Ready`]): a level-triggered entry is
//! reported whenever it is ready (and then moves to the back, so a small `maxevents` takes
//! turns, as Linux's ready list does); an edge-triggered one only when an event bit appears
//! that was not there at the last report, or its token grew (new bytes in a pipe, another
//! `eventfd` write, another timer expiration); `EPOLLONESHOT` disables an entry once reported
//! until `EPOLL_CTL_MOD` arms it again. Entries hold the description weakly and vanish when its
//! last reference is closed, as on Linux; closing one descriptor of a `dup`ed description
//! leaves the entry in place.
//!
//! An epoll instance is itself pollable (readable while it has an event to report), so
//! instances nest; adding one that would close a loop, or nest deeper than Linux allows, is
//! `ELOOP`.
//!
//! # Limitations
//! Edge detection on host descriptors compares bytes available (`FIONREAD`) between scans: data
//! that arrives and is consumed between two waits, leaving the same count, goes unnoticed, and
//! a host descriptor that stays ready without a new edge is re-checked every
//! [`EDGE_RECHECK`] rather than on a host wake-up. A nested epoll instance has no token, so an
//! edge-triggered watcher of it sees only its changes from idle to ready. `EPOLLEXCLUSIVE` is
//! accepted (with Linux's argument checks) and changes nothing: every waiter is woken.
//! `EPOLLWAKEUP` is dropped, as Linux drops it without `CAP_BLOCK_SUSPEND`.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::{EventObject, Pollee, Ready, WaitQueue, WaitSet, check, pollee};
use crate::host::poll::linux_bits as ev;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::file::{FileKind, OpenFile};
use crate::kernel::process::lock;

/// `EPOLLEXCLUSIVE`.
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
/// `EPOLLWAKEUP`.
pub const EPOLLWAKEUP: u32 = 1 << 29;
/// `EPOLLONESHOT`.
pub const EPOLLONESHOT: u32 = 1 << 30;
/// `EPOLLET`.
pub const EPOLLET: u32 = 1 << 31;
/// The flag bits of an interest, which are not events.
const PRIVATE: u32 = EPOLLEXCLUSIVE | EPOLLWAKEUP | EPOLLONESHOT | EPOLLET;
/// What an `EPOLLEXCLUSIVE` interest may ask for (`EPOLLEXCLUSIVE_OK_BITS`).
pub const EXCLUSIVE_OK: u32 =
    ev::POLLIN | ev::POLLOUT | ev::POLLERR | ev::POLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;
/// Linux's `EPOLL_MAX_NESTS`.
const MAX_NESTS: usize = 4;
/// How often a host descriptor that stays ready is looked at again for a new edge.
pub const EDGE_RECHECK: Duration = Duration::from_millis(10);

/// One watched (descriptor, description) pair.
struct Interest {
    fd: i32,
    file: Weak<OpenFile>,
    /// Events and flags; only the flags once a one-shot entry has fired.
    events: u32,
    data: u64,
    /// What the last report (or scan, while not ready) saw.
    seen: Ready,
}

/// An epoll instance.
pub struct Epoll {
    items: Mutex<Vec<Interest>>,
    queue: Arc<WaitQueue>,
}

/// One entry of the interest list, for the fork hand-over.
pub struct InterestCopy {
    /// The descriptor number it was added with.
    pub fd: i32,
    /// The description.
    pub file: Arc<OpenFile>,
    /// Events and flags.
    pub events: u32,
    /// The user data.
    pub data: u64,
}

/// Serializes additions of epoll instances to each other, so two cannot close a loop at once.
static NESTING: Mutex<()> = Mutex::new(());

impl Default for Epoll {
    fn default() -> Self {
        Epoll::new()
    }
}

impl Epoll {
    /// An instance with an empty interest list.
    pub fn new() -> Epoll {
        Epoll {
            items: Mutex::new(Vec::new()),
            queue: WaitQueue::new(),
        }
    }

    /// Readiness as a file: readable while an event is waiting to be reported.
    pub fn poll(&self, set: &mut WaitSet) -> Ready {
        let pending = !self.collect(set, 1, false).is_empty();
        Ready {
            events: if pending {
                ev::POLLIN | ev::POLLRDNORM
            } else {
                0
            },
            token: 0,
        }
    }

    /// `EPOLL_CTL_ADD`: `EEXIST` if the pair is there; `ELOOP` for an epoll instance that
    /// would close a loop or nest too deep.
    pub fn add(&self, fd: i32, file: &Arc<OpenFile>, events: u32, data: u64) -> SysResult<()> {
        let _nesting = match epoll_of(file) {
            Some(inner) => {
                let guard = lock(&NESTING);
                if inner.reaches(self, 0) {
                    return Err(Errno::ELOOP);
                }
                Some(guard)
            }
            None => None,
        };
        let mut items = lock(&self.items);
        items.retain(|i| i.file.strong_count() > 0);
        if items.iter().any(|i| i.is(fd, file)) {
            return Err(Errno::EEXIST);
        }
        items.push(Interest {
            fd,
            file: Arc::downgrade(file),
            events: (events & !EPOLLWAKEUP) | ev::POLLERR | ev::POLLHUP,
            data,
            seen: Ready::default(),
        });
        self.queue.wake_all();
        Ok(())
    }

    /// `EPOLL_CTL_MOD`: `ENOENT` if the pair is not there, `EINVAL` for an exclusive entry.
    pub fn modify(&self, fd: i32, file: &Arc<OpenFile>, events: u32, data: u64) -> SysResult<()> {
        let mut items = lock(&self.items);
        let item = items
            .iter_mut()
            .find(|i| i.is(fd, file))
            .ok_or(Errno::ENOENT)?;
        if item.events & EPOLLEXCLUSIVE != 0 {
            return Err(Errno::EINVAL);
        }
        item.events = (events & !EPOLLWAKEUP) | ev::POLLERR | ev::POLLHUP;
        item.data = data;
        item.seen = Ready::default();
        self.queue.wake_all();
        Ok(())
    }

    /// `EPOLL_CTL_DEL`: `ENOENT` if the pair is not there.
    pub fn remove(&self, fd: i32, file: &Arc<OpenFile>) -> SysResult<()> {
        let mut items = lock(&self.items);
        let index = items
            .iter()
            .position(|i| i.is(fd, file))
            .ok_or(Errno::ENOENT)?;
        items.remove(index);
        self.queue.wake_all();
        Ok(())
    }

    /// The live entries, for the fork hand-over.
    pub fn interests(&self) -> Vec<InterestCopy> {
        lock(&self.items)
            .iter()
            .filter_map(|i| {
                Some(InterestCopy {
                    fd: i.fd,
                    file: i.file.upgrade()?,
                    events: i.events,
                    data: i.data,
                })
            })
            .collect()
    }

    /// Restores an entry exactly as it was (fork hand-over).
    pub fn restore(&self, copy: &InterestCopy) {
        lock(&self.items).push(Interest {
            fd: copy.fd,
            file: Arc::downgrade(&copy.file),
            events: copy.events,
            data: copy.data,
            seen: Ready::default(),
        });
    }

    /// Whether `target` is this instance or one it watches, directly or through others, or the
    /// nesting below here is deeper than Linux allows.
    fn reaches(&self, target: &Epoll, depth: usize) -> bool {
        if std::ptr::eq(self, target) || depth >= MAX_NESTS {
            return true;
        }
        let inner: Vec<Arc<OpenFile>> = lock(&self.items)
            .iter()
            .filter_map(|i| i.file.upgrade())
            .collect();
        inner
            .iter()
            .filter_map(|f| epoll_of(f))
            .any(|e| e.reaches(target, depth + 1))
    }

    /// The events to report, up to `max` (events, user data); with `commit`, as a wait
    /// reports them (edge-triggered and one-shot entries are used up, level-triggered ones
    /// go to the back). Subscribes `set` to everything watched.
    pub fn collect(&self, set: &mut WaitSet, max: usize, commit: bool) -> Vec<(u32, u64)> {
        let mut items = lock(&self.items);
        set.subscribe(&self.queue);
        items.retain(|i| i.file.strong_count() > 0);

        // Look at every armed entry at once (host descriptors in one host poll).
        let files: Vec<(usize, Arc<OpenFile>)> = items
            .iter()
            .enumerate()
            .filter(|(_, i)| i.events & !PRIVATE != 0)
            .filter_map(|(n, i)| Some((n, i.file.upgrade()?)))
            .collect();
        let probes: Vec<(&OpenFile, u32)> = files
            .iter()
            .map(|(n, f)| (&**f, items[*n].events & !PRIVATE))
            .collect();
        let edges = items.iter().any(|i| i.events & EPOLLET != 0);
        let ready = check(&probes, set, edges);

        let mut out = Vec::new();
        let mut to_back = Vec::new();
        for ((n, file), r) in files.iter().zip(ready) {
            let item = &mut items[*n];
            let host = match pollee(file) {
                Pollee::Host(fd) => Some(fd),
                _ => None,
            };
            if r.events == 0 {
                if commit {
                    item.seen = r;
                }
                if let Some(fd) = host {
                    set.watch_host(fd, item.events & !PRIVATE);
                }
                continue;
            }
            let edge = item.events & EPOLLET != 0;
            let new = !edge || r.events & !item.seen.events != 0 || r.token > item.seen.token;
            if !new {
                if commit {
                    item.seen = r;
                }
                if host.is_some() {
                    set.wake_at(Instant::now() + EDGE_RECHECK);
                }
                continue;
            }
            if out.len() >= max {
                continue;
            }
            out.push((r.events, item.data));
            if commit {
                item.seen = r;
                if item.events & EPOLLONESHOT != 0 {
                    item.events &= PRIVATE;
                } else if !edge {
                    to_back.push(*n);
                }
            }
        }
        if !to_back.is_empty() {
            let mut moved = Vec::with_capacity(to_back.len());
            for &n in to_back.iter().rev() {
                moved.push(items.remove(n));
            }
            items.extend(moved.into_iter().rev());
        }
        out
    }
}

impl Interest {
    fn is(&self, fd: i32, file: &Arc<OpenFile>) -> bool {
        self.fd == fd && std::ptr::eq(self.file.as_ptr(), Arc::as_ptr(file))
    }
}

/// The epoll instance behind `file`, if it is one.
pub fn epoll_of(file: &Arc<OpenFile>) -> Option<&Epoll> {
    match file.kind() {
        FileKind::Event(EventObject::Epoll(e)) => Some(e),
        _ => None,
    }
}
