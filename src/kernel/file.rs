//! Open file descriptions: what a guest descriptor refers to, and the I/O operations on it.
//!
//! Most files are host descriptors (regular files, directories, pipes, terminals). The small
//! devices every program expects (`/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random`,
//! `/dev/urandom`) are served by the runtime itself, identically on every host. `O_PATH`
//! descriptors hold a host path and no host descriptor, since macOS has no `O_PATH`. Event
//! objects (eventfd, timerfd, epoll) are the runtime's own too (see [`crate::kernel::poll`]).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use crate::host;
use crate::host::dir::{DirEntry, HostDir};
use crate::host::fs::{FileStat, linux_makedev};
use crate::host::io::RawBuf;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::mode;
use crate::kernel::abi::open as lo;
use crate::kernel::abi::structs::{DIRENT64_NAME_OFFSET, Iovec};
use crate::kernel::poll::{self, EventObject};
use crate::kernel::task::interruptible;
use crate::vm::memory::GuestMemory;
use crate::vm::vma::Prot;

/// The runtime's own character devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// `/dev/null`: reads end at once, writes vanish.
    Null,
    /// `/dev/zero`: reads give zeroes.
    Zero,
    /// `/dev/full`: writes fail with `ENOSPC`.
    Full,
    /// `/dev/random`.
    Random,
    /// `/dev/urandom`.
    Urandom,
}

impl Device {
    /// The device for a name under `/dev`.
    pub fn from_name(name: &[u8]) -> Option<Device> {
        Some(match name {
            b"null" => Device::Null,
            b"zero" => Device::Zero,
            b"full" => Device::Full,
            b"random" => Device::Random,
            b"urandom" => Device::Urandom,
            _ => return None,
        })
    }

    /// Linux's (major, minor) for the device.
    pub fn numbers(self) -> (u64, u64) {
        match self {
            Device::Null => (1, 3),
            Device::Zero => (1, 5),
            Device::Full => (1, 7),
            Device::Random => (1, 8),
            Device::Urandom => (1, 9),
        }
    }

    /// The metadata `stat` reports for the device node.
    pub fn stat(self) -> FileStat {
        let (major, minor) = self.numbers();
        FileStat {
            dev: linux_makedev(0, 5),
            ino: 1000 + minor,
            mode: mode::S_IFCHR | 0o666,
            nlink: 1,
            rdev: linux_makedev(major, minor),
            blksize: 4096,
            ..FileStat::default()
        }
    }
}

/// A directory being read with `getdents64`.
pub struct DirCursor {
    stream: HostDir,
    /// How many entries have been returned (the `d_off` of the next one).
    index: u64,
    /// An entry read from the host that did not fit in the last buffer.
    pending: Option<DirEntry>,
}

/// What an open file description refers to.
pub enum FileKind {
    /// A host descriptor.
    Host {
        /// The descriptor (close-on-exec on the host).
        fd: OwnedFd,
        /// The `getdents64` position, created on first use.
        dir: Mutex<Option<DirCursor>>,
    },
    /// One of the runtime's devices.
    Device(Device),
    /// An `O_PATH` descriptor: a location, no I/O.
    Path {
        /// The host path it names.
        host: CString,
    },
    /// One of the runtime's event objects (an anonymous inode on Linux).
    Event(EventObject),
}

/// A Linux open file description.
pub struct OpenFile {
    kind: FileKind,
    /// Access mode and status flags, as Linux values.
    flags: AtomicU64,
    /// The path the guest opened it by (for `/proc/self/fd` and traces).
    pub path: Vec<u8>,
    /// `F_SETOWN`: the process (or negated group) for I/O signals.
    owner: AtomicI32,
    /// `F_SETSIG`: the I/O signal (0 means `SIGIO`).
    io_signal: AtomicU32,
    /// For a pidfd, the process it refers to.
    pidfd: Option<i32>,
}

fn errno(err: io::Error) -> Errno {
    Errno::from(err)
}

/// Linux caps one transfer at `MAX_RW_COUNT`.
pub const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// One past the highest user address of arm64 Linux with 48-bit virtual addresses
/// (`TASK_SIZE_MAX`), the limit of `access_ok`.
const USER_SPACE_END: u64 = 1 << 48;

/// How much of a `len`-byte transfer at `addr` to attempt: `EFAULT` for a range that leaves
/// the user address space (Linux's `access_ok` on the whole request, made before the count is
/// cut to `MAX_RW_COUNT`).
fn transfer_len(addr: u64, len: u64) -> SysResult<u64> {
    match addr.checked_add(len) {
        Some(end) if end <= USER_SPACE_END => Ok(len.min(MAX_RW_COUNT)),
        _ => Err(Errno::EFAULT),
    }
}

/// Runs a host call, retrying when a host signal interrupted it.
///
/// Guest-visible `EINTR` comes from guest signals, which the signal layer reports separately.
pub fn retry<T>(mut call: impl FnMut() -> io::Result<T>) -> SysResult<T> {
    loop {
        match call() {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            other => return other.map_err(errno),
        }
    }
}

impl OpenFile {
    /// Wraps a host descriptor opened with Linux `flags`.
    pub fn host(fd: OwnedFd, flags: u64, path: Vec<u8>) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            kind: FileKind::Host {
                fd,
                dir: Mutex::new(None),
            },
            flags: AtomicU64::new(flags),
            path,
            owner: AtomicI32::new(0),
            io_signal: AtomicU32::new(0),
            pidfd: None,
        })
    }

    /// One of the runtime's devices, opened with Linux `flags`.
    pub fn device(device: Device, flags: u64) -> Arc<OpenFile> {
        let name = match device {
            Device::Null => "null",
            Device::Zero => "zero",
            Device::Full => "full",
            Device::Random => "random",
            Device::Urandom => "urandom",
        };
        Arc::new(OpenFile {
            kind: FileKind::Device(device),
            flags: AtomicU64::new(flags),
            path: format!("/dev/{name}").into_bytes(),
            owner: AtomicI32::new(0),
            io_signal: AtomicU32::new(0),
            pidfd: None,
        })
    }

    /// An `O_PATH` descriptor for host path `host`.
    pub fn path_only(host: CString, flags: u64, path: Vec<u8>) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            kind: FileKind::Path { host },
            flags: AtomicU64::new(flags),
            path,
            owner: AtomicI32::new(0),
            io_signal: AtomicU32::new(0),
            pidfd: None,
        })
    }

    /// A runtime event object opened with Linux `flags` (`O_RDWR` and `O_NONBLOCK`).
    pub fn event(object: EventObject, flags: u64) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            path: object.link_name().as_bytes().to_vec(),
            kind: FileKind::Event(object),
            flags: AtomicU64::new(flags),
            owner: AtomicI32::new(0),
            io_signal: AtomicU32::new(0),
            pidfd: None,
        })
    }

    /// The event object behind the description, if it is one.
    pub fn event_object(&self) -> Option<&EventObject> {
        match &self.kind {
            FileKind::Event(object) => Some(object),
            _ => None,
        }
    }

    /// A pidfd for process `pid`: `handle` is the host's descriptor for it (see
    /// [`host::process::process_handle`]), which becomes readable when the process ends.
    pub fn pidfd(handle: OwnedFd, flags: u64, pid: i32) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            kind: FileKind::Host {
                fd: handle,
                dir: Mutex::new(None),
            },
            flags: AtomicU64::new(flags),
            path: b"anon_inode:[pidfd]".to_vec(),
            owner: AtomicI32::new(0),
            io_signal: AtomicU32::new(0),
            pidfd: Some(pid),
        })
    }

    /// The process a pidfd refers to (`None` for other files).
    pub fn pidfd_pid(&self) -> Option<i32> {
        self.pidfd
    }

    /// What the description refers to.
    pub fn kind(&self) -> &FileKind {
        &self.kind
    }

    /// The host descriptor, if there is one.
    pub fn host_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.kind {
            FileKind::Host { fd, .. } => Some(fd.as_fd()),
            _ => None,
        }
    }

    /// The host descriptor, or `EBADF` for descriptors without one (`O_PATH`), or `err` for
    /// the runtime's devices.
    fn io_fd(&self, device_err: Errno) -> SysResult<BorrowedFd<'_>> {
        match &self.kind {
            FileKind::Host { fd, .. } => Ok(fd.as_fd()),
            FileKind::Path { .. } => Err(Errno::EBADF),
            FileKind::Device(_) => Err(device_err),
            FileKind::Event(_) => Err(Errno::ESPIPE),
        }
    }

    /// The Linux access mode and status flags (`F_GETFL`).
    pub fn status_flags(&self) -> u64 {
        let mut flags = self.flags.load(Ordering::Relaxed);
        if let Some(fd) = self.host_fd() {
            // Another process sharing the description may have changed these.
            if let Ok(host) = host::io::status_flags(fd) {
                let live = host::fs::status_flags_from_host(host);
                let tracked = lo::O_APPEND | lo::O_NONBLOCK;
                flags = (flags & !tracked) | (live & tracked);
            }
        }
        flags
    }

    /// Changes the status flags `F_SETFL` may change.
    pub fn set_status_flags(&self, new: u64) -> SysResult<()> {
        let new = new & lo::SETFL_MASK;
        if let Some(fd) = self.host_fd() {
            retry(|| host::io::set_status_flag(fd, libc::O_APPEND, new & lo::O_APPEND != 0))?;
            retry(|| host::io::set_status_flag(fd, libc::O_NONBLOCK, new & lo::O_NONBLOCK != 0))?;
        }
        let old = self.flags.load(Ordering::Relaxed);
        self.flags
            .store((old & !lo::SETFL_MASK) | new, Ordering::Relaxed);
        Ok(())
    }

    /// The `F_GETOWN` value.
    pub fn owner(&self) -> i32 {
        self.owner.load(Ordering::Relaxed)
    }

    /// Records the `F_SETOWN` value.
    pub fn set_owner(&self, owner: i32) {
        self.owner.store(owner, Ordering::Relaxed);
    }

    /// The `F_GETSIG` value.
    pub fn io_signal(&self) -> u32 {
        self.io_signal.load(Ordering::Relaxed)
    }

    /// Records the `F_SETSIG` value.
    pub fn set_io_signal(&self, sig: u32) {
        self.io_signal.store(sig, Ordering::Relaxed);
    }

    /// Whether the description was opened for reading.
    pub fn readable(&self) -> bool {
        !matches!(
            self.flags.load(Ordering::Relaxed) & lo::O_ACCMODE,
            lo::O_WRONLY | 3
        )
    }

    fn writable(&self) -> bool {
        matches!(
            self.flags.load(Ordering::Relaxed) & lo::O_ACCMODE,
            lo::O_WRONLY | lo::O_RDWR
        )
    }

    fn is_path_only(&self) -> bool {
        matches!(self.kind, FileKind::Path { .. })
    }

    // ---- reading and writing ---------------------------------------------------------------

    /// `read(2)` into guest memory at `addr` (any `len`: it is checked and capped here).
    pub fn read(&self, mem: &GuestMemory, addr: u64, len: u64) -> SysResult<u64> {
        if self.is_path_only() || !self.readable() {
            return Err(Errno::EBADF);
        }
        let len = transfer_len(addr, len)?;
        match &self.kind {
            FileKind::Host { fd, .. } => {
                let fd = fd.as_fd();
                mem.with_writable(addr, len, |buf| interruptible(|| host::io::read(fd, buf)))?
                    .map(|n| n as u64)
            }
            FileKind::Device(device) => device_read(*device, mem, addr, len),
            FileKind::Event(object) => self.event_read(object, mem, addr, len),
            FileKind::Path { .. } => Err(Errno::EBADF),
        }
    }

    /// `write(2)` from guest memory at `addr` (any `len`: it is checked and capped here).
    pub fn write(&self, mem: &GuestMemory, addr: u64, len: u64) -> SysResult<u64> {
        if self.is_path_only() || !self.writable() {
            return Err(Errno::EBADF);
        }
        let len = transfer_len(addr, len)?;
        match &self.kind {
            FileKind::Host { fd, .. } => {
                let fd = fd.as_fd();
                mem.with_readable(addr, len, |buf| interruptible(|| host::io::write(fd, buf)))?
                    .map(|n| n as u64)
            }
            FileKind::Device(device) => {
                mem.check(addr, len.min(1), Prot::READ)?;
                match device {
                    Device::Full => Err(Errno::ENOSPC),
                    _ => Ok(len),
                }
            }
            FileKind::Event(object) => self.event_write(object, mem, addr, len),
            FileKind::Path { .. } => Err(Errno::EBADF),
        }
    }

    /// `pread64(2)`.
    pub fn pread(&self, mem: &GuestMemory, addr: u64, len: u64, offset: i64) -> SysResult<u64> {
        if offset < 0 {
            return Err(Errno::EINVAL);
        }
        if self.is_path_only() || !self.readable() {
            return Err(Errno::EBADF);
        }
        let len = transfer_len(addr, len)?;
        match &self.kind {
            FileKind::Device(device) => device_read(*device, mem, addr, len),
            _ => {
                let fd = self.io_fd(Errno::ESPIPE)?;
                mem.with_writable(addr, len, |buf| {
                    interruptible(|| host::io::pread(fd, buf, offset))
                })?
                .map(|n| n as u64)
            }
        }
    }

    /// `pwrite64(2)`.
    pub fn pwrite(&self, mem: &GuestMemory, addr: u64, len: u64, offset: i64) -> SysResult<u64> {
        if offset < 0 {
            return Err(Errno::EINVAL);
        }
        if self.is_path_only() || !self.writable() {
            return Err(Errno::EBADF);
        }
        let len = transfer_len(addr, len)?;
        match &self.kind {
            FileKind::Device(Device::Full) => Err(Errno::ENOSPC),
            FileKind::Device(_) => Ok(len),
            _ => {
                let fd = self.io_fd(Errno::ESPIPE)?;
                mem.with_readable(addr, len, |buf| {
                    interruptible(|| host::io::pwrite(fd, buf, offset))
                })?
                .map(|n| n as u64)
            }
        }
    }

    /// `readv(2)`/`preadv(2)` into the guest buffers `iov`.
    pub fn readv(&self, mem: &GuestMemory, iov: &[Iovec], offset: Option<i64>) -> SysResult<u64> {
        if self.is_path_only() || !self.readable() {
            return Err(Errno::EBADF);
        }
        if matches!(self.kind, FileKind::Event(_)) {
            return self.event_vectored(mem, iov, true);
        }
        if let FileKind::Device(device) = self.kind {
            let mut total = 0;
            for v in iov.iter().filter(|v| v.len > 0) {
                total += device_read(device, mem, v.base, v.len)?;
                if device == Device::Null {
                    break;
                }
            }
            return Ok(total);
        }
        let fd = self.io_fd(Errno::EINVAL)?;
        let bufs = raw_bufs(mem, iov, Prot::WRITE)?;
        if bufs.is_empty() {
            return Ok(0);
        }
        // SAFETY: raw_bufs checked that every buffer is mapped writable guest memory inside
        // the reservation, which stays host-mapped for the runtime's whole life.
        let n = interruptible(|| unsafe { host::io::readv(fd, &bufs, offset) })?;
        for b in &bufs {
            note_runtime_write(mem, b);
        }
        Ok(n as u64)
    }

    /// `writev(2)`/`pwritev(2)` from the guest buffers `iov`.
    pub fn writev(&self, mem: &GuestMemory, iov: &[Iovec], offset: Option<i64>) -> SysResult<u64> {
        if self.is_path_only() || !self.writable() {
            return Err(Errno::EBADF);
        }
        if matches!(self.kind, FileKind::Event(_)) {
            return self.event_vectored(mem, iov, false);
        }
        if let FileKind::Device(device) = self.kind {
            let total: u64 = iov.iter().map(|v| v.len).sum();
            return if device == Device::Full && total > 0 {
                Err(Errno::ENOSPC)
            } else {
                Ok(total)
            };
        }
        let fd = self.io_fd(Errno::EINVAL)?;
        let bufs = raw_bufs(mem, iov, Prot::READ)?;
        if bufs.is_empty() {
            return Ok(0);
        }
        // SAFETY: raw_bufs checked that every buffer is mapped readable guest memory inside
        // the reservation.
        let n = interruptible(|| unsafe { host::io::writev(fd, &bufs, offset) })?;
        Ok(n as u64)
    }

    /// `lseek(2)` with Linux `whence`.
    pub fn lseek(&self, offset: i64, whence: u32) -> SysResult<i64> {
        const SEEK_SET: u32 = 0;
        const SEEK_CUR: u32 = 1;
        const SEEK_END: u32 = 2;
        const SEEK_DATA: u32 = 3;
        const SEEK_HOLE: u32 = 4;
        match &self.kind {
            FileKind::Device(_) => {
                if whence > SEEK_HOLE {
                    return Err(Errno::EINVAL);
                }
                Ok(0)
            }
            FileKind::Path { .. } => Err(Errno::EBADF),
            // Anonymous inodes accept any seek and stay at 0 (`noop_llseek`).
            FileKind::Event(_) if whence <= SEEK_HOLE => Ok(0),
            FileKind::Event(_) => Err(Errno::EINVAL),
            FileKind::Host { fd, dir } => {
                let host_whence = match whence {
                    SEEK_SET => libc::SEEK_SET,
                    SEEK_CUR => libc::SEEK_CUR,
                    SEEK_END => libc::SEEK_END,
                    SEEK_DATA => libc::SEEK_DATA,
                    SEEK_HOLE => libc::SEEK_HOLE,
                    _ => return Err(Errno::EINVAL),
                };
                let mut dir = dir.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(cursor) = dir.as_mut() {
                    // Directory offsets are entry indexes (the d_off values handed out).
                    let target = match whence {
                        SEEK_SET => offset,
                        SEEK_CUR => cursor.index as i64 + offset,
                        _ => return Err(Errno::EINVAL),
                    };
                    if target < 0 {
                        return Err(Errno::EINVAL);
                    }
                    cursor.seek(target as u64).map_err(errno)?;
                    return Ok(target);
                }
                retry(|| host::io::lseek(fd.as_fd(), offset, host_whence))
            }
        }
    }

    // ---- metadata ---------------------------------------------------------------------------

    /// `fstat(2)`.
    pub fn stat(&self) -> SysResult<FileStat> {
        match &self.kind {
            FileKind::Host { fd, .. } => retry(|| host::fs::fstat(fd.as_fd())),
            FileKind::Device(device) => Ok(device.stat()),
            FileKind::Event(_) => Ok(anon_inode_stat()),
            FileKind::Path { host } => retry(|| host::fs::fstatat(host::fs::CWD, host, false)),
        }
    }

    /// Whether the file is a directory.
    pub fn is_dir(&self) -> bool {
        match &self.kind {
            FileKind::Host { .. } | FileKind::Path { .. } => {
                self.stat().map(|st| st.is_dir()).unwrap_or(false)
            }
            FileKind::Device(_) | FileKind::Event(_) => false,
        }
    }

    /// `getdents64(2)`: fills `len` bytes at `addr` with `linux_dirent64` records.
    pub fn getdents(&self, mem: &GuestMemory, addr: u64, len: u64) -> SysResult<u64> {
        let FileKind::Host { fd, dir } = &self.kind else {
            return Err(if self.is_path_only() {
                Errno::EBADF
            } else {
                Errno::ENOTDIR
            });
        };
        let mut dir = dir.lock().unwrap_or_else(|p| p.into_inner());
        if dir.is_none() {
            if !self.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            let stream = HostDir::new(fd.as_fd()).map_err(errno)?;
            *dir = Some(DirCursor {
                stream,
                index: 0,
                pending: None,
            });
        }
        let cursor = dir.as_mut().expect("cursor was just created");
        let capacity = usize::try_from(len).unwrap_or(usize::MAX).min(1 << 20);
        mem.check(addr, capacity as u64, Prot::WRITE)?;

        let mut out = Vec::with_capacity(capacity.min(64 * 1024));
        loop {
            let entry = match cursor.pending.take() {
                Some(entry) => entry,
                None => match cursor.stream.next_entry() {
                    None => break,
                    Some(entry) => entry.map_err(errno)?,
                },
            };
            let reclen = (DIRENT64_NAME_OFFSET + entry.name.len() + 1).next_multiple_of(8);
            if out.len() + reclen > capacity {
                cursor.pending = Some(entry);
                if out.is_empty() {
                    return Err(Errno::EINVAL);
                }
                break;
            }
            cursor.index += 1;
            let start = out.len();
            out.resize(start + reclen, 0);
            let rec = &mut out[start..];
            rec[0..8].copy_from_slice(&entry.ino.to_le_bytes());
            rec[8..16].copy_from_slice(&(cursor.index as i64).to_le_bytes());
            rec[16..18].copy_from_slice(&(reclen as u16).to_le_bytes());
            rec[18] = entry.kind;
            rec[DIRENT64_NAME_OFFSET..DIRENT64_NAME_OFFSET + entry.name.len()]
                .copy_from_slice(&entry.name);
        }
        mem.write(addr, &out)?;
        Ok(out.len() as u64)
    }
}

// ---- event objects -------------------------------------------------------------------------

/// The size of every eventfd and timerfd transfer.
const EVENT_WORD: u64 = 8;

impl OpenFile {
    fn nonblocking(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & lo::O_NONBLOCK != 0
    }

    /// `read(2)` of an event object: one 8-byte word, `EINVAL` for a shorter buffer or an
    /// object that cannot be read (epoll).
    fn event_read(
        &self,
        object: &EventObject,
        mem: &GuestMemory,
        addr: u64,
        len: u64,
    ) -> SysResult<u64> {
        if len < EVENT_WORD {
            return Err(Errno::EINVAL);
        }
        mem.check(addr, EVENT_WORD, Prot::WRITE)?;
        let nonblock = self.nonblocking();
        let wait = || poll::wait_for(object, poll::ev::POLLIN);
        let value = match object {
            EventObject::EventFd(e) => e.read(nonblock, wait)?,
            EventObject::TimerFd(t) => t.read(nonblock, wait)?,
            EventObject::Epoll(_) => return Err(Errno::EINVAL),
        };
        mem.write_val(addr, &value)?;
        Ok(EVENT_WORD)
    }

    /// `write(2)` to an event object: one 8-byte word added to an eventfd; `EINVAL` for a
    /// shorter buffer or an object that cannot be written (timerfd, epoll).
    fn event_write(
        &self,
        object: &EventObject,
        mem: &GuestMemory,
        addr: u64,
        len: u64,
    ) -> SysResult<u64> {
        let EventObject::EventFd(e) = object else {
            return Err(Errno::EINVAL);
        };
        if len < EVENT_WORD {
            return Err(Errno::EINVAL);
        }
        let value: u64 = mem.read_val(addr)?;
        e.write(value, self.nonblocking(), || {
            poll::wait_for(object, poll::ev::POLLOUT)
        })?;
        Ok(EVENT_WORD)
    }

    /// `readv`/`writev` on an event object: the word is gathered from (or scattered to) the
    /// buffers in order.
    fn event_vectored(&self, mem: &GuestMemory, iov: &[Iovec], reading: bool) -> SysResult<u64> {
        let FileKind::Event(object) = &self.kind else {
            return Err(Errno::EINVAL);
        };
        let total = iov.iter().try_fold(0u64, |acc, v| acc.checked_add(v.len));
        if total.is_none_or(|t| t < EVENT_WORD) {
            return Err(Errno::EINVAL);
        }
        // One contiguous buffer holding the word is the common case.
        if let Some(v) = iov.iter().find(|v| v.len > 0)
            && v.len >= EVENT_WORD
        {
            return if reading {
                self.event_read(object, mem, v.base, EVENT_WORD)
            } else {
                self.event_write(object, mem, v.base, EVENT_WORD)
            };
        }
        tracing::debug!("a split eventfd/timerfd word is not supported");
        Err(Errno::EINVAL)
    }
}

/// What `fstat` shows for an event object: Linux's anonymous inode (no file type, mode 0600).
fn anon_inode_stat() -> FileStat {
    FileStat {
        dev: linux_makedev(0, 15),
        ino: 1,
        mode: 0o600,
        nlink: 1,
        blksize: 4096,
        ..FileStat::default()
    }
}

impl DirCursor {
    /// Positions the stream so the next entry returned is number `index`.
    fn seek(&mut self, index: u64) -> io::Result<()> {
        self.stream.rewind();
        self.pending = None;
        self.index = 0;
        while self.index < index {
            match self.stream.next_entry() {
                Some(entry) => {
                    entry?;
                    self.index += 1;
                }
                None => break,
            }
        }
        Ok(())
    }
}

fn device_read(device: Device, mem: &GuestMemory, addr: u64, len: u64) -> SysResult<u64> {
    match device {
        Device::Null => Ok(0),
        Device::Zero | Device::Full => {
            let n = len.min(1 << 20);
            mem.with_writable(addr, n, |buf| {
                buf.fill(0);
                buf.len() as u64
            })
        }
        Device::Random | Device::Urandom => {
            let n = len.min(1 << 20);
            mem.with_writable(addr, n, |buf| {
                host::random_bytes(buf);
                buf.len() as u64
            })
        }
    }
}

/// Turns guest iovecs into host buffers after checking them like Linux's `import_iovec`: an
/// unreadable (or unwritable) buffer is `EFAULT` if it is the first with data, and otherwise
/// ends the transfer there.
fn raw_bufs(mem: &GuestMemory, iov: &[Iovec], need: Prot) -> SysResult<Vec<RawBuf>> {
    let mut total: u64 = 0;
    for v in iov {
        total = total
            .checked_add(v.len)
            .filter(|&t| t <= i64::MAX as u64)
            .ok_or(Errno::EINVAL)?;
    }
    let mut bufs = Vec::with_capacity(iov.len());
    for v in iov.iter().filter(|v| v.len > 0) {
        let usable = mem.accessible(v.base, v.len, need);
        if usable == 0 {
            if bufs.is_empty() {
                return Err(Errno::EFAULT);
            }
            break;
        }
        let range = mem.host_range(v.base..v.base + usable);
        bufs.push(RawBuf {
            ptr: range.as_ptr(),
            len: range.len(),
        });
        if usable < v.len {
            break;
        }
    }
    Ok(bufs)
}

fn note_runtime_write(mem: &GuestMemory, buf: &RawBuf) {
    let addr = buf.ptr as u64 - mem.host_base() as u64;
    let executable = mem
        .vmas()
        .overlapping(addr..addr + buf.len as u64)
        .any(|vma| vma.prot.contains(Prot::EXEC));
    if executable {
        mem.invalidate(addr..addr + buf.len as u64);
    }
}
