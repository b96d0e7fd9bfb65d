//! Files for the debugger (`vFile:open`, `pread`, `fstat`, `close`): a debugger with its
//! default sysroot (`target:`) reads the program and its shared libraries through the stub,
//! by the guest's paths, resolved by the runtime's own path lookup (a sysroot's included).
//! Read-only: nothing the debugger asks can change a file.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};

use crate::kernel::abi::errno::Errno;
use crate::kernel::fs;
use crate::kernel::process::Process;

/// Most files a debugger keeps open at once.
const MAX_OPEN: usize = 64;
/// `AT_FDCWD`: relative names start from the working directory.
const AT_FDCWD: u64 = -100i64 as u64;

/// The files a debugger has open, by the numbers it was given.
#[derive(Default)]
pub struct FileTable {
    files: BTreeMap<u32, File>,
}

/// A file's status, as the protocol's `fstat` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime: i64,
    pub mtime: i64,
    pub ctime: i64,
}

impl FileTable {
    /// Opens guest path `name` for reading; returns its number.
    pub fn open(&mut self, process: &Process, name: &[u8]) -> Result<u32, Errno> {
        if self.files.len() >= MAX_OPEN {
            return Err(Errno::EMFILE);
        }
        let host = fs::lookup_host(process, AT_FDCWD, name)?;
        let path = std::ffi::OsStr::from_bytes(host.bytes());
        let file = File::open(path).map_err(Errno::from)?;
        let number = (0..).find(|n| !self.files.contains_key(n)).unwrap_or(0);
        self.files.insert(number, file);
        Ok(number)
    }

    /// Reads up to `buf.len()` bytes at `offset` of file `number`.
    pub fn pread(&self, number: u32, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let file = self.files.get(&number).ok_or(Errno::EBADF)?;
        file.read_at(buf, offset).map_err(Errno::from)
    }

    /// The status of file `number`.
    pub fn fstat(&self, number: u32) -> Result<FileStat, Errno> {
        let file = self.files.get(&number).ok_or(Errno::EBADF)?;
        let meta = file.metadata().map_err(Errno::from)?;
        Ok(FileStat {
            dev: meta.dev(),
            ino: meta.ino(),
            mode: meta.mode(),
            nlink: meta.nlink(),
            uid: meta.uid(),
            gid: meta.gid(),
            size: meta.size(),
            blksize: meta.blksize(),
            blocks: meta.blocks(),
            atime: meta.atime(),
            mtime: meta.mtime(),
            ctime: meta.ctime(),
        })
    }

    /// Closes file `number`.
    pub fn close(&mut self, number: u32) -> Result<(), Errno> {
        self.files.remove(&number).map(drop).ok_or(Errno::EBADF)
    }
}
