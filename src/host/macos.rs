//! macOS-host specifics: the few calls whose portable form is missing or different.
//!
//! # Limitations
//! None of this runs in CI; it is type-checked for `aarch64-apple-darwin` there.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::PathBuf;

use super::FsStat;
use crate::kernel::abi::clock as lc;

unsafe extern "C" {
    fn task_set_exception_ports(
        task: libc::mach_port_t,
        exception_mask: u32,
        new_port: libc::mach_port_t,
        behavior: i32,
        new_flavor: i32,
    ) -> i32;
    fn renameatx_np(
        fromfd: libc::c_int,
        from: *const libc::c_char,
        tofd: libc::c_int,
        to: *const libc::c_char,
        flags: libc::c_uint,
    ) -> libc::c_int;
}

/// `EXC_MASK_CRASH`: the exception the crash reporter listens for.
const EXC_MASK_CRASH: u32 = 1 << 10;
/// `EXCEPTION_DEFAULT` behaviour.
const EXCEPTION_DEFAULT: i32 = 1;
/// `THREAD_STATE_NONE`.
const THREAD_STATE_NONE: i32 = 13;
const RENAME_SWAP: libc::c_uint = 0x2;
const RENAME_EXCL: libc::c_uint = 0x4;

/// Detaches this task from the crash reporter, so dying by a guest's signal does not produce a
/// crash report that blames elfuse.
pub fn suppress_crash_reports() {
    // SAFETY: mach_task_self names this task; a null port removes the handler.
    unsafe {
        #[allow(deprecated)]
        let task = libc::mach_task_self();
        task_set_exception_ports(
            task,
            EXC_MASK_CRASH,
            0,
            EXCEPTION_DEFAULT,
            THREAD_STATE_NONE,
        );
    }
}

/// The host path a descriptor refers to, if it has one (`F_GETPATH`).
pub fn fd_path(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: F_GETPATH writes at most PATH_MAX bytes into buf.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPATH, buf.as_mut_ptr()) };
    if rc < 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0)?;
    buf.truncate(len);
    let path: std::ffi::OsString = std::os::unix::ffi::OsStringExt::from_vec(buf);
    Some(PathBuf::from(path))
}

/// The host clock for Linux clock `id`. macOS' `CLOCK_MONOTONIC` counts sleep (Linux's
/// `CLOCK_BOOTTIME`); Linux's `CLOCK_MONOTONIC` is macOS' `CLOCK_UPTIME_RAW`.
pub fn clock_to_host(id: i64) -> Option<libc::clockid_t> {
    Some(match id {
        lc::CLOCK_REALTIME
        | lc::CLOCK_REALTIME_COARSE
        | lc::CLOCK_REALTIME_ALARM
        | lc::CLOCK_TAI => libc::CLOCK_REALTIME,
        lc::CLOCK_MONOTONIC | lc::CLOCK_MONOTONIC_COARSE => libc::CLOCK_UPTIME_RAW,
        lc::CLOCK_MONOTONIC_RAW => libc::CLOCK_UPTIME_RAW,
        lc::CLOCK_BOOTTIME | lc::CLOCK_BOOTTIME_ALARM => libc::CLOCK_MONOTONIC,
        lc::CLOCK_PROCESS_CPUTIME_ID => libc::CLOCK_PROCESS_CPUTIME_ID,
        lc::CLOCK_THREAD_CPUTIME_ID => libc::CLOCK_THREAD_CPUTIME_ID,
        _ => return None,
    })
}

/// macOS has no clock ids for the CPU time of other processes or of threads other than the
/// calling one, so there is none to give.
pub fn cpu_clock(_id: i32, _thread: bool, _which: u32) -> Option<libc::clockid_t> {
    None
}

/// `renameat2` through `renameatx_np`.
pub fn renameat2(
    old_dir: RawFd,
    old: &CStr,
    new_dir: RawFd,
    new: &CStr,
    noreplace: bool,
    exchange: bool,
) -> io::Result<()> {
    let mut flags = 0;
    if noreplace {
        flags |= RENAME_EXCL;
    }
    if exchange {
        flags |= RENAME_SWAP;
    }
    // SAFETY: both paths are NUL-terminated.
    let rc = unsafe { renameatx_np(old_dir, old.as_ptr(), new_dir, new.as_ptr(), flags) };
    if rc != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `fallocate` mode 0 (allocate and extend) through `F_PREALLOCATE` and `ftruncate`; other
/// modes are not supported by the host.
pub fn fallocate(fd: BorrowedFd<'_>, mode: i32, offset: i64, len: i64) -> io::Result<()> {
    const FALLOC_FL_KEEP_SIZE: i32 = 1;
    if mode & !FALLOC_FL_KEEP_SIZE != 0 {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    let mut store = libc::fstore_t {
        fst_flags: libc::F_ALLOCATEALL,
        fst_posmode: libc::F_PEOFPOSMODE,
        fst_offset: 0,
        fst_length: offset + len,
        fst_bytesalloc: 0,
    };
    // SAFETY: store is a valid fstore_t for F_PREALLOCATE.
    let _ = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_PREALLOCATE, &mut store) };
    if mode & FALLOC_FL_KEEP_SIZE == 0 {
        let size = super::fs::fstat(fd)?.size;
        if offset + len > size {
            super::io::ftruncate(fd, offset + len)?;
        }
    }
    Ok(())
}

/// The creation time of a file (macOS records it for every file).
pub fn birth_time(dir: RawFd, path: &CStr, follow: bool) -> Option<(i64, i64)> {
    super::fs::fstatat(dir, path, follow)
        .ok()
        .and_then(|st| st.btime)
}

/// The Linux magic number for a macOS file-system type name. Local disks report ext4's, the
/// closest ordinary Linux file system; the guest has no notion of APFS.
fn linux_magic(name: &[u8]) -> i64 {
    match name {
        b"nfs" => 0x6969,
        b"smbfs" => 0xFE53_4D42,
        b"msdos" | b"exfat" => 0x4d44,
        b"devfs" => 0x1373,
        b"autofs" => 0x0187,
        _ => 0xEF53,
    }
}

fn fs_stat(st: &libc::statfs) -> FsStat {
    let name: Vec<u8> = st
        .f_fstypename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    let mut flags = 0x20; // ST_VALID
    if st.f_flags & libc::MNT_RDONLY as u32 != 0 {
        flags |= 1;
    }
    if st.f_flags & libc::MNT_NOSUID as u32 != 0 {
        flags |= 2;
    }
    if st.f_flags & libc::MNT_NOEXEC as u32 != 0 {
        flags |= 8;
    }
    FsStat {
        magic: linux_magic(&name),
        bsize: i64::from(st.f_bsize),
        blocks: st.f_blocks,
        bfree: st.f_bfree,
        bavail: st.f_bavail,
        files: st.f_files,
        ffree: st.f_ffree,
        // SAFETY: fsid_t is two 32-bit integers on macOS.
        fsid: unsafe { std::mem::transmute_copy(&st.f_fsid) },
        namelen: 255,
        frsize: i64::from(st.f_bsize),
        flags,
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
    Ok(fs_stat(&st))
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
    Ok(fs_stat(&st))
}

/// The host `fcntl` command for a Linux record-lock command. macOS has no
/// open-file-description locks, so those are refused (`EINVAL`, as an older Linux answers).
pub fn lock_command(cmd: u64, ofd: bool) -> Option<libc::c_int> {
    use crate::kernel::abi::fcntl as fc;
    Some(match (cmd, ofd) {
        (fc::F_GETLK, false) => libc::F_GETLK,
        (fc::F_SETLK, false) => libc::F_SETLK,
        (fc::F_SETLKW, false) => libc::F_SETLKW,
        _ => return None,
    })
}

/// Linux's default pipe capacity, which macOS pipes grow to on demand.
const PIPE_SIZE: usize = 65536;

/// `F_GETPIPE_SZ`: macOS pipes have no fixed size; report Linux's default.
pub fn pipe_size(_fd: BorrowedFd<'_>) -> io::Result<usize> {
    Ok(PIPE_SIZE)
}

/// `F_SETPIPE_SZ`: the capacity cannot be set on macOS; sizes up to Linux's default are
/// already met, larger ones are refused as an unprivileged Linux caller over the limit is.
pub fn set_pipe_size(_fd: BorrowedFd<'_>, size: usize) -> io::Result<usize> {
    if size > PIPE_SIZE {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    Ok(PIPE_SIZE)
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
    // SAFETY: plain credential call.
    check_id(unsafe { libc::setreuid(id_arg(ruid), id_arg(euid)) })
}

/// `setregid(2)`.
pub fn set_regid(rgid: Option<u32>, egid: Option<u32>) -> io::Result<()> {
    // SAFETY: plain credential call.
    check_id(unsafe { libc::setregid(id_arg(rgid), id_arg(egid)) })
}

/// `setresuid(2)` through `setreuid`: macOS cannot set the saved id on its own, so a saved id
/// other than the resulting effective id is refused with `EPERM`.
pub fn set_resuid(r: Option<u32>, e: Option<u32>, s: Option<u32>) -> io::Result<()> {
    set_reuid(r, e)?;
    // SAFETY: plain credential query.
    let euid = unsafe { libc::geteuid() };
    match s {
        Some(saved) if saved != euid => Err(io::Error::from_raw_os_error(libc::EPERM)),
        _ => Ok(()),
    }
}

/// `setresgid(2)`; see [`set_resuid`].
pub fn set_resgid(r: Option<u32>, e: Option<u32>, s: Option<u32>) -> io::Result<()> {
    set_regid(r, e)?;
    // SAFETY: plain credential query.
    let egid = unsafe { libc::getegid() };
    match s {
        Some(saved) if saved != egid => Err(io::Error::from_raw_os_error(libc::EPERM)),
        _ => Ok(()),
    }
}

/// `setgroups(2)`.
pub fn set_groups(groups: &[nix::unistd::Gid]) -> io::Result<()> {
    let raw: Vec<libc::gid_t> = groups.iter().map(|g| g.as_raw()).collect();
    // SAFETY: raw holds raw.len() group ids.
    check_id(unsafe { libc::setgroups(raw.len() as libc::c_int, raw.as_ptr()) })
}

/// The saved set-user-id and set-group-id: macOS does not report them; the effective ids
/// are what a fresh process has.
pub fn saved_ids() -> (u32, u32) {
    // SAFETY: plain credential queries.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// Page moving is not used on macOS: the caller copies (shared mappings then stop being
/// shared at the new address; see the mm module's limitations).
pub fn move_pages(_from: *mut u8, _to: *mut u8, _len: usize, _shared: bool) -> bool {
    false
}

fn sysctl_u64(name: &CStr) -> Option<u64> {
    let mut value: u64 = 0;
    let mut size = std::mem::size_of::<u64>();
    // SAFETY: value is valid for size bytes; the name is NUL-terminated.
    let rc = unsafe {
        libc::sysctlbyname(
            name.as_ptr(),
            (&mut value as *mut u64).cast(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    (rc == 0).then_some(if size == 4 {
        value & 0xffff_ffff
    } else {
        value
    })
}

/// Memory figures from `sysctl`.
pub fn memory_info() -> super::MemInfo {
    let page = super::memory::page_size();
    let total = sysctl_u64(c"hw.memsize").unwrap_or(0);
    let free = sysctl_u64(c"vm.page_free_count").unwrap_or(0) * page;
    // SAFETY: a null buffer asks for the number of pids.
    let procs = unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) };
    super::MemInfo {
        total,
        free,
        procs: u64::try_from(procs).unwrap_or(0),
        ..super::MemInfo::default()
    }
}

/// `ru_maxrss` in KiB (macOS reports bytes).
pub fn maxrss_kib(value: i64) -> i64 {
    value / 1024
}

/// The CPU the calling thread runs on: macOS does not say; 0.
pub fn current_cpu() -> u32 {
    0
}
