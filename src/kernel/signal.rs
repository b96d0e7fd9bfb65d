//! Signal delivery: the Linux arm64 `rt_sigframe`, handler entry and `rt_sigreturn`, default
//! actions, and the restart rules for interrupted syscalls.
//!
//! A frame is built exactly as `arch/arm64/kernel/signal.c` builds it: `siginfo`, then a
//! `ucontext` whose `sigcontext` holds the general registers, SP, PC and PSTATE, followed by a
//! `fpsimd_context` record (and an `esr_context` for memory faults) and a terminator, then a
//! frame record `{x29, x30}` above it. The handler runs with `x0` = signal, `x1` = `&info`,
//! `x2` = `&uc`, `x29` pointing at the frame record and `x30` at `sa_restorer`.

use bytemuck::{Pod, Zeroable};
use tracing::debug;

use crate::host::process::ChildState;
use crate::host::threads::{HostSignal, Origin};
use crate::kernel::abi::errno::Errno;
use crate::kernel::abi::signal::{self as sig, DefaultAction};
use crate::kernel::abi::structs::{KernelSigaction, SigaltStack};
use crate::kernel::process::lock;
use crate::kernel::task::{ExitStatus, Outcome, Task};
use crate::vm::vma::Vma;
use crate::vm::{CpuState, FpState, VcpuExit};

/// `siginfo_t` as the runtime builds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: u32,
    pub code: i32,
    pub errno: i32,
    /// The union's fields, as raw words at offsets 16 and 24 (and 32, 40 for `SIGCHLD`).
    pub fields: [u64; 4],
}

impl SigInfo {
    /// A signal caused by the CPU at `addr` (`si_addr`).
    pub fn fault(signo: u32, code: i32, addr: u64) -> SigInfo {
        SigInfo {
            signo,
            code,
            errno: 0,
            fields: [addr, 0, 0, 0],
        }
    }

    /// A signal sent by process `pid` with user `uid` (`kill`, `tgkill`).
    pub fn user(signo: u32, code: i32, pid: i32, uid: u32) -> SigInfo {
        let ids = u64::from(pid as u32) | (u64::from(uid) << 32);
        SigInfo {
            signo,
            code,
            errno: 0,
            fields: [ids, 0, 0, 0],
        }
    }

    /// A signal the kernel raises itself (`SI_KERNEL`: an interval timer's).
    pub fn kernel(signo: u32) -> SigInfo {
        SigInfo {
            signo,
            code: sig::code::SI_KERNEL,
            errno: 0,
            fields: [0; 4],
        }
    }

    /// A signal forwarded from the host, with the origin the host reported.
    pub fn from_host(signal: HostSignal) -> SigInfo {
        let ids = |pid: i32, uid: u32| u64::from(pid as u32) | (u64::from(uid) << 32);
        let (code, fields) = match signal.origin {
            Origin::Sent {
                code,
                pid,
                uid,
                value,
            } => (code, [ids(pid, uid), value, 0, 0]),
            Origin::Child(event) => {
                let (code, status) = match event.state {
                    ChildState::Exited(status) => (sig::code::CLD_EXITED, status as u32),
                    ChildState::Killed {
                        signal,
                        core: false,
                    } => (sig::code::CLD_KILLED, signal),
                    ChildState::Killed { signal, core: true } => (sig::code::CLD_DUMPED, signal),
                    ChildState::Stopped(signal) => (sig::code::CLD_STOPPED, signal),
                    ChildState::Continued => (sig::code::CLD_CONTINUED, sig::SIGCONT),
                };
                (code, [ids(event.pid, event.uid), u64::from(status), 0, 0])
            }
            Origin::Kernel => (sig::code::SI_KERNEL, [0; 4]),
        };
        SigInfo {
            signo: signal.signo,
            code,
            errno: 0,
            fields,
        }
    }

    /// Whether this is a hardware fault (`si_addr` meaningful, `esr_context` recorded).
    pub fn is_fault(&self) -> bool {
        matches!(
            self.signo,
            sig::SIGSEGV | sig::SIGBUS | sig::SIGILL | sig::SIGTRAP | sig::SIGFPE
        ) && self.code > 0
    }

    /// The 128-byte `siginfo_t`.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut out = [0u8; 128];
        out[0..4].copy_from_slice(&(self.signo as i32).to_le_bytes());
        out[4..8].copy_from_slice(&self.errno.to_le_bytes());
        out[8..12].copy_from_slice(&self.code.to_le_bytes());
        for (i, word) in self.fields.iter().enumerate() {
            out[16 + 8 * i..24 + 8 * i].copy_from_slice(&word.to_le_bytes());
        }
        out
    }
}

/// Magic numbers of the `__reserved` records.
const FPSIMD_MAGIC: u32 = 0x4650_8001;
const ESR_MAGIC: u32 = 0x4553_5201;
const FPSIMD_CONTEXT_SIZE: u32 = 528;
const ESR_CONTEXT_SIZE: u32 = 16;

/// Offsets inside `struct rt_sigframe`.
const INFO_SIZE: u64 = 128;
const UC_OFFSET: u64 = INFO_SIZE;
const UC_STACK: u64 = UC_OFFSET + 16;
const UC_SIGMASK: u64 = UC_OFFSET + 40;
const MCONTEXT: u64 = UC_OFFSET + 176;
const RESERVED: u64 = MCONTEXT + 288;
const RESERVED_SIZE: u64 = 4096;
/// `sizeof(struct rt_sigframe)`.
pub const FRAME_SIZE: u64 = RESERVED + RESERVED_SIZE;

/// `struct sigcontext`'s fixed part.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SigContextRegs {
    fault_address: u64,
    regs: [u64; 31],
    sp: u64,
    pc: u64,
    pstate: u64,
}

/// Internal "restart" results a handler may return; never visible to the guest.
pub mod restart {
    use crate::kernel::abi::errno::Errno;

    /// Restart if the signal's handler has `SA_RESTART`, else `EINTR`.
    pub const ERESTARTSYS: Errno = match Errno::from_raw(512) {
        Some(e) => e,
        None => panic!(),
    };
    /// Always restart.
    pub const ERESTARTNOINTR: Errno = match Errno::from_raw(513) {
        Some(e) => e,
        None => panic!(),
    };
    /// Restart only if no handler runs.
    pub const ERESTARTNOHAND: Errno = match Errno::from_raw(514) {
        Some(e) => e,
        None => panic!(),
    };
    /// `EINTR` if a handler runs; otherwise resume through `restart_syscall(2)`, which runs
    /// the [`RestartBlock`](super::RestartBlock) the call left in its task.
    pub const ERESTART_RESTARTBLOCK: Errno = match Errno::from_raw(516) {
        Some(e) => e,
        None => panic!(),
    };

    /// Whether `e` is one of the internal restart codes.
    pub fn is_restart(e: Errno) -> bool {
        matches!(e.raw(), 512..=516)
    }
}

/// The rest of an interrupted call, which `restart_syscall(2)` runs: a call that must not start
/// over (a wait towards a deadline computed from a relative timeout) leaves one in its task
/// and returns [`restart::ERESTART_RESTARTBLOCK`].
pub type RestartBlock = Box<dyn FnOnce(&mut Task) -> crate::kernel::abi::errno::SysResult + Send>;

/// `restart_syscall`'s number, which a restart through a [`RestartBlock`] puts in `x8`.
const NR_RESTART_SYSCALL: u64 = 128;

/// A syscall interrupted by a signal, waiting for the delivery decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupted {
    /// The internal restart code it returned.
    pub code: Errno,
    /// The original `x0`, restored when the call restarts.
    pub x0: u64,
}

/// Pending signals: a set, and the `siginfo` of each queued instance. Standard signals
/// coalesce (one instance at most); real-time signals queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SigQueue {
    set: u64,
    queue: std::collections::VecDeque<SigInfo>,
}

/// Linux's default `RLIMIT_SIGPENDING`-like bound on queued real-time signals per queue.
const MAX_QUEUED: usize = 4096;

impl SigQueue {
    /// The pending signals.
    pub fn set(&self) -> u64 {
        self.set
    }

    /// Queues `info`; false if a real-time signal could not be queued (the queue is full).
    pub fn push(&mut self, info: SigInfo) -> bool {
        let bit = sig::bit(info.signo);
        if info.signo < sig::SIGRTMIN {
            if self.set & bit == 0 {
                self.queue.push_back(info);
            }
        } else {
            if self.queue.len() >= MAX_QUEUED {
                return false;
            }
            self.queue.push_back(info);
        }
        self.set |= bit;
        true
    }

    /// Takes the oldest instance of `signo`.
    pub fn take(&mut self, signo: u32) -> Option<SigInfo> {
        let position = self.queue.iter().position(|i| i.signo == signo)?;
        let info = self.queue.remove(position);
        if !self.queue.iter().any(|i| i.signo == signo) {
            self.set &= !sig::bit(signo);
        }
        info
    }

    /// The queued instance `matches` picks, to change in place (a timer's one signal).
    pub fn find_mut(&mut self, matches: impl Fn(&SigInfo) -> bool) -> Option<&mut SigInfo> {
        self.queue.iter_mut().find(|info| matches(info))
    }

    /// Removes every instance of `signo` (it became ignored).
    pub fn discard(&mut self, signo: u32) {
        self.queue.retain(|i| i.signo != signo);
        self.set &= !sig::bit(signo);
    }

    /// The next signal in `allowed` to deliver: a synchronous fault first, then the lowest
    /// number, as Linux picks them.
    pub fn next(&self, allowed: u64) -> Option<u32> {
        let deliverable = self.set & allowed;
        if deliverable == 0 {
            return None;
        }
        let fault = self
            .queue
            .iter()
            .find(|i| i.is_fault() && deliverable & sig::bit(i.signo) != 0);
        Some(fault.map_or(deliverable.trailing_zeros() + 1, |i| i.signo))
    }
}

/// Queues `info` for the calling thread itself.
pub fn raise(task: &mut Task, info: SigInfo) {
    lock(&task.shared.pending).push(info);
}

/// Delivers a CPU fault now: like Linux's `force_sig_fault`, a blocked or ignored fault signal
/// is unblocked and reset to its default action (which ends the process).
/// The signal Linux arm64 sends for a synchronous CPU exception, given the PC and the
/// mapping at the fault address; `None` for exits that are not faults.
///
/// A memory fault in a file mapping's pages past the end of the file is `SIGBUS`/`BUS_ADRERR`;
/// any other is `SIGSEGV`, `SEGV_ACCERR` where a mapping exists (even if the CPU found no
/// translation, as for `PROT_NONE` pages) and `SEGV_MAPERR` otherwise.
pub fn fault_siginfo(exit: VcpuExit, pc: u64, vma: Option<&Vma>) -> Option<SigInfo> {
    let info = match exit {
        VcpuExit::MemoryFault { addr, unmapped, .. } => {
            if vma.is_some_and(|v| v.past_eof) {
                SigInfo::fault(sig::SIGBUS, sig::code::BUS_ADRERR, addr)
            } else if !unmapped || vma.is_some() {
                SigInfo::fault(sig::SIGSEGV, sig::code::SEGV_ACCERR, addr)
            } else {
                SigInfo::fault(sig::SIGSEGV, sig::code::SEGV_MAPERR, addr)
            }
        }
        VcpuExit::Alignment { addr } => {
            SigInfo::fault(sig::SIGBUS, sig::code::BUS_ADRALN, addr.unwrap_or(0))
        }
        VcpuExit::Undefined => SigInfo::fault(sig::SIGILL, sig::code::ILL_ILLOPC, pc),
        VcpuExit::Breakpoint => SigInfo::fault(sig::SIGTRAP, sig::code::TRAP_BRKPT, pc),
        VcpuExit::Syscall | VcpuExit::Interrupted | VcpuExit::Debug(_) => return None,
    };
    Some(info)
}

pub fn force_synchronous(task: &mut Task, cpu: &mut dyn CpuState, info: SigInfo) {
    let bit = sig::bit(info.signo);
    let mut actions = lock(&task.process.sigactions);
    let action = &mut actions[info.signo as usize - 1];
    if task.sigmask() & bit != 0 || action.handler == sig::SIG_IGN {
        action.handler = sig::SIG_DFL;
        drop(actions);
        let mask = task.sigmask() & !bit;
        task.set_sigmask(mask);
    } else {
        drop(actions);
    }
    raise(task, info);
    deliver_pending(task, cpu);
}

/// Takes the next deliverable signal for `task`, from its own queue first, dropping the stale
/// signals of timers.
fn take_next(task: &Task) -> Option<SigInfo> {
    loop {
        let mut info = take_queued(task)?;
        if task.process.timers.on_dequeue(&mut info) {
            return Some(info);
        }
    }
}

/// Takes the next deliverable queued signal for `task`, from its own queue first.
fn take_queued(task: &Task) -> Option<SigInfo> {
    let allowed = !task.sigmask();
    let mut own = lock(&task.shared.pending);
    if let Some(signo) = own.next(allowed) {
        return own.take(signo);
    }
    drop(own);
    let mut shared = lock(&task.process.pending);
    let signo = shared.next(allowed)?;
    shared.take(signo)
}

/// Delivers the next deliverable pending signal, if any, and settles an interrupted syscall.
pub fn deliver_pending(task: &mut Task, cpu: &mut dyn CpuState) {
    let interrupted = task.interrupted.take();
    let taken = take_next(task).and_then(|info| crate::gdb::on_signal(task, cpu, info));
    let Some(info) = taken else {
        if let Some(call) = interrupted {
            restart_syscall(cpu, call);
        }
        restore_saved_mask(task);
        return;
    };
    let signo = info.signo;
    if let Some(tracer) = &task.process.tracer {
        let name = sig::name(signo).map_or_else(|| signo.to_string(), |n| format!("SIG{n}"));
        tracer.note(
            task.tid,
            &format!("--- {name} {{si_signo={name}, si_code={}}} ---", info.code),
        );
    }

    let action = lock(&task.process.sigactions)[signo as usize - 1];
    match action.handler {
        sig::SIG_IGN => {
            if let Some(call) = interrupted {
                restart_syscall(cpu, call);
            }
        }
        sig::SIG_DFL => match sig::default_action(signo) {
            DefaultAction::Ignore | DefaultAction::Continue => {
                if let Some(call) = interrupted {
                    restart_syscall(cpu, call);
                }
            }
            DefaultAction::Stop => {
                crate::host::signals::stop_self(signo);
                if let Some(call) = interrupted {
                    restart_syscall(cpu, call);
                }
            }
            DefaultAction::Terminate | DefaultAction::Core => {
                debug!(tid = task.tid, signo, "guest killed by signal");
                task.outcome = Some(Outcome::ProcessExit(ExitStatus::Signaled(signo)));
            }
        },
        _ => {
            if let Some(call) = interrupted {
                let restart = call.code == restart::ERESTARTNOINTR
                    || (call.code == restart::ERESTARTSYS && action.flags & sig::SA_RESTART != 0);
                if restart {
                    restart_syscall(cpu, call);
                } else {
                    cpu.set_x(0, Errno::EINTR.as_return());
                }
            }
            if let Err(e) = run_handler(task, cpu, signo, &action, &info) {
                debug!(
                    tid = task.tid,
                    signo,
                    ?e,
                    "cannot build a signal frame; forcing SIGSEGV"
                );
                let mut actions = lock(&task.process.sigactions);
                actions[sig::SIGSEGV as usize - 1].handler = sig::SIG_DFL;
                drop(actions);
                task.outcome = Some(Outcome::ProcessExit(ExitStatus::Signaled(sig::SIGSEGV)));
            }
        }
    }
    restore_saved_mask(task);
}

/// After `rt_sigsuspend`, the mask from before the call comes back once no handler ran.
fn restore_saved_mask(task: &mut Task) {
    if let Some(mask) = task.saved_mask.take() {
        task.set_sigmask(mask);
    }
}

/// Makes the interrupted syscall run again: PC back onto the `svc`, `x0` restored, and for
/// `ERESTART_RESTARTBLOCK` the number turned into `restart_syscall`'s, as arm64 Linux does.
fn restart_syscall(cpu: &mut dyn CpuState, call: Interrupted) {
    cpu.set_x(0, call.x0);
    if call.code == restart::ERESTART_RESTARTBLOCK {
        cpu.set_x(8, NR_RESTART_SYSCALL);
    }
    cpu.set_pc(cpu.pc() - 4);
}

/// Writes the signal frame and enters the handler.
fn run_handler(
    task: &mut Task,
    cpu: &mut dyn CpuState,
    signo: u32,
    action: &KernelSigaction,
    info: &SigInfo,
) -> Result<(), Errno> {
    let memory = task.memory.clone();
    let sp = cpu.sp();

    // Choose the stack: the alternate one if asked for and not already on it.
    let on_altstack = task.altstack.ss_flags & sig::SS_DISABLE == 0
        && sp.wrapping_sub(task.altstack.ss_sp) < task.altstack.ss_size;
    let use_altstack = action.flags & sig::SA_ONSTACK != 0
        && task.altstack.ss_flags & sig::SS_DISABLE == 0
        && !on_altstack;
    let saved_altstack = task.altstack;
    let top = if use_altstack {
        task.altstack.ss_sp + task.altstack.ss_size
    } else {
        sp
    };

    let record = (top & !15) - 16;
    let frame = (record - FRAME_SIZE) & !15;

    // siginfo, ucontext head, registers.
    memory.write(frame, &info.to_bytes())?;
    let mut uc_head = [0u8; 48];
    let stack = SigaltStack {
        ss_sp: saved_altstack.ss_sp,
        ss_flags: if on_altstack {
            sig::SS_ONSTACK
        } else {
            saved_altstack.ss_flags
        },
        __pad: 0,
        ss_size: saved_altstack.ss_size,
    };
    uc_head[16..40].copy_from_slice(bytemuck::bytes_of(&stack));
    // After rt_sigsuspend the handler returns to the mask from before the call.
    let return_mask = task.saved_mask.take().unwrap_or_else(|| task.sigmask());
    uc_head[40..48].copy_from_slice(&return_mask.to_le_bytes());
    memory.write(frame + UC_OFFSET, &uc_head)?;
    memory.write(frame + UC_SIGMASK + 8, &[0u8; 120])?;

    let mut regs = SigContextRegs {
        fault_address: if info.is_fault() { info.fields[0] } else { 0 },
        regs: [0; 31],
        sp,
        pc: cpu.pc(),
        pstate: cpu.pstate(),
    };
    for (n, r) in regs.regs.iter_mut().enumerate() {
        *r = cpu.x(n);
    }
    memory.write_val(frame + MCONTEXT, &regs)?;

    // The __reserved records: fpsimd_context, esr_context for faults, then the terminator.
    let mut reserved = vec![0u8; RESERVED_SIZE as usize];
    let fp = cpu.fp();
    reserved[0..4].copy_from_slice(&FPSIMD_MAGIC.to_le_bytes());
    reserved[4..8].copy_from_slice(&FPSIMD_CONTEXT_SIZE.to_le_bytes());
    reserved[8..12].copy_from_slice(&fp.fpsr.to_le_bytes());
    reserved[12..16].copy_from_slice(&fp.fpcr.to_le_bytes());
    for (n, v) in fp.v.iter().enumerate() {
        reserved[16 + 16 * n..32 + 16 * n].copy_from_slice(&v.to_le_bytes());
    }
    if info.is_fault() && matches!(info.signo, sig::SIGSEGV | sig::SIGBUS) {
        let at = FPSIMD_CONTEXT_SIZE as usize;
        reserved[at..at + 4].copy_from_slice(&ESR_MAGIC.to_le_bytes());
        reserved[at + 4..at + 8].copy_from_slice(&ESR_CONTEXT_SIZE.to_le_bytes());
        reserved[at + 8..at + 16].copy_from_slice(&task.fault_esr.to_le_bytes());
    }
    memory.write(frame + RESERVED, &reserved)?;

    // The frame record {x29, x30}.
    memory.write_val(record, &[cpu.x(29), cpu.x(30)])?;

    // Enter the handler.
    let mut mask = task.sigmask() | action.mask;
    if action.flags & sig::SA_NODEFER == 0 {
        mask |= sig::bit(signo);
    }
    task.set_sigmask(mask);
    if action.flags & sig::SA_RESETHAND != 0 {
        let mut actions = lock(&task.process.sigactions);
        let reset = &mut actions[signo as usize - 1];
        reset.handler = sig::SIG_DFL;
        reset.flags &= !sig::SA_SIGINFO;
    }
    if use_altstack && saved_altstack.ss_flags & sig::SS_AUTODISARM != 0 {
        task.altstack = SigaltStack {
            ss_flags: sig::SS_DISABLE,
            ..SigaltStack::default()
        };
    }

    cpu.set_x(0, u64::from(signo));
    if action.flags & sig::SA_SIGINFO != 0 {
        cpu.set_x(1, frame);
        cpu.set_x(2, frame + UC_OFFSET);
    }
    cpu.set_sp(frame);
    cpu.set_x(29, record);
    let trampoline = lock(&task.process.mm).sigreturn_trampoline;
    let restorer = if action.flags & sig::SA_RESTORER != 0 {
        action.restorer
    } else {
        trampoline
    };
    cpu.set_x(30, restorer);
    cpu.set_pc(action.handler);
    Ok(())
}

/// `rt_sigreturn(2)`: restores the context saved in the frame at SP. Returns the restored `x0`.
pub fn sigreturn(task: &mut Task, cpu: &mut dyn CpuState) -> Result<u64, Errno> {
    let memory = task.memory.clone();
    let frame = cpu.sp();
    if !frame.is_multiple_of(16) {
        return Err(Errno::EFAULT);
    }
    let regs: SigContextRegs = memory.read_val(frame + MCONTEXT)?;
    let mask: u64 = memory.read_val(frame + UC_SIGMASK)?;
    let stack: SigaltStack = memory.read_val(frame + UC_STACK)?;

    // Walk the records for the FP/SIMD state.
    let mut fp: Option<FpState> = None;
    let mut offset = 0u64;
    while offset + 8 <= RESERVED_SIZE {
        let head: [u32; 2] = memory.read_val(frame + RESERVED + offset)?;
        let (magic, size) = (head[0], u64::from(head[1]));
        if magic == 0 {
            break;
        }
        if size < 8 || size % 16 != 0 || offset + size > RESERVED_SIZE {
            return Err(Errno::EFAULT);
        }
        if magic == FPSIMD_MAGIC && size == u64::from(FPSIMD_CONTEXT_SIZE) {
            let raw: [u8; 528] = memory.read_val(frame + RESERVED + offset)?;
            let mut state = FpState {
                fpsr: u32::from_le_bytes(raw[8..12].try_into().expect("4 bytes")),
                fpcr: u32::from_le_bytes(raw[12..16].try_into().expect("4 bytes")),
                ..FpState::default()
            };
            for (n, v) in state.v.iter_mut().enumerate() {
                *v = u128::from_le_bytes(raw[16 + 16 * n..32 + 16 * n].try_into().expect("16"));
            }
            fp = Some(state);
        }
        offset += size;
    }
    let Some(fp) = fp else {
        return Err(Errno::EFAULT);
    };

    for (n, value) in regs.regs.iter().enumerate() {
        cpu.set_x(n, *value);
    }
    cpu.set_sp(regs.sp);
    cpu.set_pc(regs.pc);
    cpu.set_pstate(regs.pstate);
    cpu.set_fp(&fp);
    task.set_sigmask(mask);
    // A handler ran: what was interrupted before it is not resumed (`restart_syscall` would
    // now fail with EINTR).
    task.restart_block = None;

    // restore_altstack: like sigaltstack(&uc_stack, NULL), errors ignored.
    let _ = set_altstack(task, cpu.sp(), &stack);
    Ok(regs.regs[0])
}

/// `sigaltstack` semantics for a new stack description `new` while running on `sp`.
pub fn set_altstack(task: &mut Task, sp: u64, new: &SigaltStack) -> Result<(), Errno> {
    let current = task.altstack;
    let on_stack =
        current.ss_flags & sig::SS_DISABLE == 0 && sp.wrapping_sub(current.ss_sp) < current.ss_size;
    if on_stack {
        return Err(Errno::EPERM);
    }
    let mode = new.ss_flags & !sig::SS_AUTODISARM;
    if mode != 0 && mode != sig::SS_DISABLE && mode != sig::SS_ONSTACK {
        return Err(Errno::EINVAL);
    }
    if mode == sig::SS_DISABLE {
        task.altstack = SigaltStack {
            ss_flags: sig::SS_DISABLE,
            ..SigaltStack::default()
        };
        return Ok(());
    }
    if new.ss_size < sig::MINSIGSTKSZ {
        return Err(Errno::ENOMEM);
    }
    task.altstack = SigaltStack {
        ss_sp: new.ss_sp,
        ss_flags: new.ss_flags & sig::SS_AUTODISARM,
        __pad: 0,
        ss_size: new.ss_size,
    };
    Ok(())
}

/// The `sigaltstack` value a query reports while running on `sp`.
pub fn get_altstack(task: &Task, sp: u64) -> SigaltStack {
    let mut current = task.altstack;
    let on_stack =
        current.ss_flags & sig::SS_DISABLE == 0 && sp.wrapping_sub(current.ss_sp) < current.ss_size;
    if on_stack {
        current.ss_flags |= sig::SS_ONSTACK;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_layout_matches_arm64() {
        assert_eq!(MCONTEXT - UC_OFFSET, 176, "uc_mcontext offset in ucontext");
        assert_eq!(RESERVED - MCONTEXT, 288, "__reserved offset in sigcontext");
        assert_eq!(FRAME_SIZE, 4688, "sizeof(struct rt_sigframe)");
        assert_eq!(std::mem::size_of::<SigContextRegs>(), 280);
    }

    #[test]
    fn siginfo_puts_fields_where_glibc_reads_them() {
        let info = SigInfo::fault(sig::SIGSEGV, sig::code::SEGV_MAPERR, 0xdead_b000);
        let bytes = info.to_bytes();
        assert_eq!(i32::from_le_bytes(bytes[0..4].try_into().unwrap()), 11);
        assert_eq!(i32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1);
        assert_eq!(
            u64::from_le_bytes(bytes[16..24].try_into().unwrap()),
            0xdead_b000
        );
        let kill = SigInfo::user(sig::SIGUSR1, sig::code::SI_USER, 42, 1000);
        let bytes = kill.to_bytes();
        assert_eq!(i32::from_le_bytes(bytes[16..20].try_into().unwrap()), 42);
        assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 1000);
    }
}
