//! A new program image: a fresh address space holding the program's segments and its initial
//! stack, ready for a vCPU to start at its entry point. Used at start-up and by `execve`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

use crate::host;
use crate::kernel::RuntimeError;
use crate::kernel::abi::auxv::*;
use crate::kernel::abi::rlimit::RLIMIT_STACK;
use crate::kernel::abi::structs::Rlimit;
use crate::kernel::fs::root::GuestRoot;
use crate::kernel::fs::walk::{self, Confinement, WalkOptions, Walked};
use crate::kernel::mm::{self, Brk, Layout};
use crate::kernel::process::{Credentials, ExecInfo, MmState};
use crate::kernel::signal;
use crate::loader::elf::{ElfFile, LoaderError, PHDR_SIZE};
use crate::loader::{self, LoadedImage, stack};
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
    /// The name space the interpreter (`PT_INTERP`) is found in.
    pub root: &'a GuestRoot,
}

/// Why a dynamically linked program's interpreter cannot be loaded.
#[derive(Debug, Error)]
pub enum InterpreterError {
    /// There is no sysroot to find it in.
    #[error(
        "dynamically linked (interpreter {interp}) and no sysroot is configured; \
         see 'elfuse sysroot --help'"
    )]
    NoSysroot {
        /// The `PT_INTERP` path.
        interp: String,
    },
    /// The sysroot has no such file.
    #[error("interpreter {interp} not found in sysroot {}", sysroot.display())]
    Missing {
        /// The `PT_INTERP` path.
        interp: String,
        /// The sysroot searched.
        sysroot: PathBuf,
    },
    /// The file is there but is not a loadable aarch64 ELF.
    #[error("interpreter {interp} in sysroot {}: {reason}", sysroot.display())]
    Bad {
        /// The `PT_INTERP` path.
        interp: String,
        /// The sysroot it was found in.
        sysroot: PathBuf,
        /// What is wrong with it.
        reason: LoaderError,
    },
}

impl InterpreterError {
    /// The exit status the command line reports: 127 when the interpreter is not found, 126
    /// when it cannot be run.
    pub fn exit_code(&self) -> i32 {
        match self {
            InterpreterError::NoSysroot { .. } | InterpreterError::Missing { .. } => 127,
            InterpreterError::Bad { .. } => 126,
        }
    }

    /// The error `execve` reports for it: `ENOENT` for a missing file, as Linux does, and
    /// `ELIBBAD` for one that cannot be loaded.
    pub fn errno(&self) -> crate::kernel::abi::errno::Errno {
        use crate::kernel::abi::errno::Errno;
        match self {
            InterpreterError::NoSysroot { .. } | InterpreterError::Missing { .. } => Errno::ENOENT,
            InterpreterError::Bad { .. } => Errno::ELIBBAD,
        }
    }
}

/// The interpreter, read and checked, before anything is mapped.
struct Interpreter {
    elf: ElfFile,
    host_path: PathBuf,
    /// Its guest path, labelling its mappings.
    label: String,
}

/// Finds and reads the interpreter `name` in `root`.
fn find_interpreter(root: &GuestRoot, name: &[u8]) -> Result<Interpreter, InterpreterError> {
    let interp = String::from_utf8_lossy(name).into_owned();
    let Some(sysroot) = root.sysroot_dir() else {
        return Err(InterpreterError::NoSysroot { interp });
    };
    let sysroot = sysroot.to_path_buf();
    let opts = WalkOptions {
        confine: Confinement::None,
        no_symlinks: false,
        no_xdev: false,
        follow_last: true,
    };
    let host_path = match walk::walk(root, &[], name, opts) {
        Ok(Walked::Host(host)) => PathBuf::from(OsStr::from_bytes(&host)),
        _ => return Err(InterpreterError::Missing { interp, sysroot }),
    };
    if !host_path.is_file() {
        return Err(InterpreterError::Missing { interp, sysroot });
    }
    let elf = loader::elf::read(&host_path).map_err(|reason| InterpreterError::Bad {
        interp: interp.clone(),
        sysroot: sysroot.clone(),
        reason,
    })?;
    Ok(Interpreter {
        elf,
        host_path,
        label: interp,
    })
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
    let interpreter = match &spec.elf.interpreter {
        Some(name) => Some(find_interpreter(spec.root, name)?),
        None => None,
    };
    let (memory, span) = reserve()?;
    let layout = Layout::new(span, spec.limits[RLIMIT_STACK as usize].cur);

    // The program, the stack, then the interpreter in the mmap area, as Linux places them.
    let (dev, ino) = host_identity(spec.host_path);
    let label = String::from_utf8_lossy(spec.execfn).into_owned();
    let mapping = Arc::new(FileMapping::named(label, dev, ino));
    let bias = load_bias(spec.elf, &layout);
    let image = loader::map_image(&memory, spec.elf, bias, mapping)?;
    let mut stack_vma = Vma::anonymous(layout.stack(), Prot::READ | Prot::WRITE);
    stack_vma.label = Some("[stack]");
    memory.map(stack_vma);
    let trampoline = map_vdso(&memory, &layout);
    let interp = match &interpreter {
        Some(interp) => Some(map_interpreter(&memory, &layout, interp).map_err(|reason| {
            InterpreterError::Bad {
                interp: interp.label.clone(),
                sysroot: spec
                    .root
                    .sysroot_dir()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                reason,
            }
        })?),
        None => None,
    };

    let creds = spec.creds;
    let auxv = [
        (AT_MINSIGSTKSZ, MINSIGSTKSZ),
        (AT_HWCAP, spec.hwcaps.hwcap),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_CLKTCK, CLK_TCK),
        (AT_PHDR, image.phdr),
        (AT_PHENT, PHDR_SIZE as u64),
        (AT_PHNUM, u64::from(image.phnum)),
        (AT_BASE, interp.as_ref().map_or(0, |i| i.start)),
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
        pc: interp.as_ref().map_or(image.entry, |i| i.entry),
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
            exe: spec.root.guest_path(&absolute(spec.host_path)),
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

/// Maps the interpreter at the top of the free `mmap` area, aligned as its segments ask.
fn map_interpreter(
    memory: &GuestMemory,
    layout: &Layout,
    interp: &Interpreter,
) -> Result<LoadedImage, LoaderError> {
    let (low, high) = loader::image_span(&interp.elf);
    let align = interp.elf.max_align.max(PAGE_SIZE);
    let len = high - low;
    let room = len
        .checked_add(align)
        .and_then(|n| mm::find_free(memory, layout, 0, n).ok())
        .ok_or_else(|| LoaderError::Corrupt("no room for the interpreter".into()))?;
    // The free range holds `len` bytes from the first aligned address in it.
    let start = (room + align - 1) & !(align - 1);
    let bias = if interp.elf.position_independent {
        start.wrapping_sub(low)
    } else {
        0
    };
    let (dev, ino) = host_identity(&interp.host_path);
    let mapping = Arc::new(FileMapping::named(interp.label.clone(), dev, ino));
    loader::map_image(memory, &interp.elf, bias, mapping)
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
