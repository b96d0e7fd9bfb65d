//! Linux-host specifics: the few calls whose portable form is missing or slower.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::PathBuf;

use super::FsStat;
use crate::kernel::abi::clock as lc;

/// Nothing to do on Linux: with `RLIMIT_CORE` at zero no core file is written.
pub fn suppress_crash_reports() {}

/// The host path a descriptor refers to, if it has one.
pub fn fd_path(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()
}

/// The host clock for Linux clock `id`; Linux hosts have every clock.
pub fn clock_to_host(id: i64) -> Option<libc::clockid_t> {
    Some(match id {
        lc::CLOCK_REALTIME => libc::CLOCK_REALTIME,
        lc::CLOCK_MONOTONIC => libc::CLOCK_MONOTONIC,
        lc::CLOCK_PROCESS_CPUTIME_ID => libc::CLOCK_PROCESS_CPUTIME_ID,
        lc::CLOCK_THREAD_CPUTIME_ID => libc::CLOCK_THREAD_CPUTIME_ID,
        lc::CLOCK_MONOTONIC_RAW => libc::CLOCK_MONOTONIC_RAW,
        lc::CLOCK_REALTIME_COARSE => libc::CLOCK_REALTIME_COARSE,
        lc::CLOCK_MONOTONIC_COARSE => libc::CLOCK_MONOTONIC_COARSE,
        lc::CLOCK_BOOTTIME => libc::CLOCK_BOOTTIME,
        lc::CLOCK_REALTIME_ALARM => libc::CLOCK_REALTIME,
        lc::CLOCK_BOOTTIME_ALARM => libc::CLOCK_BOOTTIME,
        lc::CLOCK_TAI => libc::CLOCK_TAI,
        _ => return None,
    })
}

/// The host clock id of the CPU-time clock of process or thread `id` (guest ids are host ids
/// on Linux hosts), counting Linux CPU time of kind `which` (`CPUCLOCK_*`). The caller checks
/// that the clock exists by reading it.
pub fn cpu_clock(id: i32, thread: bool, which: u32) -> Option<libc::clockid_t> {
    let per_thread = if thread { 4 } else { 0 };
    Some(((!id) << 3) | per_thread | which as libc::clockid_t)
}

/// `renameat2` with `RENAME_NOREPLACE` / `RENAME_EXCHANGE` (given as Linux values).
pub fn renameat2(
    old_dir: RawFd,
    old: &CStr,
    new_dir: RawFd,
    new: &CStr,
    noreplace: bool,
    exchange: bool,
) -> io::Result<()> {
    let mut flags: libc::c_uint = 0;
    if noreplace {
        flags |= libc::RENAME_NOREPLACE;
    }
    if exchange {
        flags |= libc::RENAME_EXCHANGE;
    }
    // SAFETY: both paths are NUL-terminated.
    let rc = unsafe { libc::renameat2(old_dir, old.as_ptr(), new_dir, new.as_ptr(), flags) };
    if rc != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `fallocate` with Linux mode bits (the same on a Linux host).
pub fn fallocate(fd: BorrowedFd<'_>, mode: i32, offset: i64, len: i64) -> io::Result<()> {
    // SAFETY: plain descriptor call.
    let rc = unsafe { libc::fallocate(fd.as_raw_fd(), mode, offset, len) };
    if rc != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The creation time of a file, where the file system records it.
pub fn birth_time(dir: RawFd, path: &CStr, follow: bool) -> Option<(i64, i64)> {
    let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    let flags = if path.is_empty() {
        flags | libc::AT_EMPTY_PATH
    } else {
        flags
    };
    // SAFETY: path is NUL-terminated and stx is valid for one struct statx.
    let rc = unsafe {
        libc::statx(
            dir,
            path.as_ptr(),
            flags,
            libc::STATX_BTIME,
            stx.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: statx succeeded.
    let stx = unsafe { stx.assume_init() };
    (stx.stx_mask & libc::STATX_BTIME != 0)
        .then(|| (stx.stx_btime.tv_sec, i64::from(stx.stx_btime.tv_nsec)))
}

fn fs_stat(st: &libc::statfs, flags: u64) -> FsStat {
    // SAFETY: fsid_t is two ints on Linux; reading its bytes as such is sound.
    let fsid: [i32; 2] = unsafe { std::mem::transmute_copy(&st.f_fsid) };
    FsStat {
        magic: st.f_type as i64,
        bsize: st.f_bsize as i64,
        blocks: st.f_blocks,
        bfree: st.f_bfree,
        bavail: st.f_bavail,
        files: st.f_files,
        ffree: st.f_ffree,
        fsid,
        namelen: st.f_namelen as i64,
        frsize: st.f_frsize as i64,
        flags: flags as i64,
    }
}

/// `statfs(2)` by path.
pub fn statfs_path(path: &CStr) -> io::Result<FsStat> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: path is NUL-terminated and st is valid for one struct statfs.
    if unsafe { libc::statfs(path.as_ptr(), st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statfs succeeded.
    let st = unsafe { st.assume_init() };
    let vfs = nix::sys::statvfs::statvfs(path)
        .map(|v| v.flags().bits())
        .unwrap_or(0);
    Ok(fs_stat(&st, (vfs as u64) | ST_VALID))
}

/// `fstatfs(2)`.
pub fn statfs_fd(fd: BorrowedFd<'_>) -> io::Result<FsStat> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: st is valid for one struct statfs.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatfs succeeded.
    let st = unsafe { st.assume_init() };
    let vfs = nix::sys::statvfs::fstatvfs(fd)
        .map(|v| v.flags().bits())
        .unwrap_or(0);
    Ok(fs_stat(&st, (vfs as u64) | ST_VALID))
}

/// `ST_VALID`: Linux sets it in every `f_flags` it reports.
const ST_VALID: u64 = 0x20;

/// The host `fcntl` command for a Linux record-lock command (`ofd`: open-file-description
/// locks).
pub fn lock_command(cmd: u64, ofd: bool) -> Option<libc::c_int> {
    use crate::kernel::abi::fcntl as fc;
    Some(match (cmd, ofd) {
        (fc::F_GETLK, false) => libc::F_GETLK,
        (fc::F_SETLK, false) => libc::F_SETLK,
        (fc::F_SETLKW, false) => libc::F_SETLKW,
        (fc::F_OFD_GETLK, true) => libc::F_OFD_GETLK,
        (fc::F_OFD_SETLK, true) => libc::F_OFD_SETLK,
        (fc::F_OFD_SETLKW, true) => libc::F_OFD_SETLKW,
        _ => return None,
    })
}

/// `F_GETPIPE_SZ`.
pub fn pipe_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    // SAFETY: plain descriptor call.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

/// `F_SETPIPE_SZ`: returns the size actually set.
pub fn set_pipe_size(fd: BorrowedFd<'_>, size: usize) -> io::Result<usize> {
    // SAFETY: plain descriptor call.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

fn id_arg(id: Option<u32>) -> u32 {
    id.unwrap_or(u32::MAX)
}

fn check_id(rc: libc::c_int) -> io::Result<()> {
    if rc != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `setreuid(2)`; `None` leaves an id unchanged.
pub fn set_reuid(ruid: Option<u32>, euid: Option<u32>) -> io::Result<()> {
    // SAFETY: plain credential call; glibc applies it to every thread.
    check_id(unsafe { libc::setreuid(id_arg(ruid), id_arg(euid)) })
}

/// `setregid(2)`.
pub fn set_regid(rgid: Option<u32>, egid: Option<u32>) -> io::Result<()> {
    // SAFETY: as above.
    check_id(unsafe { libc::setregid(id_arg(rgid), id_arg(egid)) })
}

/// `setresuid(2)`.
pub fn set_resuid(r: Option<u32>, e: Option<u32>, s: Option<u32>) -> io::Result<()> {
    // SAFETY: as above.
    check_id(unsafe { libc::setresuid(id_arg(r), id_arg(e), id_arg(s)) })
}

/// `setresgid(2)`.
pub fn set_resgid(r: Option<u32>, e: Option<u32>, s: Option<u32>) -> io::Result<()> {
    // SAFETY: as above.
    check_id(unsafe { libc::setresgid(id_arg(r), id_arg(e), id_arg(s)) })
}

/// `setgroups(2)`.
pub fn set_groups(groups: &[nix::unistd::Gid]) -> io::Result<()> {
    nix::unistd::setgroups(groups).map_err(io::Error::from)
}

/// The saved set-user-id and set-group-id.
pub fn saved_ids() -> (u32, u32) {
    let (mut r, mut e, mut s) = (0, 0, 0);
    let (mut rg, mut eg, mut sg) = (0, 0, 0);
    // SAFETY: the pointers are valid for one id each.
    unsafe {
        libc::getresuid(&mut r, &mut e, &mut s);
        libc::getresgid(&mut rg, &mut eg, &mut sg);
    }
    (s, sg)
}

/// Moves host pages from `from` to `to` without copying them (`mremap`), keeping shared
/// mappings shared. Returns false when the host cannot (the caller then copies); the source
/// range is left unmapped on success and must be re-reserved by the caller.
pub fn move_pages(from: *mut u8, to: *mut u8, len: usize, _shared: bool) -> bool {
    // SAFETY: both ranges lie in the guest reservation and belong to the caller; MREMAP_FIXED
    // replaces only the destination range.
    let moved = unsafe {
        libc::mremap(
            from.cast::<libc::c_void>(),
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            to.cast::<libc::c_void>(),
        )
    };
    moved != libc::MAP_FAILED
}

/// Memory figures from the host's `sysinfo(2)`.
pub fn memory_info() -> super::MemInfo {
    // SAFETY: an all-zero sysinfo is valid and sysinfo fills it in.
    let info = unsafe {
        let mut info: libc::sysinfo = std::mem::zeroed();
        libc::sysinfo(&mut info);
        info
    };
    let unit = u64::from(info.mem_unit.max(1));
    super::MemInfo {
        total: info.totalram * unit,
        free: info.freeram * unit,
        shared: info.sharedram * unit,
        buffers: info.bufferram * unit,
        swap_total: info.totalswap * unit,
        swap_free: info.freeswap * unit,
        procs: u64::from(info.procs),
    }
}

/// `ru_maxrss` in KiB (Linux reports KiB already).
pub fn maxrss_kib(value: i64) -> i64 {
    value
}

/// The CPU the calling thread runs on.
pub fn current_cpu() -> u32 {
    // SAFETY: plain call.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).unwrap_or(0)
}
