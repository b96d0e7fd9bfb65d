//! Threads: `clone(2)` and `clone3(2)` (threads here; new processes in `kernel::fork`).

use bytemuck::{Pod, Zeroable};
use tracing::info;

use super::Ctx;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::task::Task;
use crate::kernel::{fork, thread};
use crate::vm::{CpuSnapshot, CpuState};

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

impl CloneArgs {
    /// The registers a new thread or process starts with: the caller's, with `x0 = 0`, the
    /// new stack if one was given, and the new TLS pointer for `CLONE_SETTLS`.
    pub fn child_regs(&self, cpu: &dyn CpuState) -> CpuSnapshot {
        let mut regs = cpu.snapshot();
        regs.x[0] = 0;
        if self.stack != 0 {
            regs.sp = self.stack;
        }
        if self.flags & CLONE_SETTLS != 0 {
            regs.tpidr = self.tls;
        }
        regs
    }
}

/// Creates a thread sharing everything with the caller.
fn spawn_thread(ctx: &mut Ctx<'_>, args: &CloneArgs) -> SysResult {
    let regs = args.child_regs(&*ctx.cpu);
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
