//! The Linux kernel elfuse provides: processes and threads, their memory, files and signals,
//! and the syscalls that operate on them.
//!
//! [`run`] is the entry point: it loads a program into a fresh address space, builds the
//! process around it and runs its main thread on a vCPU until the process exits.

pub mod abi;
pub mod exec;
pub mod fd;
pub mod file;
pub mod fork;
pub mod fs;
pub mod futex;
pub mod handover;
pub mod image;
pub mod mm;
pub mod poll;
pub mod process;
pub mod sched;
pub mod signal;
pub mod syscalls;
pub mod task;
pub mod thread;
pub mod timer;

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use thiserror::Error;
use tracing::debug;

use crate::host;
use crate::kernel::abi::structs::KernelSigaction;
use crate::kernel::fd::FdTable;
use crate::kernel::file::OpenFile;
pub use crate::kernel::fs::root::GuestRoot;
use crate::kernel::image::ImageSpec;
use crate::kernel::process::{Credentials, PrctlState, Process, ProcessInit, lock};
use crate::kernel::signal::SigInfo;
use crate::kernel::task::{Task, comm_of};
use crate::loader::LoaderError;
use crate::trace::Tracer;
use crate::vm::{Backend, VcpuError};

pub use self::task::ExitStatus;

/// Where the program comes from.
pub enum Program {
    /// A file on the host.
    Path(PathBuf),
    /// Bytes built into elfuse (`elfuse selftest`).
    Embedded(&'static [u8]),
}

/// Everything needed to start a guest process.
pub struct RunSpec {
    /// The executable.
    pub program: Program,
    /// The name the program was invoked by (`AT_EXECFN`, `/proc/self/exe`).
    pub execfn: Vec<u8>,
    /// `argv`, including `argv[0]`.
    pub argv: Vec<Vec<u8>>,
    /// The environment, `KEY=VALUE` strings.
    pub env: Vec<Vec<u8>>,
    /// The CPU backend.
    pub backend: Arc<dyn Backend>,
    /// The syscall tracer, if tracing.
    pub tracer: Option<Tracer>,
    /// The guest's root directory.
    pub root: GuestRoot,
    /// Serve a debugger (`--gdb`).
    pub debug: Option<crate::gdb::GdbOptions>,
}

/// Why a guest could not be started or kept running.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The program could not be loaded.
    #[error(transparent)]
    Loader(#[from] LoaderError),
    /// The program's dynamic loader cannot be loaded.
    #[error(transparent)]
    Interpreter(#[from] image::InterpreterError),
    /// Guest memory could not be reserved.
    #[error("cannot reserve guest memory: {0}")]
    Memory(std::io::Error),
    /// The CPU backend failed.
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
    /// A forked process could not take over its parent's state.
    #[error("cannot take over the forked process: {0}")]
    Handover(std::io::Error),
    /// The debugger stub could not start.
    #[error(transparent)]
    Debugger(#[from] crate::gdb::GdbError),
}

/// Loads and runs a program to completion.
pub fn run(spec: RunSpec) -> Result<ExitStatus, RuntimeError> {
    init_host();

    let (elf, host_path) = match &spec.program {
        Program::Path(path) => (crate::loader::elf::read(path)?, path.clone()),
        Program::Embedded(bytes) => (crate::loader::elf::parse(bytes.to_vec())?, PathBuf::new()),
    };
    let backend = spec.backend.clone();
    let limits = process::initial_limits();
    let creds = Credentials::from_host();
    let image = image::load(&ImageSpec {
        elf: &elf,
        host_path: &host_path,
        execfn: &spec.execfn,
        argv: &spec.argv,
        env: &spec.env,
        limits: &limits,
        creds: &creds,
        hwcaps: backend.hwcaps(),
        root: &spec.root,
    })?;

    let pid = std::process::id() as i32;
    let process = Process::new(ProcessInit {
        pid,
        backend,
        memory: image.memory.clone(),
        mm: image.mm,
        fds: standard_streams(),
        umask: current_umask(),
        root: spec.root.clone(),
        sigactions: [KernelSigaction::default(); 64],
        limits,
        creds,
        exec: image.exec,
        prctl: PrctlState::default(),
        affinity: all_cpus(),
        tracer: spec.tracer.map(Arc::new),
    });
    set_current_process(&process);
    if let Some(options) = spec.debug {
        crate::gdb::start(&process, options)?;
    }

    let shared = process.add_thread(pid, 0);
    let task = Task::new(process.clone(), shared, comm_of(&spec.execfn));
    debug!(entry = image.regs.pc, sp = image.regs.sp, "starting guest");
    // After a guest fork this host thread may end as the child, whose process is not the
    // one created above.
    let process = thread::run(task, image.regs)?;
    let status = process.wait_exit();
    if let Some(debugger) = process.debugger.get() {
        debugger.report_exit(status);
    }
    Ok(status)
}

/// The process-wide host set-up every elfuse process running a guest needs first: `SIGPIPE`
/// ignored (writes report `EPIPE`) and host signals forwarded to the guest.
pub fn init_host() {
    host::signals::ignore_sigpipe();
    host::threads::init(forward_host_signal);
}

/// Ends this host process the way the guest process ended: with its exit code, or killed by
/// the same signal.
pub fn exit_host(status: ExitStatus) -> ! {
    match status {
        ExitStatus::Exited(code) => std::process::exit(i32::from(code)),
        ExitStatus::Signaled(sig) => host::signals::die_by_signal(sig),
    }
}

/// The process host signals are forwarded to (the one this host process runs).
static CURRENT_PROCESS: AtomicPtr<Process> = AtomicPtr::new(std::ptr::null_mut());

/// Host signals that arrived before the first guest process existed (while the program was
/// being loaded), for that process.
static EARLY_SIGNALS: Mutex<Vec<host::threads::HostSignal>> = Mutex::new(Vec::new());

/// Makes `process` the target of host signals sent to this host process, and hands it any
/// that arrived while there was none.
pub fn set_current_process(process: &Arc<Process>) {
    // The previous weak reference is leaked on purpose: the signal thread may be reading it.
    let weak = Arc::downgrade(process);
    CURRENT_PROCESS.store(Weak::into_raw(weak).cast_mut(), Ordering::SeqCst);

    let early = std::mem::take(&mut *lock(&EARLY_SIGNALS));
    for signal in early {
        process.send_signal(SigInfo::from_host(signal));
    }
}

/// The guest process this host process runs, if it still exists.
pub fn current_process() -> Option<Arc<Process>> {
    let raw = CURRENT_PROCESS.load(Ordering::SeqCst);
    if raw.is_null() {
        return None;
    }
    // SAFETY: the pointer came from Weak::into_raw and is never freed (see above); this
    // builds a second Weak from it and forgets it again, leaving the count unchanged.
    let weak = unsafe { Weak::from_raw(raw) };
    let process = weak.upgrade();
    std::mem::forget(weak);
    process
}

/// Hands a host signal to the guest process (called on the signal-forwarding thread), or
/// keeps it for the process being loaded. Checking for the process under the lock of the
/// early list, which [`set_current_process`] takes after publishing the process, means no
/// signal falls between the two.
fn forward_host_signal(signal: host::threads::HostSignal) {
    let mut early = lock(&EARLY_SIGNALS);
    match current_process() {
        Some(process) => {
            drop(early);
            process.send_signal(SigInfo::from_host(signal));
        }
        None => early.push(signal),
    }
}

/// The process's umask, read without changing it.
fn current_umask() -> u32 {
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(old);
    old.bits() as u32
}

/// Every CPU, as an affinity mask.
fn all_cpus() -> Vec<u64> {
    let cpus = host::cpu_count();
    let mut mask = vec![0u64; cpus.div_ceil(64)];
    for cpu in 0..cpus {
        mask[cpu / 64] |= 1 << (cpu % 64);
    }
    mask
}

/// The descriptors this process was started with (see [`adopt_inherited_descriptors`]).
static INHERITED: OnceLock<Vec<i32>> = OnceLock::new();

/// Records the descriptors elfuse was started with, before it opens any of its own: they are
/// the guest's, at the same numbers, as a program inherits them from its shell. Without the
/// record, the guest gets 0, 1 and 2.
pub fn adopt_inherited_descriptors(fds: Vec<i32>) {
    let _ = INHERITED.set(fds);
}

/// The guest's first descriptor table: the host descriptors elfuse inherited, handed over.
/// The guest owns them from now on (closing its stdout closes the host's, so a reader sees
/// end of file); elfuse writes its own messages through a private duplicate of stderr.
fn standard_streams() -> FdTable {
    let mut table = FdTable::new();
    let inherited = INHERITED.get().cloned().unwrap_or_else(|| vec![0, 1, 2]);
    for fd in inherited {
        let Ok(flags) = nix::fcntl::fcntl(
            // SAFETY: the descriptor is only borrowed for this query.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_GETFL,
        ) else {
            continue;
        };
        // SAFETY: the descriptor is open (F_GETFL succeeded) and from here on owned by the
        // guest's table alone; the runtime opened it neither for itself nor uses the number.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let _ = host::io::set_fd_flag(std::os::fd::AsFd::as_fd(&owned), libc::FD_CLOEXEC);
        let linux = host::fs::status_flags_from_host(flags) | abi::open::O_LARGEFILE;
        let name = format!("/dev/fd/{fd}").into_bytes();
        let _ = table.insert_at(fd as usize, OpenFile::host(owned, linux, name), false);
    }
    table
}
