//! Clocks and sleeping: `clock_gettime(2)`, `clock_getres(2)`, `gettimeofday(2)`,
//! `nanosleep(2)`, `clock_nanosleep(2)` and `times(2)`.
//!
//! Sleeps wait on the calling thread's wake-ups with the run lock released, so other guest
//! threads run meanwhile and a signal for the thread ends the wait at once (the clocks and the
//! waiting are [`crate::kernel::timer`]'s).

use super::Ctx;
use crate::host;
use crate::kernel::abi::clock as lc;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::structs::{Timespec, Timeval, Timezone, Tms};
use crate::kernel::signal::restart;
use crate::kernel::task::Task;
use crate::kernel::timer::{self, Clock, ClockName, Woken};

/// Clock ticks per second (`AT_CLKTCK`, `sysconf(_SC_CLK_TCK)`).
pub const CLK_TCK: i64 = 100;

/// The host clock for a guest clock id, including the CPU-time clocks glibc encodes for the
/// calling process and thread (`clock_getcpuclockid`).
fn host_clock(ctx: &Ctx<'_>, id: u64) -> SysResult<libc::clockid_t> {
    let id = id as u32 as i32 as i64;
    if id >= 0 {
        return host::clock_to_host(id).ok_or(Errno::EINVAL);
    }
    // CPU clocks: ~pid << 3 | per-thread(4) | type (2 = scheduler time).
    let pid = !(id >> 3) as i32;
    let per_thread = id & 4 != 0;
    if id & 3 == 3 {
        return Err(Errno::EINVAL);
    }
    let own = if per_thread {
        pid == ctx.task.tid || pid == 0
    } else {
        pid == ctx.process().pid || pid == 0
    };
    if !own {
        return Err(Errno::EINVAL);
    }
    let linux = if per_thread {
        lc::CLOCK_THREAD_CPUTIME_ID
    } else {
        lc::CLOCK_PROCESS_CPUTIME_ID
    };
    host::clock_to_host(linux).ok_or(Errno::EINVAL)
}

fn read_timespec(ctx: &Ctx<'_>, addr: u64) -> SysResult<Timespec> {
    let ts: Timespec = ctx.mem().read_val(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(ts)
}

/// `clock_gettime(2)`.
pub fn sys_clock_gettime(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let clock = host_clock(ctx, a[0])?;
    let (sec, nsec) = host::clock_gettime(clock).map_err(Errno::from)?;
    ctx.mem().write_val(
        a[1],
        &Timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        },
    )?;
    Ok(0)
}

/// `clock_settime(2)`: only `CLOCK_REALTIME` is settable on Linux, and only with
/// `CAP_SYS_TIME`. elfuse never sets the host's clock for a guest, which a privileged guest
/// learns as `EPERM`.
pub fn sys_clock_settime(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    host_clock(ctx, a[0])?;
    read_timespec(ctx, a[1])?;
    match a[0] as u32 as i32 as i64 {
        lc::CLOCK_REALTIME => Err(Errno::EPERM),
        _ => Err(Errno::EINVAL),
    }
}

/// `settimeofday(2)`: see [`sys_clock_settime`].
pub fn sys_settimeofday(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[0] != 0 {
        let tv: Timeval = ctx.mem().read_val(a[0])?;
        if tv.tv_sec < 0 || !(0..1_000_000).contains(&tv.tv_usec) {
            return Err(Errno::EINVAL);
        }
    }
    if a[1] != 0 {
        ctx.mem().read_val::<Timezone>(a[1])?;
    }
    Err(Errno::EPERM)
}

/// `clock_getres(2)`: a null pointer only validates the clock.
pub fn sys_clock_getres(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let clock = host_clock(ctx, a[0])?;
    let (sec, nsec) = host::clock_getres(clock).map_err(Errno::from)?;
    if a[1] != 0 {
        ctx.mem().write_val(
            a[1],
            &Timespec {
                tv_sec: sec,
                tv_nsec: nsec,
            },
        )?;
    }
    Ok(0)
}

/// `gettimeofday(2)`.
pub fn sys_gettimeofday(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[0] != 0 {
        let (sec, nsec) = host::clock_gettime(libc::CLOCK_REALTIME).map_err(Errno::from)?;
        ctx.mem().write_val(
            a[0],
            &Timeval {
                tv_sec: sec,
                tv_usec: nsec / 1000,
            },
        )?;
    }
    if a[1] != 0 {
        ctx.mem().write_val(a[1], &Timezone::default())?;
    }
    Ok(0)
}

/// `nanosleep(2)`: a relative sleep on `CLOCK_MONOTONIC`, interrupted by signals (see
/// [`sleep_for`]).
pub fn sys_nanosleep(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let ns = read_sleep(ctx, a[0])?;
    sleep_for(ctx, timer::monotonic(), ns, a[1])
}

/// `clock_nanosleep(2)`: a relative or (`TIMER_ABSTIME`) absolute sleep on `clock`. The checks
/// come in Linux's order: the clock id (`EINVAL` if unknown, `EOPNOTSUPP` for a clock without
/// sleeps), the request (`EFAULT`, `EINVAL`), then what the clock allows (`EPERM` for the alarm
/// clocks, `EINVAL` for the caller's own thread CPU clock). Other flag bits are ignored.
pub fn sys_clock_nanosleep(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let name = timer::name_clock(a[0]).ok_or(Errno::EINVAL)?;
    // CLOCK_THREAD_CPUTIME_ID has no sleep at all; the same clock encoded as a CPU clock id
    // (below) has one that refuses the caller's own thread.
    if name == ClockName::Untimed || a[0] as u32 as i32 as i64 == lc::CLOCK_THREAD_CPUTIME_ID {
        return Err(Errno::EOPNOTSUPP);
    }
    let ns = read_sleep(ctx, a[2])?;
    let absolute = a[1] as u32 as u64 & lc::TIMER_ABSTIME != 0;

    let clock = match name {
        ClockName::Wall(linux) => timer::wall_clock(linux, !absolute)?,
        ClockName::Alarm => return Err(Errno::EPERM),
        ClockName::Cpu { id, thread, which } => {
            if thread && (id == 0 || id == ctx.task.tid) {
                return Err(Errno::EINVAL);
            }
            let process = ctx.process().clone();
            timer::cpu_clock(&process, ctx.task.tid, id, thread, which)?
        }
        ClockName::Untimed => return Err(Errno::EOPNOTSUPP),
    };
    if absolute {
        return match timer::sleep_until(&ctx.task.shared, clock, ns) {
            Woken::Elapsed => Ok(0),
            Woken::Interrupted { .. } => Err(restart::ERESTARTNOHAND),
        };
    }
    sleep_for(ctx, clock, ns, a[3])
}

/// The request of a sleep in nanoseconds: `EFAULT` for a bad pointer, `EINVAL` for a negative
/// time or nanoseconds out of range.
fn read_sleep(ctx: &Ctx<'_>, addr: u64) -> SysResult<u64> {
    let ts: Timespec = ctx.mem().read_val(addr)?;
    timer::ns_from_timespec(ts.tv_sec, ts.tv_nsec).ok_or(Errno::EINVAL)
}

/// A relative sleep of `ns` nanoseconds on `clock`, the time left written to `rmtp` (if not
/// null) when a signal interrupts it.
fn sleep_for(ctx: &mut Ctx<'_>, clock: Clock, ns: u64, rmtp: u64) -> SysResult {
    let now = clock.now().ok_or(Errno::EINVAL)?;
    let deadline = now.saturating_add(ns).min(timer::KTIME_MAX);
    let rmtp = (rmtp != 0).then_some(rmtp);
    sleep_rest(ctx.task, clock, deadline, rmtp)
}

/// Sleeps until `deadline` on `clock` for a relative sleep, first run or restarted. As on
/// Linux, an interrupted sleep writes the time left to `rmtp` and returns
/// `ERESTART_RESTARTBLOCK`: `EINTR` if a handler runs (even with `SA_RESTART`), else the sleep
/// goes on through `restart_syscall` to the same deadline.
fn sleep_rest(task: &mut Task, clock: Clock, deadline: u64, rmtp: Option<u64>) -> SysResult {
    let remaining = match timer::sleep_until(&task.shared, clock, deadline) {
        Woken::Elapsed | Woken::Interrupted { remaining: 0 } => return Ok(0),
        Woken::Interrupted { remaining } => remaining,
    };
    if let Some(rmtp) = rmtp {
        let (tv_sec, tv_nsec) = timer::timespec_from_ns(remaining);
        task.memory.write_val(rmtp, &Timespec { tv_sec, tv_nsec })?;
    }
    task.restart_block = Some(Box::new(move |task: &mut Task| {
        sleep_rest(task, clock, deadline, rmtp)
    }));
    Err(restart::ERESTART_RESTARTBLOCK)
}

/// `times(2)`: returns clock ticks since boot.
pub fn sys_times(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let ticks = |micros: i64| micros * CLK_TCK / 1_000_000;
    if a[0] != 0 {
        let own = host::rusage(false);
        let children = host::rusage(true);
        let tms = Tms {
            tms_utime: ticks(own.user_us),
            tms_stime: ticks(own.system_us),
            tms_cutime: ticks(children.user_us),
            tms_cstime: ticks(children.system_us),
        };
        ctx.mem().write_val(a[0], &tms)?;
    }
    let boot = host::clock_to_host(lc::CLOCK_BOOTTIME).unwrap_or(libc::CLOCK_MONOTONIC);
    let (sec, nsec) = host::clock_gettime(boot).map_err(Errno::from)?;
    Ok((sec * CLK_TCK + nsec * CLK_TCK / 1_000_000_000) as u64)
}
