//! Host I/O calls on raw descriptors: safe wrappers over `libc`, one per call.
//!
//! Each wrapper returns the host's `io::Error`; the syscall layer converts errors to Linux
//! errno values and decides whether an `EINTR` is shown to the guest.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

fn check(rc: libc::ssize_t) -> io::Result<usize> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

fn check_int(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `read(2)` into `buf`.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for writing buf.len() bytes.
    check(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// `write(2)` from `buf`.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for reading buf.len() bytes.
    check(unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })
}

/// `pread(2)`.
pub fn pread(fd: BorrowedFd<'_>, buf: &mut [u8], offset: i64) -> io::Result<usize> {
    // SAFETY: buf is valid for writing buf.len() bytes.
    check(unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), offset) })
}

/// `pwrite(2)`.
pub fn pwrite(fd: BorrowedFd<'_>, buf: &[u8], offset: i64) -> io::Result<usize> {
    // SAFETY: buf is valid for reading buf.len() bytes.
    check(unsafe { libc::pwrite(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), offset) })
}

/// A host buffer for vectored I/O: a pointer into guest memory the caller has checked.
#[derive(Clone, Copy, Debug)]
pub struct RawBuf {
    /// Host address.
    pub ptr: *mut u8,
    /// Length in bytes.
    pub len: usize,
}

fn iovecs(bufs: &[RawBuf]) -> Vec<libc::iovec> {
    bufs.iter()
        .map(|b| libc::iovec {
            iov_base: b.ptr.cast(),
            iov_len: b.len,
        })
        .collect()
}

/// `readv(2)` (or `preadv(2)` with an offset) into checked guest buffers.
///
/// # Safety
/// Every buffer must be valid for writes of its length for the duration of the call.
pub unsafe fn readv(fd: BorrowedFd<'_>, bufs: &[RawBuf], offset: Option<i64>) -> io::Result<usize> {
    let iov = iovecs(bufs);
    let count = iov.len().min(1024) as libc::c_int;
    match offset {
        // SAFETY: the caller guarantees the buffers; iov lives across the call.
        None => check(unsafe { libc::readv(fd.as_raw_fd(), iov.as_ptr(), count) }),
        // SAFETY: as above.
        Some(off) => check(unsafe { libc::preadv(fd.as_raw_fd(), iov.as_ptr(), count, off) }),
    }
}

/// `writev(2)` (or `pwritev(2)` with an offset) from checked guest buffers.
///
/// # Safety
/// Every buffer must be valid for reads of its length for the duration of the call.
pub unsafe fn writev(
    fd: BorrowedFd<'_>,
    bufs: &[RawBuf],
    offset: Option<i64>,
) -> io::Result<usize> {
    let iov = iovecs(bufs);
    let count = iov.len().min(1024) as libc::c_int;
    match offset {
        // SAFETY: the caller guarantees the buffers; iov lives across the call.
        None => check(unsafe { libc::writev(fd.as_raw_fd(), iov.as_ptr(), count) }),
        // SAFETY: as above.
        Some(off) => check(unsafe { libc::pwritev(fd.as_raw_fd(), iov.as_ptr(), count, off) }),
    }
}

/// `lseek(2)` with a host `whence`.
pub fn lseek(fd: BorrowedFd<'_>, offset: i64, whence: libc::c_int) -> io::Result<i64> {
    // SAFETY: lseek has no memory preconditions.
    let rc = unsafe { libc::lseek(fd.as_raw_fd(), offset, whence) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `dup` with close-on-exec set.
pub fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    fd.try_clone_to_owned()
}

/// `pipe` with both ends close-on-exec, and optionally non-blocking.
pub fn pipe(nonblocking: bool) -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe().map_err(io::Error::from)?;
    for fd in [&r, &w] {
        set_fd_flag(fd.as_fd_borrowed(), libc::FD_CLOEXEC)?;
        if nonblocking {
            set_status_flag(fd.as_fd_borrowed(), libc::O_NONBLOCK, true)?;
        }
    }
    Ok((r, w))
}

trait Borrow {
    fn as_fd_borrowed(&self) -> BorrowedFd<'_>;
}

impl Borrow for OwnedFd {
    fn as_fd_borrowed(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}

/// Sets a descriptor flag (`FD_CLOEXEC`).
pub fn set_fd_flag(fd: BorrowedFd<'_>, flag: libc::c_int) -> io::Result<()> {
    // SAFETY: fcntl F_GETFD/F_SETFD take and return plain integers.
    let flags = check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) })?;
    // SAFETY: as above.
    check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags | flag) }).map(|_| ())
}

/// The host file status flags (`F_GETFL`).
pub fn status_flags(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: fcntl F_GETFL takes and returns plain integers.
    check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })
}

/// Sets or clears one host status flag (`F_SETFL`).
pub fn set_status_flag(fd: BorrowedFd<'_>, flag: libc::c_int, on: bool) -> io::Result<()> {
    let flags = status_flags(fd)?;
    let new = if on { flags | flag } else { flags & !flag };
    if new != flags {
        // SAFETY: fcntl F_SETFL takes plain integers.
        check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, new) })?;
    }
    Ok(())
}

/// `FIONREAD`: bytes available to read.
pub fn bytes_available(fd: BorrowedFd<'_>) -> io::Result<i32> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer, which is valid.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) })?;
    Ok(n)
}

/// `fsync(2)`, or `fdatasync(2)` when `data_only`.
pub fn fsync(fd: BorrowedFd<'_>, data_only: bool) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    // SAFETY: plain descriptor call.
    let rc = unsafe {
        if data_only {
            libc::fdatasync(fd.as_raw_fd())
        } else {
            libc::fsync(fd.as_raw_fd())
        }
    };
    #[cfg(not(target_os = "linux"))]
    // SAFETY: plain descriptor call (macOS' fsync also covers fdatasync's guarantee).
    let rc = unsafe {
        let _ = data_only;
        libc::fsync(fd.as_raw_fd())
    };
    check_int(rc).map(|_| ())
}

/// `ftruncate(2)`.
pub fn ftruncate(fd: BorrowedFd<'_>, len: i64) -> io::Result<()> {
    // SAFETY: plain descriptor call.
    check_int(unsafe { libc::ftruncate(fd.as_raw_fd(), len) }).map(|_| ())
}

/// `flock(2)` with host operation bits.
pub fn flock(fd: BorrowedFd<'_>, op: libc::c_int) -> io::Result<()> {
    // SAFETY: plain descriptor call.
    check_int(unsafe { libc::flock(fd.as_raw_fd(), op) }).map(|_| ())
}

/// The kind of a POSIX record lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// `F_RDLCK`.
    Read,
    /// `F_WRLCK`.
    Write,
    /// `F_UNLCK`.
    Unlock,
}

/// A record lock request or answer, in host-independent form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLock {
    pub kind: LockKind,
    /// 0, 1 or 2: relative to the start, the position or the end.
    pub whence: i32,
    pub start: i64,
    pub len: i64,
    /// The holder's pid (answers only).
    pub pid: i32,
}

/// `fcntl` record locks: `cmd` is the host's lock command.
pub fn record_lock(fd: BorrowedFd<'_>, cmd: libc::c_int, lock: &mut RecordLock) -> io::Result<()> {
    // SAFETY: an all-zero struct flock is a valid value of the plain C struct.
    let mut host: libc::flock = unsafe { std::mem::zeroed() };
    host.l_type = match lock.kind {
        LockKind::Read => libc::F_RDLCK,
        LockKind::Write => libc::F_WRLCK,
        LockKind::Unlock => libc::F_UNLCK,
    } as _;
    host.l_whence = match lock.whence {
        1 => libc::SEEK_CUR,
        2 => libc::SEEK_END,
        _ => libc::SEEK_SET,
    } as _;
    host.l_start = lock.start as _;
    host.l_len = lock.len as _;
    // SAFETY: host points to a valid struct flock for the call.
    check_int(unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &mut host as *mut libc::flock) })?;
    lock.kind = match host.l_type as libc::c_int {
        t if t == libc::F_RDLCK as libc::c_int => LockKind::Read,
        t if t == libc::F_WRLCK as libc::c_int => LockKind::Write,
        _ => LockKind::Unlock,
    };
    lock.whence = 0;
    lock.start = host.l_start as i64;
    lock.len = host.l_len as i64;
    lock.pid = host.l_pid as i32;
    Ok(())
}

/// Whether `fd` is a terminal.
pub fn isatty(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: plain descriptor call.
    unsafe { libc::isatty(fd.as_raw_fd()) == 1 }
}

/// Creates an `OwnedFd` from a descriptor this process just received and owns.
///
/// # Safety
/// `fd` must be open and owned by nobody else.
pub unsafe fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: guaranteed by the caller.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
