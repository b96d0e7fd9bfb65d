//! Clocks as timers and sleeps see them: decoding Linux clock ids, reading the host clock
//! behind each, and the time arithmetic Linux does on them (`timespec` and `timeval`
//! conversions, moving a periodic expiry forward).

use tracing::debug;

use crate::host;
use crate::kernel::abi::clock as lc;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::timer::{CPUCLOCK_PROF, CPUCLOCK_SCHED, CPUCLOCK_VIRT};
use crate::kernel::process::Process;

/// Nanoseconds per second.
pub const NSEC_PER_SEC: u64 = 1_000_000_000;
/// One tick of Linux's clock on arm64 (`CONFIG_HZ=250`): CPU timers are checked this often,
/// and CPU interval timers run one tick longer than asked.
pub const TICK_NSEC: u64 = 4_000_000;
/// Linux's `KTIME_MAX`: times saturate here.
pub const KTIME_MAX: u64 = i64::MAX as u64;
/// How long a wait trusts a reading of a clock the host may set.
const CALENDAR_RECHECK: u64 = NSEC_PER_SEC;

/// A clock timers and sleeps count on, as the host reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// A host clock that advances with real time and is never set (monotonic, boot time).
    Steady(libc::clockid_t),
    /// A host clock of calendar time, which the host may set (real time, TAI).
    Calendar(libc::clockid_t),
    /// CPU time read through a host clock id (a process's or a thread's scheduler time).
    Cpu(libc::clockid_t),
    /// This process's user time (`ITIMER_VIRTUAL`).
    ProcessUser,
    /// This process's user and system time (`ITIMER_PROF`).
    ProcessUserSystem,
}

impl Clock {
    /// The current reading in nanoseconds, or `None` once the clock is gone (its thread or
    /// process ended).
    pub fn now(self) -> Option<u64> {
        let micros = |us: i64| u64::try_from(us).unwrap_or(0).saturating_mul(1000);
        match self {
            Clock::Steady(id) | Clock::Calendar(id) | Clock::Cpu(id) => {
                let (sec, nsec) = host::clock_gettime(id).ok()?;
                Some(ns_from_timespec(sec.max(0), nsec).unwrap_or(0))
            }
            Clock::ProcessUser => Some(micros(host::rusage(false).user_us)),
            Clock::ProcessUserSystem => {
                let usage = host::rusage(false);
                Some(micros(usage.user_us.saturating_add(usage.system_us)))
            }
        }
    }

    /// Whether the clock counts CPU time (it is sampled at ticks rather than waited for).
    pub fn is_cpu(self) -> bool {
        matches!(
            self,
            Clock::Cpu(_) | Clock::ProcessUser | Clock::ProcessUserSystem
        )
    }

    /// How long to wait before reading the clock again, with `left` nanoseconds to go.
    pub(super) fn nap(self, left: u64) -> u64 {
        match self {
            Clock::Steady(_) => left,
            Clock::Calendar(_) => left.min(CALENDAR_RECHECK),
            _ => TICK_NSEC,
        }
    }
}

/// `CLOCK_MONOTONIC`, which `ITIMER_REAL`, `nanosleep` and relative real-time timers use.
pub fn monotonic() -> Clock {
    let id = host::clock_to_host(lc::CLOCK_MONOTONIC).unwrap_or(libc::CLOCK_MONOTONIC);
    Clock::Steady(id)
}

/// What a Linux clock id names, for timers and sleeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockName {
    /// `CLOCK_REALTIME`, `CLOCK_MONOTONIC`, `CLOCK_BOOTTIME` or `CLOCK_TAI`.
    Wall(i64),
    /// `CLOCK_REALTIME_ALARM` or `CLOCK_BOOTTIME_ALARM`, which need `CAP_WAKE_ALARM`.
    Alarm,
    /// A clock without timers or sleeps: `CLOCK_MONOTONIC_RAW`, the coarse clocks, and the
    /// clocks of devices (`CLOCKFD`).
    Untimed,
    /// The CPU clock of process or thread `id` (0: the caller's), counting CPU time of kind
    /// `which` (`CPUCLOCK_*`, or 3, which no clock has).
    Cpu { id: i32, thread: bool, which: u32 },
}

/// Decodes a clock id argument (an `int`); `None` for ids Linux does not know (`EINVAL`).
pub fn name_clock(arg: u64) -> Option<ClockName> {
    let id = arg as u32 as i32;
    if id < 0 {
        // CPU clocks: ~pid << 3 | per-thread bit | kind; kind 3 without the thread bit is a
        // device clock (CLOCKFD).
        if id & 7 == 3 {
            return Some(ClockName::Untimed);
        }
        return Some(ClockName::Cpu {
            id: !(id >> 3),
            thread: id & 4 != 0,
            which: (id & 3) as u32,
        });
    }
    let own_cpu = |thread| ClockName::Cpu {
        id: 0,
        thread,
        which: CPUCLOCK_SCHED,
    };
    Some(match i64::from(id) {
        lc::CLOCK_REALTIME | lc::CLOCK_MONOTONIC | lc::CLOCK_BOOTTIME | lc::CLOCK_TAI => {
            ClockName::Wall(i64::from(id))
        }
        lc::CLOCK_PROCESS_CPUTIME_ID => own_cpu(false),
        lc::CLOCK_THREAD_CPUTIME_ID => own_cpu(true),
        lc::CLOCK_MONOTONIC_RAW | lc::CLOCK_REALTIME_COARSE | lc::CLOCK_MONOTONIC_COARSE => {
            ClockName::Untimed
        }
        lc::CLOCK_REALTIME_ALARM | lc::CLOCK_BOOTTIME_ALARM => ClockName::Alarm,
        _ => return None,
    })
}

/// The clock behind wall clock `linux` (a [`ClockName::Wall`] id); `relative` arming of
/// `CLOCK_REALTIME` counts on `CLOCK_MONOTONIC`, so setting the clock does not move it.
pub fn wall_clock(linux: i64, relative: bool) -> SysResult<Clock> {
    if linux == lc::CLOCK_REALTIME && relative {
        return Ok(monotonic());
    }
    let host = host::clock_to_host(linux).ok_or(Errno::EINVAL)?;
    Ok(match linux {
        lc::CLOCK_REALTIME | lc::CLOCK_TAI => Clock::Calendar(host),
        _ => Clock::Steady(host),
    })
}

/// The clock behind CPU clock `id`/`thread`/`which` (a [`ClockName::Cpu`]) for a caller that
/// is thread `caller` of `process`. `EINVAL` for a clock of no process, of a thread outside
/// this process, or of an unknown kind; `ENOSYS` where the host cannot read it.
pub fn cpu_clock(
    process: &Process,
    caller: i32,
    id: i32,
    thread: bool,
    which: u32,
) -> SysResult<Clock> {
    if which > CPUCLOCK_SCHED {
        return Err(Errno::EINVAL);
    }
    let host_id = if thread {
        let tid = if id == 0 { caller } else { id };
        if process.thread(tid).is_none() {
            return Err(Errno::EINVAL);
        }
        // The caller's own host thread id is the one to read even where it differs from the
        // guest's (after an exec from another thread).
        if tid == caller {
            host::threads::thread_id()
        } else {
            tid
        }
    } else {
        if id == 0 || id == process.pid {
            return Ok(match which {
                CPUCLOCK_PROF => Clock::ProcessUserSystem,
                CPUCLOCK_VIRT => Clock::ProcessUser,
                _ => Clock::Cpu(libc::CLOCK_PROCESS_CPUTIME_ID),
            });
        }
        id
    };
    let Some(clock) = host::cpu_clock(host_id, thread, which) else {
        debug!(
            id,
            thread, "no host clock for another process's or a thread's CPU time"
        );
        return Err(Errno::ENOSYS);
    };
    let clock = Clock::Cpu(clock);
    clock.now().ok_or(Errno::EINVAL)?;
    Ok(clock)
}

/// Nanoseconds in a valid `timespec` (`EINVAL` for a negative time or nanoseconds out of
/// range), saturating at [`KTIME_MAX`] as Linux's `timespec64_to_ktime` does.
pub fn ns_from_timespec(sec: i64, nsec: i64) -> Option<u64> {
    if sec < 0 || !(0..NSEC_PER_SEC as i64).contains(&nsec) {
        return None;
    }
    let ns = (sec as u64)
        .checked_mul(NSEC_PER_SEC)
        .and_then(|ns| ns.checked_add(nsec as u64))
        .unwrap_or(KTIME_MAX);
    Some(ns.min(KTIME_MAX))
}

/// Nanoseconds in a valid `timeval` (microseconds in `0..1_000_000`).
pub fn ns_from_timeval(sec: i64, usec: i64) -> Option<u64> {
    if !(0..1_000_000).contains(&usec) {
        return None;
    }
    ns_from_timespec(sec, usec * 1000)
}

/// A `timespec` (seconds, nanoseconds) from nanoseconds.
pub fn timespec_from_ns(ns: u64) -> (i64, i64) {
    ((ns / NSEC_PER_SEC) as i64, (ns % NSEC_PER_SEC) as i64)
}

/// A `timeval` (seconds, microseconds) from nanoseconds, truncating as Linux does.
pub fn timeval_from_ns(ns: u64) -> (i64, i64) {
    (
        (ns / NSEC_PER_SEC) as i64,
        (ns % NSEC_PER_SEC / 1000) as i64,
    )
}

/// Moves a periodic expiry past `now` by whole periods, as Linux's `hrtimer_forward` does:
/// the new expiry and the number of periods added (0 while `expires` is still ahead).
pub fn forward(expires: u64, now: u64, interval: u64) -> (u64, u64) {
    if now < expires || interval == 0 {
        return (expires, 0);
    }
    let periods = (now - expires) / interval + 1;
    let next = expires.saturating_add(periods.saturating_mul(interval));
    (next.min(KTIME_MAX), periods)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn forward_moves_past_now_by_whole_periods() {
        // Still ahead: nothing moves.
        assert_eq!(forward(100, 99, 10), (100, 0));
        // Exactly due: one period.
        assert_eq!(forward(100, 100, 10), (110, 1));
        assert_eq!(forward(100, 109, 10), (110, 1));
        assert_eq!(forward(100, 110, 10), (120, 2));
        // 10 ms timer first due at 10 ms, taken at 210 ms: 21 periods, overrun 20.
        assert_eq!(forward(10 * MS, 210 * MS, 10 * MS), (220 * MS, 21));
        // A one-shot timer never moves, and nothing overflows.
        assert_eq!(forward(5, 50, 0), (5, 0));
        assert_eq!(forward(1, KTIME_MAX, KTIME_MAX), (KTIME_MAX, 1));
    }

    #[test]
    fn timespecs_convert_like_linux() {
        assert_eq!(ns_from_timespec(1, 5), Some(NSEC_PER_SEC + 5));
        assert_eq!(ns_from_timespec(-1, 0), None);
        assert_eq!(ns_from_timespec(0, NSEC_PER_SEC as i64), None);
        assert_eq!(ns_from_timespec(0, -1), None);
        assert_eq!(ns_from_timespec(i64::MAX, 0), Some(KTIME_MAX));
        assert_eq!(ns_from_timeval(2, 999_999), Some(2_999_999_000));
        assert_eq!(ns_from_timeval(0, 1_000_000), None);
        assert_eq!(timespec_from_ns(1_500_000_000), (1, 500_000_000));
        // Microseconds truncate.
        assert_eq!(timeval_from_ns(4_999_999_999), (4, 999_999));
    }

    #[test]
    fn clock_ids_decode_like_linux() {
        assert_eq!(name_clock(1), Some(ClockName::Wall(1)));
        assert_eq!(name_clock(4), Some(ClockName::Untimed));
        assert_eq!(name_clock(8), Some(ClockName::Alarm));
        assert_eq!(name_clock(10), None);
        assert_eq!(name_clock(12), None);
        assert_eq!(name_clock(1234), None);
        let own_thread = ClockName::Cpu {
            id: 0,
            thread: true,
            which: CPUCLOCK_SCHED,
        };
        assert_eq!(name_clock(3), Some(own_thread));
        // glibc's clock_getcpuclockid(0) for the process, and the thread clock of tid 42.
        assert_eq!(
            name_clock((-6i32) as u32 as u64),
            Some(ClockName::Cpu {
                id: 0,
                thread: false,
                which: CPUCLOCK_SCHED,
            })
        );
        let tid42 = ((!42i32) << 3) | 4 | 1;
        assert_eq!(
            name_clock(tid42 as u32 as u64),
            Some(ClockName::Cpu {
                id: 42,
                thread: true,
                which: CPUCLOCK_VIRT,
            })
        );
        // CLOCKFD (a device clock), and kind 3 on a thread, which is just invalid later.
        assert_eq!(
            name_clock(((!3i32) << 3 | 3) as u32 as u64),
            Some(ClockName::Untimed)
        );
        assert!(matches!(
            name_clock(((!3i32) << 3 | 7) as u32 as u64),
            Some(ClockName::Cpu { which: 3, .. })
        ));
    }
}
