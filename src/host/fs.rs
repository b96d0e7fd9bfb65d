//! Host file-system calls with explicit translation of Linux flag words and structures.
//!
//! Every guest flag is converted bit by bit to the host's value (aarch64 Linux numbers its
//! directory flags differently from x86-64 Linux and from macOS), and host `struct stat` is
//! converted to a host-independent [`FileStat`] that the syscall layer turns into the Linux
//! layout. The functions are thin and safe; `nix` does the calling.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::kernel::abi::mode;
use crate::kernel::abi::open as lo;

/// The host's "current directory" marker for `*at` calls.
pub const CWD: RawFd = libc::AT_FDCWD;

/// Translates Linux `open` flags to the host's. Flags the host cannot express and that only
/// affect performance (`O_DIRECT`, `O_NOATIME`, `O_LARGEFILE`) are dropped; unknown bits are
/// ignored as Linux ignores them. `O_PATH` and `O_TMPFILE` are handled by the caller.
pub fn open_flags_to_host(flags: u64) -> libc::c_int {
    let mut host = match flags & lo::O_ACCMODE {
        lo::O_WRONLY => libc::O_WRONLY,
        lo::O_RDWR => libc::O_RDWR,
        // O_ACCMODE (3) opens for nothing on Linux; the host has no such mode.
        _ => libc::O_RDONLY,
    };
    let table: [(u64, libc::c_int); 10] = [
        (lo::O_CREAT, libc::O_CREAT),
        (lo::O_EXCL, libc::O_EXCL),
        (lo::O_NOCTTY, libc::O_NOCTTY),
        (lo::O_TRUNC, libc::O_TRUNC),
        (lo::O_APPEND, libc::O_APPEND),
        (lo::O_NONBLOCK, libc::O_NONBLOCK),
        (lo::O_DSYNC, libc::O_DSYNC),
        (lo::O_DIRECTORY, libc::O_DIRECTORY),
        (lo::O_NOFOLLOW, libc::O_NOFOLLOW),
        (lo::O_SYNC & !lo::O_DSYNC, libc::O_SYNC),
    ];
    for (linux, bit) in table {
        if flags & linux == linux {
            host |= bit;
        }
    }
    // Every descriptor elfuse holds is close-on-exec on the host; the guest's own
    // close-on-exec flag lives in the guest descriptor table.
    host | libc::O_CLOEXEC
}

/// Translates the host's file status flags (`F_GETFL`) to Linux values.
pub fn status_flags_from_host(host: libc::c_int) -> u64 {
    let mut flags = match host & libc::O_ACCMODE {
        libc::O_WRONLY => lo::O_WRONLY,
        libc::O_RDWR => lo::O_RDWR,
        _ => lo::O_RDONLY,
    };
    for (bit, linux) in [
        (libc::O_APPEND, lo::O_APPEND),
        (libc::O_NONBLOCK, lo::O_NONBLOCK),
        (libc::O_DSYNC, lo::O_DSYNC),
    ] {
        if host & bit != 0 {
            flags |= linux;
        }
    }
    if host & libc::O_SYNC == libc::O_SYNC {
        flags |= lo::O_SYNC;
    }
    flags
}

/// Opens `path` relative to `dir` with host flags.
pub fn openat(dir: RawFd, path: &CStr, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: path is NUL-terminated; openat has no memory preconditions beyond that.
    let fd = unsafe { libc::openat(dir, path.as_ptr(), flags, mode as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Host-independent file metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStat {
    pub dev: u64,
    pub ino: u64,
    /// Type and permission bits, with the traditional (Linux) values.
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    /// Creation time, where the host records it.
    pub btime: Option<(i64, i64)>,
}

/// Linux's `makedev`: major and minor packed as the Linux kernel reports them.
pub fn linux_makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

/// Splits a Linux device number into (major, minor).
pub fn linux_major_minor(dev: u64) -> (u32, u32) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0xff);
    (major as u32, minor as u32)
}

/// Converts a host device number to the Linux encoding.
fn dev_to_linux(dev: libc::dev_t) -> u64 {
    let major = libc::major(dev) as u64;
    let minor = libc::minor(dev) as u64;
    linux_makedev(major, minor)
}

/// Converts host file type bits to the Linux values (they coincide on every supported host,
/// but the mapping is spelled out so a host that differs cannot leak its values).
fn mode_to_linux(host: u32) -> u32 {
    let kind = match host & libc::S_IFMT as u32 {
        x if x == libc::S_IFSOCK as u32 => mode::S_IFSOCK,
        x if x == libc::S_IFLNK as u32 => mode::S_IFLNK,
        x if x == libc::S_IFREG as u32 => mode::S_IFREG,
        x if x == libc::S_IFBLK as u32 => mode::S_IFBLK,
        x if x == libc::S_IFDIR as u32 => mode::S_IFDIR,
        x if x == libc::S_IFCHR as u32 => mode::S_IFCHR,
        x if x == libc::S_IFIFO as u32 => mode::S_IFIFO,
        _ => 0,
    };
    kind | (host & mode::PERMISSION_BITS)
}

impl FileStat {
    /// Converts a host `struct stat`.
    pub fn from_host(st: &libc::stat) -> FileStat {
        #[cfg(target_os = "macos")]
        let btime = Some((st.st_birthtime, st.st_birthtime_nsec));
        #[cfg(not(target_os = "macos"))]
        let btime = None;
        FileStat {
            dev: dev_to_linux(st.st_dev),
            ino: st.st_ino,
            mode: mode_to_linux(st.st_mode as u32),
            nlink: st.st_nlink as u64,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: dev_to_linux(st.st_rdev),
            size: st.st_size,
            blksize: st.st_blksize as i64,
            blocks: st.st_blocks,
            atime: (st.st_atime, st.st_atime_nsec),
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
            btime,
        }
    }

    /// The file type bits.
    pub fn kind(&self) -> u32 {
        self.mode & mode::S_IFMT
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind() == mode::S_IFDIR
    }
}

/// `fstat` on a host descriptor.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<FileStat> {
    let st = nix::sys::stat::fstat(fd).map_err(io::Error::from)?;
    Ok(FileStat::from_host(&st))
}

/// `fstatat` relative to `dir`.
pub fn fstatat(dir: RawFd, path: &CStr, follow: bool) -> io::Result<FileStat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: path is NUL-terminated and st is valid for writing one struct stat.
    let rc = unsafe { libc::fstatat(dir, path.as_ptr(), st.as_mut_ptr(), flags) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatat succeeded, so it filled in the struct.
    let st = unsafe { st.assume_init() };
    Ok(FileStat::from_host(&st))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `mkdirat(2)`.
pub fn mkdirat(dir: RawFd, path: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::mkdirat(dir, path.as_ptr(), mode as libc::mode_t) })
}

/// `mkfifoat(3)`.
pub fn mkfifoat(dir: RawFd, path: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::mkfifoat(dir, path.as_ptr(), mode as libc::mode_t) })
}

/// The special files `mknodat` creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A character device.
    Char,
    /// A block device.
    Block,
    /// A socket.
    Socket,
}

/// `mknodat(2)` for a device or socket node with permission bits `perm`.
pub fn mknodat(
    dir: RawFd,
    path: &CStr,
    kind: NodeKind,
    perm: u32,
    major: u32,
    minor: u32,
) -> io::Result<()> {
    let kind_bits = match kind {
        NodeKind::Char => libc::S_IFCHR,
        NodeKind::Block => libc::S_IFBLK,
        NodeKind::Socket => libc::S_IFSOCK,
    };
    let mode = kind_bits as libc::mode_t | perm as libc::mode_t;
    let dev = libc::makedev(major as _, minor as _);
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::mknodat(dir, path.as_ptr(), mode, dev) })
}

/// `unlinkat(2)`; `rmdir` removes a directory.
pub fn unlinkat(dir: RawFd, path: &CStr, rmdir: bool) -> io::Result<()> {
    let flags = if rmdir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::unlinkat(dir, path.as_ptr(), flags) })
}

/// `symlinkat(2)`.
pub fn symlinkat(target: &CStr, dir: RawFd, path: &CStr) -> io::Result<()> {
    // SAFETY: both strings are NUL-terminated.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir, path.as_ptr()) })
}

/// `linkat(2)`.
pub fn linkat(
    old_dir: RawFd,
    old: &CStr,
    new_dir: RawFd,
    new: &CStr,
    follow: bool,
) -> io::Result<()> {
    let flags = if follow { libc::AT_SYMLINK_FOLLOW } else { 0 };
    // SAFETY: both paths are NUL-terminated.
    check(unsafe { libc::linkat(old_dir, old.as_ptr(), new_dir, new.as_ptr(), flags) })
}

/// `renameat(2)`.
pub fn renameat(old_dir: RawFd, old: &CStr, new_dir: RawFd, new: &CStr) -> io::Result<()> {
    // SAFETY: both paths are NUL-terminated.
    check(unsafe { libc::renameat(old_dir, old.as_ptr(), new_dir, new.as_ptr()) })
}

/// `readlinkat(2)`: the whole target.
pub fn readlinkat(dir: RawFd, path: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: path is NUL-terminated and buf is valid for buf.len() bytes.
    let n = unsafe { libc::readlinkat(dir, path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// `faccessat(2)` with host mode and flag bits.
pub fn faccessat(dir: RawFd, path: &CStr, mode: libc::c_int, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::faccessat(dir, path.as_ptr(), mode, flags) })
}

/// `fchmodat(2)` (following symbolic links).
pub fn fchmodat(dir: RawFd, path: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::fchmodat(dir, path.as_ptr(), mode as libc::mode_t, 0) })
}

/// `fchmod(2)`.
pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: plain descriptor call.
    check(unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) })
}

/// `fchownat(2)`; `u32::MAX` leaves an id unchanged.
pub fn fchownat(dir: RawFd, path: &CStr, uid: u32, gid: u32, follow: bool) -> io::Result<()> {
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::fchownat(dir, path.as_ptr(), uid, gid, flags) })
}

/// `fchown(2)`.
pub fn fchown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain descriptor call.
    check(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) })
}

/// A timestamp for [`utimensat`]: a time, "now", or "leave unchanged".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSpec {
    /// Seconds and nanoseconds.
    At(i64, i64),
    /// `UTIME_NOW`.
    Now,
    /// `UTIME_OMIT`.
    Omit,
}

fn host_timespec(t: TimeSpec) -> libc::timespec {
    let (sec, nsec) = match t {
        TimeSpec::At(sec, nsec) => (sec, nsec),
        TimeSpec::Now => (0, libc::UTIME_NOW),
        TimeSpec::Omit => (0, libc::UTIME_OMIT),
    };
    libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: nsec as _,
    }
}

/// `utimensat(2)` (a null path means `futimens` on `dir`).
pub fn utimensat(
    dir: RawFd,
    path: Option<&CStr>,
    times: [TimeSpec; 2],
    follow: bool,
) -> io::Result<()> {
    let ts = [host_timespec(times[0]), host_timespec(times[1])];
    match path {
        // SAFETY: path is NUL-terminated and ts holds two timespecs.
        Some(path) => check(unsafe {
            libc::utimensat(
                dir,
                path.as_ptr(),
                ts.as_ptr(),
                if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW },
            )
        }),
        // SAFETY: ts holds two timespecs.
        None => check(unsafe { libc::futimens(dir, ts.as_ptr()) }),
    }
}

/// `truncate(2)` by path.
pub fn truncate(path: &CStr, len: i64) -> io::Result<()> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::truncate(path.as_ptr(), len) })
}

/// The raw descriptor number of `fd`, for `*at` calls.
pub fn raw(fd: &impl AsRawFd) -> RawFd {
    fd.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aarch64_directory_flags_translate_to_host_values() {
        let host = open_flags_to_host(lo::O_DIRECTORY | lo::O_NOFOLLOW | lo::O_RDONLY);
        assert_ne!(host & libc::O_DIRECTORY, 0);
        assert_ne!(host & libc::O_NOFOLLOW, 0);
        // On an x86-64 Linux host, aarch64's O_DIRECTORY (0o40000) is x86-64's O_DIRECT:
        // the translation must not pass the raw bit through.
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        assert_eq!(host & libc::O_DIRECT, 0);
        assert_eq!(
            open_flags_to_host(lo::O_WRONLY) & libc::O_ACCMODE,
            libc::O_WRONLY
        );
        assert_ne!(open_flags_to_host(0) & libc::O_CLOEXEC, 0);
    }

    #[test]
    fn status_flags_round_trip() {
        let host = open_flags_to_host(lo::O_RDWR | lo::O_APPEND | lo::O_NONBLOCK);
        assert_eq!(
            status_flags_from_host(host),
            lo::O_RDWR | lo::O_APPEND | lo::O_NONBLOCK
        );
    }

    #[test]
    fn device_numbers_use_the_linux_encoding() {
        assert_eq!(linux_makedev(1, 3), 0x103);
        assert_eq!(linux_makedev(259, 0x12345), 0x1231_0345);
        assert_eq!(
            linux_major_minor(linux_makedev(4095, 1 << 20)),
            (4095, 1 << 20)
        );
        assert_eq!(linux_major_minor(linux_makedev(136, 5)), (136, 5));
    }
}
