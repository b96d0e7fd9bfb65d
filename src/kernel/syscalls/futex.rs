//! `futex(2)` and `futex_waitv(2)`: the operation word, timeouts, and the order in which Linux
//! checks arguments (`sys_futex`, `do_futex` and `sys_futex_waitv` in `kernel/futex/`). The
//! queues and lock protocols are `kernel::futex`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing::info;

use super::Ctx;
use crate::host;
use crate::kernel::abi::clock as lc;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::futex::*;
use crate::kernel::abi::structs::{FutexWaitv, Timespec};
use crate::kernel::futex;
use crate::kernel::signal::restart;
use crate::kernel::task::Task;

/// `futex(2)`.
pub fn sys_futex(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (addr, op, val, addr2, val3) = (a[0], a[1] as u32, a[2] as u32, a[4], a[5] as u32);
    let cmd = op & FUTEX_CMD_MASK;
    let shared = op & FUTEX_PRIVATE_FLAG == 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;

    // The timeout is read and checked before the operation itself.
    let deadline = match a[3] {
        0 => None,
        timeout if has_timeout(cmd) => Some(deadline(ctx, timeout, cmd, realtime)?),
        _ => None,
    };
    if realtime
        && !matches!(
            cmd,
            FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2
        )
    {
        return Err(Errno::ENOSYS);
    }
    // The commands without a timeout take a count there (`val2`).
    let val2 = a[3] as u32 as i32;

    let memory = ctx.task.memory.clone();
    let task: &mut Task = ctx.task;
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT {
                FUTEX_BITSET_MATCH_ANY
            } else {
                val3
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            wait(task, addr, shared, val, bitset, deadline)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE {
                FUTEX_BITSET_MATCH_ANY
            } else {
                val3
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let place = futex::locate(&memory, addr, shared, false)?;
            futex::wake(&task.process, place, val as i32, bitset).map(u64::from)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let nr_wake = val as i32;
            if nr_wake < 0 || val2 < 0 {
                return Err(Errno::EINVAL);
            }
            let from = futex::locate(&memory, addr, shared, false)?;
            let to = futex::locate(&memory, addr2, shared, false)?;
            let expected = (cmd == FUTEX_CMP_REQUEUE).then_some(val3);
            futex::requeue(task, from, to, nr_wake, val2, expected).map(u64::from)
        }
        FUTEX_WAKE_OP => {
            let first = futex::locate(&memory, addr, shared, false)?;
            let second = futex::locate(&memory, addr2, shared, true)?;
            futex::wake_op(task, first, second, val as i32, val2, val3)
        }
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_TRYLOCK_PI => {
            let place = futex::locate(&memory, addr, shared, true)?;
            futex::lock_pi(task, place, deadline, cmd == FUTEX_TRYLOCK_PI)
        }
        FUTEX_UNLOCK_PI => {
            let place = futex::locate(&memory, addr, shared, true)?;
            futex::unlock_pi(task, place)
        }
        FUTEX_WAIT_REQUEUE_PI | FUTEX_CMP_REQUEUE_PI => {
            static REPORTED: AtomicBool = AtomicBool::new(false);
            if !REPORTED.swap(true, Ordering::Relaxed) {
                info!("futex requeue-PI operations are not supported; returning ENOSYS");
            }
            Err(Errno::ENOSYS)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// Whether `cmd` reads a timeout from its fourth argument (`futex_cmd_has_timeout`).
fn has_timeout(cmd: u32) -> bool {
    matches!(
        cmd,
        FUTEX_WAIT | FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI
    )
}

/// The deadline of `cmd`'s timeout at `addr` (`futex_init_timeout`): relative for
/// `FUTEX_WAIT`; otherwise absolute, on `CLOCK_REALTIME` for `FUTEX_LOCK_PI` and with
/// `FUTEX_CLOCK_REALTIME`, else on `CLOCK_MONOTONIC`.
fn deadline(ctx: &Ctx<'_>, addr: u64, cmd: u32, realtime: bool) -> SysResult<Instant> {
    let ts = read_timespec(ctx, addr)?;
    Ok(match cmd {
        FUTEX_WAIT => after(duration(ts)),
        FUTEX_LOCK_PI => at(ts, lc::CLOCK_REALTIME),
        _ if realtime => at(ts, lc::CLOCK_REALTIME),
        _ => at(ts, lc::CLOCK_MONOTONIC),
    })
}

/// Reads a timeout: `EFAULT` for a bad pointer, `EINVAL` unless it is a valid `timespec`.
fn read_timespec(ctx: &Ctx<'_>, addr: u64) -> SysResult<Timespec> {
    let ts: Timespec = ctx.mem().read_val(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(ts)
}

fn duration(ts: Timespec) -> Duration {
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The instant `wait` from now; one that cannot be represented is treated as a wait of 136
/// years, as good as forever.
fn after(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(u64::from(u32::MAX)))
}

/// The instant guest clock `clock` reaches `ts`.
fn at(ts: Timespec, clock: i64) -> Instant {
    let host_clock = host::clock_to_host(clock).unwrap_or(libc::CLOCK_MONOTONIC);
    let (sec, nsec) = host::clock_gettime(host_clock).unwrap_or((0, 0));
    let now = Duration::new(sec.max(0) as u64, nsec.clamp(0, 999_999_999) as u32);
    after(duration(ts).saturating_sub(now))
}

/// `FUTEX_WAIT` and `FUTEX_WAIT_BITSET`, restartable the way Linux restarts them: a wait
/// without a timeout starts over after a handler with `SA_RESTART` (`ERESTARTSYS`); one with a
/// timeout fails with `EINTR` whenever a handler ran, and otherwise resumes through
/// `restart_syscall(2)` towards the same deadline.
fn wait(
    task: &mut Task,
    addr: u64,
    shared: bool,
    val: u32,
    bitset: u32,
    deadline: Option<Instant>,
) -> SysResult {
    let memory = task.memory.clone();
    let place = futex::locate(&memory, addr, shared, false)?;
    let result = futex::wait(task, &[(place, val)], bitset, deadline).map(|_| 0);
    match (result, deadline) {
        (Err(e), Some(deadline)) if e == restart::ERESTARTSYS => {
            task.restart_block = Some(Box::new(move |task: &mut Task| {
                wait(task, addr, shared, val, bitset, Some(deadline))
            }));
            Err(restart::ERESTART_RESTARTBLOCK)
        }
        (result, _) => result,
    }
}

/// `futex_waitv(2)`: waits on up to 128 futexes at once; returns the index of the one woken
/// (the lowest, if several were).
pub fn sys_futex_waitv(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (list, count, flags, timeout) = (a[0], a[1] as u32, a[2] as u32, a[3]);
    let clock = i64::from(a[4] as u32 as i32);
    if flags != 0 || count == 0 || count > FUTEX_WAITV_MAX || list == 0 {
        return Err(Errno::EINVAL);
    }
    let deadline = match timeout {
        0 => None,
        _ if clock != lc::CLOCK_REALTIME && clock != lc::CLOCK_MONOTONIC => {
            return Err(Errno::EINVAL);
        }
        _ => Some(at(read_timespec(ctx, timeout)?, clock)),
    };

    // Every entry is read and checked before any futex word is looked at.
    let size = std::mem::size_of::<FutexWaitv>() as u64;
    let mut entries = Vec::with_capacity(count as usize);
    for index in 0..u64::from(count) {
        let at = list.checked_add(index * size).ok_or(Errno::EFAULT)?;
        let entry: FutexWaitv = ctx.mem().read_val(at)?;
        let known = FUTEX2_SIZE_MASK | FUTEX2_PRIVATE;
        if entry.flags & !known != 0
            || entry.__reserved != 0
            || entry.flags & FUTEX2_SIZE_MASK != FUTEX2_SIZE_U32
            || entry.val > u64::from(u32::MAX)
        {
            return Err(Errno::EINVAL);
        }
        entries.push(entry);
    }

    let memory = ctx.task.memory.clone();
    let mut words = Vec::with_capacity(entries.len());
    for entry in &entries {
        let shared = entry.flags & FUTEX2_PRIVATE == 0;
        let place = futex::locate(&memory, entry.uaddr, shared, false)?;
        words.push((place, entry.val as u32));
    }
    futex::wait(ctx.task, &words, FUTEX_BITSET_MATCH_ANY, deadline).map(|index| index as u64)
}
