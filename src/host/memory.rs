//! The host side of guest memory: one large reservation and page-level operations on it.
//!
//! Everything here is POSIX `mmap` and runs unchanged on Linux and macOS. The reservation is
//! readable and writable from the start and backed by nothing until touched (`MAP_NORESERVE`
//! where the host has it); releasing guest pages maps fresh anonymous pages over them.
//!
//! # Limitations
//! Where the host page is larger than the guest's 4 KiB page (16 KiB on Apple Silicon), a
//! release that covers only part of a host page keeps that host page and zeroes the released
//! bytes; if the host page was a shared file mapping, its remaining bytes become a private copy
//! (they stop tracking the file).

use std::io;
use std::marker::PhantomData;
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

/// The host's page size.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096).max(4096)
}

/// A new host shared-memory object of `len` bytes, all zeroes: what shared anonymous guest
/// memory is mapped from, so that another process can map the same pages (see
/// `crate::kernel::handover`). A `memfd` on Linux; elsewhere a POSIX shared-memory object
/// whose name is removed at once.
pub fn shared_object(len: u64) -> io::Result<OwnedFd> {
    let fd = new_shared_object()?;
    let size =
        libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::ENOMEM))?;
    // SAFETY: plain descriptor call.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), size) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

#[cfg(target_os = "linux")]
fn new_shared_object() -> io::Result<OwnedFd> {
    // SAFETY: the name is NUL-terminated; the result is checked.
    let fd = unsafe { libc::memfd_create(c"elfuse-shared".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(not(target_os = "linux"))]
fn new_shared_object() -> io::Result<OwnedFd> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let name = std::ffi::CString::new(format!(
            "/elfuse.{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: the name is NUL-terminated; the result is checked.
        let fd = unsafe {
            libc::shm_open(
                name.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
                0o600 as libc::c_uint,
            )
        };
        if fd < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EEXIST) {
                continue;
            }
            return Err(err);
        }
        // SAFETY: the name was just created by this process; removing it leaves the object
        // alive for its descriptors.
        unsafe {
            libc::shm_unlink(name.as_ptr());
        }
        // SAFETY: fd is a new descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        set_cloexec(&fd)?;
        return Ok(fd);
    }
}

#[cfg(not(target_os = "linux"))]
fn set_cloexec(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: plain descriptor call.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A reserved range of host address space that holds guest pages.
pub struct Reservation {
    base: NonNull<u8>,
    len: u64,
    host_page: u64,
}

// SAFETY: the reservation is plain memory owned by this value; concurrent access to the bytes
// is the guest's own business (as on real hardware) and the runtime only copies through raw
// pointers, never forming long-lived references.
unsafe impl Send for Reservation {}
// SAFETY: as above; no method mutates the pointer or length.
unsafe impl Sync for Reservation {}

#[cfg(target_os = "linux")]
const NORESERVE: libc::c_int = libc::MAP_NORESERVE;
#[cfg(not(target_os = "linux"))]
const NORESERVE: libc::c_int = 0;

impl Reservation {
    /// Reserves `len` bytes (a multiple of the host page size).
    pub fn new(len: u64) -> io::Result<Reservation> {
        let size = usize::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::ENOMEM))?;
        // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing touches no
        // existing memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANON | NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Reservation {
            base,
            len,
            host_page: page_size(),
        })
    }

    /// A reservation that treats `host_page` bytes (a multiple of the real host page) as the
    /// host page, to test the 16 KiB page handling of Apple Silicon on a 4 KiB host.
    #[cfg(test)]
    pub fn with_host_page(len: u64, host_page: u64) -> io::Result<Reservation> {
        assert!(
            host_page.is_multiple_of(page_size()),
            "simulated page below the real one"
        );
        let mut reservation = Reservation::new(len)?;
        reservation.host_page = host_page;
        Ok(reservation)
    }

    /// The host address of offset 0.
    pub fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// The reserved length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Never true: a reservation has at least one page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A view of the bytes at `range`, which must lie inside the reservation.
    pub fn range(&self, range: Range<u64>) -> HostRange<'_> {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "range outside reservation"
        );
        HostRange {
            // SAFETY: range.start <= len, so the offset stays inside the reserved mapping.
            ptr: unsafe { self.base.as_ptr().add(range.start as usize) },
            len: (range.end - range.start) as usize,
            _reservation: PhantomData,
        }
    }

    /// Releases the pages of `range` (guest-page aligned): they read back as zeroes and hold
    /// no host memory once the whole host page is released.
    pub fn discard(&self, range: Range<u64>) {
        let split = HostPageSplit::new(range, self.host_page);
        for partial in [split.head.clone(), split.tail.clone()]
            .into_iter()
            .flatten()
        {
            self.privatize_and_zero(partial);
        }
        if split.middle.start < split.middle.end {
            let fresh = self.range(split.middle);
            // SAFETY: the range is inside the reservation and host-page aligned; mapping fresh
            // anonymous pages over it replaces only guest pages the caller is releasing.
            let ptr = unsafe {
                libc::mmap(
                    fresh.ptr.cast(),
                    fresh.len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANON | libc::MAP_FIXED | NORESERVE,
                    -1,
                    0,
                )
            };
            assert!(
                ptr != libc::MAP_FAILED,
                "replacing reserved pages failed: {}",
                io::Error::last_os_error()
            );
        }
    }

    /// Zeroes `range` inside one host page after making that page private anonymous memory.
    fn privatize_and_zero(&self, range: Range<u64>) {
        let page_start = range.start - range.start % self.host_page;
        let page = page_start..page_start + self.host_page;
        let mut saved = vec![0u8; self.host_page as usize];
        self.range(page.clone()).read(&mut saved);
        let fresh = self.range(page.clone());
        // SAFETY: one host page inside the reservation; its bytes were saved above and are
        // written back below, except those being released.
        let ptr = unsafe {
            libc::mmap(
                fresh.ptr.cast(),
                fresh.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANON | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        assert!(
            ptr != libc::MAP_FAILED,
            "privatizing a host page failed: {}",
            io::Error::last_os_error()
        );
        let from = (range.start - page_start) as usize;
        let to = (range.end - page_start) as usize;
        saved[from..to].fill(0);
        self.range(page).write(&saved);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // SAFETY: the mapping was created in `new` with exactly this base and length and no
        // view of it outlives the reservation (views borrow it).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len as usize);
        }
    }
}

/// A guest range cut at host page boundaries: partial host pages at either end, and the
/// host-page-aligned middle.
#[derive(Debug, PartialEq, Eq)]
pub struct HostPageSplit {
    /// The part before the first host page boundary, if the range starts inside a host page.
    pub head: Option<Range<u64>>,
    /// The whole host pages.
    pub middle: Range<u64>,
    /// The part after the last host page boundary, if the range ends inside a host page.
    pub tail: Option<Range<u64>>,
}

impl HostPageSplit {
    /// Splits `range` for a host page of `host_page` bytes.
    pub fn new(range: Range<u64>, host_page: u64) -> HostPageSplit {
        let up = |v: u64| v.div_ceil(host_page) * host_page;
        let down = |v: u64| v - v % host_page;
        let middle_start = up(range.start);
        let middle_end = down(range.end);
        if middle_start >= middle_end {
            // The range lies within one host page, or straddles one boundary.
            let boundary = down(range.end);
            if boundary > range.start && boundary < range.end {
                return HostPageSplit {
                    head: Some(range.start..boundary),
                    middle: boundary..boundary,
                    tail: Some(boundary..range.end),
                };
            }
            let whole_page =
                range.start.is_multiple_of(host_page) && range.end - range.start == host_page;
            if whole_page {
                return HostPageSplit {
                    head: None,
                    middle: range,
                    tail: None,
                };
            }
            return HostPageSplit {
                head: Some(range.clone()),
                middle: range.end..range.end,
                tail: None,
            };
        }
        HostPageSplit {
            head: (range.start < middle_start).then_some(range.start..middle_start),
            middle: middle_start..middle_end,
            tail: (middle_end < range.end).then_some(middle_end..range.end),
        }
    }
}

/// A borrowed view of host bytes that hold guest memory.
pub struct HostRange<'a> {
    ptr: *mut u8,
    len: usize,
    _reservation: PhantomData<&'a Reservation>,
}

impl<'a> HostRange<'a> {
    /// The four bytes as an atomic word (the range must be 4 bytes, 4-byte aligned).
    pub fn as_atomic_u32(&self) -> &'a std::sync::atomic::AtomicU32 {
        assert!(
            self.len == 4 && (self.ptr as usize).is_multiple_of(4),
            "an aligned 4-byte range"
        );
        // SAFETY: the pointer is valid for 4 bytes inside the reservation, aligned for u32,
        // and the reservation outlives the borrow; guest code and other threads may access the
        // word concurrently, which is what atomics are for.
        unsafe { &*self.ptr.cast::<std::sync::atomic::AtomicU32>() }
    }
}

impl HostRange<'_> {
    /// The host address of the first byte.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the view is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies the bytes into `buf` (of the same length).
    pub fn read(&self, buf: &mut [u8]) {
        assert_eq!(buf.len(), self.len);
        // SAFETY: the view lies inside the reservation, which is always mapped readable; buf
        // is a distinct Rust allocation.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr, buf.as_mut_ptr(), self.len) }
    }

    /// Copies `data` (of the same length) into the bytes.
    pub fn write(&self, data: &[u8]) {
        assert_eq!(data.len(), self.len);
        // SAFETY: the view lies inside the reservation; the caller checked the guest may have
        // these bytes written; data is a distinct Rust allocation.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr, self.len) }
    }

    /// Runs `f` on the bytes as a mutable slice.
    pub fn with_mut<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        // SAFETY: the view lies inside the reservation and is valid for `len` bytes. Other
        // guest threads may change these bytes concurrently, which only affects what the guest
        // reads back, exactly as with a real kernel copying to user memory.
        let slice = unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) };
        f(slice)
    }

    /// Runs `f` on the bytes as a shared slice.
    pub fn with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        // SAFETY: as in `with_mut`.
        let slice = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        f(slice)
    }

    /// Maps `fd` at `offset` over these bytes (host-page aligned), private or shared.
    pub fn map_file(
        &self,
        fd: BorrowedFd<'_>,
        offset: u64,
        shared: bool,
        writable: bool,
    ) -> io::Result<()> {
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        let mut prot = libc::PROT_READ;
        if writable || !shared {
            prot |= libc::PROT_WRITE;
        }
        let kind = if shared {
            libc::MAP_SHARED
        } else {
            libc::MAP_PRIVATE
        };
        // SAFETY: the view lies inside the reservation and the caller owns these guest pages;
        // MAP_FIXED replaces only them.
        let ptr = unsafe {
            libc::mmap(
                self.ptr.cast(),
                self.len,
                prot,
                kind | libc::MAP_FIXED,
                fd.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Flushes a shared file mapping to its file (`msync`).
    pub fn sync(&self, wait: bool, invalidate: bool) -> io::Result<()> {
        let mut flags = if wait { libc::MS_SYNC } else { libc::MS_ASYNC };
        if invalidate {
            flags |= libc::MS_INVALIDATE;
        }
        // SAFETY: msync only reads the mapping state of a range inside the reservation.
        let rc = unsafe { libc::msync(self.ptr.cast(), self.len, flags) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Which host pages of the range are resident (one flag per host page).
    pub fn residency(&self, host_page: u64) -> io::Result<Vec<bool>> {
        let pages = (self.len as u64).div_ceil(host_page) as usize;
        let mut vec = vec![0u8; pages];
        // SAFETY: vec holds one byte per host page of the range, as mincore requires, and the
        // range is inside the reservation.
        let rc = unsafe { libc::mincore(self.ptr.cast(), self.len, vec.as_mut_ptr().cast()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(vec.into_iter().map(|flag| flag & 1 != 0).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 1024;

    #[test]
    fn equal_page_sizes_need_no_partial_pages() {
        let split = HostPageSplit::new(4 * K..12 * K, 4 * K);
        assert_eq!(
            split,
            HostPageSplit {
                head: None,
                middle: 4 * K..12 * K,
                tail: None
            }
        );
    }

    #[test]
    fn sixteen_k_host_pages_split_guest_ranges_at_their_boundaries() {
        let split = HostPageSplit::new(4 * K..40 * K, 16 * K);
        assert_eq!(split.head, Some(4 * K..16 * K));
        assert_eq!(split.middle, 16 * K..32 * K);
        assert_eq!(split.tail, Some(32 * K..40 * K));

        let inside = HostPageSplit::new(20 * K..24 * K, 16 * K);
        assert_eq!(inside.head, Some(20 * K..24 * K));
        assert_eq!(inside.tail, None);
        assert!(inside.middle.is_empty());

        let straddle = HostPageSplit::new(12 * K..20 * K, 16 * K);
        assert_eq!(straddle.head, Some(12 * K..16 * K));
        assert_eq!(straddle.tail, Some(16 * K..20 * K));

        let whole = HostPageSplit::new(16 * K..32 * K, 16 * K);
        assert_eq!(
            whole,
            HostPageSplit {
                head: None,
                middle: 16 * K..32 * K,
                tail: None
            }
        );
    }

    #[test]
    fn discard_zeroes_and_keeps_neighbours() {
        let res = Reservation::new(1 << 20).unwrap();
        res.range(0..3 * 4096).write(&[7u8; 3 * 4096]);
        res.discard(4096..2 * 4096);
        let mut buf = [0u8; 3 * 4096];
        res.range(0..3 * 4096).read(&mut buf);
        assert!(buf[..4096].iter().all(|&b| b == 7));
        assert!(buf[4096..8192].iter().all(|&b| b == 0));
        assert!(buf[8192..].iter().all(|&b| b == 7));
    }

    #[test]
    fn partial_host_page_release_zeroes_only_the_released_bytes() {
        let mut res = Reservation::new(1 << 20).unwrap();
        res.host_page = 16 * K.max(page_size());
        let page = res.host_page;
        res.range(0..page).write(&vec![9u8; page as usize]);
        res.discard(4 * K..8 * K);
        let mut buf = vec![0u8; page as usize];
        res.range(0..page).read(&mut buf);
        assert!(buf[..4096].iter().all(|&b| b == 9));
        assert!(buf[4096..8192].iter().all(|&b| b == 0));
        assert!(buf[8192..].iter().all(|&b| b == 9));
    }
}
