//! The interval timers of `setitimer(2)`: `ITIMER_REAL` on `CLOCK_MONOTONIC`, and
//! `ITIMER_VIRTUAL` and `ITIMER_PROF` on the process's CPU time, as pure state that the
//! timer thread and the syscalls drive with clock readings.

use super::Setting;
use super::clock::{KTIME_MAX, TICK_NSEC, forward};

/// Which interval timer (`ITIMER_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Itimer {
    /// Real time, `SIGALRM`.
    Real,
    /// User CPU time, `SIGVTALRM`.
    Virtual,
    /// User and system CPU time, `SIGPROF`.
    Prof,
}

/// `ITIMER_REAL`, on `CLOCK_MONOTONIC`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct RealItimer {
    /// Set while the timer waits to fire.
    pub(super) queued: bool,
    /// The expiry, kept after the timer fires: a period is added to it when it re-arms.
    pub(super) expires: u64,
    /// The period; 0 for a one-shot timer.
    interval: u64,
}

impl RealItimer {
    /// `setitimer`: the old reading, then the new setting from `now`.
    pub(super) fn set(&mut self, new: Setting, now: u64) -> Setting {
        let old = self.get(now);
        self.queued = false;
        if new.value == 0 {
            self.interval = 0;
            return old;
        }
        self.interval = new.interval;
        self.expires = now.saturating_add(new.value).min(KTIME_MAX);
        self.queued = true;
        old
    }

    /// `getitimer`: nothing left while not queued (fired, its signal not yet taken), and at
    /// least a microsecond while queued.
    pub(super) fn get(&self, now: u64) -> Setting {
        let value = match self.queued {
            false => 0,
            true if self.expires <= now => 1000,
            true => self.expires - now,
        };
        Setting {
            value,
            interval: self.interval,
        }
    }

    /// A `SIGALRM` was taken: a periodic timer that fired goes on.
    pub(super) fn rearm(&mut self, now: u64) {
        if !self.queued && self.interval != 0 {
            self.expires = forward(self.expires, now, self.interval).0;
            self.queued = true;
        }
    }
}

/// `ITIMER_VIRTUAL` or `ITIMER_PROF`: an absolute expiry on the process's CPU clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct CpuItimer {
    /// The CPU time at which it fires; 0 when disarmed.
    pub(super) expires: u64,
    /// The period; 0 for a one-shot timer.
    interval: u64,
}

impl CpuItimer {
    /// `setitimer` at CPU time `now` (sampled only if needed): the old reading. A new value
    /// gets one tick more, and the interval is kept even when the value disarms the timer.
    pub(super) fn set(&mut self, new: Setting, now: impl FnOnce() -> u64) -> Setting {
        let mut old = Setting {
            value: self.expires,
            interval: self.interval,
        };
        let mut expires = new.value;
        if old.value != 0 || expires != 0 {
            let now = now();
            if expires != 0 {
                expires = expires
                    .saturating_add(TICK_NSEC)
                    .saturating_add(now)
                    .min(KTIME_MAX);
            }
            if old.value != 0 {
                old.value = if old.value <= now {
                    TICK_NSEC
                } else {
                    old.value - now
                };
            }
        }
        self.expires = expires;
        self.interval = new.interval;
        old
    }

    /// `getitimer` at CPU time `now`: a tick if the expiry has passed but not fired yet.
    pub(super) fn get(&self, now: impl FnOnce() -> u64) -> Setting {
        let mut value = self.expires;
        if value != 0 {
            let now = now();
            value = if value < now { TICK_NSEC } else { value - now };
        }
        Setting {
            value,
            interval: self.interval,
        }
    }

    /// At a tick, CPU time `now`: whether the timer fires (and re-arms one period later).
    pub(super) fn expire(&mut self, now: u64) -> bool {
        if self.expires == 0 || now < self.expires {
            return false;
        }
        self.expires = match self.interval {
            0 => 0,
            interval => self.expires.saturating_add(interval).min(KTIME_MAX),
        };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::timer::NSEC_PER_SEC;

    const MS: u64 = 1_000_000;

    #[test]
    fn itimer_real_reads_zero_while_its_signal_is_pending() {
        let mut real = RealItimer::default();
        let period = Setting {
            value: 100 * MS,
            interval: 100 * MS,
        };
        assert_eq!(real.set(period, 1000 * MS), Setting::default());
        assert_eq!(real.get(1040 * MS).value, 60 * MS);
        // Due but not fired yet: a microsecond.
        assert_eq!(real.get(1100 * MS).value, 1000);
        // Fired: nothing left until the signal is taken, which re-arms it past now.
        real.queued = false;
        assert_eq!(real.get(1150 * MS), Setting { value: 0, ..period });
        real.rearm(1250 * MS);
        assert_eq!(real.get(1250 * MS).value, 50 * MS);
        // A value of zero disarms and clears the interval.
        let old = real.set(
            Setting {
                value: 0,
                interval: 7,
            },
            1260 * MS,
        );
        assert_eq!(old.value, 40 * MS);
        assert_eq!(real.get(1260 * MS), Setting::default());
        real.rearm(2000 * MS);
        assert!(!real.queued);
    }

    #[test]
    fn cpu_itimers_add_a_tick_and_keep_the_interval() {
        let mut virt = CpuItimer::default();
        let old = virt.set(
            Setting {
                value: 100 * MS,
                interval: 0,
            },
            || 50 * MS,
        );
        assert_eq!(old, Setting::default());
        assert_eq!(virt.expires, 154 * MS);
        assert_eq!(virt.get(|| 50 * MS).value, 104 * MS);
        // Due but not fired: one tick.
        assert_eq!(virt.get(|| 155 * MS).value, TICK_NSEC);
        assert!(virt.expire(154 * MS));
        assert_eq!(virt.get(|| 160 * MS), Setting::default());
        // A zero value keeps the interval, unlike ITIMER_REAL.
        virt.set(
            Setting {
                value: 0,
                interval: NSEC_PER_SEC,
            },
            || unreachable!("nothing to sample"),
        );
        assert_eq!(
            virt.get(|| 0),
            Setting {
                value: 0,
                interval: NSEC_PER_SEC,
            }
        );
        // A periodic one re-arms at expiry, a period after the old expiry.
        let mut prof = CpuItimer::default();
        prof.set(
            Setting {
                value: 10 * MS,
                interval: 10 * MS,
            },
            || 0,
        );
        assert!(!prof.expire(13 * MS));
        assert!(prof.expire(14 * MS));
        assert_eq!(prof.expires, 24 * MS);
        // The old value of an overdue timer is one tick.
        let old = prof.set(Setting::default(), || 30 * MS);
        assert_eq!(old.value, TICK_NSEC);
    }
}
