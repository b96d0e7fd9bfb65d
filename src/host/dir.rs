//! Reading host directories entry by entry, with Linux `d_type` values.

use std::ffi::CStr;
use std::io;
use std::os::fd::{BorrowedFd, IntoRawFd};
use std::ptr::NonNull;

use crate::kernel::abi::dirent;

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Inode number.
    pub ino: u64,
    /// Linux `DT_*` type.
    pub kind: u8,
    /// The name, without NUL.
    pub name: Vec<u8>,
}

/// An open host directory stream.
pub struct HostDir {
    dir: NonNull<libc::DIR>,
}

// SAFETY: a DIR stream may be used from any thread as long as calls are not concurrent; the
// owner keeps it behind a mutex.
unsafe impl Send for HostDir {}

fn dtype_to_linux(host: u8) -> u8 {
    match host {
        libc::DT_FIFO => dirent::DT_FIFO,
        libc::DT_CHR => dirent::DT_CHR,
        libc::DT_DIR => dirent::DT_DIR,
        libc::DT_BLK => dirent::DT_BLK,
        libc::DT_REG => dirent::DT_REG,
        libc::DT_LNK => dirent::DT_LNK,
        libc::DT_SOCK => dirent::DT_SOCK,
        _ => dirent::DT_UNKNOWN,
    }
}

impl HostDir {
    /// Opens a stream on a duplicate of `fd` (which must be a directory).
    pub fn new(fd: BorrowedFd<'_>) -> io::Result<HostDir> {
        let dup = super::io::dup(fd)?;
        let raw = dup.into_raw_fd();
        // SAFETY: raw is an open directory descriptor this process owns; fdopendir takes it.
        let dir = unsafe { libc::fdopendir(raw) };
        match NonNull::new(dir) {
            Some(dir) => {
                let mut stream = HostDir { dir };
                stream.rewind();
                Ok(stream)
            }
            None => {
                let err = io::Error::last_os_error();
                // SAFETY: fdopendir failed, so raw is still ours to close.
                unsafe { libc::close(raw) };
                Err(err)
            }
        }
    }

    /// Goes back to the first entry.
    pub fn rewind(&mut self) {
        // SAFETY: self.dir is a valid open stream.
        unsafe { libc::rewinddir(self.dir.as_ptr()) }
    }

    /// The next entry, `None` at the end.
    pub fn next_entry(&mut self) -> Option<io::Result<DirEntry>> {
        nix::errno::Errno::clear();
        // SAFETY: self.dir is a valid open stream, used by one thread at a time.
        let entry = unsafe { libc::readdir(self.dir.as_ptr()) };
        if entry.is_null() {
            let errno = nix::errno::Errno::last_raw();
            return (errno != 0).then(|| Err(io::Error::from_raw_os_error(errno)));
        }
        // SAFETY: readdir returned a valid entry that stays valid until the next call.
        let entry = unsafe { &*entry };
        // SAFETY: d_name is NUL-terminated.
        let name = unsafe { CStr::from_ptr(entry.d_name.as_ptr()) };
        Some(Ok(DirEntry {
            #[allow(clippy::unnecessary_cast)]
            ino: entry.d_ino as u64,
            kind: dtype_to_linux(entry.d_type),
            name: name.to_bytes().to_vec(),
        }))
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        // SAFETY: self.dir is a valid stream owned by this value.
        unsafe {
            libc::closedir(self.dir.as_ptr());
        }
    }
}
