//! File attributes and data integrity: `fchmod(2)`/`fchmodat(2)`, `fchown(2)`/`fchownat(2)`,
//! `utimensat(2)`, `truncate(2)`/`ftruncate(2)`, `fallocate(2)`, `fsync(2)`, `fdatasync(2)`,
//! `sync(2)`, `syncfs(2)`.

use std::os::fd::AsRawFd;

use super::Ctx;
use crate::host;
use crate::host::fs::TimeSpec;
use crate::kernel::abi::at;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::open as lo;
use crate::kernel::abi::structs::Timespec;
use crate::kernel::file::{FileKind, OpenFile, retry};
use crate::kernel::fs::{self, Node};

/// `UTIME_NOW` and `UTIME_OMIT` as Linux encodes them in `tv_nsec`.
const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

/// Runs `op` on the host file a descriptor refers to (by descriptor, or by path for `O_PATH`).
fn with_host_file<T>(
    file: &OpenFile,
    by_fd: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> std::io::Result<T>,
    by_path: impl FnOnce(&std::ffi::CStr) -> std::io::Result<T>,
) -> SysResult<T> {
    match file.kind() {
        FileKind::Host { fd, .. } => {
            use std::os::fd::AsFd;
            by_fd(fd.as_fd()).map_err(Errno::from)
        }
        FileKind::Path { .. } => Err(Errno::EBADF).or_else(|e| {
            let FileKind::Path { host } = file.kind() else {
                return Err(e);
            };
            by_path(host).map_err(Errno::from)
        }),
        FileKind::Device(_) | FileKind::Event(_) => Err(Errno::EPERM),
    }
}

/// `fchmod(2)`.
pub fn sys_fchmod(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    if matches!(file.kind(), FileKind::Path { .. }) {
        return Err(Errno::EBADF);
    }
    let mode = a[1] as u32 & 0o7777;
    with_host_file(
        &file,
        |fd| host::fs::fchmod(fd, mode),
        |_| unreachable!("O_PATH refused above"),
    )?;
    Ok(0)
}

/// `fchmodat(2)` (the syscall has no flags argument).
pub fn sys_fchmodat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let path = ctx.path(a[1])?;
    let mode = a[2] as u32 & 0o7777;
    let node = fs::lookup(ctx.process(), a[0], &path, false, true)?;
    match fs::follow_fd_link(ctx.process(), node, true)? {
        Node::Host(p) => retry(|| host::fs::fchmodat(p.dirfd(), &p.path, mode))?,
        Node::Descriptor(file) => chmod_file(&file, mode)?,
        _ => return Err(Errno::EPERM),
    }
    Ok(0)
}

/// `fchmodat2(2)`: `fchmodat` with flags. Symbolic links have no mode of their own on Linux,
/// so `AT_SYMLINK_NOFOLLOW` on one is `EOPNOTSUPP`.
pub fn sys_fchmodat2(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let flags = a[3] as u32 as u64;
    if flags & !(at::AT_SYMLINK_NOFOLLOW | at::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let mode = a[2] as u32 & 0o7777;
    let path = ctx.path(a[1])?;
    let follow = flags & at::AT_SYMLINK_NOFOLLOW == 0;
    let node = fs::lookup(
        ctx.process(),
        a[0],
        &path,
        flags & at::AT_EMPTY_PATH != 0,
        follow,
    )?;
    match fs::follow_fd_link(ctx.process(), node, follow)? {
        Node::Host(p) => {
            if flags & at::AT_SYMLINK_NOFOLLOW != 0 {
                let st = retry(|| host::fs::fstatat(p.dirfd(), &p.path, false))?;
                if st.kind() == crate::kernel::abi::mode::S_IFLNK {
                    return Err(Errno::EOPNOTSUPP);
                }
            }
            retry(|| host::fs::fchmodat(p.dirfd(), &p.path, mode))?;
        }
        Node::Descriptor(file) => chmod_file(&file, mode)?,
        _ => return Err(Errno::EPERM),
    }
    Ok(0)
}

/// Sets the mode of the file a descriptor refers to, `O_PATH` ones included.
fn chmod_file(file: &OpenFile, mode: u32) -> SysResult<()> {
    with_host_file(
        file,
        |fd| host::fs::fchmod(fd, mode),
        |p| host::fs::fchmodat(host::fs::CWD, p, mode),
    )
}

/// `fchown(2)`.
pub fn sys_fchown(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    if matches!(file.kind(), FileKind::Path { .. }) {
        return Err(Errno::EBADF);
    }
    let (uid, gid) = (a[1] as u32, a[2] as u32);
    with_host_file(
        &file,
        |fd| host::fs::fchown(fd, uid, gid),
        |_| unreachable!("O_PATH refused above"),
    )?;
    Ok(0)
}

/// `fchownat(2)`.
pub fn sys_fchownat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let flags = a[4] as u32 as u64;
    if flags & !(at::AT_SYMLINK_NOFOLLOW | at::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let (uid, gid) = (a[2] as u32, a[3] as u32);
    let path = ctx.path(a[1])?;
    let follow = flags & at::AT_SYMLINK_NOFOLLOW == 0;
    let node = fs::lookup(
        ctx.process(),
        a[0],
        &path,
        flags & at::AT_EMPTY_PATH != 0,
        follow,
    )?;
    match fs::follow_fd_link(ctx.process(), node, follow)? {
        Node::Host(p) => {
            retry(|| host::fs::fchownat(p.dirfd(), &p.path, uid, gid, follow))?;
        }
        Node::Descriptor(file) => {
            with_host_file(
                &file,
                |fd| host::fs::fchown(fd, uid, gid),
                |p| host::fs::fchownat(host::fs::CWD, p, uid, gid, false),
            )?;
        }
        _ => return Err(Errno::EPERM),
    }
    Ok(0)
}

/// Decodes one `struct timespec` of `utimensat`.
fn timespec(ts: Timespec) -> SysResult<TimeSpec> {
    match ts.tv_nsec {
        UTIME_NOW => Ok(TimeSpec::Now),
        UTIME_OMIT => Ok(TimeSpec::Omit),
        0..=999_999_999 => Ok(TimeSpec::At(ts.tv_sec, ts.tv_nsec)),
        _ => Err(Errno::EINVAL),
    }
}

/// `utimensat(2)`; a null path sets the times of `dirfd` itself.
pub fn sys_utimensat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let flags = a[3] as u32 as u64;
    if flags & !(at::AT_SYMLINK_NOFOLLOW | at::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let times = if a[2] == 0 {
        [TimeSpec::Now, TimeSpec::Now]
    } else {
        let raw: [Timespec; 2] = ctx.mem().read_val(a[2])?;
        [timespec(raw[0])?, timespec(raw[1])?]
    };
    if times == [TimeSpec::Omit, TimeSpec::Omit] {
        return Ok(0);
    }
    let follow = flags & at::AT_SYMLINK_NOFOLLOW == 0;
    let node = if a[1] == 0 {
        if a[0] as u32 as i32 == at::AT_FDCWD {
            return Err(Errno::EFAULT);
        }
        if flags != 0 {
            return Err(Errno::EINVAL);
        }
        Node::Descriptor(ctx.file(a[0])?)
    } else {
        let path = ctx.path(a[1])?;
        fs::lookup(
            ctx.process(),
            a[0],
            &path,
            flags & at::AT_EMPTY_PATH != 0,
            follow,
        )?
    };
    match fs::follow_fd_link(ctx.process(), node, follow)? {
        Node::Host(p) => retry(|| host::fs::utimensat(p.dirfd(), Some(&p.path), times, follow))?,
        Node::Descriptor(file) => {
            with_host_file(
                &file,
                |fd| host::fs::utimensat(fd.as_raw_fd(), None, times, true),
                |p| host::fs::utimensat(host::fs::CWD, Some(p), times, true),
            )?;
        }
        _ => return Err(Errno::EPERM),
    }
    Ok(0)
}

/// `truncate(2)`.
pub fn sys_truncate(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let len = a[1] as i64;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let path = ctx.path(a[0])?;
    let node = fs::lookup(
        ctx.process(),
        at::AT_FDCWD as u32 as u64,
        &path,
        false,
        true,
    )?;
    match fs::follow_fd_link(ctx.process(), node, true)? {
        Node::Host(p) => {
            let abs = super::fs_open::absolute_host_path(ctx, &p)?;
            retry(|| host::fs::truncate(&abs, len))?;
        }
        Node::Device(_) => {}
        Node::Descriptor(file) => truncate_file(&file, len)?,
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

/// `truncate(2)` of the file a descriptor refers to (through `/proc/self/fd/N`): like a path, it
/// needs write permission on the file, not a writable descriptor.
fn truncate_file(file: &OpenFile, len: i64) -> SysResult<()> {
    match file.kind() {
        FileKind::Host { fd, .. } => {
            use std::os::fd::AsFd;
            if file.status_flags() & lo::O_ACCMODE != lo::O_RDONLY {
                return retry(|| host::io::ftruncate(fd.as_fd(), len));
            }
            let path = host::fd_path(fd.as_fd()).ok_or(Errno::ENOENT)?;
            let path = std::ffi::CString::new(path.into_os_string().into_encoded_bytes())
                .map_err(|_| Errno::ENOENT)?;
            retry(|| host::fs::truncate(&path, len))
        }
        FileKind::Path { host } => retry(|| host::fs::truncate(host, len)),
        FileKind::Device(_) => Ok(()),
        FileKind::Event(_) => Err(Errno::EINVAL),
    }
}

/// `ftruncate(2)`.
pub fn sys_ftruncate(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let len = a[1] as i64;
    let file = ctx.file(a[0])?;
    if matches!(file.kind(), FileKind::Path { .. }) {
        return Err(Errno::EBADF);
    }
    if len < 0 || file.status_flags() & lo::O_ACCMODE == lo::O_RDONLY {
        return Err(Errno::EINVAL);
    }
    match file.host_fd() {
        Some(fd) => retry(|| host::io::ftruncate(fd, len))?,
        None => return Err(Errno::EINVAL),
    }
    Ok(0)
}

/// `fallocate(2)`.
pub fn sys_fallocate(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (mode, offset, len) = (a[1] as u32 as i32, a[2] as i64, a[3] as i64);
    if offset < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    let file = ctx.file(a[0])?;
    if file.status_flags() & lo::O_ACCMODE == lo::O_RDONLY {
        return Err(Errno::EBADF);
    }
    let fd = file.host_fd().ok_or(Errno::ENODEV)?;
    let kind = file.stat()?.kind();
    if kind == crate::kernel::abi::mode::S_IFIFO {
        return Err(Errno::ESPIPE);
    }
    if kind == crate::kernel::abi::mode::S_IFDIR {
        return Err(Errno::EISDIR);
    }
    retry(|| host::fallocate(fd, mode, offset, len))?;
    Ok(0)
}

fn sync_file(ctx: &Ctx<'_>, fd: u64, data_only: bool) -> SysResult {
    let file = ctx.file(fd)?;
    match file.kind() {
        FileKind::Host { fd, .. } => {
            use std::os::fd::AsFd;
            match retry(|| host::io::fsync(fd.as_fd(), data_only)) {
                // Pipes and terminals cannot be synced: Linux says EINVAL too.
                Err(Errno::ENOTSUP) | Err(Errno::EINVAL) => Err(Errno::EINVAL),
                other => other.map(|()| 0),
            }
        }
        FileKind::Path { .. } => Err(Errno::EBADF),
        FileKind::Device(_) | FileKind::Event(_) => Err(Errno::EINVAL),
    }
}

/// `fsync(2)`.
pub fn sys_fsync(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    sync_file(ctx, a[0], false)
}

/// `fdatasync(2)`.
pub fn sys_fdatasync(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    sync_file(ctx, a[0], true)
}

/// `sync(2)`.
pub fn sys_sync(_ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    nix::unistd::sync();
    Ok(0)
}

/// `syncfs(2)`: flushes everything, which includes the descriptor's file system.
pub fn sys_syncfs(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    if matches!(file.kind(), FileKind::Path { .. }) {
        return Err(Errno::EBADF);
    }
    nix::unistd::sync();
    Ok(0)
}
