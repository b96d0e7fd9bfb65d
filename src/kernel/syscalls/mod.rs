//! The syscall layer: one declarative table from number to handler, and the dispatcher.
//!
//! Handlers are grouped by family in the submodules and named `sys_<name>`; each takes the
//! calling thread's [`Ctx`] and the six argument registers and returns the value for `x0` or a
//! Linux errno. Numbers without a handler return `ENOSYS`, logged once per number at `info`
//! level (shown with `-v`); calls that are deliberately `ENOSYS` log at `debug`.

mod epoll;
mod evfd;
mod exec;
mod fdctl;
mod fs_attr;
mod fs_dir;
mod fs_io;
mod fs_open;
mod fs_stat;
mod fs_xattr;
mod futex;
mod identity;
mod mem;
mod pidfd;
mod poll;
mod process;
mod signal;
mod socket;
mod system;
pub(crate) mod thread;
mod time;
mod timer;
mod wait;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use tracing::{debug, info};

use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::sysno;
use crate::kernel::file::OpenFile;
use crate::kernel::process::{Process, lock};
use crate::kernel::signal::{Interrupted, restart};
use crate::kernel::task::Task;
use crate::trace::{Arg, Ret};
use crate::vm::CpuState;
use crate::vm::memory::GuestMemory;

/// Linux's `PATH_MAX`, including the terminating NUL.
pub const PATH_MAX: usize = 4096;

/// What a handler gets: the calling thread and its registers.
pub struct Ctx<'a> {
    /// The calling thread.
    pub task: &'a mut Task,
    /// Its registers.
    pub cpu: &'a mut dyn CpuState,
}

impl Ctx<'_> {
    /// The calling process.
    pub fn process(&self) -> &Arc<Process> {
        &self.task.process
    }

    /// Guest memory.
    pub fn mem(&self) -> &GuestMemory {
        &self.task.memory
    }

    /// The file behind descriptor `fd` (an `int` argument: the low 32 bits count).
    pub fn file(&self, fd: u64) -> SysResult<Arc<OpenFile>> {
        lock(&self.task.process.fds).get(fd as u32 as i32)
    }

    /// Reads a path argument: `EFAULT` for a bad pointer, `ENAMETOOLONG` past `PATH_MAX`.
    pub fn path(&self, addr: u64) -> SysResult<Vec<u8>> {
        self.mem()
            .read_cstr(addr, PATH_MAX - 1)?
            .ok_or(Errno::ENAMETOOLONG)
    }

    /// Installs `file` as the lowest free descriptor.
    pub fn install(&self, file: Arc<OpenFile>, cloexec: bool) -> SysResult<u64> {
        let limit = self.task.process.fd_limit();
        lock(&self.task.process.fds)
            .insert(file, cloexec, 0, limit)
            .map(|fd| fd as u64)
    }
}

/// A syscall handler.
pub type Handler = fn(&mut Ctx<'_>, &[u64; 6]) -> SysResult;

/// One table entry.
pub struct SyscallDef {
    /// The syscall number.
    pub nr: u64,
    /// Its name.
    pub name: &'static str,
    /// The handler.
    pub handler: Handler,
    /// How `--trace` prints the arguments.
    pub args: &'static [Arg],
    /// How `--trace` prints the result.
    pub ret: Ret,
}

macro_rules! syscall_table {
    ($($nr:literal $name:ident($($arg:ident),*) -> $ret:ident = $handler:path;)*) => {
        /// Every implemented syscall.
        pub static SYSCALLS: &[SyscallDef] = &[
            $(SyscallDef {
                nr: $nr,
                name: stringify!($name),
                handler: $handler,
                args: &[$(Arg::$arg),*],
                ret: Ret::$ret,
            },)*
        ];
    };
}

syscall_table! {
    5 setxattr(Path, Str, Hex, Uint, Hex) -> Int = fs_xattr::sys_setxattr;
    6 lsetxattr(Path, Str, Hex, Uint, Hex) -> Int = fs_xattr::sys_lsetxattr;
    7 fsetxattr(Fd, Str, Hex, Uint, Hex) -> Int = fs_xattr::sys_fsetxattr;
    8 getxattr(Path, Str, Hex, Uint) -> Int = fs_xattr::sys_getxattr;
    9 lgetxattr(Path, Str, Hex, Uint) -> Int = fs_xattr::sys_lgetxattr;
    10 fgetxattr(Fd, Str, Hex, Uint) -> Int = fs_xattr::sys_fgetxattr;
    11 listxattr(Path, Hex, Uint) -> Int = fs_xattr::sys_listxattr;
    12 llistxattr(Path, Hex, Uint) -> Int = fs_xattr::sys_llistxattr;
    13 flistxattr(Fd, Hex, Uint) -> Int = fs_xattr::sys_flistxattr;
    14 removexattr(Path, Str) -> Int = fs_xattr::sys_removexattr;
    15 lremovexattr(Path, Str) -> Int = fs_xattr::sys_lremovexattr;
    16 fremovexattr(Fd, Str) -> Int = fs_xattr::sys_fremovexattr;
    17 getcwd(Hex, Uint) -> Int = fs_dir::sys_getcwd;
    19 eventfd2(Uint, Hex) -> Int = evfd::sys_eventfd2;
    20 epoll_create1(Hex) -> Int = epoll::sys_epoll_create1;
    21 epoll_ctl(Fd, Int, Fd, Hex) -> Int = epoll::sys_epoll_ctl;
    22 epoll_pwait(Fd, Hex, Int, Int, Hex, Uint) -> Int = epoll::sys_epoll_pwait;
    23 dup(Fd) -> Int = fdctl::sys_dup;
    24 dup3(Fd, Fd, Oflags) -> Int = fdctl::sys_dup3;
    25 fcntl(Fd, Fcntl, Hex) -> Int = fdctl::sys_fcntl;
    29 ioctl(Fd, Ioctl, Hex) -> Int = fdctl::sys_ioctl;
    32 flock(Fd, Int) -> Int = fdctl::sys_flock;
    33 mknodat(Dirfd, Path, Mode, Hex) -> Int = fs_dir::sys_mknodat;
    34 mkdirat(Dirfd, Path, Mode) -> Int = fs_dir::sys_mkdirat;
    35 unlinkat(Dirfd, Path, AtFlags) -> Int = fs_dir::sys_unlinkat;
    36 symlinkat(Str, Dirfd, Path) -> Int = fs_dir::sys_symlinkat;
    37 linkat(Dirfd, Path, Dirfd, Path, AtFlags) -> Int = fs_dir::sys_linkat;
    38 renameat(Dirfd, Path, Dirfd, Path) -> Int = fs_dir::sys_renameat;
    43 statfs(Path, Hex) -> Int = fs_stat::sys_statfs;
    44 fstatfs(Fd, Hex) -> Int = fs_stat::sys_fstatfs;
    45 truncate(Path, Int) -> Int = fs_attr::sys_truncate;
    46 ftruncate(Fd, Int) -> Int = fs_attr::sys_ftruncate;
    47 fallocate(Fd, Int, Int, Int) -> Int = fs_attr::sys_fallocate;
    48 faccessat(Dirfd, Path, Int) -> Int = fs_stat::sys_faccessat;
    49 chdir(Path) -> Int = fs_dir::sys_chdir;
    50 fchdir(Fd) -> Int = fs_dir::sys_fchdir;
    51 chroot(Path) -> Int = fs_dir::sys_chroot;
    52 fchmod(Fd, Mode) -> Int = fs_attr::sys_fchmod;
    53 fchmodat(Dirfd, Path, Mode) -> Int = fs_attr::sys_fchmodat;
    54 fchownat(Dirfd, Path, Int, Int, AtFlags) -> Int = fs_attr::sys_fchownat;
    55 fchown(Fd, Int, Int) -> Int = fs_attr::sys_fchown;
    56 openat(Dirfd, Path, Oflags, OpenMode) -> Int = fs_open::sys_openat;
    57 close(Fd) -> Int = fs_open::sys_close;
    59 pipe2(Hex, Oflags) -> Int = fdctl::sys_pipe2;
    61 getdents64(Fd, Hex, Uint) -> Int = fs_stat::sys_getdents64;
    62 lseek(Fd, Int, Whence) -> Int = fs_io::sys_lseek;
    63 read(Fd, OutBuf, Uint) -> Int = fs_io::sys_read;
    64 write(Fd, InBuf, Uint) -> Int = fs_io::sys_write;
    65 readv(Fd, Hex, Int) -> Int = fs_io::sys_readv;
    66 writev(Fd, Hex, Int) -> Int = fs_io::sys_writev;
    67 pread64(Fd, OutBuf, Uint, Int) -> Int = fs_io::sys_pread64;
    68 pwrite64(Fd, InBuf, Uint, Int) -> Int = fs_io::sys_pwrite64;
    69 preadv(Fd, Hex, Int, Int) -> Int = fs_io::sys_preadv;
    70 pwritev(Fd, Hex, Int, Int) -> Int = fs_io::sys_pwritev;
    71 sendfile(Fd, Fd, Hex, Uint) -> Int = fs_io::sys_sendfile;
    72 pselect6(Int, Hex, Hex, Hex, Hex, Hex) -> Int = poll::sys_pselect6;
    73 ppoll(Hex, Uint, Hex, Hex, Uint) -> Int = poll::sys_ppoll;
    78 readlinkat(Dirfd, Path, Hex, Uint) -> Int = fs_stat::sys_readlinkat;
    79 newfstatat(Dirfd, Path, Hex, AtFlags) -> Int = fs_stat::sys_newfstatat;
    80 fstat(Fd, Hex) -> Int = fs_stat::sys_fstat;
    81 sync() -> Int = fs_attr::sys_sync;
    82 fsync(Fd) -> Int = fs_attr::sys_fsync;
    83 fdatasync(Fd) -> Int = fs_attr::sys_fdatasync;
    85 timerfd_create(Clock, Hex) -> Int = evfd::sys_timerfd_create;
    86 timerfd_settime(Fd, Hex, Hex, Hex) -> Int = evfd::sys_timerfd_settime;
    87 timerfd_gettime(Fd, Hex) -> Int = evfd::sys_timerfd_gettime;
    88 utimensat(Dirfd, Path, Hex, AtFlags) -> Int = fs_attr::sys_utimensat;
    93 exit(Int) -> Int = process::sys_exit;
    94 exit_group(Int) -> Int = process::sys_exit_group;
    95 waitid(Int, Int, Hex, Hex, Hex) -> Int = wait::sys_waitid;
    96 set_tid_address(Hex) -> Int = process::sys_set_tid_address;
    98 futex(Hex, FutexOp, Int, Hex, Hex, Int) -> Int = futex::sys_futex;
    99 set_robust_list(Hex, Uint) -> Int = process::sys_set_robust_list;
    100 get_robust_list(Int, Hex, Hex) -> Int = process::sys_get_robust_list;
    101 nanosleep(Hex, Hex) -> Int = time::sys_nanosleep;
    102 getitimer(Int, Hex) -> Int = timer::sys_getitimer;
    103 setitimer(Int, Hex, Hex) -> Int = timer::sys_setitimer;
    107 timer_create(Clock, Hex, Hex) -> Int = timer::sys_timer_create;
    108 timer_gettime(Int, Hex) -> Int = timer::sys_timer_gettime;
    109 timer_getoverrun(Int) -> Int = timer::sys_timer_getoverrun;
    110 timer_settime(Int, Int, Hex, Hex) -> Int = timer::sys_timer_settime;
    111 timer_delete(Int) -> Int = timer::sys_timer_delete;
    112 clock_settime(Clock, Hex) -> Int = time::sys_clock_settime;
    113 clock_gettime(Clock, Hex) -> Int = time::sys_clock_gettime;
    114 clock_getres(Clock, Hex) -> Int = time::sys_clock_getres;
    115 clock_nanosleep(Clock, Int, Hex, Hex) -> Int = time::sys_clock_nanosleep;
    118 sched_setparam(Int, Hex) -> Int = system::sys_sched_setparam;
    119 sched_setscheduler(Int, Int, Hex) -> Int = system::sys_sched_setscheduler;
    120 sched_getscheduler(Int) -> Int = system::sys_sched_getscheduler;
    121 sched_getparam(Int, Hex) -> Int = system::sys_sched_getparam;
    122 sched_setaffinity(Int, Uint, Hex) -> Int = system::sys_sched_setaffinity;
    123 sched_getaffinity(Int, Uint, Hex) -> Int = system::sys_sched_getaffinity;
    124 sched_yield() -> Int = system::sys_sched_yield;
    125 sched_get_priority_max(Int) -> Int = system::sys_sched_get_priority_max;
    126 sched_get_priority_min(Int) -> Int = system::sys_sched_get_priority_min;
    128 restart_syscall() -> Int = signal::sys_restart_syscall;
    129 kill(Int, Signal) -> Int = signal::sys_kill;
    130 tkill(Int, Signal) -> Int = signal::sys_tkill;
    131 tgkill(Int, Int, Signal) -> Int = signal::sys_tgkill;
    132 sigaltstack(Hex, Hex) -> Int = signal::sys_sigaltstack;
    133 rt_sigsuspend(Hex, Uint) -> Int = signal::sys_rt_sigsuspend;
    134 rt_sigaction(Signal, Hex, Hex, Uint) -> Int = signal::sys_rt_sigaction;
    135 rt_sigprocmask(SigHow, Hex, Hex, Uint) -> Int = signal::sys_rt_sigprocmask;
    136 rt_sigpending(Hex, Uint) -> Int = signal::sys_rt_sigpending;
    137 rt_sigtimedwait(Hex, Hex, Hex, Uint) -> Int = signal::sys_rt_sigtimedwait;
    138 rt_sigqueueinfo(Int, Signal, Hex) -> Int = signal::sys_rt_sigqueueinfo;
    139 rt_sigreturn() -> Int = signal::sys_rt_sigreturn;
    140 setpriority(Int, Int, Int) -> Int = system::sys_setpriority;
    141 getpriority(Int, Int) -> Int = system::sys_getpriority;
    143 setregid(Int, Int) -> Int = identity::sys_setregid;
    144 setgid(Int) -> Int = identity::sys_setgid;
    145 setreuid(Int, Int) -> Int = identity::sys_setreuid;
    146 setuid(Int) -> Int = identity::sys_setuid;
    147 setresuid(Int, Int, Int) -> Int = identity::sys_setresuid;
    148 getresuid(Hex, Hex, Hex) -> Int = identity::sys_getresuid;
    149 setresgid(Int, Int, Int) -> Int = identity::sys_setresgid;
    150 getresgid(Hex, Hex, Hex) -> Int = identity::sys_getresgid;
    151 setfsuid(Int) -> Int = identity::sys_setfsuid;
    152 setfsgid(Int) -> Int = identity::sys_setfsgid;
    153 times(Hex) -> Int = time::sys_times;
    154 setpgid(Int, Int) -> Int = identity::sys_setpgid;
    155 getpgid(Int) -> Int = identity::sys_getpgid;
    156 getsid(Int) -> Int = identity::sys_getsid;
    157 setsid() -> Int = identity::sys_setsid;
    158 getgroups(Int, Hex) -> Int = identity::sys_getgroups;
    159 setgroups(Int, Hex) -> Int = identity::sys_setgroups;
    160 uname(Hex) -> Int = system::sys_uname;
    161 sethostname(Str, Uint) -> Int = system::sys_sethostname;
    163 getrlimit(Int, Hex) -> Int = system::sys_getrlimit;
    164 setrlimit(Int, Hex) -> Int = system::sys_setrlimit;
    165 getrusage(Int, Hex) -> Int = system::sys_getrusage;
    166 umask(Mode) -> Mode = fs_dir::sys_umask;
    167 prctl(Int, Hex, Hex, Hex, Hex) -> Int = process::sys_prctl;
    168 getcpu(Hex, Hex, Hex) -> Int = system::sys_getcpu;
    169 gettimeofday(Hex, Hex) -> Int = time::sys_gettimeofday;
    170 settimeofday(Hex, Hex) -> Int = time::sys_settimeofday;
    172 getpid() -> Int = identity::sys_getpid;
    173 getppid() -> Int = identity::sys_getppid;
    174 getuid() -> Int = identity::sys_getuid;
    175 geteuid() -> Int = identity::sys_geteuid;
    176 getgid() -> Int = identity::sys_getgid;
    177 getegid() -> Int = identity::sys_getegid;
    178 gettid() -> Int = identity::sys_gettid;
    179 sysinfo(Hex) -> Int = system::sys_sysinfo;
    204 getsockname(Fd, Hex, Hex) -> Int = socket::sys_getsockname;
    205 getpeername(Fd, Hex, Hex) -> Int = socket::sys_getpeername;
    214 brk(Hex) -> Hex = mem::sys_brk;
    215 munmap(Hex, Uint) -> Int = mem::sys_munmap;
    216 mremap(Hex, Uint, Uint, Hex, Hex) -> Hex = mem::sys_mremap;
    220 clone(Hex, Hex, Hex, Hex, Hex) -> Int = thread::sys_clone;
    221 execve(Path, Hex, Hex) -> Int = exec::sys_execve;
    222 mmap(Hex, Uint, Prot, MapFlags, Fd, Hex) -> Hex = mem::sys_mmap;
    223 fadvise64(Fd, Int, Int, Int) -> Int = fs_io::sys_fadvise64;
    226 mprotect(Hex, Uint, Prot) -> Int = mem::sys_mprotect;
    227 msync(Hex, Uint, Hex) -> Int = mem::sys_msync;
    228 mlock(Hex, Uint) -> Int = mem::sys_mlock;
    229 munlock(Hex, Uint) -> Int = mem::sys_munlock;
    230 mlockall(Hex) -> Int = mem::sys_mlockall;
    231 munlockall() -> Int = mem::sys_munlockall;
    232 mincore(Hex, Uint, Hex) -> Int = mem::sys_mincore;
    233 madvise(Hex, Uint, Int) -> Int = mem::sys_madvise;
    240 rt_tgsigqueueinfo(Int, Int, Signal, Hex) -> Int = signal::sys_rt_tgsigqueueinfo;
    260 wait4(Int, Hex, Hex, Hex) -> Int = wait::sys_wait4;
    261 prlimit64(Int, Int, Hex, Hex) -> Int = system::sys_prlimit64;
    267 syncfs(Fd) -> Int = fs_attr::sys_syncfs;
    276 renameat2(Dirfd, Path, Dirfd, Path, Hex) -> Int = fs_dir::sys_renameat2;
    278 getrandom(Hex, Uint, Hex) -> Int = system::sys_getrandom;
    281 execveat(Dirfd, Path, Hex, Hex, AtFlags) -> Int = exec::sys_execveat;
    285 copy_file_range(Fd, Hex, Fd, Hex, Uint, Hex) -> Int = fs_io::sys_copy_file_range;
    286 preadv2(Fd, Hex, Int, Int, Int, Hex) -> Int = fs_io::sys_preadv2;
    287 pwritev2(Fd, Hex, Int, Int, Int, Hex) -> Int = fs_io::sys_pwritev2;
    291 statx(Dirfd, Path, AtFlags, Hex, Hex) -> Int = fs_stat::sys_statx;
    293 rseq(Hex, Uint, Int, Hex) -> Int = process::sys_rseq;
    424 pidfd_send_signal(Fd, Signal, Hex, Hex) -> Int = pidfd::sys_pidfd_send_signal;
    434 pidfd_open(Int, Hex) -> Int = pidfd::sys_pidfd_open;
    435 clone3(Hex, Uint) -> Int = thread::sys_clone3;
    436 close_range(Fd, Fd, Hex) -> Int = fs_open::sys_close_range;
    437 openat2(Dirfd, Path, Hex, Uint) -> Int = fs_open::sys_openat2;
    439 faccessat2(Dirfd, Path, Int, AtFlags) -> Int = fs_stat::sys_faccessat2;
    441 epoll_pwait2(Fd, Hex, Int, Hex, Hex, Uint) -> Int = epoll::sys_epoll_pwait2;
    449 futex_waitv(Hex, Uint, Hex, Hex, Clock) -> Int = futex::sys_futex_waitv;
    452 fchmodat2(Dirfd, Path, Mode, AtFlags) -> Int = fs_attr::sys_fchmodat2;
}

/// The table indexed by number.
static BY_NUMBER: LazyLock<Vec<Option<&'static SyscallDef>>> = LazyLock::new(|| {
    let mut index = vec![None; sysno::NR_SYSCALLS];
    for def in SYSCALLS {
        index[def.nr as usize] = Some(def);
    }
    index
});

/// The handler entry for `nr`.
pub fn lookup(nr: u64) -> Option<&'static SyscallDef> {
    BY_NUMBER.get(usize::try_from(nr).ok()?).copied().flatten()
}

/// Numbers already reported as unimplemented: one bit each, plus one for out-of-range ones.
static REPORTED: [AtomicU64; sysno::NR_SYSCALLS / 64 + 2] =
    [const { AtomicU64::new(0) }; sysno::NR_SYSCALLS / 64 + 2];

fn report_unimplemented(nr: u64) {
    let slot = usize::try_from(nr)
        .ok()
        .filter(|&n| n < sysno::NR_SYSCALLS)
        .unwrap_or(sysno::NR_SYSCALLS);
    let bit = 1u64 << (slot % 64);
    if REPORTED[slot / 64].fetch_or(bit, Ordering::Relaxed) & bit == 0 {
        match sysno::name(nr) {
            Some(name) => info!("unimplemented syscall {name} ({nr}) returns ENOSYS"),
            None => info!("unknown syscall number {nr} returns ENOSYS"),
        }
    }
}

/// A handler for calls that are deliberately not implemented: `ENOSYS`, logged at debug.
pub fn sys_deliberate_enosys(ctx: &mut Ctx<'_>, _args: &[u64; 6]) -> SysResult {
    let (nr, _) = ctx.cpu.syscall_args();
    debug!(
        tid = ctx.task.tid,
        "syscall {} returns ENOSYS by design",
        sysno::name(nr).unwrap_or("?")
    );
    Err(Errno::ENOSYS)
}

/// Serves the syscall the thread just made (`svc #0`): dispatch, result into `x0`, trace.
pub fn dispatch(task: &mut Task, cpu: &mut dyn CpuState) {
    let (nr, args) = cpu.syscall_args();
    let def = lookup(nr);
    // The trace decodes arguments in the memory they were passed in, which a successful
    // execve replaces.
    let traced = task
        .process
        .tracer
        .is_some()
        .then(|| (task.memory.clone(), task.tid));
    let result = match def {
        Some(def) => (def.handler)(
            &mut Ctx {
                task: &mut *task,
                cpu: &mut *cpu,
            },
            &args,
        ),
        None => {
            report_unimplemented(nr);
            Err(Errno::ENOSYS)
        }
    };
    // The trace shows a call a signal interrupted with its restart code, as strace does.
    let (ret, shown) = match result {
        Ok(value) => (value, value),
        Err(code) if restart::is_restart(code) => {
            task.interrupted = Some(Interrupted { code, x0: args[0] });
            (Errno::EINTR.as_return(), code.as_return())
        }
        Err(errno) => (errno.as_return(), errno.as_return()),
    };
    if let (Some(tracer), Some((memory, tid))) = (&task.process.tracer, traced) {
        tracer.syscall(&memory, tid, nr, def, &args, shown);
    }
    cpu.set_x(0, ret);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_numbers_match_the_aarch64_names() {
        for def in SYSCALLS {
            assert_eq!(sysno::name(def.nr), Some(def.name), "syscall {}", def.nr);
        }
    }

    #[test]
    fn table_has_no_duplicates() {
        let mut seen = std::collections::HashSet::new();
        for def in SYSCALLS {
            assert!(seen.insert(def.nr), "{} listed twice", def.name);
        }
    }
}
