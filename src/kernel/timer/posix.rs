//! One POSIX per-process timer (`timer_create(2)`): its notification, its Linux states, the
//! overrun count, and the `siginfo` of its signal.

use super::Setting;
use super::clock::{Clock, KTIME_MAX, forward};
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::signal::code;
use crate::kernel::signal::SigInfo;

/// Where a POSIX timer's expiry goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// `SIGEV_NONE`: nowhere; the timer only counts down.
    Nothing,
    /// `SIGEV_SIGNAL` (and `SIGEV_THREAD` as the kernel sees it): signal `signo` with
    /// `si_value` `value` to the process.
    Process { signo: u32, value: u64 },
    /// `SIGEV_THREAD_ID`: the same to thread `tid` only.
    Thread { tid: i32, signo: u32, value: u64 },
}

/// Linux's `POSIX_TIMER_*` states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Status {
    Disarmed,
    Armed,
    /// A periodic timer fired; it re-arms when its signal is taken.
    RequeuePending,
}

/// One POSIX timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PosixTimer {
    /// The clock for absolute arming.
    clock: Clock,
    /// The clock for relative arming (`CLOCK_MONOTONIC` for `CLOCK_REALTIME`).
    relative_clock: Clock,
    /// The clock the current arming counts on.
    pub(super) base: Clock,
    pub(super) notify: Notify,
    pub(super) status: Status,
    /// The next expiry on `base`; kept when disarmed, as Linux keeps it.
    pub(super) expires: u64,
    pub(super) interval: u64,
    /// Periods skipped since the signal was queued, minus one (Linux's `it_overrun`).
    overrun: i64,
    /// The overrun of the last signal taken (`timer_getoverrun`).
    overrun_last: i64,
    /// Changes at every arming and re-arming; a queued signal that carries another is stale.
    pub(super) signal_seq: u32,
}

impl PosixTimer {
    pub(super) fn new(clock: Clock, relative_clock: Clock, notify: Notify) -> PosixTimer {
        PosixTimer {
            clock,
            relative_clock,
            base: clock,
            notify,
            status: Status::Disarmed,
            expires: 0,
            interval: 0,
            overrun: -1,
            overrun_last: 0,
            signal_seq: 1,
        }
    }

    fn is_sigev_none(&self) -> bool {
        self.notify == Notify::Nothing
    }

    /// `timer_gettime` at `now` on `base` (`None`: the clock is gone). A periodic timer
    /// waiting for its signal to be taken, or counting down without one, is moved forward
    /// first; a timer whose signal is still to come reads at least a nanosecond.
    pub(super) fn reading(&mut self, now: Option<u64>) -> Setting {
        let mut out = Setting {
            value: 0,
            interval: self.interval,
        };
        let sigev_none = self.is_sigev_none();
        if self.interval == 0 && self.status == Status::Disarmed && !sigev_none {
            return out;
        }
        let Some(now) = now else {
            return out;
        };
        if self.interval != 0 && (self.status == Status::RequeuePending || sigev_none) {
            let (expires, periods) = forward(self.expires, now, self.interval);
            self.expires = expires;
            self.overrun = self.overrun.saturating_add(periods as i64);
        }
        if self.expires > now {
            out.value = self.expires - now;
        } else if !sigev_none {
            out.value = 1;
        }
        out
    }

    /// `timer_settime` at `now` on the clock the arming uses (read by `now_on`).
    pub(super) fn arm(
        &mut self,
        new: Setting,
        absolute: bool,
        now_on: impl FnOnce(Clock) -> Option<u64>,
    ) -> SysResult<()> {
        self.status = Status::Disarmed;
        self.signal_seq = next_seq(self.signal_seq);
        self.overrun_last = 0;
        self.overrun = -1;
        self.interval = if new.value == 0 { 0 } else { new.interval };
        if new.value == 0 {
            return Ok(());
        }
        self.base = if absolute {
            self.clock
        } else {
            self.relative_clock
        };
        self.expires = if absolute {
            new.value
        } else {
            let now = now_on(self.base).ok_or(Errno::ESRCH)?;
            now.saturating_add(new.value).min(KTIME_MAX)
        };
        if !self.is_sigev_none() {
            self.status = Status::Armed;
        }
        Ok(())
    }

    /// The signal was taken at `now`: a periodic timer re-arms, and the periods it skipped
    /// become the overrun of this signal (returned) and of `timer_getoverrun`.
    pub(super) fn signal_taken(&mut self, now: Option<u64>) -> Option<i32> {
        if self.interval == 0 || self.status != Status::RequeuePending {
            return None;
        }
        let (expires, periods) = forward(self.expires, now?, self.interval);
        self.expires = expires;
        self.overrun = self.overrun.saturating_add(periods as i64);
        self.status = Status::Armed;
        self.overrun_last = self.overrun;
        self.overrun = -1;
        self.signal_seq = next_seq(self.signal_seq);
        Some(self.overrun_to_int())
    }

    /// `timer_getoverrun`: the last overrun, at most `INT_MAX`.
    pub(super) fn overrun_to_int(&self) -> i32 {
        self.overrun_last.clamp(0, i64::from(i32::MAX)) as i32
    }
}

/// The next signal sequence number: never 0, which marks signals no timer queued.
pub(super) fn next_seq(seq: u32) -> u32 {
    seq.wrapping_add(1).max(1)
}

/// The `siginfo` of a POSIX timer's signal: `si_tid` and `si_overrun` at offset 16, `si_value`
/// at 24, and the sequence number in `si_sys_private` (offset 32), which is cleared before the
/// guest sees it.
pub(super) fn timer_siginfo(signo: u32, id: i32, value: u64, seq: u32) -> SigInfo {
    SigInfo {
        signo,
        code: code::SI_TIMER,
        errno: 0,
        fields: [u64::from(id as u32), value, u64::from(seq), 0],
    }
}

/// Whether `info` is the signal timer `id` queued.
pub(super) fn is_signal_of(info: &SigInfo, id: i32) -> bool {
    info.code == code::SI_TIMER && info.fields[0] as u32 as i32 == id && info.fields[2] != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::timer::NSEC_PER_SEC;

    const MS: u64 = 1_000_000;

    fn signal_timer() -> PosixTimer {
        let clock = Clock::Steady(libc::CLOCK_MONOTONIC);
        let notify = Notify::Process {
            signo: 34,
            value: 0,
        };
        PosixTimer::new(clock, clock, notify)
    }

    #[test]
    fn a_periodic_timer_counts_overruns_until_its_signal_is_taken() {
        let mut timer = signal_timer();
        let every10 = Setting {
            value: 10 * MS,
            interval: 10 * MS,
        };
        timer.arm(every10, false, |_| Some(0)).unwrap();
        assert_eq!(timer.status, Status::Armed);
        assert_eq!(timer.reading(Some(4 * MS)).value, 6 * MS);
        // It fires at 10 ms and waits for the signal to be taken.
        timer.status = Status::RequeuePending;
        let seq = timer.signal_seq;
        // Read at 55 ms: moved forward to 60 ms (5 periods, overrun -1 + 5 so far).
        assert_eq!(timer.reading(Some(55 * MS)).value, 5 * MS);
        assert_eq!(timer.overrun_to_int(), 0);
        // Taken at 75 ms: two more periods; si_overrun 6.
        assert_eq!(timer.signal_taken(Some(75 * MS)), Some(6));
        assert_eq!(timer.overrun_to_int(), 6);
        assert_eq!(timer.expires, 80 * MS);
        assert_eq!(timer.status, Status::Armed);
        assert_ne!(timer.signal_seq, seq);
        // Re-arming resets the overrun and makes queued signals stale.
        let seq = timer.signal_seq;
        timer.arm(Setting::default(), false, |_| Some(0)).unwrap();
        assert_eq!(timer.overrun_to_int(), 0);
        assert_ne!(timer.signal_seq, seq);
        assert_eq!(timer.reading(Some(90 * MS)), Setting::default());
    }

    #[test]
    fn a_fired_one_shot_timer_reads_zero_and_a_pending_one_a_nanosecond() {
        let mut timer = signal_timer();
        let once = Setting {
            value: 100 * MS,
            interval: 0,
        };
        timer.arm(once, true, |_| unreachable!("absolute")).unwrap();
        assert_eq!(timer.expires, 100 * MS);
        // Due, not fired yet.
        assert_eq!(timer.reading(Some(120 * MS)).value, 1);
        timer.status = Status::Disarmed;
        assert_eq!(timer.reading(Some(120 * MS)), Setting::default());
        assert_eq!(timer.signal_taken(Some(130 * MS)), None);
    }

    #[test]
    fn a_sigev_none_timer_counts_down_without_firing() {
        let clock = Clock::Steady(libc::CLOCK_MONOTONIC);
        let mut timer = PosixTimer::new(clock, clock, Notify::Nothing);
        assert_eq!(timer.reading(Some(5)), Setting::default());
        let ten = Setting {
            value: 10 * NSEC_PER_SEC,
            interval: 0,
        };
        timer.arm(ten, false, |_| Some(0)).unwrap();
        assert_eq!(timer.status, Status::Disarmed);
        assert_eq!(timer.reading(Some(NSEC_PER_SEC)).value, 9 * NSEC_PER_SEC);
        // Expired: zero, not a nanosecond.
        assert_eq!(timer.reading(Some(11 * NSEC_PER_SEC)).value, 0);
        // Disarming keeps the old expiry, which Linux still reports.
        timer.arm(ten, false, |_| Some(0)).unwrap();
        timer.arm(Setting::default(), false, |_| Some(0)).unwrap();
        assert_eq!(timer.reading(Some(NSEC_PER_SEC)).value, 9 * NSEC_PER_SEC);
        // Periodic: moved forward on reading.
        let periodic = Setting {
            value: 10 * MS,
            interval: 10 * MS,
        };
        timer.arm(periodic, false, |_| Some(0)).unwrap();
        assert_eq!(timer.reading(Some(35 * MS)).value, 5 * MS);
    }

    #[test]
    fn timer_signals_carry_id_value_and_a_nonzero_sequence() {
        let info = timer_siginfo(34, 7, 99, 3);
        let bytes = info.to_bytes();
        assert_eq!(i32::from_le_bytes(bytes[8..12].try_into().unwrap()), -2);
        assert_eq!(i32::from_le_bytes(bytes[16..20].try_into().unwrap()), 7);
        assert_eq!(i32::from_le_bytes(bytes[20..24].try_into().unwrap()), 0);
        assert_eq!(u64::from_le_bytes(bytes[24..32].try_into().unwrap()), 99);
        assert!(is_signal_of(&info, 7));
        assert!(!is_signal_of(&info, 8));
        assert_eq!(next_seq(u32::MAX), 1);
    }
}
