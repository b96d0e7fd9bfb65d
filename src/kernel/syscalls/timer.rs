//! Interval timers and POSIX timers: `getitimer(2)`, `setitimer(2)`, `timer_create(2)`,
//! `timer_settime(2)`, `timer_gettime(2)`, `timer_getoverrun(2)` and `timer_delete(2)`.
//!
//! arm64 has no `alarm` syscall: glibc builds `alarm(2)` on `setitimer(ITIMER_REAL)`.
//! The timers themselves live in [`crate::kernel::timer`].

use super::Ctx;
use crate::kernel::abi::clock::TIMER_ABSTIME;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::rlimit::RLIMIT_SIGPENDING;
use crate::kernel::abi::signal::{NSIG, SIGALRM};
use crate::kernel::abi::structs::{Itimerspec, Itimerval, Sigevent, Timespec, Timeval};
use crate::kernel::abi::timer::*;
use crate::kernel::process::lock;
use crate::kernel::timer::{self, ClockName, Itimer, Notify, Setting};

/// The `which` argument of `getitimer`/`setitimer`.
fn itimer(which: u64) -> SysResult<Itimer> {
    match which as u32 as i32 {
        ITIMER_REAL => Ok(Itimer::Real),
        ITIMER_VIRTUAL => Ok(Itimer::Virtual),
        ITIMER_PROF => Ok(Itimer::Prof),
        _ => Err(Errno::EINVAL),
    }
}

fn timeval(ns: u64) -> Timeval {
    let (tv_sec, tv_usec) = timer::timeval_from_ns(ns);
    Timeval { tv_sec, tv_usec }
}

fn timespec(ns: u64) -> Timespec {
    let (tv_sec, tv_nsec) = timer::timespec_from_ns(ns);
    Timespec { tv_sec, tv_nsec }
}

/// `getitimer(2)`.
pub fn sys_getitimer(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let which = itimer(a[0])?;
    let current = ctx.process().timers.get_itimer(which);
    let out = Itimerval {
        it_interval: timeval(current.interval),
        it_value: timeval(current.value),
    };
    ctx.mem().write_val(a[1], &out)?;
    Ok(0)
}

/// `setitimer(2)`: a null new value disarms the timer (a misfeature Linux keeps).
pub fn sys_setitimer(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let new = if a[1] != 0 {
        let raw: Itimerval = ctx.mem().read_val(a[1])?;
        let ns = |tv: Timeval| timer::ns_from_timeval(tv.tv_sec, tv.tv_usec).ok_or(Errno::EINVAL);
        Setting {
            value: ns(raw.it_value)?,
            interval: ns(raw.it_interval)?,
        }
    } else {
        Setting::default()
    };
    let which = itimer(a[0])?;
    let process = ctx.process().clone();
    let old = process.timers.set_itimer(&process, which, new);
    if a[2] != 0 {
        let out = Itimerval {
            it_interval: timeval(old.interval),
            it_value: timeval(old.value),
        };
        ctx.mem().write_val(a[2], &out)?;
    }
    Ok(0)
}

/// Where a `struct sigevent` sends expiries; `None` for one Linux refuses (`EINVAL`).
fn notification(ctx: &Ctx<'_>, event: &Sigevent) -> Option<Notify> {
    let signo = u32::try_from(event.sigev_signo)
        .ok()
        .filter(|s| (1..=NSIG).contains(s));
    let value = event.sigev_value;
    match event.sigev_notify {
        SIGEV_NONE => Some(Notify::Nothing),
        SIGEV_SIGNAL | SIGEV_THREAD => Some(Notify::Process {
            signo: signo?,
            value,
        }),
        SIGEV_THREAD_ID => {
            let tid = event.sigev_notify_thread_id;
            ctx.process().thread(tid)?;
            Some(Notify::Thread {
                tid,
                signo: signo?,
                value,
            })
        }
        _ => None,
    }
}

/// `timer_create(2)`. The checks come in Linux's order: the event is read, the clock checked,
/// an id taken, the event checked and the id written; only then can the clock refuse.
pub fn sys_timer_create(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let event: Option<Sigevent> = match a[1] {
        0 => None,
        addr => Some(ctx.mem().read_val(addr)?),
    };
    let name = timer::name_clock(a[0]).ok_or(Errno::EINVAL)?;
    if name == ClockName::Untimed {
        return Err(Errno::EOPNOTSUPP);
    }
    let process = ctx.process().clone();
    let limit = lock(&process.limits)[RLIMIT_SIGPENDING as usize].cur;
    if process.timers.count() as u64 >= limit {
        return Err(Errno::EAGAIN);
    }

    let id = process.timers.reserve_id();
    let notify = match &event {
        Some(event) => notification(ctx, event).ok_or(Errno::EINVAL)?,
        None => Notify::Process {
            signo: SIGALRM,
            value: u64::from(id as u32),
        },
    };
    ctx.mem().write_val(a[2], &id)?;

    let (clock, relative_clock) = match name {
        ClockName::Wall(linux) => (
            timer::wall_clock(linux, false)?,
            timer::wall_clock(linux, true)?,
        ),
        ClockName::Alarm => return Err(Errno::EPERM),
        ClockName::Cpu { id, thread, which } => {
            let clock = timer::cpu_clock(&process, ctx.task.tid, id, thread, which)?;
            (clock, clock)
        }
        ClockName::Untimed => return Err(Errno::EOPNOTSUPP),
    };
    process.timers.create(id, clock, relative_clock, notify);
    Ok(0)
}

/// The timer id argument (a `timer_t`, an `int` in the kernel).
fn timer_id(arg: u64) -> i32 {
    arg as u32 as i32
}

fn setting_out(setting: Setting) -> Itimerspec {
    Itimerspec {
        it_interval: timespec(setting.interval),
        it_value: timespec(setting.value),
    }
}

/// `timer_settime(2)`: flags other than `TIMER_ABSTIME` are ignored. The new setting takes
/// effect even when the old one cannot be written back.
pub fn sys_timer_settime(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[2] == 0 {
        return Err(Errno::EINVAL);
    }
    let raw: Itimerspec = ctx.mem().read_val(a[2])?;
    let ns = |ts: Timespec| timer::ns_from_timespec(ts.tv_sec, ts.tv_nsec).ok_or(Errno::EINVAL);
    let new = Setting {
        value: ns(raw.it_value)?,
        interval: ns(raw.it_interval)?,
    };
    let absolute = a[1] as u32 as u64 & TIMER_ABSTIME != 0;
    let process = ctx.process().clone();
    let old = process
        .timers
        .settime(&process, timer_id(a[0]), new, absolute)?;
    if a[3] != 0 {
        ctx.mem().write_val(a[3], &setting_out(old))?;
    }
    Ok(0)
}

/// `timer_gettime(2)`.
pub fn sys_timer_gettime(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let current = ctx.process().timers.gettime(timer_id(a[0]))?;
    ctx.mem().write_val(a[1], &setting_out(current))?;
    Ok(0)
}

/// `timer_getoverrun(2)`.
pub fn sys_timer_getoverrun(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let overrun = ctx.process().timers.getoverrun(timer_id(a[0]))?;
    Ok(overrun as u64)
}

/// `timer_delete(2)`.
pub fn sys_timer_delete(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    ctx.process().timers.delete(timer_id(a[0]))?;
    Ok(0)
}
