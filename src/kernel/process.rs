//! The state a guest process shares between its threads.
//!
//! Each piece sits behind its own lock, taken briefly: handlers copy out what they need (an
//! `Arc<OpenFile>`, a signal action) and release the lock before any host call that may block.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use crate::kernel::abi::rlimit;
use crate::kernel::abi::structs::{KernelSigaction, Rlimit};
use crate::kernel::fd::FdTable;
use crate::kernel::fs::root::GuestRoot;
use crate::kernel::futex::FutexTable;
use crate::kernel::mm::{Brk, Layout};
use crate::kernel::sched::{Housekeeper, RunLock};
use crate::kernel::signal::{SigInfo, SigQueue};
use crate::kernel::task::{ExitStatus, TaskShared};
use crate::kernel::timer::Timers;
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
    /// The absolute path `/proc/self/exe` shows.
    pub exe: Vec<u8>,
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
    /// The scheduling policy set with `sched_setscheduler` (`SCHED_OTHER` is 0).
    pub sched_policy: u64,
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
            sched_policy: 0,
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
    /// Where the `[vdso]` page's `rt_sigreturn` trampoline is: the return address of signal
    /// handlers installed without `SA_RESTORER` (what glibc on arm64 does).
    pub sigreturn_trampoline: u64,
}

/// How the process ends, once decided.
#[derive(Default)]
pub struct ExitState {
    status: Mutex<Option<ExitStatus>>,
    decided: Condvar,
}

/// A guest process.
pub struct Process {
    /// Process id (also the id of the main thread).
    pub pid: i32,
    /// The CPU backend that runs its threads.
    pub backend: Arc<dyn Backend>,
    /// CPU features advertised to the guest.
    pub hwcaps: HwCaps,
    /// The address space (replaced by `execve`).
    memory: Mutex<Arc<GuestMemory>>,
    /// Layout and break.
    pub mm: Mutex<MmState>,
    /// Open descriptors.
    pub fds: Mutex<FdTable>,
    /// umask and friends.
    pub fs: Mutex<FsContext>,
    /// The guest's root directory (fixed for the process tree).
    pub root: GuestRoot,
    /// Signal dispositions, indexed by signal number minus one.
    pub sigactions: Mutex<[KernelSigaction; 64]>,
    /// Signals sent to the process as a whole.
    pub pending: Arc<Mutex<SigQueue>>,
    /// Set when the process is ending: every thread stops.
    pub dying: Arc<AtomicBool>,
    /// The live threads, by thread id.
    pub threads: Mutex<BTreeMap<i32, Arc<TaskShared>>>,
    /// Signalled when a thread leaves `threads`.
    thread_left: Condvar,
    /// Serializes guest execution where the backend needs it.
    pub run: Arc<RunLock>,
    /// Time slicing and repeated wake-ups.
    pub house: Arc<Housekeeper>,
    /// How the process ended.
    pub exit: ExitState,
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
    pub tracer: Option<Arc<Tracer>>,
    /// Futex wait queues.
    pub futexes: FutexTable,
    /// A `vfork` child's end of the pipe its parent waits on; dropped at `execve` or exit.
    pub vfork_done: Mutex<Option<OwnedFd>>,
    /// Interval and POSIX timers (a new process, forked or not, has none).
    pub timers: Timers,
    /// The debugger stub serving this process (`--gdb`); a forked child has none.
    pub debugger: OnceLock<Arc<crate::gdb::Debugger>>,
    /// Set while the debugger stops the process (shared with every thread's wake-up test).
    pub debug_halt: Arc<AtomicBool>,
}

/// The parts of a new process that differ from one start to another.
pub struct ProcessInit {
    pub pid: i32,
    pub backend: Arc<dyn Backend>,
    pub memory: Arc<GuestMemory>,
    pub mm: MmState,
    pub fds: FdTable,
    pub umask: u32,
    pub root: GuestRoot,
    pub sigactions: [KernelSigaction; 64],
    pub limits: [Rlimit; rlimit::RLIM_NLIMITS as usize],
    pub creds: Credentials,
    pub exec: ExecInfo,
    pub prctl: PrctlState,
    pub affinity: Vec<u64>,
    pub tracer: Option<Arc<Tracer>>,
}

impl Process {
    /// Builds a process with no threads yet.
    pub fn new(init: ProcessInit) -> Arc<Process> {
        let run = if init.backend.serializes_guests() {
            RunLock::new()
        } else {
            RunLock::disabled()
        };
        Arc::new(Process {
            pid: init.pid,
            hwcaps: init.backend.hwcaps(),
            backend: init.backend,
            memory: Mutex::new(init.memory),
            mm: Mutex::new(init.mm),
            fds: Mutex::new(init.fds),
            fs: Mutex::new(FsContext { umask: init.umask }),
            root: init.root,
            sigactions: Mutex::new(init.sigactions),
            pending: Arc::new(Mutex::new(SigQueue::default())),
            dying: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(BTreeMap::new()),
            thread_left: Condvar::new(),
            run,
            house: Housekeeper::new(),
            exit: ExitState::default(),
            limits: Mutex::new(init.limits),
            creds: Mutex::new(init.creds),
            exec: Mutex::new(init.exec),
            prctl: Mutex::new(init.prctl),
            affinity: Mutex::new(init.affinity),
            tracer: init.tracer,
            futexes: FutexTable::default(),
            vfork_done: Mutex::new(None),
            timers: Timers::new(),
            debugger: OnceLock::new(),
            debug_halt: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The state of a forked child (process id `pid`): a copy of this process's, with no
    /// threads yet, nothing pending and fresh scheduling.
    pub fn fork_child(&self, pid: i32) -> Arc<Process> {
        let mut prctl = lock(&self.prctl).clone();
        prctl.pdeathsig = 0;
        Process::new(ProcessInit {
            pid,
            backend: self.backend.clone(),
            memory: self.memory(),
            mm: *lock(&self.mm),
            fds: lock(&self.fds).clone(),
            umask: lock(&self.fs).umask,
            root: self.root.clone(),
            sigactions: *lock(&self.sigactions),
            limits: *lock(&self.limits),
            creds: lock(&self.creds).clone(),
            exec: lock(&self.exec).clone(),
            prctl,
            affinity: lock(&self.affinity).clone(),
            tracer: self.tracer.clone(),
        })
    }

    /// The current address space.
    pub fn memory(&self) -> Arc<GuestMemory> {
        lock(&self.memory).clone()
    }

    /// Replaces the address space (`execve`).
    pub fn set_memory(&self, memory: Arc<GuestMemory>) {
        *lock(&self.memory) = memory;
    }

    /// The soft `RLIMIT_NOFILE`: descriptors must stay below it.
    pub fn fd_limit(&self) -> usize {
        let cur = lock(&self.limits)[rlimit::RLIMIT_NOFILE as usize].cur;
        usize::try_from(cur).unwrap_or(usize::MAX).min(1 << 20)
    }

    /// A new thread's shared part, registered with the process.
    pub fn add_thread(&self, tid: i32, sigmask: u64) -> Arc<TaskShared> {
        let shared = TaskShared::new(
            tid,
            sigmask,
            self.pending.clone(),
            self.dying.clone(),
            self.debug_halt.clone(),
        );
        let mut threads = lock(&self.threads);
        threads.insert(tid, shared.clone());
        if threads.len() > 1 {
            self.house.time_slice(&self.run);
        }
        shared
    }

    /// Removes a thread that ended; true if it was the last one.
    pub fn remove_thread(&self, tid: i32) -> bool {
        let mut threads = lock(&self.threads);
        threads.remove(&tid);
        self.thread_left.notify_all();
        threads.is_empty()
    }

    /// Ends every thread but `keep` and waits until they have left (`execve`'s first step
    /// past its point of no return). The caller must not hold the run lock's turn: see
    /// [`crate::kernel::sched::blocking`].
    pub fn end_other_threads(&self, keep: i32) {
        let others: Vec<Arc<TaskShared>> = lock(&self.threads)
            .iter()
            .filter(|(tid, _)| **tid != keep)
            .map(|(_, t)| t.clone())
            .collect();
        for thread in &others {
            thread.kill(&self.house);
        }
        let mut threads = lock(&self.threads);
        while threads.keys().any(|tid| *tid != keep) {
            threads = self
                .thread_left
                .wait(threads)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Every live thread.
    pub fn threads(&self) -> Vec<Arc<TaskShared>> {
        lock(&self.threads).values().cloned().collect()
    }

    /// A live thread by id.
    pub fn thread(&self, tid: i32) -> Option<Arc<TaskShared>> {
        lock(&self.threads).get(&tid).cloned()
    }

    /// Decides how the process ends (the first decision wins) and stops every thread.
    pub fn finish(&self, status: ExitStatus) {
        {
            let mut decided = lock(&self.exit.status);
            if decided.is_none() {
                *decided = Some(status);
            }
        }
        self.dying.store(true, Ordering::SeqCst);
        self.exit.decided.notify_all();
        let threads = self.threads();
        for thread in threads {
            thread.interrupt(&self.house);
        }
    }

    /// How the process ended, if decided.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *lock(&self.exit.status)
    }

    /// Waits until the process's end is decided.
    pub fn wait_exit(&self) -> ExitStatus {
        let mut status = lock(&self.exit.status);
        loop {
            if let Some(s) = *status {
                return s;
            }
            status = self
                .exit
                .decided
                .wait(status)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Sends `info` to the process: queued for the process, and one thread that does not block
    /// it is woken to take it. Ignored signals are dropped when generated, as on Linux (unless
    /// every thread blocks them).
    pub fn send_signal(&self, info: SigInfo) {
        let bit = crate::kernel::abi::signal::bit(info.signo);
        let threads = self.threads();
        let all_block = threads.iter().all(|t| t.blocked() & bit != 0);
        if !all_block && self.ignores(info.signo) {
            return;
        }
        lock(&self.pending).push(info);
        let target = threads
            .iter()
            .find(|t| t.mask() & bit == 0)
            .or(threads.first());
        if let Some(target) = target {
            target.interrupt(&self.house);
        }
    }

    /// Sends `info` to thread `tid` only.
    pub fn send_thread_signal(&self, tid: i32, info: SigInfo) -> bool {
        let Some(thread) = self.thread(tid) else {
            return false;
        };
        let bit = crate::kernel::abi::signal::bit(info.signo);
        if thread.blocked() & bit == 0 && self.ignores(info.signo) {
            return true;
        }
        lock(&thread.pending).push(info);
        thread.interrupt(&self.house);
        true
    }

    /// Whether `signo`'s disposition discards it (`SIG_IGN`, or a default action of ignore).
    pub fn ignores(&self, signo: u32) -> bool {
        use crate::kernel::abi::signal as sig;
        let handler = lock(&self.sigactions)[signo as usize - 1].handler;
        handler == sig::SIG_IGN
            || (handler == sig::SIG_DFL && sig::default_action(signo) == sig::DefaultAction::Ignore)
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
