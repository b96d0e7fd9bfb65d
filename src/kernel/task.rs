//! A guest thread: its own state, and the exit handler that serves its vCPU.

use std::sync::Arc;

use tracing::debug;

use crate::kernel::abi::signal as sig;
use crate::kernel::abi::structs::SigaltStack;
use crate::kernel::process::Process;
use crate::kernel::signal::{self, SigInfo};
use crate::kernel::syscalls;
use crate::vm::{Access, CpuState, ExitHandler, Resume, VcpuExit};

/// How a guest process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit_group(code)`; only the low 8 bits reach the parent.
    Exited(u8),
    /// Killed by this (Linux) signal.
    Signaled(u32),
}

/// Why a thread's vCPU stopped for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The thread called `exit`.
    ThreadExit(i32),
    /// The whole process ends.
    ProcessExit(ExitStatus),
}

/// One guest thread.
pub struct Task {
    /// Thread id.
    pub tid: i32,
    /// The process it belongs to.
    pub process: Arc<Process>,
    /// Blocked signals.
    pub sigmask: u64,
    /// Signals sent to this thread and not yet delivered.
    pub pending: u64,
    /// Extra information for pending signals (faults).
    pub pending_info: Vec<SigInfo>,
    /// `set_tid_address` / `CLONE_CHILD_CLEARTID` address.
    pub clear_child_tid: u64,
    /// `set_robust_list` head and length.
    pub robust_list: (u64, u64),
    /// The thread name (`PR_SET_NAME`), NUL-padded.
    pub comm: [u8; 16],
    /// The alternate signal stack.
    pub altstack: SigaltStack,
    /// Set when the thread must stop running guest code.
    pub outcome: Option<Outcome>,
    /// A syscall interrupted by a signal, settled when the signal is delivered.
    pub interrupted: Option<signal::Interrupted>,
    /// The syndrome of the last memory fault, for the signal frame's `esr_context`.
    pub fault_esr: u64,
}

impl Task {
    /// The main thread of `process`, named after the program.
    pub fn main_thread(process: Arc<Process>, name: &[u8]) -> Task {
        let mut comm = [0u8; 16];
        let len = name.len().min(15);
        comm[..len].copy_from_slice(&name[..len]);
        Task {
            tid: process.pid,
            process,
            sigmask: 0,
            pending: 0,
            pending_info: Vec::new(),
            clear_child_tid: 0,
            robust_list: (0, 0),
            comm,
            altstack: SigaltStack {
                ss_flags: sig::SS_DISABLE,
                ..SigaltStack::default()
            },
            outcome: None,
            interrupted: None,
            fault_esr: 0,
        }
    }

    /// Handles a synchronous CPU exception by raising the matching signal.
    fn fault(&mut self, cpu: &mut dyn CpuState, exit: VcpuExit) {
        let info = match exit {
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
                let vma = self.process.memory.vmas().find(addr).cloned();
                if vma.as_ref().is_some_and(|v| v.past_eof) {
                    // A file page past the end of the file.
                    let info = SigInfo::fault(sig::SIGBUS, sig::code::BUS_ADRERR, addr);
                    signal::force_synchronous(self, cpu, info);
                    return;
                }
                let mapped = !unmapped || vma.is_some();
                self.fault_esr = fault_syndrome(access, mapped);
                let code = if mapped {
                    sig::code::SEGV_ACCERR
                } else {
                    sig::code::SEGV_MAPERR
                };
                SigInfo::fault(sig::SIGSEGV, code, addr)
            }
            VcpuExit::Alignment { addr } => {
                SigInfo::fault(sig::SIGBUS, sig::code::BUS_ADRALN, addr.unwrap_or(0))
            }
            VcpuExit::Undefined => SigInfo::fault(sig::SIGILL, sig::code::ILL_ILLOPC, cpu.pc()),
            VcpuExit::Breakpoint => SigInfo::fault(sig::SIGTRAP, sig::code::TRAP_BRKPT, cpu.pc()),
            VcpuExit::Syscall | VcpuExit::Interrupted => return,
        };
        signal::force_synchronous(self, cpu, info);
    }
}

impl ExitHandler for Task {
    fn on_exit(&mut self, cpu: &mut dyn CpuState, exit: VcpuExit) -> Resume {
        match exit {
            VcpuExit::Syscall => syscalls::dispatch(self, cpu),
            VcpuExit::Interrupted => {}
            other => self.fault(cpu, other),
        }
        if self.outcome.is_none() {
            signal::deliver_pending(self, cpu);
        }
        if self.outcome.is_some() {
            Resume::Stop
        } else {
            Resume::Continue
        }
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
