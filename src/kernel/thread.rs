//! Running a guest thread on the calling host thread, from its first instruction to its end,
//! and what a thread's end means for its process.

use std::cell::Cell;
use std::sync::Arc;

use tracing::{debug, error};

use crate::kernel::RuntimeError;
use crate::kernel::abi::signal as sig;
use crate::kernel::futex;
use crate::kernel::process::Process;
use crate::kernel::sched;
use crate::kernel::task::{self, ExitStatus, Outcome, Task};
use crate::vm::{CpuSnapshot, Vcpu};

thread_local! {
    /// Set on the host thread that must end the host process once the guest process has
    /// ended: a guest fork's child runs on the one host thread that called `fork`.
    static ANCHOR: Cell<bool> = const { Cell::new(false) };
}

/// Makes the calling host thread end the host process when the guest process ends, rather
/// than just finishing (see [`ANCHOR`]). The thread `kernel::run` starts on needs no mark:
/// its caller ends the process.
pub fn anchor_host_process() {
    ANCHOR.set(true);
}

/// Runs `task` on the calling host thread until it ends, and tells its process how it ended
/// (a thread exit, the end of the process). Returns the process the thread belonged to at its
/// end: after a guest `fork`, the child's.
pub fn run(mut task: Task, regs: CpuSnapshot) -> Result<Arc<Process>, RuntimeError> {
    let process = task.process.clone();
    task::set_current(Some(task.shared.clone()));
    sched::enter(process.run.clone(), None);
    let result = run_vcpu(&mut task, regs);
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            sched::leave();
            task::set_current(None);
            return Err(e);
        }
    };
    end(&mut task, &outcome);
    sched::leave();
    task::set_current(None);
    Ok(task.process)
}

/// Creates a vCPU and runs it, recreating it when `execve` replaces the image.
fn run_vcpu(task: &mut Task, mut regs: CpuSnapshot) -> Result<Outcome, RuntimeError> {
    loop {
        let mut vcpu: Box<dyn Vcpu> = task.process.backend.create_vcpu(task.memory.clone())?;
        vcpu.state().restore(&regs);
        task.shared.attach(vcpu.handle());
        sched::set_vcpu(vcpu.handle());
        if task.process.debugger.get().is_some() {
            crate::gdb::thread_start(task, vcpu.state());
            if let Some(outcome) = task.outcome.take() {
                return Ok(outcome);
            }
        }
        loop {
            vcpu.run(task)?;
            match task.outcome.take() {
                None => continue,
                Some(Outcome::Exec) => break,
                Some(outcome) => return Ok(outcome),
            }
        }
        // execve: the new image's registers were left in the task.
        regs = task.exec_regs.take().unwrap_or_default();
        debug!(tid = task.tid, pc = regs.pc, "starting the new image");
    }
}

/// What a thread's end does: releases the futexes it holds (robust locks get
/// `FUTEX_OWNER_DIED`, PI locks go to their waiters), clears its `clear_child_tid` word and
/// wakes its joiner, and ends the process if it was the last thread.
///
/// A joiner woken through `clear_child_tid` finds the thread's futexes released
/// (`FUTEX_LOCK_PI` on its id fails with `ESRCH`), as on Linux. A process that ends releases
/// every thread's futexes before its end can be seen, as each Linux thread does on its way
/// out.
fn end(task: &mut Task, outcome: &Outcome) {
    let process = task.process.clone();
    task::mark_exited(&task.shared);
    match outcome {
        Outcome::ThreadExit(code) => {
            release_futexes(task);
            if process.remove_thread(task.tid) {
                process.finish(ExitStatus::Exited(*code as u8));
            }
        }
        Outcome::ProcessExit(status) => {
            for thread in process.threads() {
                futex::exit_thread(&process, &task.memory, &thread);
            }
            process.remove_thread(task.tid);
            process.finish(*status);
        }
        Outcome::Killed => {
            release_futexes(task);
            process.remove_thread(task.tid);
        }
        Outcome::Exec => {
            process.remove_thread(task.tid);
        }
    }
}

/// A leaving thread's futex duties: the futexes it holds are released, and its
/// `clear_child_tid` word is cleared and woken (before the thread leaves the process, so an
/// `execve` waiting for it cannot have moved on).
fn release_futexes(task: &Task) {
    futex::exit_thread(&task.process, &task.memory, &task.shared);
    if task.clear_child_tid != 0 && task.memory.write_val(task.clear_child_tid, &0u32).is_ok() {
        futex::wake_shared_word(&task.process, &task.memory, task.clear_child_tid);
    }
}

/// Starts a new guest thread on a new host thread (a guest `clone` with `CLONE_THREAD`).
///
/// The thread id is the new host thread's own where the host has Linux-style ids, so it is
/// unique among the host's processes; `build` makes the task and its registers from it, on
/// the calling thread. Returns the id.
pub fn spawn(build: impl FnOnce(i32) -> (Task, CpuSnapshot)) -> std::io::Result<i32> {
    let (tid_tx, tid_rx) = std::sync::mpsc::channel::<i32>();
    let (task_tx, task_rx) = std::sync::mpsc::channel::<(Task, CpuSnapshot)>();
    std::thread::Builder::new()
        .name("elfuse-guest".into())
        .stack_size(8 << 20)
        .spawn(move || {
            if tid_tx.send(crate::host::threads::thread_id()).is_err() {
                return;
            }
            let Ok((task, regs)) = task_rx.recv() else {
                return;
            };
            let process: Arc<Process> = task.process.clone();
            let tid = task.tid;
            let process = run(task, regs).unwrap_or_else(|e| {
                error!(tid, "guest thread failed: {e}");
                process.finish(ExitStatus::Signaled(sig::SIGKILL));
                process
            });
            if ANCHOR.get() {
                crate::kernel::exit_host(process.wait_exit());
            }
        })?;
    let tid = tid_rx
        .recv()
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EAGAIN))?;
    let (task, regs) = build(tid);
    task_tx
        .send((task, regs))
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EAGAIN))?;
    Ok(tid)
}
