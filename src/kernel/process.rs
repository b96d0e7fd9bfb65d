//! The state a guest process shares between its threads.
//!
//! Each piece sits behind its own lock, taken briefly: handlers copy out what they need (an
//! `Arc<OpenFile>`, a signal action) and release the lock before any host call that may block.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::kernel::abi::rlimit;
use crate::kernel::abi::structs::{KernelSigaction, Rlimit};
use crate::kernel::fd::FdTable;
use crate::kernel::mm::{Brk, Layout};
use crate::trace::Tracer;
use crate::vm::memory::GuestMemory;
use crate::vm::{Backend, HwCaps};

/// Locks `mutex`, ignoring poisoning: a panicking thread has already ended the process.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// User and group ids as the guest sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub groups: Vec<u32>,
}

impl Credentials {
    /// The ids of the elfuse process itself.
    pub fn from_host() -> Credentials {
        let ids = crate::host::ids();
        let (suid, sgid) = crate::host::saved_ids();
        Credentials {
            uid: ids.uid,
            euid: ids.euid,
            suid,
            gid: ids.gid,
            egid: ids.egid,
            sgid,
            groups: crate::host::groups(),
        }
    }
}

/// What `execve` set up, for `/proc` and `prctl`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecInfo {
    /// The program's path as the guest named it.
    pub path: Vec<u8>,
    /// The host file elfuse loaded.
    pub host_path: std::path::PathBuf,
    /// The auxiliary vector given to the program.
    pub auxv: Vec<(u64, u64)>,
    /// Guest addresses of the argument and environment strings.
    pub args: std::ops::Range<u64>,
    pub env: std::ops::Range<u64>,
}

/// Per-process file-system context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsContext {
    /// The file mode creation mask.
    pub umask: u32,
}

/// Attributes set with `prctl(2)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrctlState {
    pub pdeathsig: u32,
    pub dumpable: u32,
    pub keepcaps: bool,
    pub timerslack_ns: u64,
    pub child_subreaper: bool,
    pub no_new_privs: bool,
    pub thp_disable: bool,
}

impl Default for PrctlState {
    fn default() -> PrctlState {
        PrctlState {
            pdeathsig: 0,
            dumpable: 1,
            keepcaps: false,
            timerslack_ns: 50_000,
            child_subreaper: false,
            no_new_privs: false,
            thp_disable: false,
        }
    }
}

/// Address-space bookkeeping beyond the VMA map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmState {
    pub layout: Layout,
    pub brk: Brk,
    /// `mlockall(MCL_FUTURE)`: lock new mappings too.
    pub lock_future: bool,
}

/// A guest process.
pub struct Process {
    /// Process id (also the id of the main thread).
    pub pid: i32,
    /// The CPU backend that runs its threads.
    pub backend: Arc<dyn Backend>,
    /// CPU features advertised to the guest.
    pub hwcaps: HwCaps,
    /// The address space.
    pub memory: Arc<GuestMemory>,
    /// Layout and break.
    pub mm: Mutex<MmState>,
    /// Open descriptors.
    pub fds: Mutex<FdTable>,
    /// umask and friends.
    pub fs: Mutex<FsContext>,
    /// Signal dispositions, indexed by signal number minus one.
    pub sigactions: Mutex<[KernelSigaction; 64]>,
    /// Resource limits, indexed by `RLIMIT_*`.
    pub limits: Mutex<[Rlimit; rlimit::RLIM_NLIMITS as usize]>,
    /// User and group ids.
    pub creds: Mutex<Credentials>,
    /// The loaded program.
    pub exec: Mutex<ExecInfo>,
    /// `prctl` attributes.
    pub prctl: Mutex<PrctlState>,
    /// The CPU affinity mask the guest set (`sched_setaffinity`), one bit per CPU.
    pub affinity: Mutex<Vec<u64>>,
    /// The syscall tracer, when `--trace` is on.
    pub tracer: Option<Tracer>,
}

impl Process {
    /// The soft `RLIMIT_NOFILE`: descriptors must stay below it.
    pub fn fd_limit(&self) -> usize {
        let cur = lock(&self.limits)[rlimit::RLIMIT_NOFILE as usize].cur;
        usize::try_from(cur).unwrap_or(usize::MAX).min(1 << 20)
    }
}

/// The initial resource limits: the host's own, which is what a child of the shell sees.
pub fn initial_limits() -> [Rlimit; rlimit::RLIM_NLIMITS as usize] {
    let mut limits = [Rlimit {
        cur: rlimit::RLIM_INFINITY,
        max: rlimit::RLIM_INFINITY,
    }; rlimit::RLIM_NLIMITS as usize];
    for resource in 0..rlimit::RLIM_NLIMITS {
        if let Some((cur, max)) = crate::host::rlimit(resource) {
            limits[resource as usize] = Rlimit { cur, max };
        }
    }
    // Linux's defaults for limits macOS does not have.
    limits[rlimit::RLIMIT_SIGPENDING as usize] = Rlimit {
        cur: 63_413,
        max: 63_413,
    };
    limits[rlimit::RLIMIT_MSGQUEUE as usize] = Rlimit {
        cur: 819_200,
        max: 819_200,
    };
    limits[rlimit::RLIMIT_NICE as usize] = Rlimit { cur: 0, max: 0 };
    limits[rlimit::RLIMIT_RTPRIO as usize] = Rlimit { cur: 0, max: 0 };
    limits
}
