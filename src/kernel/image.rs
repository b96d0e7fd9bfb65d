//! A new program image: a fresh address space holding the program's segments and its initial
//! stack, ready for a vCPU to start at its entry point. Used at start-up and by `execve`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::host;
use crate::kernel::RuntimeError;
use crate::kernel::abi::auxv::*;
use crate::kernel::abi::rlimit::RLIMIT_STACK;
use crate::kernel::abi::structs::Rlimit;
use crate::kernel::mm::{Brk, Layout};
use crate::kernel::process::{Credentials, ExecInfo, MmState};
use crate::kernel::signal;
use crate::loader::elf::{ElfFile, PHDR_SIZE};
use crate::loader::{self, stack};
use crate::vm::memory::GuestMemory;
use crate::vm::vma::{FileMapping, PAGE_SIZE, Prot, Vma, page_align_down};
use crate::vm::{CpuSnapshot, HwCaps};

/// Guest address-space sizes to try, largest first: 1 TiB, then smaller where the host refuses
/// to reserve that much.
const SPANS: [u64; 3] = [1 << 40, 1 << 38, 1 << 36];

/// `AT_MINSIGSTKSZ`: the signal frame plus the frame record and alignment slack.
const MINSIGSTKSZ: u64 = signal::FRAME_SIZE + 32;

/// Clock ticks per second (`AT_CLKTCK`).
const CLK_TCK: u64 = 100;

/// What to load.
pub struct ImageSpec<'a> {
    /// The validated executable.
    pub elf: &'a ElfFile,
    /// The host file it came from (empty for the built-in self-test).
    pub host_path: &'a Path,
    /// The name it was invoked by (`AT_EXECFN`).
    pub execfn: &'a [u8],
    /// `argv`.
    pub argv: &'a [Vec<u8>],
    /// The environment.
    pub env: &'a [Vec<u8>],
    /// Resource limits (the stack limit sizes the stack).
    pub limits: &'a [Rlimit],
    /// Ids for the auxiliary vector.
    pub creds: &'a Credentials,
    /// CPU features for the auxiliary vector.
    pub hwcaps: HwCaps,
}

/// A loaded image.
pub struct Image {
    /// Its address space.
    pub memory: Arc<GuestMemory>,
    /// Layout and program break.
    pub mm: MmState,
    /// What `/proc` and `prctl` report of it.
    pub exec: ExecInfo,
    /// The registers to start with: PC at the entry point, SP at the initial stack.
    pub regs: CpuSnapshot,
}

/// Loads `spec` into a fresh address space.
pub fn load(spec: &ImageSpec<'_>) -> Result<Image, RuntimeError> {
    let (memory, span) = reserve()?;
    let layout = Layout::new(span, spec.limits[RLIMIT_STACK as usize].cur);

    // The program, then the stack.
    let (dev, ino) = host_identity(spec.host_path);
    let label = String::from_utf8_lossy(spec.execfn).into_owned();
    let mapping = Arc::new(FileMapping::named(label, dev, ino));
    let bias = load_bias(spec.elf, &layout);
    let image = loader::map_image(&memory, spec.elf, bias, mapping)?;
    let mut stack_vma = Vma::anonymous(layout.stack(), Prot::READ | Prot::WRITE);
    stack_vma.label = Some("[stack]");
    memory.map(stack_vma);
    let trampoline = map_vdso(&memory, &layout);

    let creds = spec.creds;
    let auxv = [
        (AT_MINSIGSTKSZ, MINSIGSTKSZ),
        (AT_HWCAP, spec.hwcaps.hwcap),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_CLKTCK, CLK_TCK),
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
        (AT_HWCAP2, spec.hwcaps.hwcap2),
    ];
    let mut random = [0u8; 16];
    host::random_bytes(&mut random);
    let initial = stack::build(
        layout.stack_top,
        spec.argv,
        spec.env,
        spec.execfn,
        &auxv,
        random,
    );
    memory
        .host_range(initial.sp..layout.stack_top)
        .write(&initial.bytes);

    let regs = CpuSnapshot {
        sp: initial.sp,
        pc: image.entry,
        ..CpuSnapshot::default()
    };
    Ok(Image {
        memory,
        mm: MmState {
            layout,
            brk: Brk::new(image.end),
            lock_future: false,
            sigreturn_trampoline: trampoline,
        },
        exec: ExecInfo {
            path: spec.execfn.to_vec(),
            host_path: PathBuf::from(spec.host_path),
            exe: absolute(spec.host_path),
            auxv: initial.auxv,
            args: initial.args,
            env: initial.env,
        },
        regs,
    })
}

/// `mov x8, #139` (`rt_sigreturn`) and `svc #0`: where a signal handler returns to.
const SIGRETURN_CODE: [u32; 2] = [0xd280_1168, 0xd400_0001];

/// Maps the `[vdso]` page, in the gap between the `mmap` area and the stack, and returns the
/// address of its `rt_sigreturn` trampoline.
fn map_vdso(memory: &GuestMemory, layout: &Layout) -> u64 {
    let start = layout.mmap_base;
    let mut vma = Vma::anonymous(start..start + PAGE_SIZE, Prot::READ | Prot::EXEC);
    vma.label = Some("[vdso]");
    vma.max_prot = Prot::READ | Prot::EXEC;
    memory.map(vma);
    let code: Vec<u8> = SIGRETURN_CODE
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    memory
        .host_range(start..start + code.len() as u64)
        .write(&code);
    start
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

/// The canonical absolute form of `path` (as Linux shows `/proc/self/exe`).
fn absolute(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    std::fs::canonicalize(path)
        .map(|p| p.as_os_str().as_bytes().to_vec())
        .unwrap_or_default()
}

/// The host device and inode of the program file, for `/proc/self/maps`.
fn host_identity(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| (m.dev(), m.ino()))
        .unwrap_or((0, 0))
}
