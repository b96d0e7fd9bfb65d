//! The Linux aarch64 ABI as the guest sees it: syscall numbers, errno values, flag words and
//! structure layouts.
//!
//! Nothing here knows about the host. Handlers translate between these values and the host's
//! explicitly; a host constant never stands in for a Linux one.

pub mod errno;
pub mod signal;
pub mod structs;
pub mod sysno;

/// `open`/`openat` flags (aarch64 values, which differ from x86-64 for the directory flags).
pub mod open {
    pub const O_ACCMODE: u64 = 0o3;
    pub const O_RDONLY: u64 = 0o0;
    pub const O_WRONLY: u64 = 0o1;
    pub const O_RDWR: u64 = 0o2;
    pub const O_CREAT: u64 = 0o100;
    pub const O_EXCL: u64 = 0o200;
    pub const O_NOCTTY: u64 = 0o400;
    pub const O_TRUNC: u64 = 0o1000;
    pub const O_APPEND: u64 = 0o2000;
    pub const O_NONBLOCK: u64 = 0o4000;
    pub const O_DSYNC: u64 = 0o10000;
    pub const O_ASYNC: u64 = 0o20000;
    pub const O_DIRECTORY: u64 = 0o40000;
    pub const O_NOFOLLOW: u64 = 0o100000;
    pub const O_DIRECT: u64 = 0o200000;
    pub const O_LARGEFILE: u64 = 0o400000;
    pub const O_NOATIME: u64 = 0o1000000;
    pub const O_CLOEXEC: u64 = 0o2000000;
    pub const O_SYNC: u64 = 0o4010000;
    pub const O_PATH: u64 = 0o10000000;
    pub const O_TMPFILE: u64 = 0o20000000 | O_DIRECTORY;

    /// Every flag Linux knows; `openat2` rejects the rest.
    pub const VALID: u64 = O_ACCMODE
        | O_CREAT
        | O_EXCL
        | O_NOCTTY
        | O_TRUNC
        | O_APPEND
        | O_NONBLOCK
        | O_DSYNC
        | O_ASYNC
        | O_DIRECTORY
        | O_NOFOLLOW
        | O_DIRECT
        | O_LARGEFILE
        | O_NOATIME
        | O_CLOEXEC
        | O_SYNC
        | O_PATH
        | O_TMPFILE;

    /// The status flags `F_SETFL` may change.
    pub const SETFL_MASK: u64 = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;
}

/// `clone` flags.
pub mod clone {
    pub const CSIGNAL: u64 = 0xff;
    pub const CLONE_VM: u64 = 0x100;
    pub const CLONE_FS: u64 = 0x200;
    pub const CLONE_FILES: u64 = 0x400;
    pub const CLONE_SIGHAND: u64 = 0x800;
    pub const CLONE_PIDFD: u64 = 0x1000;
    pub const CLONE_PTRACE: u64 = 0x2000;
    pub const CLONE_VFORK: u64 = 0x4000;
    pub const CLONE_PARENT: u64 = 0x8000;
    pub const CLONE_THREAD: u64 = 0x10000;
    pub const CLONE_NEWNS: u64 = 0x20000;
    pub const CLONE_SYSVSEM: u64 = 0x40000;
    pub const CLONE_SETTLS: u64 = 0x80000;
    pub const CLONE_PARENT_SETTID: u64 = 0x100000;
    pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
    pub const CLONE_DETACHED: u64 = 0x400000;
    pub const CLONE_UNTRACED: u64 = 0x800000;
    pub const CLONE_CHILD_SETTID: u64 = 0x1000000;
    pub const CLONE_NEWCGROUP: u64 = 0x2000000;
    pub const CLONE_NEWUTS: u64 = 0x4000000;
    pub const CLONE_NEWIPC: u64 = 0x8000000;
    pub const CLONE_NEWUSER: u64 = 0x10000000;
    pub const CLONE_NEWPID: u64 = 0x20000000;
    pub const CLONE_NEWNET: u64 = 0x40000000;
    pub const CLONE_IO: u64 = 0x80000000;
    pub const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
    pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    pub const CLONE_NEWTIME: u64 = 0x80;
    /// Namespace flags: elfuse has no namespaces.
    pub const NAMESPACES: u64 = CLONE_NEWNS
        | CLONE_NEWCGROUP
        | CLONE_NEWUTS
        | CLONE_NEWIPC
        | CLONE_NEWUSER
        | CLONE_NEWPID
        | CLONE_NEWNET;
    /// Every flag `clone3` accepts.
    pub const CLONE3_KNOWN: u64 =
        0xffff_ff00 | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP | CLONE_NEWTIME;
}

/// `futex(2)` operations and flags, the futex word's bits, and `futex_waitv(2)`'s flags.
pub mod futex {
    pub const FUTEX_WAIT: u32 = 0;
    pub const FUTEX_WAKE: u32 = 1;
    pub const FUTEX_FD: u32 = 2;
    pub const FUTEX_REQUEUE: u32 = 3;
    pub const FUTEX_CMP_REQUEUE: u32 = 4;
    pub const FUTEX_WAKE_OP: u32 = 5;
    pub const FUTEX_LOCK_PI: u32 = 6;
    pub const FUTEX_UNLOCK_PI: u32 = 7;
    pub const FUTEX_TRYLOCK_PI: u32 = 8;
    pub const FUTEX_WAIT_BITSET: u32 = 9;
    pub const FUTEX_WAKE_BITSET: u32 = 10;
    pub const FUTEX_WAIT_REQUEUE_PI: u32 = 11;
    pub const FUTEX_CMP_REQUEUE_PI: u32 = 12;
    pub const FUTEX_LOCK_PI2: u32 = 13;
    pub const FUTEX_PRIVATE_FLAG: u32 = 128;
    pub const FUTEX_CLOCK_REALTIME: u32 = 256;
    /// The command part of an operation word.
    pub const FUTEX_CMD_MASK: u32 = !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    /// The bitset of `FUTEX_WAIT` and `FUTEX_WAKE`: every bit.
    pub const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

    /// A PI or robust lock word: waiters queued in the kernel.
    pub const FUTEX_WAITERS: u32 = 0x8000_0000;
    /// A PI or robust lock word: the owner died holding it.
    pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
    /// A PI or robust lock word: the owner's thread id.
    pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

    /// `FUTEX_WAKE_OP` operations and comparisons (`FUTEX_OP_*`).
    pub const FUTEX_OP_SET: u32 = 0;
    pub const FUTEX_OP_ADD: u32 = 1;
    pub const FUTEX_OP_OR: u32 = 2;
    pub const FUTEX_OP_ANDN: u32 = 3;
    pub const FUTEX_OP_XOR: u32 = 4;
    /// Use `1 << oparg` as the operand.
    pub const FUTEX_OP_OPARG_SHIFT: u32 = 8;
    pub const FUTEX_OP_CMP_EQ: u32 = 0;
    pub const FUTEX_OP_CMP_NE: u32 = 1;
    pub const FUTEX_OP_CMP_LT: u32 = 2;
    pub const FUTEX_OP_CMP_LE: u32 = 3;
    pub const FUTEX_OP_CMP_GT: u32 = 4;
    pub const FUTEX_OP_CMP_GE: u32 = 5;

    /// `futex_waitv` entry flags (`FUTEX2_*`): the word size and the private flag.
    pub const FUTEX2_SIZE_U32: u32 = 0x02;
    pub const FUTEX2_SIZE_MASK: u32 = 0x03;
    pub const FUTEX2_PRIVATE: u32 = FUTEX_PRIVATE_FLAG;
    /// The most futexes one `futex_waitv` call waits on.
    pub const FUTEX_WAITV_MAX: u32 = 128;

    /// `ROBUST_LIST_LIMIT`: at most this many entries of a robust list are walked.
    pub const ROBUST_LIST_LIMIT: usize = 2048;
}

/// `AT_*` flags and the special directory descriptor.
pub mod at {
    pub const AT_FDCWD: i32 = -100;
    pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
    pub const AT_EACCESS: u64 = 0x200;
    pub const AT_REMOVEDIR: u64 = 0x200;
    pub const AT_SYMLINK_FOLLOW: u64 = 0x400;
    pub const AT_NO_AUTOMOUNT: u64 = 0x800;
    pub const AT_EMPTY_PATH: u64 = 0x1000;
    pub const AT_STATX_SYNC_TYPE: u64 = 0x6000;
    pub const RENAME_NOREPLACE: u64 = 1;
    pub const RENAME_EXCHANGE: u64 = 2;
    pub const RENAME_WHITEOUT: u64 = 4;
}

/// `openat2` resolve flags.
pub mod resolve {
    pub const RESOLVE_NO_XDEV: u64 = 0x01;
    pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    pub const RESOLVE_BENEATH: u64 = 0x08;
    pub const RESOLVE_IN_ROOT: u64 = 0x10;
    pub const RESOLVE_CACHED: u64 = 0x20;
    pub const VALID: u64 = 0x3f;
}

/// `mmap` and friends.
pub mod mman {
    pub const MAP_SHARED: u64 = 0x01;
    pub const MAP_PRIVATE: u64 = 0x02;
    pub const MAP_SHARED_VALIDATE: u64 = 0x03;
    pub const MAP_TYPE: u64 = 0x0f;
    pub const MAP_FIXED: u64 = 0x10;
    pub const MAP_ANONYMOUS: u64 = 0x20;
    pub const MAP_GROWSDOWN: u64 = 0x0100;
    pub const MAP_DENYWRITE: u64 = 0x0800;
    pub const MAP_EXECUTABLE: u64 = 0x1000;
    pub const MAP_LOCKED: u64 = 0x2000;
    pub const MAP_NORESERVE: u64 = 0x4000;
    pub const MAP_POPULATE: u64 = 0x8000;
    pub const MAP_NONBLOCK: u64 = 0x10000;
    pub const MAP_STACK: u64 = 0x20000;
    pub const MAP_HUGETLB: u64 = 0x40000;
    pub const MAP_SYNC: u64 = 0x80000;
    pub const MAP_FIXED_NOREPLACE: u64 = 0x100000;
    pub const MAP_UNINITIALIZED: u64 = 0x4000000;
    /// The flags `MAP_SHARED_VALIDATE` accepts (Linux's `LEGACY_MAP_MASK` plus the rest).
    pub const SHARED_VALIDATE_KNOWN: u64 = MAP_SHARED
        | MAP_PRIVATE
        | MAP_FIXED
        | MAP_ANONYMOUS
        | MAP_DENYWRITE
        | MAP_EXECUTABLE
        | MAP_UNINITIALIZED
        | MAP_GROWSDOWN
        | MAP_LOCKED
        | MAP_NORESERVE
        | MAP_POPULATE
        | MAP_NONBLOCK
        | MAP_STACK
        | MAP_HUGETLB
        | MAP_FIXED_NOREPLACE;

    pub const PROT_READ: u64 = 1;
    pub const PROT_WRITE: u64 = 2;
    pub const PROT_EXEC: u64 = 4;
    pub const PROT_SEM: u64 = 8;
    pub const PROT_BTI: u64 = 0x10;
    pub const PROT_MTE: u64 = 0x20;
    pub const PROT_GROWSDOWN: u64 = 0x0100_0000;
    pub const PROT_GROWSUP: u64 = 0x0200_0000;

    pub const MREMAP_MAYMOVE: u64 = 1;
    pub const MREMAP_FIXED: u64 = 2;
    pub const MREMAP_DONTUNMAP: u64 = 4;

    pub const MS_ASYNC: u64 = 1;
    pub const MS_INVALIDATE: u64 = 2;
    pub const MS_SYNC: u64 = 4;

    pub const MADV_NORMAL: u64 = 0;
    pub const MADV_RANDOM: u64 = 1;
    pub const MADV_SEQUENTIAL: u64 = 2;
    pub const MADV_WILLNEED: u64 = 3;
    pub const MADV_DONTNEED: u64 = 4;
    pub const MADV_FREE: u64 = 8;
    pub const MADV_REMOVE: u64 = 9;
    pub const MADV_DONTFORK: u64 = 10;
    pub const MADV_DOFORK: u64 = 11;
    pub const MADV_MERGEABLE: u64 = 12;
    pub const MADV_UNMERGEABLE: u64 = 13;
    pub const MADV_HUGEPAGE: u64 = 14;
    pub const MADV_NOHUGEPAGE: u64 = 15;
    pub const MADV_DONTDUMP: u64 = 16;
    pub const MADV_DODUMP: u64 = 17;
    pub const MADV_WIPEONFORK: u64 = 18;
    pub const MADV_KEEPONFORK: u64 = 19;
    pub const MADV_COLD: u64 = 20;
    pub const MADV_PAGEOUT: u64 = 21;
    pub const MADV_POPULATE_READ: u64 = 22;
    pub const MADV_POPULATE_WRITE: u64 = 23;
    pub const MADV_DONTNEED_LOCKED: u64 = 24;
    pub const MADV_COLLAPSE: u64 = 25;
    pub const MADV_HWPOISON: u64 = 100;
    pub const MADV_SOFT_OFFLINE: u64 = 101;
}

/// `fcntl` commands and descriptor flags.
pub mod fcntl {
    pub const F_DUPFD: u64 = 0;
    pub const F_GETFD: u64 = 1;
    pub const F_SETFD: u64 = 2;
    pub const F_GETFL: u64 = 3;
    pub const F_SETFL: u64 = 4;
    pub const F_GETLK: u64 = 5;
    pub const F_SETLK: u64 = 6;
    pub const F_SETLKW: u64 = 7;
    pub const F_SETOWN: u64 = 8;
    pub const F_GETOWN: u64 = 9;
    pub const F_SETSIG: u64 = 10;
    pub const F_GETSIG: u64 = 11;
    pub const F_SETOWN_EX: u64 = 15;
    pub const F_GETOWN_EX: u64 = 16;
    pub const F_OFD_GETLK: u64 = 36;
    pub const F_OFD_SETLK: u64 = 37;
    pub const F_OFD_SETLKW: u64 = 38;
    pub const F_SETLEASE: u64 = 1024;
    pub const F_GETLEASE: u64 = 1025;
    pub const F_NOTIFY: u64 = 1026;
    pub const F_DUPFD_CLOEXEC: u64 = 1030;
    pub const F_SETPIPE_SZ: u64 = 1031;
    pub const F_GETPIPE_SZ: u64 = 1032;
    pub const F_ADD_SEALS: u64 = 1033;
    pub const F_GET_SEALS: u64 = 1034;
    pub const FD_CLOEXEC: u64 = 1;
    pub const F_RDLCK: i16 = 0;
    pub const F_WRLCK: i16 = 1;
    pub const F_UNLCK: i16 = 2;
    pub const LOCK_SH: u64 = 1;
    pub const LOCK_EX: u64 = 2;
    pub const LOCK_NB: u64 = 4;
    pub const LOCK_UN: u64 = 8;
}

/// File type and permission bits of `st_mode` (the traditional values every Unix shares).
pub mod mode {
    pub const S_IFMT: u32 = 0o170000;
    pub const S_IFSOCK: u32 = 0o140000;
    pub const S_IFLNK: u32 = 0o120000;
    pub const S_IFREG: u32 = 0o100000;
    pub const S_IFBLK: u32 = 0o060000;
    pub const S_IFDIR: u32 = 0o040000;
    pub const S_IFCHR: u32 = 0o020000;
    pub const S_IFIFO: u32 = 0o010000;
    pub const PERMISSION_BITS: u32 = 0o7777;
}

/// `d_type` values of `linux_dirent64`.
pub mod dirent {
    pub const DT_UNKNOWN: u8 = 0;
    pub const DT_FIFO: u8 = 1;
    pub const DT_CHR: u8 = 2;
    pub const DT_DIR: u8 = 4;
    pub const DT_BLK: u8 = 6;
    pub const DT_REG: u8 = 8;
    pub const DT_LNK: u8 = 10;
    pub const DT_SOCK: u8 = 12;
}

/// Clock ids.
pub mod clock {
    pub const CLOCK_REALTIME: i64 = 0;
    pub const CLOCK_MONOTONIC: i64 = 1;
    pub const CLOCK_PROCESS_CPUTIME_ID: i64 = 2;
    pub const CLOCK_THREAD_CPUTIME_ID: i64 = 3;
    pub const CLOCK_MONOTONIC_RAW: i64 = 4;
    pub const CLOCK_REALTIME_COARSE: i64 = 5;
    pub const CLOCK_MONOTONIC_COARSE: i64 = 6;
    pub const CLOCK_BOOTTIME: i64 = 7;
    pub const CLOCK_REALTIME_ALARM: i64 = 8;
    pub const CLOCK_BOOTTIME_ALARM: i64 = 9;
    pub const CLOCK_TAI: i64 = 11;
    pub const TIMER_ABSTIME: u64 = 1;
}

/// Interval timers (`setitimer`) and POSIX timer notification (`struct sigevent`).
pub mod timer {
    pub const ITIMER_REAL: i32 = 0;
    pub const ITIMER_VIRTUAL: i32 = 1;
    pub const ITIMER_PROF: i32 = 2;
    pub const SIGEV_SIGNAL: i32 = 0;
    pub const SIGEV_NONE: i32 = 1;
    pub const SIGEV_THREAD: i32 = 2;
    pub const SIGEV_THREAD_ID: i32 = 4;
    /// The kind of CPU time a CPU clock id counts (its low two bits).
    pub const CPUCLOCK_PROF: u32 = 0;
    pub const CPUCLOCK_VIRT: u32 = 1;
    pub const CPUCLOCK_SCHED: u32 = 2;
}

/// Terminal and generic `ioctl` requests.
pub mod ioctl {
    pub const TCGETS: u64 = 0x5401;
    pub const TCSETS: u64 = 0x5402;
    pub const TCSETSW: u64 = 0x5403;
    pub const TCSETSF: u64 = 0x5404;
    pub const TCSBRK: u64 = 0x5409;
    pub const TCXONC: u64 = 0x540A;
    pub const TCFLSH: u64 = 0x540B;
    pub const TIOCSCTTY: u64 = 0x540E;
    pub const TIOCGPGRP: u64 = 0x540F;
    pub const TIOCSPGRP: u64 = 0x5410;
    pub const TIOCOUTQ: u64 = 0x5411;
    pub const TIOCGWINSZ: u64 = 0x5413;
    pub const TIOCSWINSZ: u64 = 0x5414;
    pub const FIONREAD: u64 = 0x541B;
    pub const TIOCNOTTY: u64 = 0x5422;
    pub const TIOCGSID: u64 = 0x5429;
    pub const FIONBIO: u64 = 0x5421;
    pub const FIONCLEX: u64 = 0x5450;
    pub const FIOCLEX: u64 = 0x5451;
    pub const FIOASYNC: u64 = 0x5452;
    pub const TIOCGPTN: u64 = 0x8004_5430;
    pub const TIOCSPTLCK: u64 = 0x4004_5431;
}

/// Resource limit ids.
pub mod rlimit {
    pub const RLIMIT_CPU: u32 = 0;
    pub const RLIMIT_FSIZE: u32 = 1;
    pub const RLIMIT_DATA: u32 = 2;
    pub const RLIMIT_STACK: u32 = 3;
    pub const RLIMIT_CORE: u32 = 4;
    pub const RLIMIT_RSS: u32 = 5;
    pub const RLIMIT_NPROC: u32 = 6;
    pub const RLIMIT_NOFILE: u32 = 7;
    pub const RLIMIT_MEMLOCK: u32 = 8;
    pub const RLIMIT_AS: u32 = 9;
    pub const RLIMIT_LOCKS: u32 = 10;
    pub const RLIMIT_SIGPENDING: u32 = 11;
    pub const RLIMIT_MSGQUEUE: u32 = 12;
    pub const RLIMIT_NICE: u32 = 13;
    pub const RLIMIT_RTPRIO: u32 = 14;
    pub const RLIMIT_RTTIME: u32 = 15;
    pub const RLIM_NLIMITS: u32 = 16;
    pub const RLIM_INFINITY: u64 = u64::MAX;
}

/// Auxiliary vector keys.
pub mod auxv {
    pub const AT_NULL: u64 = 0;
    pub const AT_IGNORE: u64 = 1;
    pub const AT_EXECFD: u64 = 2;
    pub const AT_PHDR: u64 = 3;
    pub const AT_PHENT: u64 = 4;
    pub const AT_PHNUM: u64 = 5;
    pub const AT_PAGESZ: u64 = 6;
    pub const AT_BASE: u64 = 7;
    pub const AT_FLAGS: u64 = 8;
    pub const AT_ENTRY: u64 = 9;
    pub const AT_NOTELF: u64 = 10;
    pub const AT_UID: u64 = 11;
    pub const AT_EUID: u64 = 12;
    pub const AT_GID: u64 = 13;
    pub const AT_EGID: u64 = 14;
    pub const AT_PLATFORM: u64 = 15;
    pub const AT_HWCAP: u64 = 16;
    pub const AT_CLKTCK: u64 = 17;
    pub const AT_SECURE: u64 = 23;
    pub const AT_BASE_PLATFORM: u64 = 24;
    pub const AT_RANDOM: u64 = 25;
    pub const AT_HWCAP2: u64 = 26;
    pub const AT_EXECFN: u64 = 31;
    pub const AT_SYSINFO_EHDR: u64 = 33;
    pub const AT_MINSIGSTKSZ: u64 = 51;
}
