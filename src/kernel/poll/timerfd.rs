//! `timerfd_create(2)` timers: a timer on a wall clock whose expirations are counted and read
//! as one 8-byte number.
//!
//! Expirations are computed from the clock when the timer is looked at (read, polled,
//! `timerfd_gettime`), so a periodic timer read late reports every period that passed, as
//! Linux's `hrtimer_forward` does, with no thread behind it. A wait on a timer sleeps until its
//! next expiry (in naps of at most a second on a clock the host may set).
//!
//! # Limitations
//! `TFD_TIMER_CANCEL_ON_SET` is accepted but a read never fails with `ECANCELED`: elfuse does
//! not observe changes of the host's real-time clock. The `_ALARM` clocks behave like their
//! plain counterparts (the host is never woken from suspend).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Ready, WaitQueue, WaitSet};
use crate::host::poll::linux_bits as ev;
use crate::kernel::abi::errno::SysResult;
use crate::kernel::process::lock;
use crate::kernel::timer::{self, Clock};

/// How long a wait trusts a reading of a clock the host may set.
const CALENDAR_RECHECK: Duration = Duration::from_secs(1);

/// A timer's setting in nanoseconds: time to the next expiry (0: disarmed) and the period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerSetting {
    /// Nanoseconds to the next expiry; 0 when disarmed.
    pub value: u64,
    /// The period; 0 for a one-shot timer.
    pub interval: u64,
}

struct State {
    /// The clock `expires` counts on.
    clock: Clock,
    /// The next expiry on `clock`, if armed.
    expires: Option<u64>,
    interval: u64,
    /// Expirations not yet read.
    ticks: u64,
    /// Every expiration so far: the token edge-triggered epoll watches.
    fired: u64,
}

impl State {
    /// Counts the expirations up to now.
    fn update(&mut self) {
        let Some(expires) = self.expires else {
            return;
        };
        let Some(now) = self.clock.now() else {
            return;
        };
        if now < expires {
            return;
        }
        let count = if self.interval == 0 {
            self.expires = None;
            1
        } else {
            let (next, periods) = timer::forward(expires, now, self.interval);
            self.expires = Some(next);
            periods
        };
        self.ticks = self.ticks.saturating_add(count);
        self.fired = self.fired.wrapping_add(count);
    }
}

/// A timerfd.
pub struct TimerFd {
    /// The Linux clock id it was created with.
    clock_id: i64,
    state: Mutex<State>,
    queue: Arc<WaitQueue>,
}

impl TimerFd {
    /// A disarmed timer on Linux clock `clock_id`, counting on `clock`.
    pub fn new(clock_id: i64, clock: Clock) -> TimerFd {
        TimerFd {
            clock_id,
            state: Mutex::new(State {
                clock,
                expires: None,
                interval: 0,
                ticks: 0,
                fired: 0,
            }),
            queue: WaitQueue::new(),
        }
    }

    /// The Linux clock id.
    pub fn clock_id(&self) -> i64 {
        self.clock_id
    }

    /// Readiness: readable once it has expired; the wait ends at the next expiry.
    pub fn poll(&self, set: &mut WaitSet) -> Ready {
        let mut state = lock(&self.state);
        set.subscribe(&self.queue);
        state.update();
        if state.ticks == 0
            && let (Some(expires), Some(now)) = (state.expires, state.clock.now())
        {
            let mut nap = Duration::from_nanos(expires.saturating_sub(now));
            if matches!(state.clock, Clock::Calendar(_)) {
                nap = nap.min(CALENDAR_RECHECK);
            }
            if let Some(at) = Instant::now().checked_add(nap) {
                set.wake_at(at);
            }
        }
        Ready {
            events: if state.ticks > 0 {
                ev::POLLIN | ev::POLLRDNORM
            } else {
                0
            },
            token: state.fired,
        }
    }

    /// The current setting (`timerfd_gettime`).
    pub fn get(&self) -> TimerSetting {
        let mut state = lock(&self.state);
        state.update();
        current(&state)
    }

    /// Arms (or with a zero `value`, disarms) the timer: the next expiry at `expires` on
    /// `clock` (already converted from a relative time by the caller), then every `interval`.
    /// Unread expirations are dropped. Returns the old setting.
    pub fn set(&self, clock: Clock, expires: Option<u64>, interval: u64) -> TimerSetting {
        let mut state = lock(&self.state);
        state.update();
        let old = current(&state);
        state.clock = clock;
        state.expires = expires;
        state.interval = interval;
        state.ticks = 0;
        self.queue.wake_all();
        old
    }

    /// An 8-byte `read(2)`: the expirations since the last read; blocks until there is one
    /// unless `nonblock` (`EAGAIN`).
    pub fn read(&self, nonblock: bool, mut wait: impl FnMut() -> SysResult<()>) -> SysResult<u64> {
        loop {
            {
                let mut state = lock(&self.state);
                state.update();
                if state.ticks > 0 {
                    return Ok(std::mem::take(&mut state.ticks));
                }
            }
            if nonblock {
                return Err(crate::kernel::abi::errno::Errno::EAGAIN);
            }
            wait()?;
        }
    }

    /// What the fork hand-over sends: clock kind and host id, expiry, period, unread ticks.
    pub fn snapshot(&self) -> [u64; 5] {
        let mut state = lock(&self.state);
        state.update();
        let (kind, id) = match state.clock {
            Clock::Calendar(id) => (1, id),
            Clock::Steady(id) => (0, id),
            _ => (0, 0),
        };
        [
            kind | (((id as u64) & 0xffff_ffff) << 1),
            state.expires.map_or(u64::MAX, |e| e),
            state.interval,
            state.ticks,
            state.fired,
        ]
    }

    /// A timer rebuilt from a hand-over [`snapshot`](TimerFd::snapshot).
    pub fn restore(clock_id: i64, words: [u64; 5]) -> TimerFd {
        let id = (words[0] >> 1) as u32 as libc::clockid_t;
        let clock = if words[0] & 1 != 0 {
            Clock::Calendar(id)
        } else {
            Clock::Steady(id)
        };
        TimerFd {
            clock_id,
            state: Mutex::new(State {
                clock,
                expires: (words[1] != u64::MAX).then_some(words[1]),
                interval: words[2],
                ticks: words[3],
                fired: words[4],
            }),
            queue: WaitQueue::new(),
        }
    }
}

fn current(state: &State) -> TimerSetting {
    let value = match (state.expires, state.clock.now()) {
        // An armed timer shows at least 1 ns left, as Linux does for one about to fire.
        (Some(expires), Some(now)) => expires.saturating_sub(now).max(1),
        _ => 0,
    };
    TimerSetting {
        value,
        interval: state.interval,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_reads_count_every_period() {
        let clock = timer::monotonic();
        let t = TimerFd::new(1, clock);
        let now = clock.now().unwrap();
        t.set(clock, Some(now.saturating_sub(95_000_000)), 10_000_000);
        let ticks = t.read(true, || panic!("would block")).unwrap();
        assert!((9..=11).contains(&ticks), "{ticks}");
        assert_eq!(t.get().interval, 10_000_000);
    }
}
