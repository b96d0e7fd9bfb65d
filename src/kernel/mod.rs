//! The Linux kernel elfuse provides: processes and threads, their memory, files and signals,
//! and the syscalls that operate on them.
//!
//! [`run`] is the entry point: it loads a program into a fresh address space, builds the
//! process around it and runs its main thread on a vCPU until the process exits.

pub mod abi;
pub mod fd;
pub mod file;
pub mod fs;
pub mod mm;
pub mod process;
pub mod signal;
pub mod syscalls;
pub mod task;

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use thiserror::Error;
use tracing::debug;

use crate::host;
use crate::kernel::abi::auxv::*;
use crate::kernel::abi::rlimit::RLIMIT_STACK;
use crate::kernel::abi::structs::KernelSigaction;
use crate::kernel::fd::FdTable;
use crate::kernel::file::OpenFile;
use crate::kernel::mm::{Brk, Layout};
use crate::kernel::process::{Credentials, ExecInfo, FsContext, MmState, PrctlState, Process};
use crate::kernel::task::{Outcome, Task};
use crate::loader::elf::{ElfFile, PHDR_SIZE};
use crate::loader::{self, LoaderError, stack};
use crate::trace::Tracer;
use crate::vm::memory::GuestMemory;
use crate::vm::vma::{FileMapping, PAGE_SIZE, Prot, Vma, page_align_down};
use crate::vm::{Backend, VcpuError};

pub use self::task::ExitStatus;

/// Guest address-space sizes to try, largest first: 1 TiB, then smaller where the host refuses
/// to reserve that much.
const SPANS: [u64; 3] = [1 << 40, 1 << 38, 1 << 36];

/// `AT_MINSIGSTKSZ`: the signal frame plus the frame record and alignment slack.
const MINSIGSTKSZ: u64 = signal::FRAME_SIZE + 32;

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
}

/// Why a guest could not be started or kept running.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The program could not be loaded.
    #[error(transparent)]
    Loader(#[from] LoaderError),
    /// The program needs a dynamic loader, which needs a sysroot.
    #[error("dynamically linked program (interpreter {0}); elfuse runs static programs only")]
    Dynamic(String),
    /// Guest memory could not be reserved.
    #[error("cannot reserve guest memory: {0}")]
    Memory(std::io::Error),
    /// The CPU backend failed.
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
}

/// Loads and runs a program to completion.
pub fn run(spec: RunSpec) -> Result<ExitStatus, RuntimeError> {
    host::signals::ignore_sigpipe();

    let (elf, host_path) = match &spec.program {
        Program::Path(path) => (loader::elf::read(path)?, path.clone()),
        Program::Embedded(bytes) => (loader::elf::parse(bytes.to_vec())?, PathBuf::new()),
    };
    if let Some(interp) = &elf.interpreter {
        return Err(RuntimeError::Dynamic(
            String::from_utf8_lossy(interp).into_owned(),
        ));
    }

    let limits = process::initial_limits();
    let (memory, span) = reserve()?;
    let layout = Layout::new(span, limits[RLIMIT_STACK as usize].cur);

    // The program image, then the stack.
    let (dev, ino) = host_identity(&host_path);
    let label = String::from_utf8_lossy(&spec.execfn).into_owned();
    let mapping = Arc::new(FileMapping::named(label, dev, ino));
    let bias = load_bias(&elf, &layout);
    let image = loader::map_image(&memory, &elf, bias, mapping)?;
    let mut stack_vma = Vma::anonymous(layout.stack(), Prot::READ | Prot::WRITE);
    stack_vma.label = Some("[stack]");
    memory.map(stack_vma);

    let backend = spec.backend.clone();
    let hwcaps = backend.hwcaps();
    let creds = Credentials::from_host();
    let auxv = [
        (AT_MINSIGSTKSZ, MINSIGSTKSZ),
        (AT_HWCAP, hwcaps.hwcap),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_CLKTCK, syscalls_clk_tck()),
        (AT_PHDR, image.phdr),
        (AT_PHENT, PHDR_SIZE as u64),
        (AT_PHNUM, u64::from(image.phnum)),
        (AT_BASE, 0),
        (AT_FLAGS, 0),
        (AT_ENTRY, image.entry),
        (AT_UID, u64::from(creds.uid)),
        (AT_EUID, u64::from(creds.euid)),
        (AT_GID, u64::from(creds.gid)),
        (AT_EGID, u64::from(creds.egid)),
        (AT_SECURE, 0),
        (AT_HWCAP2, hwcaps.hwcap2),
    ];
    let mut random = [0u8; 16];
    host::random_bytes(&mut random);
    let initial = stack::build(
        layout.stack_top,
        &spec.argv,
        &spec.env,
        &spec.execfn,
        &auxv,
        random,
    );
    memory
        .host_range(initial.sp..layout.stack_top)
        .write(&initial.bytes);

    let comm = spec
        .execfn
        .rsplit(|&b| b == b'/')
        .next()
        .unwrap_or(b"")
        .to_vec();
    let process = Arc::new(Process {
        pid: std::process::id() as i32,
        backend: backend.clone(),
        hwcaps,
        memory: memory.clone(),
        mm: Mutex::new(MmState {
            layout,
            brk: Brk::new(image.end),
            lock_future: false,
        }),
        fds: Mutex::new(standard_streams()),
        fs: Mutex::new(FsContext {
            umask: current_umask(),
        }),
        sigactions: Mutex::new([KernelSigaction::default(); 64]),
        limits: Mutex::new(limits),
        creds: Mutex::new(creds),
        exec: Mutex::new(ExecInfo {
            path: spec.execfn.clone(),
            host_path,
            auxv: initial.auxv.clone(),
            args: initial.args.clone(),
            env: initial.env.clone(),
        }),
        prctl: Mutex::new(PrctlState::default()),
        affinity: Mutex::new(all_cpus()),
        tracer: spec.tracer,
    });

    let mut task = Task::main_thread(process, &comm);
    let mut vcpu = backend.create_vcpu(memory)?;
    let cpu = vcpu.state();
    for n in 0..31 {
        cpu.set_x(n, 0);
    }
    cpu.set_sp(initial.sp);
    cpu.set_pc(image.entry);
    debug!(entry = image.entry, sp = initial.sp, "starting guest");

    loop {
        vcpu.run(&mut task)?;
        match task.outcome.take() {
            // The only thread exiting ends the process with its status.
            Some(Outcome::ThreadExit(code)) => return Ok(ExitStatus::Exited(code as u8)),
            Some(Outcome::ProcessExit(status)) => return Ok(status),
            None => continue,
        }
    }
}

/// `AT_CLKTCK`.
fn syscalls_clk_tck() -> u64 {
    100
}

/// Reserves the largest guest address space the host allows.
fn reserve() -> Result<(Arc<GuestMemory>, u64), RuntimeError> {
    let mut last = None;
    for span in SPANS {
        match GuestMemory::new(span) {
            Ok(memory) => return Ok((Arc::new(memory), span)),
            Err(e) => last = Some(e),
        }
    }
    Err(RuntimeError::Memory(last.unwrap_or_else(|| {
        std::io::Error::from_raw_os_error(libc::ENOMEM)
    })))
}

/// Where a position-independent program goes: `ELF_ET_DYN_BASE`, aligned to its segments.
fn load_bias(elf: &ElfFile, layout: &Layout) -> u64 {
    if !elf.position_independent {
        return 0;
    }
    let align = elf.max_align.max(PAGE_SIZE);
    let base = layout.dyn_base & !(align - 1);
    base.wrapping_sub(page_align_down(elf.segments[0].vaddr))
}

/// The host device and inode of the program file, for `/proc/self/maps`.
fn host_identity(path: &std::path::Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| (m.dev(), m.ino()))
        .unwrap_or((0, 0))
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

/// Descriptors 0, 1 and 2: the host's own, handed to the guest. The guest owns them from now
/// on (closing its stdout closes the host's, so a reader sees end of file); elfuse writes its
/// own messages through a private duplicate of stderr made before this.
fn standard_streams() -> FdTable {
    let mut table = FdTable::new();
    for fd in 0..3 {
        let Ok(flags) = nix::fcntl::fcntl(
            // SAFETY: fd 0..3 are only borrowed for this query.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_GETFL,
        ) else {
            continue;
        };
        // SAFETY: the descriptor is open (F_GETFL succeeded) and from here on owned by the
        // guest's table alone; the runtime never uses raw descriptors 0..3 itself.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let _ = host::io::set_fd_flag(std::os::fd::AsFd::as_fd(&owned), libc::FD_CLOEXEC);
        let linux = host::fs::status_flags_from_host(flags) | abi::open::O_LARGEFILE;
        let name = format!("/dev/fd/{fd}").into_bytes();
        let _ = table.insert_at(fd as usize, OpenFile::host(owned, linux, name), false);
    }
    table
}
