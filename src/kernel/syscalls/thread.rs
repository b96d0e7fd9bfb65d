//! Threads and futexes: `clone(2)` and `clone3(2)` (threads here; new processes in
//! `kernel::fork`), `futex(2)` and `futex_waitv(2)`.

use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use tracing::info;

use super::Ctx;
use crate::host;
use crate::kernel::abi::clock as lc;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::structs::Timespec;
use crate::kernel::futex;
use crate::kernel::task::Task;
use crate::kernel::{fork, thread};

use crate::kernel::abi::clone::*;

/// A decoded `clone` request.
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub exit_signal: u32,
    pub stack: u64,
    pub tls: u64,
    pub parent_tid: u64,
    pub child_tid: u64,
    pub pidfd: u64,
}

/// `struct clone_args` (version 2, 88 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct RawCloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// The checks `copy_process` makes on the flags, for both calls.
fn check_flags(args: &CloneArgs) -> SysResult<()> {
    let f = args.flags;
    if f & (CLONE_NEWNS | CLONE_FS) == CLONE_NEWNS | CLONE_FS
        || f & (CLONE_NEWUSER | CLONE_FS) == CLONE_NEWUSER | CLONE_FS
        || (f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0)
        || (f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0)
        || (f & CLONE_PIDFD != 0 && f & (CLONE_THREAD | CLONE_DETACHED) != 0)
    {
        return Err(Errno::EINVAL);
    }
    if f & (NAMESPACES | CLONE_NEWTIME) != 0 {
        // No namespaces here; a kernel built without them answers EINVAL.
        return Err(Errno::EINVAL);
    }
    if args.exit_signal > 64 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `clone(2)` (arm64 argument order: flags, stack, parent_tid, tls, child_tid).
pub fn sys_clone(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let raw = a[0] & 0xffff_ffff;
    let mut args = CloneArgs {
        flags: raw & !CSIGNAL,
        exit_signal: (raw & CSIGNAL) as u32,
        stack: a[1],
        parent_tid: a[2],
        tls: a[3],
        child_tid: a[4],
        pidfd: 0,
    };
    if args.flags & CLONE_PIDFD != 0 {
        // The legacy call returns the pidfd through parent_tid, so both cannot be asked for.
        if args.flags & CLONE_PARENT_SETTID != 0 {
            return Err(Errno::EINVAL);
        }
        args.pidfd = args.parent_tid;
    }
    check_flags(&args)?;
    clone(ctx, args)
}

/// `clone3(2)`.
pub fn sys_clone3(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    const VER0: u64 = 64;
    let size = a[1];
    if size < VER0 {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let mut buf = vec![0u8; size as usize];
    ctx.mem().read(a[0], &mut buf)?;
    let known = std::mem::size_of::<RawCloneArgs>();
    if buf.len() > known && buf[known..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    buf.resize(known, 0);
    let raw: RawCloneArgs = bytemuck::pod_read_unaligned(&buf[..known]);
    if raw.flags & !CLONE3_KNOWN != 0
        || raw.exit_signal & !CSIGNAL != 0
        || raw.flags & CSIGNAL & !CLONE_NEWTIME != 0
    {
        return Err(Errno::EINVAL);
    }
    if (raw.stack == 0) != (raw.stack_size == 0) {
        return Err(Errno::EINVAL);
    }
    if raw.set_tid_size > 32 || (raw.set_tid == 0) != (raw.set_tid_size == 0) {
        return Err(Errno::EINVAL);
    }
    if raw.set_tid_size != 0 {
        // Choosing the new thread's id needs CAP_SYS_ADMIN over the pid namespace.
        return Err(Errno::EPERM);
    }
    if raw.flags & CLONE_INTO_CGROUP != 0 {
        return Err(Errno::EINVAL);
    }
    let args = CloneArgs {
        flags: raw.flags,
        exit_signal: raw.exit_signal as u32,
        stack: raw.stack.wrapping_add(raw.stack_size),
        tls: raw.tls,
        parent_tid: raw.parent_tid,
        child_tid: raw.child_tid,
        pidfd: raw.pidfd,
    };
    check_flags(&args)?;
    clone(ctx, args)
}

fn clone(ctx: &mut Ctx<'_>, args: CloneArgs) -> SysResult {
    if args.flags & CLONE_THREAD == 0 {
        return fork::clone_process(ctx, args);
    }
    let needed = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND;
    if args.flags & needed != needed {
        info!(
            flags = args.flags,
            "threads that do not share files and cwd are not supported"
        );
        return Err(Errno::EINVAL);
    }
    spawn_thread(ctx, &args)
}

/// Creates a thread sharing everything with the caller.
fn spawn_thread(ctx: &mut Ctx<'_>, args: &CloneArgs) -> SysResult {
    let mut regs = ctx.cpu.snapshot();
    regs.x[0] = 0;
    if args.stack != 0 {
        regs.sp = args.stack;
    }
    if args.flags & CLONE_SETTLS != 0 {
        regs.tpidr = args.tls;
    }
    let process = ctx.process().clone();
    let mask = ctx.task.sigmask();
    let comm = ctx.task.comm;
    let memory = ctx.task.memory.clone();
    let (parent_tid, child_tid, flags) = (args.parent_tid, args.child_tid, args.flags);

    // The id words must be writable before the thread exists (Linux fails the clone with
    // EFAULT otherwise).
    let need = crate::vm::vma::Prot::WRITE;
    if flags & CLONE_CHILD_SETTID != 0 {
        memory.check(child_tid, 4, need)?;
    }
    if flags & CLONE_PARENT_SETTID != 0 {
        memory.check(parent_tid, 4, need)?;
    }
    let tid = thread::spawn(|tid| {
        let shared = process.add_thread(tid, mask);
        let mut task = Task::new(process.clone(), shared, comm);
        task.memory = memory.clone();
        if flags & CLONE_CHILD_CLEARTID != 0 {
            task.clear_child_tid = child_tid;
        }
        if flags & CLONE_CHILD_SETTID != 0 {
            let _ = memory.write_val(child_tid, &(tid as u32));
        }
        if flags & CLONE_PARENT_SETTID != 0 {
            let _ = memory.write_val(parent_tid, &(tid as u32));
        }
        (task, regs)
    })
    .map_err(|_| Errno::EAGAIN)?;
    Ok(tid as u64)
}

/// `futex` commands and flags.
mod op {
    pub const WAIT: u32 = 0;
    pub const WAKE: u32 = 1;
    pub const FD: u32 = 2;
    pub const REQUEUE: u32 = 3;
    pub const CMP_REQUEUE: u32 = 4;
    pub const WAKE_OP: u32 = 5;
    pub const LOCK_PI: u32 = 6;
    pub const UNLOCK_PI: u32 = 7;
    pub const TRYLOCK_PI: u32 = 8;
    pub const WAIT_BITSET: u32 = 9;
    pub const WAKE_BITSET: u32 = 10;
    pub const WAIT_REQUEUE_PI: u32 = 11;
    pub const CMP_REQUEUE_PI: u32 = 12;
    pub const LOCK_PI2: u32 = 13;
    pub const PRIVATE: u32 = 128;
    pub const CLOCK_REALTIME: u32 = 256;
}

/// A deadline from a relative timeout.
fn relative(ts: Timespec) -> Instant {
    Instant::now() + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A deadline from an absolute time on `clock`.
fn absolute(ts: Timespec, clock: i64) -> Instant {
    let host_clock = host::clock_to_host(clock).unwrap_or(libc::CLOCK_MONOTONIC);
    let (sec, nsec) = host::clock_gettime(host_clock).unwrap_or((0, 0));
    let now = Duration::new(sec.max(0) as u64, nsec as u32);
    let then = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    Instant::now() + then.saturating_sub(now)
}

fn read_timeout(ctx: &Ctx<'_>, addr: u64) -> SysResult<Option<Timespec>> {
    if addr == 0 {
        return Ok(None);
    }
    let ts: Timespec = ctx.mem().read_val(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Some(ts))
}

/// `futex(2)`.
pub fn sys_futex(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (addr, full_op, val) = (a[0], a[1] as u32, a[2] as u32);
    let cmd = full_op & !(op::PRIVATE | op::CLOCK_REALTIME);
    let realtime = full_op & op::CLOCK_REALTIME != 0;
    if realtime && !matches!(cmd, op::WAIT_BITSET | op::WAIT_REQUEUE_PI | op::LOCK_PI2) {
        return Err(Errno::ENOSYS);
    }
    if addr % 4 != 0 {
        return Err(Errno::EINVAL);
    }
    let clock = if realtime {
        lc::CLOCK_REALTIME
    } else {
        lc::CLOCK_MONOTONIC
    };
    let count = |v: u32| if (v as i32) < 0 { i32::MAX as u32 } else { v };
    let task: &Task = ctx.task;
    match cmd {
        op::WAIT => {
            let deadline = read_timeout(ctx, a[3])?.map(relative);
            futex::wait(task, addr, val, u32::MAX, deadline)
        }
        op::WAIT_BITSET => {
            let bitset = a[5] as u32;
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let deadline = read_timeout(ctx, a[3])?.map(|t| absolute(t, clock));
            futex::wait(task, addr, val, bitset, deadline)
        }
        op::WAKE => {
            task.memory
                .load_u32(addr)
                .map_err(|e| if e == Errno::EINVAL { e } else { Errno::EFAULT })?;
            Ok(u64::from(futex::wake(
                &task.process,
                &task.memory,
                addr,
                count(val),
                u32::MAX,
            )))
        }
        op::WAKE_BITSET => {
            let bitset = a[5] as u32;
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            Ok(u64::from(futex::wake(
                &task.process,
                &task.memory,
                addr,
                count(val),
                bitset,
            )))
        }
        op::REQUEUE | op::CMP_REQUEUE => {
            if !a[4].is_multiple_of(4) {
                return Err(Errno::EINVAL);
            }
            let expected = (cmd == op::CMP_REQUEUE).then_some(a[5] as u32);
            futex::requeue(task, addr, count(val), count(a[3] as u32), a[4], expected)
        }
        op::WAKE_OP => {
            if !a[4].is_multiple_of(4) {
                return Err(Errno::EINVAL);
            }
            futex::wake_op(
                task,
                addr,
                count(val),
                count(a[3] as u32),
                a[4],
                a[5] as u32,
            )
        }
        op::LOCK_PI | op::LOCK_PI2 => {
            let pi_clock = if cmd == op::LOCK_PI || realtime {
                lc::CLOCK_REALTIME
            } else {
                lc::CLOCK_MONOTONIC
            };
            let deadline = read_timeout(ctx, a[3])?.map(|t| absolute(t, pi_clock));
            futex::lock_pi(task, addr, deadline, false)
        }
        op::TRYLOCK_PI => futex::lock_pi(task, addr, None, true),
        op::UNLOCK_PI => futex::unlock_pi(task, addr),
        op::FD | op::WAIT_REQUEUE_PI | op::CMP_REQUEUE_PI => {
            info!("futex command {cmd} is not supported; returning ENOSYS");
            Err(Errno::ENOSYS)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// `struct futex_waitv`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

/// `futex_waitv(2)`: waits on up to 128 futexes; returns the index of the one woken.
pub fn sys_futex_waitv(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    const FUTEX2_SIZE_U32: u32 = 2;
    const FUTEX2_SIZE_MASK: u32 = 3;
    const FUTEX2_PRIVATE: u32 = 128;
    let (nr, flags) = (a[1] as u32, a[2] as u32);
    if flags != 0 || nr == 0 || nr > 128 {
        return Err(Errno::EINVAL);
    }
    let deadline = match read_timeout(ctx, a[3])? {
        None => None,
        Some(ts) => match a[4] as u32 as i64 {
            lc::CLOCK_MONOTONIC | lc::CLOCK_REALTIME => Some(absolute(ts, a[4] as u32 as i64)),
            _ => return Err(Errno::EINVAL),
        },
    };
    let waiters: Vec<FutexWaitv> = ctx.mem().read_array(a[0], nr as usize)?;
    let mut futexes = Vec::with_capacity(waiters.len());
    for w in &waiters {
        if w.reserved != 0
            || w.flags & !(FUTEX2_SIZE_MASK | FUTEX2_PRIVATE) != 0
            || w.flags & FUTEX2_SIZE_MASK != FUTEX2_SIZE_U32
            || w.uaddr % 4 != 0
            || w.val > u64::from(u32::MAX)
        {
            return Err(Errno::EINVAL);
        }
        futexes.push((w.uaddr, w.val as u32));
    }
    futex::wait_many(ctx.task, &futexes, u32::MAX, deadline).map(|i| i as u64)
}
