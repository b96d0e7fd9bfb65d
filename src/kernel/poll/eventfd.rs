//! `eventfd(2)` counters: an 8-byte read takes the count (or one, in semaphore mode), an
//! 8-byte write adds to it; the count never exceeds `0xffff_ffff_ffff_fffe`.

use std::sync::{Arc, Mutex};

use super::{Ready, WaitQueue, WaitSet};
use crate::host::poll::linux_bits as ev;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::process::lock;

/// The largest count an eventfd holds (`ULLONG_MAX - 1`).
pub const MAX_COUNT: u64 = u64::MAX - 1;

struct Counter {
    value: u64,
    /// Reads and writes so far: the token edge-triggered epoll watches.
    changes: u64,
}

/// An eventfd.
pub struct EventFd {
    counter: Mutex<Counter>,
    semaphore: bool,
    queue: Arc<WaitQueue>,
}

/// What a read or write would do now.
enum Step<T> {
    Done(T),
    Blocked,
}

impl EventFd {
    /// A counter starting at `initial`, in semaphore mode if `semaphore` (`EFD_SEMAPHORE`).
    pub fn new(initial: u64, semaphore: bool) -> EventFd {
        EventFd {
            counter: Mutex::new(Counter {
                value: initial,
                changes: 0,
            }),
            semaphore,
            queue: WaitQueue::new(),
        }
    }

    /// An eventfd rebuilt from a hand-over [`snapshot`](EventFd::snapshot).
    pub fn restore(value: u64, semaphore: bool) -> EventFd {
        EventFd::new(value, semaphore)
    }

    /// The count and the mode, for the fork hand-over.
    pub fn snapshot(&self) -> (u64, bool) {
        (lock(&self.counter).value, self.semaphore)
    }

    /// Readiness: readable with a count, writable while one more can be added.
    pub fn poll(&self, set: &mut WaitSet) -> Ready {
        let counter = lock(&self.counter);
        set.subscribe(&self.queue);
        let mut events = 0;
        if counter.value > 0 {
            events |= ev::POLLIN | ev::POLLRDNORM;
        }
        if counter.value < MAX_COUNT {
            events |= ev::POLLOUT | ev::POLLWRNORM;
        }
        Ready {
            events,
            token: counter.changes,
        }
    }

    /// An 8-byte `read(2)`: the count (then zero), or 1 in semaphore mode; blocks while zero
    /// unless `nonblock` (`EAGAIN`).
    pub fn read(&self, nonblock: bool, wait: impl FnMut() -> SysResult<()>) -> SysResult<u64> {
        self.retry(nonblock, wait, || {
            let mut counter = lock(&self.counter);
            if counter.value == 0 {
                return Step::Blocked;
            }
            let taken = if self.semaphore { 1 } else { counter.value };
            counter.value -= taken;
            counter.changes += 1;
            self.queue.wake_all();
            Step::Done(taken)
        })
    }

    /// An 8-byte `write(2)` of `value`: `EINVAL` for `u64::MAX`; blocks while the sum would
    /// pass [`MAX_COUNT`] unless `nonblock` (`EAGAIN`).
    pub fn write(
        &self,
        value: u64,
        nonblock: bool,
        wait: impl FnMut() -> SysResult<()>,
    ) -> SysResult<()> {
        if value == u64::MAX {
            return Err(Errno::EINVAL);
        }
        self.retry(nonblock, wait, || {
            let mut counter = lock(&self.counter);
            if MAX_COUNT - counter.value < value {
                return Step::Blocked;
            }
            counter.value += value;
            counter.changes += 1;
            self.queue.wake_all();
            Step::Done(())
        })
    }

    fn retry<T>(
        &self,
        nonblock: bool,
        mut wait: impl FnMut() -> SysResult<()>,
        mut attempt: impl FnMut() -> Step<T>,
    ) -> SysResult<T> {
        loop {
            match attempt() {
                Step::Done(value) => return Ok(value),
                Step::Blocked if nonblock => return Err(Errno::EAGAIN),
                Step::Blocked => wait()?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_wait() -> SysResult<()> {
        panic!("would block")
    }

    #[test]
    fn counter_and_semaphore_modes() {
        let e = EventFd::new(3, false);
        assert_eq!(e.read(true, no_wait), Ok(3));
        assert_eq!(e.read(true, no_wait), Err(Errno::EAGAIN));
        let s = EventFd::new(2, true);
        assert_eq!(s.read(true, no_wait), Ok(1));
        assert_eq!(s.read(true, no_wait), Ok(1));
        assert_eq!(s.read(true, no_wait), Err(Errno::EAGAIN));
    }

    #[test]
    fn writes_stop_at_the_maximum() {
        let e = EventFd::new(0, false);
        assert_eq!(e.write(u64::MAX, true, no_wait), Err(Errno::EINVAL));
        assert_eq!(e.write(MAX_COUNT, true, no_wait), Ok(()));
        assert_eq!(e.write(1, true, no_wait), Err(Errno::EAGAIN));
        assert_eq!(e.write(0, true, no_wait), Ok(()));
        let ready = e.poll(&mut WaitSet::scan_only());
        assert_eq!(ready.events, ev::POLLIN | ev::POLLRDNORM);
    }
}
