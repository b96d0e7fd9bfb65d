//! Event descriptors: `eventfd2(2)`, `timerfd_create(2)`, `timerfd_settime(2)` and
//! `timerfd_gettime(2)`. Reads, writes and polls of them go through
//! [`OpenFile`](crate::kernel::file::OpenFile) and [`crate::kernel::poll`].

use super::Ctx;
use crate::kernel::abi::clock as lc;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::open as lo;
use crate::kernel::abi::structs::{Itimerspec, Timespec};
use crate::kernel::file::OpenFile;
use crate::kernel::poll::timerfd::TimerSetting;
use crate::kernel::poll::{EventFd, EventObject, TimerFd};
use crate::kernel::process::lock;
use crate::kernel::timer;

/// `EFD_SEMAPHORE`.
const EFD_SEMAPHORE: u64 = 1;
/// The status flags eventfd and timerfd descriptors take from their creation flags.
const SHARED_FLAGS: u64 = lo::O_CLOEXEC | lo::O_NONBLOCK;
/// `TFD_TIMER_ABSTIME` and `TFD_TIMER_CANCEL_ON_SET`.
const TFD_TIMER_ABSTIME: u64 = 1;
const TFD_TIMER_CANCEL_ON_SET: u64 = 2;

/// `eventfd2(2)`.
pub fn sys_eventfd2(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let initial = a[0] as u32 as u64;
    let flags = a[1] as u32 as u64;
    if flags & !(SHARED_FLAGS | EFD_SEMAPHORE) != 0 {
        return Err(Errno::EINVAL);
    }
    let object = EventObject::EventFd(EventFd::new(initial, flags & EFD_SEMAPHORE != 0));
    let file = OpenFile::event(object, lo::O_RDWR | (flags & lo::O_NONBLOCK));
    ctx.install(file, flags & lo::O_CLOEXEC != 0)
}

/// `timerfd_create(2)`: `CLOCK_REALTIME`, `CLOCK_MONOTONIC`, `CLOCK_BOOTTIME` and their
/// `_ALARM` variants (which need `CAP_WAKE_ALARM`: root here).
pub fn sys_timerfd_create(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let clock_id = i64::from(a[0] as u32 as i32);
    let flags = a[1] as u32 as u64;
    let known = matches!(
        clock_id,
        lc::CLOCK_REALTIME
            | lc::CLOCK_MONOTONIC
            | lc::CLOCK_BOOTTIME
            | lc::CLOCK_REALTIME_ALARM
            | lc::CLOCK_BOOTTIME_ALARM
    );
    if flags & !SHARED_FLAGS != 0 || !known {
        return Err(Errno::EINVAL);
    }
    let alarm = matches!(
        clock_id,
        lc::CLOCK_REALTIME_ALARM | lc::CLOCK_BOOTTIME_ALARM
    );
    if alarm && lock(&ctx.process().creds).euid != 0 {
        return Err(Errno::EPERM);
    }
    let clock = timer::wall_clock(base_clock(clock_id), false)?;
    let object = EventObject::TimerFd(TimerFd::new(clock_id, clock));
    let file = OpenFile::event(object, lo::O_RDWR | (flags & lo::O_NONBLOCK));
    ctx.install(file, flags & lo::O_CLOEXEC != 0)
}

/// The clock an `_ALARM` clock counts on.
fn base_clock(clock_id: i64) -> i64 {
    match clock_id {
        lc::CLOCK_REALTIME_ALARM => lc::CLOCK_REALTIME,
        lc::CLOCK_BOOTTIME_ALARM => lc::CLOCK_BOOTTIME,
        other => other,
    }
}

/// The timerfd behind descriptor `fd`: `EBADF`, or `EINVAL` for another kind of file.
fn timerfd(ctx: &Ctx<'_>, fd: u64) -> SysResult<std::sync::Arc<OpenFile>> {
    let file = ctx.file(fd)?;
    match file.event_object() {
        Some(EventObject::TimerFd(_)) => Ok(file),
        _ => Err(Errno::EINVAL),
    }
}

fn timer_of(file: &OpenFile) -> &TimerFd {
    match file.event_object() {
        Some(EventObject::TimerFd(t)) => t,
        _ => unreachable!("checked by timerfd()"),
    }
}

fn itimerspec(setting: TimerSetting) -> Itimerspec {
    let ts = |ns: u64| {
        let (tv_sec, tv_nsec) = timer::timespec_from_ns(ns);
        Timespec { tv_sec, tv_nsec }
    };
    Itimerspec {
        it_interval: ts(setting.interval),
        it_value: ts(setting.value),
    }
}

/// `timerfd_settime(2)`.
pub fn sys_timerfd_settime(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let new: Itimerspec = ctx.mem().read_val(a[2])?;
    let flags = a[1] as u32 as u64;
    let ns = |ts: Timespec| timer::ns_from_timespec(ts.tv_sec, ts.tv_nsec);
    let (Some(value), Some(interval)) = (ns(new.it_value), ns(new.it_interval)) else {
        return Err(Errno::EINVAL);
    };
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let file = timerfd(ctx, a[0])?;
    let timer = timer_of(&file);
    let absolute = flags & TFD_TIMER_ABSTIME != 0;
    let clock = timer::wall_clock(base_clock(timer.clock_id()), !absolute)?;
    let expires = match value {
        0 => None,
        _ if absolute => Some(value),
        _ => Some(clock.now().ok_or(Errno::EINVAL)?.saturating_add(value)),
    };
    let old = timer.set(clock, expires, interval);
    if a[3] != 0 {
        ctx.mem().write_val(a[3], &itimerspec(old))?;
    }
    Ok(0)
}

/// `timerfd_gettime(2)`.
pub fn sys_timerfd_gettime(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = timerfd(ctx, a[0])?;
    let current = timer_of(&file).get();
    ctx.mem().write_val(a[1], &itimerspec(current))?;
    Ok(0)
}
