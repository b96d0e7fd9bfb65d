//! The CPU side of the runtime: the [`Vcpu`] trait every backend implements, guest memory, and
//! backend selection.
//!
//! The runtime never names a concrete backend. It asks [`Backend::create_vcpu`] for a vCPU on
//! the thread that will run it, then calls [`Vcpu::run`] with an [`ExitHandler`]; the backend
//! calls the handler for every exit (a syscall, a fault, an undefined instruction, an
//! interruption) with access to the registers through [`CpuState`], and keeps running the guest
//! until the handler answers [`Resume::Stop`].
//!
//! Handling exits through a callback rather than returning from `run` lets the emulator serve a
//! syscall without leaving its execution loop, which is most of the cost of a null syscall
//! there; the hvf backend simply calls the handler from its own run loop.

pub mod cpufeatures;
pub mod hvf;
pub mod memory;
pub mod vma;

#[cfg(elfuse_emu)]
pub mod emu;

use std::collections::BTreeSet;
use std::sync::Arc;

use thiserror::Error;

use self::memory::GuestMemory;

/// The kind of memory access that faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Execute,
}

/// Why the vCPU stopped running guest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuExit {
    /// `svc #0`; the PC is already past the instruction.
    Syscall,
    /// A load, store or fetch the mappings do not allow; the PC is the faulting instruction.
    MemoryFault {
        /// The faulting address.
        addr: u64,
        /// What kind of access it was.
        access: Access,
        /// True if nothing is mapped there (`SEGV_MAPERR`), false for a permission fault
        /// (`SEGV_ACCERR`).
        unmapped: bool,
    },
    /// A misaligned access the CPU refused (`SIGBUS`/`BUS_ADRALN`).
    Alignment {
        /// The faulting address, when the backend knows it.
        addr: Option<u64>,
    },
    /// An undefined or disallowed instruction; the PC is the instruction.
    Undefined,
    /// A `brk` instruction; the PC is the instruction.
    Breakpoint,
    /// Another thread asked this vCPU to stop ([`VcpuHandle::kick`]).
    Interrupted,
    /// A stop the debugger asked for with [`CpuState::set_debug`]; the PC is the next
    /// instruction to run (a breakpoint's or watched access's instruction has not run).
    Debug(DebugStop),
}

/// Why a vCPU stopped for the debugger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugStop {
    /// The PC reached a breakpoint address.
    Breakpoint,
    /// One instruction ran in single-step mode.
    Step,
    /// The instruction at the PC is about to access watched memory.
    Watchpoint {
        /// The first byte of the access.
        addr: u64,
        /// Whether it reads or writes.
        access: Access,
    },
}

/// The accesses a watchpoint stops on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchKind {
    /// Stores.
    Write,
    /// Loads.
    Read,
    /// Loads and stores.
    Access,
}

impl WatchKind {
    /// Whether an access of kind `access` triggers this watchpoint.
    pub fn matches(self, access: Access) -> bool {
        match self {
            WatchKind::Write => access == Access::Write,
            WatchKind::Read => access == Access::Read,
            WatchKind::Access => access != Access::Execute,
        }
    }
}

/// A watched range of guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Watchpoint {
    /// First byte.
    pub addr: u64,
    /// Length in bytes (at least 1).
    pub len: u64,
    /// The accesses that stop.
    pub kind: WatchKind,
}

impl Watchpoint {
    /// Whether an access of `len` bytes at `addr` overlaps the watched range.
    pub fn overlaps(&self, addr: u64, len: u64) -> bool {
        addr < self.addr.saturating_add(self.len) && self.addr < addr.saturating_add(len.max(1))
    }
}

/// Where a debugger wants a vCPU to stop: set with [`CpuState::set_debug`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DebugConfig {
    /// Instruction addresses that stop before they run ([`DebugStop::Breakpoint`]).
    pub breakpoints: BTreeSet<u64>,
    /// Watched memory ([`DebugStop::Watchpoint`]).
    pub watchpoints: Vec<Watchpoint>,
    /// Run one instruction, then stop ([`DebugStop::Step`]).
    pub step: bool,
}

impl DebugConfig {
    /// Whether nothing is asked for.
    pub fn is_empty(&self) -> bool {
        self.breakpoints.is_empty() && self.watchpoints.is_empty() && !self.step
    }
}

/// A debugger request a backend cannot carry out.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DebugError {
    /// The backend has no debug support.
    #[error("debugging is not supported on the {0} backend")]
    Unsupported(&'static str),
    /// The backend refused the configuration.
    #[error("the CPU backend cannot set up the debugger's request: {0}")]
    Backend(String),
}

/// What the exit handler wants the vCPU to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Keep running the guest from the (possibly changed) PC.
    Continue,
    /// Return from [`Vcpu::run`].
    Stop,
}

/// The FP/SIMD register file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FpState {
    /// `v0`..`v31`.
    pub v: [u128; 32],
    /// `FPSR`.
    pub fpsr: u32,
    /// `FPCR`.
    pub fpcr: u32,
}

/// The whole EL0-visible register state of a vCPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuSnapshot {
    /// `x0`..`x30`.
    pub x: [u64; 31],
    /// `SP_EL0`.
    pub sp: u64,
    /// The program counter.
    pub pc: u64,
    /// NZCV and the other EL0-visible `PSTATE` bits.
    pub pstate: u64,
    /// `TPIDR_EL0`.
    pub tpidr: u64,
    /// FP/SIMD registers.
    pub fp: FpState,
}

/// Register access for exit handlers.
pub trait CpuState {
    /// General register `x<n>`, `n` in `0..=30`.
    fn x(&self, n: usize) -> u64;
    /// Sets general register `x<n>`.
    fn set_x(&mut self, n: usize, value: u64);
    /// The program counter.
    fn pc(&self) -> u64;
    /// Sets the program counter; the guest resumes there.
    fn set_pc(&mut self, value: u64);
    /// The stack pointer (`SP_EL0`).
    fn sp(&self) -> u64;
    /// Sets the stack pointer.
    fn set_sp(&mut self, value: u64);
    /// `PSTATE` as an SPSR value (NZCV and the other EL0-visible bits).
    fn pstate(&self) -> u64;
    /// Sets the EL0-writable bits of `PSTATE`.
    fn set_pstate(&mut self, value: u64);
    /// The thread pointer, `TPIDR_EL0`.
    fn tpidr(&self) -> u64;
    /// Sets the thread pointer.
    fn set_tpidr(&mut self, value: u64);
    /// The FP/SIMD registers.
    fn fp(&self) -> FpState;
    /// Sets the FP/SIMD registers.
    fn set_fp(&mut self, fp: &FpState);

    /// Makes the vCPU stop for a debugger as `config` says, from the next guest instruction
    /// on (taking effect when the current exit handler returns).
    fn set_debug(&mut self, config: &DebugConfig) -> Result<(), DebugError> {
        let _ = config;
        Err(DebugError::Unsupported("current"))
    }

    /// Every register, for a new thread or process that starts as a copy of this one.
    fn snapshot(&self) -> CpuSnapshot {
        let mut x = [0u64; 31];
        for (n, v) in x.iter_mut().enumerate() {
            *v = self.x(n);
        }
        CpuSnapshot {
            x,
            sp: self.sp(),
            pc: self.pc(),
            pstate: self.pstate(),
            tpidr: self.tpidr(),
            fp: self.fp(),
        }
    }

    /// Loads every register from `snapshot`.
    fn restore(&mut self, snapshot: &CpuSnapshot) {
        for (n, v) in snapshot.x.iter().enumerate() {
            self.set_x(n, *v);
        }
        self.set_sp(snapshot.sp);
        self.set_pc(snapshot.pc);
        self.set_pstate(snapshot.pstate);
        self.set_tpidr(snapshot.tpidr);
        self.set_fp(&snapshot.fp);
    }

    /// The syscall number (`x8`) and the six argument registers `x0`..`x5`.
    fn syscall_args(&self) -> (u64, [u64; 6]) {
        let args = [
            self.x(0),
            self.x(1),
            self.x(2),
            self.x(3),
            self.x(4),
            self.x(5),
        ];
        (self.x(8), args)
    }
}

/// Receives every exit of a running vCPU.
pub trait ExitHandler {
    /// Handles `exit`; registers may be read and changed through `cpu`.
    fn on_exit(&mut self, cpu: &mut dyn CpuState, exit: VcpuExit) -> Resume;
}

/// A vCPU failure that is not the guest's doing.
#[derive(Debug, Error)]
pub enum VcpuError {
    /// The backend could not create or configure a vCPU.
    #[error("cannot create a vCPU: {0}")]
    Create(String),
    /// The backend failed while running guest code.
    #[error("the CPU backend failed: {0}")]
    Run(String),
    /// Mirroring a guest memory change into the backend failed.
    #[error("cannot update guest memory in the CPU backend: {0}")]
    Memory(String),
}

/// One virtual CPU, owned by (and only used on) the host thread that created it.
pub trait Vcpu {
    /// Runs guest code from the current PC, calling `handler` for every exit, until the handler
    /// returns [`Resume::Stop`].
    fn run(&mut self, handler: &mut dyn ExitHandler) -> Result<(), VcpuError>;

    /// Register access outside of [`Vcpu::run`] (initial state, `execve`).
    fn state(&mut self) -> &mut dyn CpuState;

    /// A handle other threads may use to interrupt this vCPU.
    fn handle(&self) -> VcpuHandle;
}

/// The backend-specific part of a [`VcpuHandle`].
pub trait Kick: Send + Sync {
    /// Makes the vCPU leave guest code soon and report [`VcpuExit::Interrupted`].
    fn kick(&self);
}

/// A `Send` handle to interrupt a vCPU from another thread.
#[derive(Clone)]
pub struct VcpuHandle(Arc<dyn Kick>);

impl VcpuHandle {
    /// Wraps a backend's kick implementation.
    pub fn new(kick: Arc<dyn Kick>) -> VcpuHandle {
        VcpuHandle(kick)
    }

    /// Interrupts the vCPU: it reports [`VcpuExit::Interrupted`] at its next chance, or right
    /// away when it next runs if it is not running now.
    pub fn kick(&self) {
        self.0.kick();
    }
}

/// CPU features the backend really implements, as `AT_HWCAP`/`AT_HWCAP2` bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HwCaps {
    /// `AT_HWCAP`.
    pub hwcap: u64,
    /// `AT_HWCAP2`.
    pub hwcap2: u64,
}

/// Which backend to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// hvf where it is available, the emulator otherwise.
    #[default]
    Auto,
    /// The unicorn CPU emulator.
    Emu,
    /// Hypervisor.framework (macOS on Apple Silicon).
    Hvf,
}

/// A backend was asked for that this build or host cannot provide.
#[derive(Debug, Error)]
pub enum BackendError {
    /// The backend is not part of this build or host.
    #[error("the {0} backend is not available on this host{1}")]
    Unavailable(&'static str, &'static str),
    /// The backend exists but failed to start.
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
}

/// A CPU backend: creates vCPUs over one guest memory.
pub trait Backend: Send + Sync {
    /// The backend's name (`"emu"` or `"hvf"`).
    fn name(&self) -> &'static str;

    /// The CPU features guest code may use.
    fn hwcaps(&self) -> HwCaps;

    /// Creates a vCPU over `memory` on the calling thread, mapping every current VMA.
    fn create_vcpu(&self, memory: Arc<GuestMemory>) -> Result<Box<dyn Vcpu>, VcpuError>;

    /// Whether guest threads must run one at a time: true where the vCPUs do not make each
    /// other's atomic instructions atomic (the emulator).
    fn serializes_guests(&self) -> bool;

    /// Whether its vCPUs carry out [`CpuState::set_debug`] (breakpoints, watchpoints, steps).
    fn supports_debug(&self) -> bool {
        false
    }
}

/// Picks the backend for `kind` on this host.
pub fn select_backend(kind: BackendKind) -> Result<Arc<dyn Backend>, BackendError> {
    match kind {
        BackendKind::Emu => emu_backend(),
        BackendKind::Hvf => hvf_backend(),
        BackendKind::Auto => hvf_backend().or_else(|_| emu_backend()),
    }
}

#[cfg(elfuse_emu)]
fn emu_backend() -> Result<Arc<dyn Backend>, BackendError> {
    Ok(Arc::new(emu::EmuBackend::new()?))
}

#[cfg(not(elfuse_emu))]
fn emu_backend() -> Result<Arc<dyn Backend>, BackendError> {
    Err(BackendError::Unavailable(
        "emu",
        " (rebuild with `--features emu` to include it)",
    ))
}

#[cfg(elfuse_hvf)]
fn hvf_backend() -> Result<Arc<dyn Backend>, BackendError> {
    Err(BackendError::Unavailable(
        "hvf",
        " yet (this build does not include it)",
    ))
}

#[cfg(not(elfuse_hvf))]
fn hvf_backend() -> Result<Arc<dyn Backend>, BackendError> {
    Err(BackendError::Unavailable(
        "hvf",
        " (it needs macOS on Apple Silicon)",
    ))
}
