//! A guest thread: its private state ([`Task`]), the part other threads may touch
//! ([`TaskShared`]: signal mask and queue, wake-ups), and the exit handler that serves its
//! vCPU.
//!
//! Waking a thread (a signal for it, a futex wake, the process exiting) goes through
//! [`TaskShared::interrupt`], which reaches it wherever it is: running guest code (its vCPU is
//! kicked), waiting in the runtime (its condition variable is notified) or blocked in a host
//! call (the host thread gets the kick signal, repeated until it leaves the call, since a
//! signal that lands just before the call starts would otherwise be lost).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use tracing::debug;

use crate::host;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::signal as sig;
use crate::kernel::abi::structs::SigaltStack;
use crate::kernel::process::{Process, lock};
use crate::kernel::sched;
use crate::kernel::signal::{self, SigQueue, restart};
use crate::kernel::syscalls;
use crate::vm::memory::GuestMemory;
use crate::vm::{Access, CpuState, ExitHandler, Resume, VcpuExit, VcpuHandle};

/// How a guest process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit_group(code)`; only the low 8 bits reach the parent.
    Exited(u8),
    /// Killed by this (Linux) signal.
    Signaled(u32),
}

/// Why a thread's vCPU stopped for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The thread called `exit`.
    ThreadExit(i32),
    /// The whole process ends.
    ProcessExit(ExitStatus),
    /// The process is ending because another thread ended it.
    Killed,
    /// `execve` succeeded: continue with a new image.
    Exec,
}

/// Where a thread is, for the purpose of waking it.
const IN_GUEST: u8 = 0;
const IN_KERNEL: u8 = 1;
const BLOCKED: u8 = 2;
const EXITED: u8 = 3;

/// The part of a thread other threads read and wake.
pub struct TaskShared {
    /// Thread id.
    pub tid: i32,
    /// Blocked signals (written only by the thread itself).
    pub sigmask: AtomicU64,
    /// The mask as it was before `rt_sigtimedwait` unblocked the signals it waits for (zero
    /// when not waiting): those still count as blocked, so they are not discarded as ignored.
    real_blocked: AtomicU64,
    /// Signals sent to this thread.
    pub pending: Mutex<SigQueue>,
    /// Signals sent to the whole process (the same queue for every thread).
    process_pending: Arc<Mutex<SigQueue>>,
    /// Set when the process is ending: every wait and blocking call returns.
    dying: Arc<AtomicBool>,
    /// Set while a debugger stops the process: waits return so the thread can park.
    debug_halt: Arc<AtomicBool>,
    /// Set when this thread alone must end (another thread's `execve`).
    killed: AtomicBool,
    state: AtomicU8,
    /// Counts wake-ups, for waits on `woken`.
    wake_seq: Mutex<u64>,
    woken: Condvar,
    vcpu: Mutex<Option<VcpuHandle>>,
    host_thread: Mutex<Option<host::threads::ThreadId>>,
    /// `set_robust_list` head and length (other threads read it for `get_robust_list` and walk
    /// it when the process ends).
    robust_list: Mutex<(u64, u64)>,
    /// Set once the thread's end has released its futexes (Linux's `FUTEX_STATE_DEAD`): from
    /// then on PI lockers no longer wait for it.
    futexes_released: AtomicBool,
}

impl TaskShared {
    /// A thread of a process whose shared queue, exit flag and debugger stop flag are given.
    pub fn new(
        tid: i32,
        sigmask: u64,
        process_pending: Arc<Mutex<SigQueue>>,
        dying: Arc<AtomicBool>,
        debug_halt: Arc<AtomicBool>,
    ) -> Arc<TaskShared> {
        Arc::new(TaskShared {
            tid,
            sigmask: AtomicU64::new(sigmask),
            real_blocked: AtomicU64::new(0),
            pending: Mutex::new(SigQueue::default()),
            process_pending,
            dying,
            debug_halt,
            killed: AtomicBool::new(false),
            state: AtomicU8::new(IN_KERNEL),
            wake_seq: Mutex::new(0),
            woken: Condvar::new(),
            vcpu: Mutex::new(None),
            host_thread: Mutex::new(None),
            robust_list: Mutex::new((0, 0)),
            futexes_released: AtomicBool::new(false),
        })
    }

    /// The signal mask.
    pub fn mask(&self) -> u64 {
        self.sigmask.load(Ordering::SeqCst)
    }

    /// Signals the thread blocks, counting those `rt_sigtimedwait` unblocked to wait for:
    /// what decides whether an ignored signal is discarded when sent.
    pub fn blocked(&self) -> u64 {
        self.mask() | self.real_blocked.load(Ordering::SeqCst)
    }

    /// Records the mask `rt_sigtimedwait` replaced while it waits (zero when done).
    pub fn set_real_blocked(&self, mask: u64) {
        self.real_blocked.store(mask, Ordering::SeqCst);
    }

    /// Signals pending for this thread or its process.
    pub fn pending_set(&self) -> u64 {
        lock(&self.pending).set() | lock(&self.process_pending).set()
    }

    /// Whether something should interrupt a wait: a deliverable signal, the thread ending, or
    /// a debugger stopping the process (the call is restarted once it resumes).
    pub fn should_wake(&self) -> bool {
        self.dying()
            || self.debug_halt.load(Ordering::SeqCst)
            || self.pending_set() & !self.mask() != 0
    }

    /// Whether the thread must end: the process is ending, or another thread's `execve`
    /// ends this one.
    pub fn dying(&self) -> bool {
        self.dying.load(Ordering::SeqCst) || self.killed.load(Ordering::SeqCst)
    }

    /// Ends this thread alone, wherever it is.
    pub fn kill(self: &Arc<TaskShared>, house: &Arc<sched::Housekeeper>) {
        self.killed.store(true, Ordering::SeqCst);
        self.interrupt(house);
    }

    /// The robust list head and length registered with `set_robust_list`.
    pub fn robust_list(&self) -> (u64, u64) {
        *lock(&self.robust_list)
    }

    /// Registers the robust list head and length (`set_robust_list`).
    pub fn set_robust_list(&self, head: u64, len: u64) {
        *lock(&self.robust_list) = (head, len);
    }

    /// Takes the robust list for the walk at the thread's end, leaving none registered.
    pub fn take_robust_list(&self) -> (u64, u64) {
        std::mem::take(&mut *lock(&self.robust_list))
    }

    /// Records that the thread's end has released its futexes (done under the futex table
    /// lock, so a PI locker sees either the owner alive or its locks released).
    pub fn mark_futexes_released(&self) {
        self.futexes_released.store(true, Ordering::SeqCst);
    }

    /// Whether the thread's end has released its futexes.
    pub fn futexes_released(&self) -> bool {
        self.futexes_released.load(Ordering::SeqCst)
    }

    /// Records the vCPU and host thread that run this task.
    pub fn attach(&self, vcpu: VcpuHandle) {
        *lock(&self.vcpu) = Some(vcpu);
        *lock(&self.host_thread) = Some(host::threads::current());
    }

    /// The vCPU handle, once attached.
    pub fn vcpu_handle(&self) -> Option<VcpuHandle> {
        lock(&self.vcpu).clone()
    }

    /// Wakes the thread wherever it is, so it notices a signal, a futex wake or the end of
    /// the process.
    pub fn interrupt(self: &Arc<TaskShared>, house: &Arc<sched::Housekeeper>) {
        {
            let mut seq = lock(&self.wake_seq);
            *seq += 1;
        }
        self.woken.notify_all();
        if let Some(vcpu) = lock(&self.vcpu).as_ref() {
            vcpu.kick();
        }
        if self.state.load(Ordering::SeqCst) == BLOCKED
            && let Some(thread) = *lock(&self.host_thread)
        {
            host::threads::kick(thread);
            let me = Arc::downgrade(self);
            house.rekick(Box::new(move || match me.upgrade() {
                Some(task) if task.state.load(Ordering::SeqCst) == BLOCKED => {
                    host::threads::kick(thread);
                    true
                }
                _ => false,
            }));
        }
    }

    /// Wakes waiters in [`TaskShared::wait`] without kicking anything (futex wake-ups).
    pub fn notify(&self) {
        *lock(&self.wake_seq) += 1;
        self.woken.notify_all();
    }

    /// Sleeps until `done()` holds, a signal or the end of the process interrupts (then
    /// `ERESTARTSYS`), or the deadline passes (then `ETIMEDOUT`). The run lock is released
    /// meanwhile; `done` is checked with the wake lock held, so a wake-up is never lost.
    pub fn wait(&self, deadline: Option<Instant>, mut done: impl FnMut() -> bool) -> SysResult<()> {
        sched::blocking(|| {
            let mut seq = lock(&self.wake_seq);
            loop {
                if done() {
                    return Ok(());
                }
                if self.should_wake() {
                    return Err(restart::ERESTARTSYS);
                }
                match deadline {
                    None => seq = self.woken.wait(seq).unwrap_or_else(|p| p.into_inner()),
                    Some(deadline) => {
                        let now = Instant::now();
                        if now >= deadline {
                            return Err(Errno::ETIMEDOUT);
                        }
                        seq = self
                            .woken
                            .wait_timeout(seq, deadline - now)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                }
            }
        })
    }

    fn set_state(&self, state: u8) {
        self.state.store(state, Ordering::SeqCst);
    }
}

thread_local! {
    /// The task the current host thread runs, for blocking calls made deep in file code.
    static CURRENT: RefCell<Option<Arc<TaskShared>>> = const { RefCell::new(None) };
}

/// Makes `task` the current host thread's task.
pub fn set_current(task: Option<Arc<TaskShared>>) {
    CURRENT.with(|c| *c.borrow_mut() = task);
}

/// Runs a host call that may block, releasing the run lock and staying interruptible: a
/// signal for the thread (or the process ending) makes it return `ERESTARTSYS`, which the
/// signal layer turns into `EINTR` or a restart. Host `EINTR` without a guest signal retries.
pub fn interruptible<T>(mut call: impl FnMut() -> std::io::Result<T>) -> SysResult<T> {
    let current = CURRENT.with(|c| c.borrow().clone());
    let Some(task) = current else {
        return crate::kernel::file::retry(call);
    };
    loop {
        task.set_state(BLOCKED);
        if task.should_wake() {
            task.set_state(IN_KERNEL);
            return Err(restart::ERESTARTSYS);
        }
        let result = sched::blocking(&mut call);
        task.set_state(IN_KERNEL);
        match result {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                if task.should_wake() {
                    return Err(restart::ERESTARTSYS);
                }
            }
            other => return other.map_err(Errno::from),
        }
    }
}

/// One guest thread.
pub struct Task {
    /// Thread id.
    pub tid: i32,
    /// What other threads see of it.
    pub shared: Arc<TaskShared>,
    /// The process it belongs to.
    pub process: Arc<Process>,
    /// Its address space (the process's, until `execve` replaces both).
    pub memory: Arc<GuestMemory>,
    /// `set_tid_address` / `CLONE_CHILD_CLEARTID` address.
    pub clear_child_tid: u64,
    /// The thread name (`PR_SET_NAME`), NUL-padded.
    pub comm: [u8; 16],
    /// The alternate signal stack.
    pub altstack: SigaltStack,
    /// Set when the thread must stop running guest code.
    pub outcome: Option<Outcome>,
    /// A syscall interrupted by a signal, settled when the signal is delivered.
    pub interrupted: Option<signal::Interrupted>,
    /// What `restart_syscall(2)` resumes: the rest of a call that was interrupted with
    /// `ERESTART_RESTARTBLOCK` and no handler ran.
    pub restart_block: Option<signal::RestartBlock>,
    /// The syndrome of the last memory fault, for the signal frame's `esr_context`.
    pub fault_esr: u64,
    /// The signal mask to restore after a handler run from `rt_sigsuspend`.
    pub saved_mask: Option<u64>,
    /// The registers of a new image, set by `execve` before it stops the vCPU.
    pub exec_regs: Option<crate::vm::CpuSnapshot>,
    /// What the debugger asked of this thread, if one is attached.
    pub debug: crate::gdb::TaskDebug,
}

/// A thread name from a program path: its last component, cut to 15 bytes.
pub fn comm_of(name: &[u8]) -> [u8; 16] {
    let base = name.rsplit(|&b| b == b'/').next().unwrap_or(b"");
    let mut comm = [0u8; 16];
    let len = base.len().min(15);
    comm[..len].copy_from_slice(&base[..len]);
    comm
}

impl Task {
    /// A thread of `process` with the given shared part.
    pub fn new(process: Arc<Process>, shared: Arc<TaskShared>, comm: [u8; 16]) -> Task {
        let memory = process.memory();
        Task {
            tid: shared.tid,
            shared,
            process,
            memory,
            clear_child_tid: 0,
            comm,
            altstack: SigaltStack {
                ss_flags: sig::SS_DISABLE,
                ..SigaltStack::default()
            },
            outcome: None,
            interrupted: None,
            restart_block: None,
            fault_esr: 0,
            saved_mask: None,
            exec_regs: None,
            debug: crate::gdb::TaskDebug::default(),
        }
    }

    /// The blocked signals.
    pub fn sigmask(&self) -> u64 {
        self.shared.mask()
    }

    /// Replaces the blocked signals (`SIGKILL` and `SIGSTOP` can never be blocked).
    pub fn set_sigmask(&mut self, mask: u64) {
        self.shared
            .sigmask
            .store(mask & !sig::UNBLOCKABLE, Ordering::SeqCst);
    }

    /// Handles a synchronous CPU exception by raising the matching signal.
    fn fault(&mut self, cpu: &mut dyn CpuState, exit: VcpuExit) {
        let vma = match exit {
            VcpuExit::MemoryFault {
                addr,
                access,
                unmapped,
            } => {
                debug!(
                    tid = self.tid,
                    addr,
                    ?access,
                    unmapped,
                    pc = cpu.pc(),
                    "guest memory fault"
                );
                self.memory.vmas().find(addr).cloned()
            }
            _ => None,
        };
        let Some(info) = signal::fault_siginfo(exit, cpu.pc(), vma.as_ref()) else {
            return;
        };
        if let VcpuExit::MemoryFault { access, .. } = exit
            && info.signo == sig::SIGSEGV
        {
            self.fault_esr = fault_syndrome(access, info.code == sig::code::SEGV_ACCERR);
        }
        signal::force_synchronous(self, cpu, info);
    }
}

impl ExitHandler for Task {
    fn on_exit(&mut self, cpu: &mut dyn CpuState, exit: VcpuExit) -> Resume {
        self.shared.set_state(IN_KERNEL);
        match exit {
            VcpuExit::Syscall => syscalls::dispatch(self, cpu),
            VcpuExit::Interrupted => sched::yield_now(),
            VcpuExit::Debug(stop) => crate::gdb::on_debug_exit(self, cpu, stop),
            other => self.fault(cpu, other),
        }
        if self.outcome.is_none() && self.shared.dying() {
            self.outcome = Some(Outcome::Killed);
        }
        if self.outcome.is_none() {
            signal::deliver_pending(self, cpu);
        }
        if self.outcome.is_none() && self.process.debugger.get().is_some() {
            crate::gdb::before_guest(self, cpu);
        }
        if self.outcome.is_some() {
            return Resume::Stop;
        }
        self.shared.set_state(IN_GUEST);
        Resume::Continue
    }
}

/// The `ESR_EL1` value Linux reports for an EL0 abort: exception class, IL, WnR for writes,
/// and a level-3 translation or permission fault status.
fn fault_syndrome(access: Access, mapped: bool) -> u64 {
    const EC_IABT_LOW: u64 = 0x20;
    const EC_DABT_LOW: u64 = 0x24;
    const IL: u64 = 1 << 25;
    const WNR: u64 = 1 << 6;
    let status = if mapped { 0x0f } else { 0x07 };
    match access {
        Access::Execute => (EC_IABT_LOW << 26) | IL | status,
        Access::Read => (EC_DABT_LOW << 26) | IL | status,
        Access::Write => (EC_DABT_LOW << 26) | IL | WNR | status,
    }
}

/// Marks the task as gone for wake-ups.
pub fn mark_exited(shared: &TaskShared) {
    shared.set_state(EXITED);
}
