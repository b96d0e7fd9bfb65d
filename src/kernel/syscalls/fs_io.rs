//! Reading and writing: `read(2)`, `write(2)`, `readv(2)`, `writev(2)`, `pread64`/`pwrite64`,
//! `preadv(2)`/`pwritev(2)` and their `2` variants, `lseek(2)`, `sendfile(2)`,
//! `copy_file_range(2)`, `posix_fadvise(2)`.
//!
//! # Limitations
//! `sendfile` and `copy_file_range` copy through a buffer of up to 64 KiB. When a signal
//! interrupts the write of a chunk already read from an input that cannot seek back (a pipe or
//! socket), the unwritten rest of that chunk is lost to the caller.

use std::sync::Arc;

use super::Ctx;
use crate::host;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::open as lo;
use crate::kernel::abi::signal::SIGPIPE;
use crate::kernel::abi::signal::code::SI_USER;
use crate::kernel::abi::structs::Iovec;
use crate::kernel::file::{MAX_RW_COUNT, OpenFile};
use crate::kernel::process::lock;
use crate::kernel::signal::{self, SigInfo, restart};
use crate::kernel::task::interruptible;

/// Linux's `UIO_MAXIOV`.
const UIO_MAXIOV: u64 = 1024;

/// A write that hit a broken pipe also raises `SIGPIPE` for the thread, as Linux's
/// `send_sig(SIGPIPE, current, 0)` does: `SI_USER` from the writer itself.
fn pipe_check(ctx: &mut Ctx<'_>, result: SysResult) -> SysResult {
    if result == Err(Errno::EPIPE) {
        let uid = lock(&ctx.process().creds).uid;
        let info = SigInfo::user(SIGPIPE, SI_USER, ctx.process().pid, uid);
        signal::raise(ctx.task, info);
    }
    result
}

/// `read(2)`.
pub fn sys_read(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    file.read(ctx.mem(), a[1], a[2])
}

/// `write(2)`.
pub fn sys_write(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    let result = file.write(ctx.mem(), a[1], a[2]);
    pipe_check(ctx, result)
}

/// `pread64(2)`.
pub fn sys_pread64(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    file.pread(ctx.mem(), a[1], a[2], a[3] as i64)
}

/// `pwrite64(2)`.
pub fn sys_pwrite64(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    let result = file.pwrite(ctx.mem(), a[1], a[2], a[3] as i64);
    pipe_check(ctx, result)
}

/// Reads the iovec array of a vectored call.
fn iovecs(ctx: &Ctx<'_>, addr: u64, count: u64) -> SysResult<Vec<Iovec>> {
    let count = count as u32 as i32;
    if count < 0 || count as u64 > UIO_MAXIOV {
        return Err(Errno::EINVAL);
    }
    ctx.mem().read_array(addr, count as usize)
}

/// `readv(2)`.
pub fn sys_readv(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    let iov = iovecs(ctx, a[1], a[2])?;
    file.readv(ctx.mem(), &iov, None)
}

/// `writev(2)`.
pub fn sys_writev(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    let iov = iovecs(ctx, a[1], a[2])?;
    let result = file.writev(ctx.mem(), &iov, None);
    pipe_check(ctx, result)
}

fn offset(value: u64) -> SysResult<i64> {
    let offset = value as i64;
    if offset < 0 {
        Err(Errno::EINVAL)
    } else {
        Ok(offset)
    }
}

/// `preadv(2)` (on 64-bit the offset is one register).
pub fn sys_preadv(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    let iov = iovecs(ctx, a[1], a[2])?;
    let pos = offset(a[3])?;
    file.readv(ctx.mem(), &iov, Some(pos))
}

/// `pwritev(2)`.
pub fn sys_pwritev(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    let iov = iovecs(ctx, a[1], a[2])?;
    let pos = offset(a[3])?;
    let result = file.writev(ctx.mem(), &iov, Some(pos));
    pipe_check(ctx, result)
}

/// The `RWF_*` flags of `preadv2`/`pwritev2`.
const RWF_HIPRI: u64 = 0x1;
const RWF_DSYNC: u64 = 0x2;
const RWF_SYNC: u64 = 0x4;
const RWF_NOWAIT: u64 = 0x8;
const RWF_APPEND: u64 = 0x10;
const RWF_KNOWN: u64 = RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND;

/// `preadv2(2)`: an offset of -1 means the current position.
pub fn sys_preadv2(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let flags = a[5] as u32 as u64;
    if flags & !RWF_KNOWN != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let file = ctx.file(a[0])?;
    let iov = iovecs(ctx, a[1], a[2])?;
    let pos = match a[3] as i64 {
        -1 => None,
        _ => Some(offset(a[3])?),
    };
    file.readv(ctx.mem(), &iov, pos)
}

/// `pwritev2(2)`.
pub fn sys_pwritev2(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let flags = a[5] as u32 as u64;
    if flags & !RWF_KNOWN != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let file = ctx.file(a[0])?;
    let iov = iovecs(ctx, a[1], a[2])?;
    let pos = match a[3] as i64 {
        -1 => None,
        // A positioned append writes at the end and leaves the file position alone.
        _ if flags & RWF_APPEND != 0 => Some(file.stat()?.size),
        _ => Some(offset(a[3])?),
    };
    let result = file.writev(ctx.mem(), &iov, pos);
    pipe_check(ctx, result)
}

/// `lseek(2)`.
pub fn sys_lseek(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    file.lseek(a[1] as i64, a[2] as u32).map(|pos| pos as u64)
}

/// Copies up to `count` bytes from `input` to `output` through a bounce buffer.
///
/// With an offset, the input is read there and its position is unchanged; without, from its
/// position, which advances by what was written. Returns the bytes written.
///
/// Waiting for input or for room in the output is interruptible, as Linux's splice-based
/// `sendfile` is: a signal ends the transfer early with what was written, or with
/// `ERESTARTSYS` when nothing was (see the module's Limitations for a pipe input).
fn transfer(
    input: &OpenFile,
    mut in_offset: Option<i64>,
    output: &OpenFile,
    mut out_offset: Option<i64>,
    count: u64,
) -> SysResult<(u64, Option<i64>, Option<i64>)> {
    let (Some(in_fd), Some(out_fd)) = (input.host_fd(), output.host_fd()) else {
        return Err(Errno::EINVAL);
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut done: u64 = 0;
    while done < count {
        let want = (count - done).min(buf.len() as u64) as usize;
        let got = match in_offset {
            Some(off) => interruptible(|| host::io::pread(in_fd, &mut buf[..want], off)),
            None => interruptible(|| host::io::read(in_fd, &mut buf[..want])),
        };
        let got = match got {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if done > 0 && stops_early(e) => break,
            Err(e) => return Err(e),
        };
        let mut written = 0;
        while written < got {
            let n = match out_offset {
                Some(off) => interruptible(|| {
                    host::io::pwrite(out_fd, &buf[written..got], off + written as i64)
                }),
                None => interruptible(|| host::io::write(out_fd, &buf[written..got])),
            };
            match n {
                Ok(n) => written += n,
                Err(e) if done + written as u64 > 0 && stops_early(e) => break,
                Err(e) => return Err(e),
            }
        }
        if let Some(off) = in_offset.as_mut() {
            *off += written as i64;
        } else if written < got {
            // Give back what was read but not written.
            let _ = host::io::lseek(in_fd, -((got - written) as i64), libc::SEEK_CUR);
        }
        if let Some(off) = out_offset.as_mut() {
            *off += written as i64;
        }
        done += written as u64;
        if written < got || got < want {
            break;
        }
    }
    Ok((done, in_offset, out_offset))
}

/// Whether a failure part-way through a transfer just ends it with what was done: a
/// non-blocking descriptor with nothing more to give or take, or a signal.
fn stops_early(e: Errno) -> bool {
    e == Errno::EAGAIN || restart::is_restart(e)
}

/// `sendfile(2)`.
pub fn sys_sendfile(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let output = ctx.file(a[0])?;
    let input = ctx.file(a[1])?;
    if input.status_flags() & lo::O_ACCMODE == lo::O_WRONLY {
        return Err(Errno::EBADF);
    }
    if output.status_flags() & lo::O_ACCMODE == lo::O_RDONLY {
        return Err(Errno::EBADF);
    }
    if output.status_flags() & lo::O_APPEND != 0 {
        return Err(Errno::EINVAL);
    }
    let in_offset = if a[2] != 0 {
        let off: i64 = ctx.mem().read_val(a[2])?;
        if off < 0 {
            return Err(Errno::EINVAL);
        }
        Some(off)
    } else {
        None
    };
    let (done, in_offset, _) = transfer(&input, in_offset, &output, None, a[3].min(MAX_RW_COUNT))
        .or_else(|e| pipe_check(ctx, Err(e)).map(|n| (n, None, None)))?;
    if let (Some(off), true) = (in_offset, a[2] != 0) {
        ctx.mem().write_val(a[2], &off)?;
    }
    Ok(done)
}

/// `copy_file_range(2)`.
pub fn sys_copy_file_range(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[5] as u32 != 0 {
        return Err(Errno::EINVAL);
    }
    let input = ctx.file(a[0])?;
    let output = ctx.file(a[2])?;
    if input.status_flags() & lo::O_ACCMODE == lo::O_WRONLY
        || output.status_flags() & lo::O_ACCMODE == lo::O_RDONLY
    {
        return Err(Errno::EBADF);
    }
    if output.status_flags() & lo::O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    let (in_st, out_st) = (input.stat()?, output.stat()?);
    if in_st.is_dir() || out_st.is_dir() {
        return Err(Errno::EISDIR);
    }
    let regular = crate::kernel::abi::mode::S_IFREG;
    if in_st.kind() != regular || out_st.kind() != regular {
        return Err(Errno::EINVAL);
    }
    let read_offset = |addr: u64| -> SysResult<Option<i64>> {
        if addr == 0 {
            return Ok(None);
        }
        let off: i64 = ctx.mem().read_val(addr)?;
        if off < 0 {
            Err(Errno::EINVAL)
        } else {
            Ok(Some(off))
        }
    };
    let in_offset = read_offset(a[1])?;
    let out_offset = read_offset(a[3])?;
    let count = a[4].min(MAX_RW_COUNT);
    // The same file with overlapping ranges is refused.
    if Arc::ptr_eq(&input, &output) || (in_st.dev == out_st.dev && in_st.ino == out_st.ino) {
        let in_pos = in_offset.map_or_else(|| input.lseek(0, 1), Ok)?;
        let out_pos = out_offset.map_or_else(|| output.lseek(0, 1), Ok)?;
        let overlap = in_pos < out_pos + count as i64 && out_pos < in_pos + count as i64;
        if overlap {
            return Err(Errno::EINVAL);
        }
    }
    let (done, in_offset, out_offset) = transfer(&input, in_offset, &output, out_offset, count)?;
    if let Some(off) = in_offset.filter(|_| a[1] != 0) {
        ctx.mem().write_val(a[1], &off)?;
    }
    if let Some(off) = out_offset.filter(|_| a[3] != 0) {
        ctx.mem().write_val(a[3], &off)?;
    }
    Ok(done)
}

/// `posix_fadvise(2)` (`fadvise64`): advice is validated and otherwise has no effect, which
/// the man page allows.
pub fn sys_fadvise64(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    let advice = a[3] as u32;
    if advice > 5 || (a[2] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let kind = file.stat()?.kind();
    if kind == crate::kernel::abi::mode::S_IFIFO || kind == crate::kernel::abi::mode::S_IFSOCK {
        return Err(Errno::ESPIPE);
    }
    Ok(0)
}
