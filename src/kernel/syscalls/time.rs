//! Clocks and sleeping: `clock_gettime(2)`, `clock_getres(2)`, `gettimeofday(2)`,
//! `nanosleep(2)`, `clock_nanosleep(2)` and `times(2)`.

use std::time::Duration;

use super::Ctx;
use crate::host;
use crate::kernel::abi::clock as lc;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::structs::{Timespec, Timeval, Timezone, Tms};

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

/// Sleeps for `duration`.
fn sleep(duration: Duration) {
    std::thread::sleep(duration);
}

/// `nanosleep(2)`.
pub fn sys_nanosleep(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let ts = read_timespec(ctx, a[0])?;
    sleep(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
    Ok(0)
}

/// `clock_nanosleep(2)`.
pub fn sys_clock_nanosleep(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let id = a[0] as u32 as i32 as i64;
    match id {
        lc::CLOCK_REALTIME | lc::CLOCK_MONOTONIC | lc::CLOCK_BOOTTIME | lc::CLOCK_TAI => {}
        // Waking a suspended system needs CAP_WAKE_ALARM.
        lc::CLOCK_REALTIME_ALARM | lc::CLOCK_BOOTTIME_ALARM => return Err(Errno::EPERM),
        lc::CLOCK_THREAD_CPUTIME_ID => return Err(Errno::EOPNOTSUPP),
        lc::CLOCK_PROCESS_CPUTIME_ID => {}
        _ => return Err(Errno::EINVAL),
    }
    let clock = host_clock(ctx, a[0])?;
    let ts = read_timespec(ctx, a[2])?;
    let absolute = a[1] as u32 as u64 & lc::TIMER_ABSTIME != 0;
    let target = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    let now = || {
        host::clock_gettime(clock)
            .map(|(s, n)| Duration::new(s.max(0) as u64, n as u32))
            .unwrap_or_default()
    };
    let deadline = if absolute { target } else { now() + target };
    if id == lc::CLOCK_PROCESS_CPUTIME_ID {
        // CPU time only advances while some thread runs; poll it.
        while now() < deadline {
            sleep(Duration::from_millis(1));
        }
        return Ok(0);
    }
    loop {
        let current = now();
        if current >= deadline {
            return Ok(0);
        }
        sleep(deadline - current);
    }
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
