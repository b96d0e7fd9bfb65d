//! Everything that touches the host operating system.
//!
//! Integer widths of C fields differ between hosts (`tv_usec`, `st_nlink`, `st_blksize`), so
//! conversions here are written as casts that are no-ops on one host and widen on the other;
//! clippy's same-type-cast lint is allowed in this module tree for that reason.
//!
//! The syscall layer is written once against POSIX and reaches the host only through this
//! module. What differs between Linux and macOS lives in [`linux`] and [`macos`], behind the
//! same function names, so the Linux CI build exercises the same callers macOS users run.

#![allow(clippy::unnecessary_cast)]

pub mod dir;
pub mod fs;
pub mod futex;
pub mod handover;
pub mod io;
pub mod memory;
pub mod poll;
pub mod process;
pub mod signals;
pub mod threads;
pub mod tty;
pub mod xattr;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use self::linux::*;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub use self::macos::*;

pub use self::memory::{HostRange, Reservation};

/// Host file-system information, in Linux terms (`struct statfs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsStat {
    /// The Linux magic number of the file-system type.
    pub magic: i64,
    pub bsize: i64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub fsid: [i32; 2],
    pub namelen: i64,
    pub frsize: i64,
    /// Linux `ST_*` mount flags.
    pub flags: i64,
}

/// The number of CPUs this process may run on.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The host name, as `uname` reports it.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Real, effective and saved user and group ids of this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostIds {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
}

/// This process's ids.
pub fn ids() -> HostIds {
    HostIds {
        uid: nix::unistd::getuid().as_raw(),
        euid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        egid: nix::unistd::getegid().as_raw(),
    }
}

/// This process's supplementary groups.
pub fn groups() -> Vec<u32> {
    let mut list = vec![0 as libc::gid_t; 256];
    // SAFETY: list has room for 256 entries, the count passed.
    let n = unsafe { libc::getgroups(list.len() as libc::c_int, list.as_mut_ptr()) };
    list.truncate(usize::try_from(n).unwrap_or(0));
    list.into_iter().map(|g| g as u32).collect()
}

/// Resource usage, in units every host agrees on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// User CPU time in microseconds.
    pub user_us: i64,
    /// System CPU time in microseconds.
    pub system_us: i64,
    /// Peak resident set in KiB.
    pub maxrss_kib: i64,
    pub minflt: i64,
    pub majflt: i64,
    pub inblock: i64,
    pub oublock: i64,
    pub nvcsw: i64,
    pub nivcsw: i64,
}

/// This process's resource usage (`RUSAGE_SELF`) or that of its reaped children.
pub fn rusage(children: bool) -> Usage {
    let who = if children {
        libc::RUSAGE_CHILDREN
    } else {
        libc::RUSAGE_SELF
    };
    // SAFETY: an all-zero rusage is valid, and getrusage fills it in.
    let u = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    usage_from(&u)
}

/// Converts the host's `rusage`.
pub fn usage_from(u: &libc::rusage) -> Usage {
    let micros = |tv: libc::timeval| tv.tv_sec as i64 * 1_000_000 + tv.tv_usec as i64;
    Usage {
        user_us: micros(u.ru_utime),
        system_us: micros(u.ru_stime),
        maxrss_kib: maxrss_kib(u.ru_maxrss as i64),
        minflt: u.ru_minflt as i64,
        majflt: u.ru_majflt as i64,
        inblock: u.ru_inblock as i64,
        oublock: u.ru_oublock as i64,
        nvcsw: u.ru_nvcsw as i64,
        nivcsw: u.ru_nivcsw as i64,
    }
}

/// Reads the host's clock `clock`.
pub fn clock_gettime(clock: libc::clockid_t) -> std::io::Result<(i64, i64)> {
    // SAFETY: an all-zero timespec is valid, and clock_gettime fills it in.
    unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        if libc::clock_gettime(clock, &mut ts) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((ts.tv_sec as i64, ts.tv_nsec as i64))
    }
}

/// The host clock's resolution.
pub fn clock_getres(clock: libc::clockid_t) -> std::io::Result<(i64, i64)> {
    // SAFETY: an all-zero timespec is valid, and clock_getres fills it in.
    unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        if libc::clock_getres(clock, &mut ts) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((ts.tv_sec as i64, ts.tv_nsec as i64))
    }
}

/// Fills `buf` with random bytes from the host's generator.
pub fn random_bytes(buf: &mut [u8]) {
    use rand::TryRngCore;
    if rand::rngs::OsRng.try_fill_bytes(buf).is_err() {
        // The OS generator does not fail on supported hosts; fall back to a seeded generator
        // rather than handing out zeroes.
        use rand::{RngCore, SeedableRng};
        rand::rngs::StdRng::from_os_rng().fill_bytes(buf);
    }
}

/// `mlock(2)` on host memory holding guest pages.
pub fn mlock(ptr: *mut u8, len: usize) -> std::io::Result<()> {
    // SAFETY: mlock only changes residency of the given range, which the caller owns.
    if unsafe { libc::mlock(ptr.cast(), len) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `munlock(2)` on host memory holding guest pages.
pub fn munlock(ptr: *mut u8, len: usize) -> std::io::Result<()> {
    // SAFETY: munlock only changes residency of the given range, which the caller owns.
    if unsafe { libc::munlock(ptr.cast(), len) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Memory and process counts for `sysinfo(2)`, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub total: u64,
    pub free: u64,
    pub shared: u64,
    pub buffers: u64,
    pub swap_total: u64,
    pub swap_free: u64,
    pub procs: u64,
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> [f64; 3] {
    let mut loads = [0f64; 3];
    // SAFETY: loads has room for the three values requested.
    let n = unsafe { libc::getloadavg(loads.as_mut_ptr(), 3) };
    if n != 3 {
        return [0.0; 3];
    }
    loads
}

/// The host resource for a Linux resource-limit number, where the host has it.
fn host_resource(linux: u32) -> Option<i32> {
    use crate::kernel::abi::rlimit as rl;
    Some(match linux {
        rl::RLIMIT_CPU => libc::RLIMIT_CPU as i32,
        rl::RLIMIT_FSIZE => libc::RLIMIT_FSIZE as i32,
        rl::RLIMIT_DATA => libc::RLIMIT_DATA as i32,
        rl::RLIMIT_STACK => libc::RLIMIT_STACK as i32,
        rl::RLIMIT_CORE => libc::RLIMIT_CORE as i32,
        rl::RLIMIT_RSS => libc::RLIMIT_RSS as i32,
        rl::RLIMIT_NPROC => libc::RLIMIT_NPROC as i32,
        rl::RLIMIT_NOFILE => libc::RLIMIT_NOFILE as i32,
        rl::RLIMIT_MEMLOCK => libc::RLIMIT_MEMLOCK as i32,
        _ => return None,
    })
}

/// The host's current limit for Linux resource `linux`, with `RLIM_INFINITY` as `u64::MAX`.
pub fn rlimit(linux: u32) -> Option<(u64, u64)> {
    let resource = host_resource(linux)?;
    // SAFETY: an all-zero rlimit is valid, and getrlimit fills it in.
    let limit = unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(resource as _, &mut limit) != 0 {
            return None;
        }
        limit
    };
    let linux_value = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            u64::MAX
        } else {
            v as u64
        }
    };
    Some((linux_value(limit.rlim_cur), linux_value(limit.rlim_max)))
}

/// Applies a guest resource limit to the host process where the host enforces the same
/// thing. Failures leave the host limit as it was: the guest's view is what the runtime checks.
pub fn apply_rlimit(linux: u32, cur: u64, max: u64) {
    use crate::kernel::abi::rlimit as rl;
    // The address-space limits would constrain elfuse's reservation, not the guest.
    let enforced = [
        rl::RLIMIT_CPU,
        rl::RLIMIT_FSIZE,
        rl::RLIMIT_CORE,
        rl::RLIMIT_NOFILE,
        rl::RLIMIT_NPROC,
    ];
    let Some(resource) = host_resource(linux).filter(|_| enforced.contains(&linux)) else {
        return;
    };
    let host = |v: u64| {
        if v == u64::MAX {
            libc::RLIM_INFINITY
        } else {
            v as libc::rlim_t
        }
    };
    let limit = libc::rlimit {
        rlim_cur: host(cur),
        rlim_max: host(max),
    };
    // SAFETY: limit is a valid rlimit.
    unsafe {
        libc::setrlimit(resource as _, &limit);
    }
}

/// `getpriority(2)`: the nice value.
pub fn get_priority(which: i32, who: u32) -> Result<i32, crate::kernel::abi::errno::Errno> {
    nix::errno::Errno::clear();
    // SAFETY: plain call; errno distinguishes -1 results.
    let nice = unsafe { libc::getpriority(which as _, who as _) };
    if nice == -1 && nix::errno::Errno::last_raw() != 0 {
        return Err(crate::kernel::abi::errno::Errno::last_host());
    }
    Ok(nice)
}

/// `setpriority(2)`.
pub fn set_priority(
    which: i32,
    who: u32,
    nice: i32,
) -> Result<(), crate::kernel::abi::errno::Errno> {
    // SAFETY: plain call.
    if unsafe { libc::setpriority(which as _, who as _, nice) } != 0 {
        return Err(crate::kernel::abi::errno::Errno::last_host());
    }
    Ok(())
}

/// The descriptors open in this process, in order (from `/dev/fd`, which Linux and macOS
/// both have).
pub fn open_descriptors() -> Vec<i32> {
    let listed: Vec<i32> = std::fs::read_dir("/dev/fd")
        .map(|dir| {
            dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_else(|_| vec![0, 1, 2]);
    // The listing's own descriptor is closed again by now.
    let mut open: Vec<i32> = listed
        .into_iter()
        // SAFETY: F_GETFD only queries the descriptor number.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0)
        .filter(|&fd| !opened_by_runtime(fd))
        .collect();
    open.sort_unstable();
    open
}

/// Whether standard descriptor `fd` is the `/dev/null` that Rust's runtime opens (read-write)
/// in place of a 0, 1 or 2 the process was started without. A shell's `</dev/null` or
/// `>/dev/null` opens it for one direction only, so those still count as inherited.
///
/// # Limitations
/// A descriptor the user opened with `<>/dev/null` looks the same and is taken as closed.
fn opened_by_runtime(fd: i32) -> bool {
    if !(0..3).contains(&fd) {
        return false;
    }
    // SAFETY: the descriptor is only borrowed for these queries.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let read_write = nix::fcntl::fcntl(borrowed, nix::fcntl::FcntlArg::F_GETFL)
        .is_ok_and(|flags| flags & libc::O_ACCMODE == libc::O_RDWR);
    let null = nix::sys::stat::fstat(borrowed).is_ok_and(|st| {
        std::fs::metadata("/dev/null").is_ok_and(|null| {
            use std::os::unix::fs::MetadataExt;
            st.st_rdev as u64 == null.rdev() && st.st_ino as u64 == null.ino()
        })
    });
    read_write && null
}
