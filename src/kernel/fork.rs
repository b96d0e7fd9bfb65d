//! New processes: `fork`, `vfork` and `clone` without `CLONE_THREAD`.
//!
//! A guest process is a host process, so a guest `fork` is a host `fork()` of elfuse: the
//! child is the calling thread alone, with a copy-on-write copy of everything, including
//! guest memory and the vCPU. The child then rebuilds the per-process runtime state (a fresh
//! scheduler, signal forwarding, its own ids) around the copied guest state.
//!
//! `vfork` (and `CLONE_VM | CLONE_VFORK`, as `posix_spawn` uses it) suspends the parent until
//! the child execs or exits, as Linux does.
//!
//! # Limitations
//! The `vfork` child gets a copy of the parent's memory rather than sharing it: writes it makes
//! before `execve` are not seen by the parent (glibc's `posix_spawn` uses such a write to report
//! an exec failure, so there the failure shows as the child's exit status 127 instead).
//! `CLONE_VM` without `CLONE_VFORK` or `CLONE_THREAD` is not supported (`EINVAL`). A child's
//! termination signal is always `SIGCHLD`. The `CLONE_PIDFD` descriptor is made once the
//! child exists: if that fails (no free descriptor), the call still succeeds and the slot
//! holds -1.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use tracing::{debug, info};

use super::syscalls::Ctx;
use super::syscalls::thread::CloneArgs;
use crate::host;
use crate::kernel::abi::clone::*;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::process::{Process, lock};
use crate::kernel::{sched, task};

/// `clone` of a new process (no `CLONE_THREAD`).
pub fn clone_process(ctx: &mut Ctx<'_>, args: CloneArgs) -> SysResult {
    let f = args.flags;
    if f & CLONE_VM != 0 && f & CLONE_VFORK == 0 {
        info!(
            flags = f,
            "clone with CLONE_VM but without CLONE_VFORK or CLONE_THREAD is not supported"
        );
        return Err(Errno::EINVAL);
    }
    if f & (CLONE_FILES | CLONE_FS) != 0 && f & CLONE_VFORK == 0 {
        info!(
            flags = f,
            "processes sharing descriptors or the working directory are not supported"
        );
        return Err(Errno::EINVAL);
    }
    if f & CLONE_PIDFD != 0 {
        ctx.mem()
            .check(args.pidfd, 4, crate::vm::vma::Prot::WRITE)?;
    }
    let need = crate::vm::vma::Prot::WRITE;
    if f & CLONE_PARENT_SETTID != 0 {
        ctx.mem().check(args.parent_tid, 4, need)?;
    }
    let vfork = f & CLONE_VFORK != 0;
    let done = if vfork {
        Some(host::io::pipe(false).map_err(Errno::from)?)
    } else {
        None
    };

    if crate::kernel::handover::enabled() {
        let pid = crate::kernel::handover::fork(ctx, &args, done.as_ref().map(|(_, w)| w))?;
        return Ok(parent_after(ctx, &args, pid, done));
    }

    // Neither a forwarded host signal nor a timer signal is half handed over while the process
    // is copied.
    let paused_timers = ctx.process().timers.pause();
    let forwarding_paused = host::threads::pause_forwarding();
    let forked = host::process::fork();
    drop(forwarding_paused);
    drop(paused_timers);
    match forked.map_err(Errno::from)? {
        host::process::Forked::Child => {
            let writer = done.map(|(_, w)| w);
            become_child(ctx, &args, writer);
            Ok(0)
        }
        host::process::Forked::Parent(pid) => Ok(parent_after(ctx, &args, pid, done)),
    }
}

/// The parent's side once child `pid` exists: `CLONE_PARENT_SETTID`, and for `vfork` the
/// wait until the child execs or exits.
fn parent_after(
    ctx: &mut Ctx<'_>,
    args: &CloneArgs,
    pid: i32,
    done: Option<(OwnedFd, OwnedFd)>,
) -> u64 {
    if args.flags & CLONE_PARENT_SETTID != 0 {
        let _ = ctx.mem().write_val(args.parent_tid, &(pid as u32));
    }
    if args.flags & CLONE_PIDFD != 0 {
        // Linux makes the descriptor before the child runs; a failure here leaves the
        // caller without one (-1 in the slot) rather than undoing the fork.
        let fd = host::process::process_handle(pid, false)
            .map_err(Errno::from)
            .and_then(|handle| {
                let file = crate::kernel::file::OpenFile::pidfd(
                    handle,
                    crate::kernel::abi::open::O_RDWR,
                    pid,
                );
                ctx.install(file, true)
            })
            .map_or(-1, |fd| fd as i32);
        let _ = ctx.mem().write_val(args.pidfd, &fd);
    }
    if let Some((reader, writer)) = done {
        drop(writer);
        wait_for_exec_or_exit(&reader);
    }
    debug!(child = pid, "forked");
    pid as u64
}

/// The `vfork` parent sleeps until the child's end of the pipe closes (exec or exit).
fn wait_for_exec_or_exit(reader: &OwnedFd) {
    use std::os::fd::AsFd;
    let mut byte = [0u8; 1];
    loop {
        match sched::blocking(|| host::io::read(reader.as_fd(), &mut byte)) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            _ => return,
        }
    }
}

/// In the new host process: rebuild the runtime around the copied guest state.
fn become_child(ctx: &mut Ctx<'_>, args: &CloneArgs, vfork_done: Option<OwnedFd>) {
    let pid = std::process::id() as i32;
    let old: Arc<Process> = ctx.task.process.clone();
    let process = old.fork_child(pid);

    // The parent's process object lives on in this copy of the runtime (frames up the stack
    // hold it), and with it a second reference to every open file. Drop those, or a
    // descriptor the child closes stays open on the host: a pipe's reader would never see
    // its end, its writer never get EPIPE.
    let stale = std::mem::take(&mut *lock(&old.fds));
    drop(stale);

    *lock(&process.vfork_done) = vfork_done;
    let shared = process.add_thread(pid, ctx.task.sigmask());
    if let Some(vcpu) = ctx.task.shared.vcpu_handle() {
        shared.attach(vcpu);
    }

    // The debugger follows the parent.
    crate::gdb::forget_in_child(ctx.task, ctx.cpu);
    let t = &mut *ctx.task;
    t.process = process.clone();
    t.shared = shared.clone();
    t.tid = pid;
    t.clear_child_tid = if args.flags & CLONE_CHILD_CLEARTID != 0 {
        args.child_tid
    } else {
        0
    };
    if args.flags & CLONE_CHILD_SETTID != 0 {
        let _ = t.memory.write_val(args.child_tid, &(pid as u32));
    }
    if args.stack != 0 {
        ctx.cpu.set_sp(args.stack);
    }
    if args.flags & CLONE_SETTLS != 0 {
        ctx.cpu.set_tpidr(args.tls);
    }

    // The scheduler, signal forwarding and wake-ups start over for this process. Forwarded
    // signals go to the new process from the start: one sent by the parent right after the
    // fork must not reach the parent's copy. The vCPUs of the parent's other threads are not
    // here to read memory events.
    t.memory.forget_readers_after_fork();
    task::set_current(Some(shared));
    sched::reset_after_fork(process.run.clone());
    crate::kernel::set_current_process(&process);
    host::threads::after_fork();
    crate::kernel::thread::anchor_host_process();
}
