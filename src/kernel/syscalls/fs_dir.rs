//! The name space: `getcwd(2)`, `chdir(2)`, `fchdir(2)`, `chroot(2)`, `umask(2)`,
//! `mkdirat(2)`, `mknodat(2)`, `unlinkat(2)`, `symlinkat(2)`, `linkat(2)`, `renameat(2)` and
//! `renameat2(2)`.

use std::os::unix::ffi::OsStrExt;

use tracing::info;

use super::Ctx;
use crate::host;
use crate::host::fs::NodeKind;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::{at, mode};
use crate::kernel::file::{FileKind, OpenFile, retry};
use crate::kernel::fs::{self, HostPath, Node};
use crate::kernel::process::lock;

/// Resolves a path that a call will create or remove: the runtime's own nodes exist and are
/// not removable, which Linux reports as `errno_special`.
fn target(ctx: &Ctx<'_>, dirfd: u64, path: &[u8], errno_special: Errno) -> SysResult<HostPath> {
    match fs::lookup(ctx.process(), dirfd, path, false, false)? {
        Node::Host(p) => Ok(p),
        _ => Err(errno_special),
    }
}

/// `getcwd(2)`: returns the length including the NUL.
pub fn sys_getcwd(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let cwd = std::env::current_dir().map_err(Errno::from)?;
    let mut bytes = ctx.process().root.guest_path(cwd.as_os_str().as_bytes());
    bytes.push(0);
    if (a[1] as usize) < bytes.len() {
        return Err(Errno::ERANGE);
    }
    ctx.mem().write(a[0], &bytes)?;
    Ok(bytes.len() as u64)
}

/// `chdir(2)`.
pub fn sys_chdir(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
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
            retry(|| nix::unistd::chdir(abs.as_c_str()).map_err(std::io::Error::from))?;
            Ok(0)
        }
        Node::Descriptor(file) => chdir_to(&file),
        _ => Err(Errno::ENOTDIR),
    }
}

/// `fchdir(2)`.
pub fn sys_fchdir(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    chdir_to(&file)
}

/// Makes the directory an open descriptor (`O_PATH` ones included) refers to the working
/// directory.
fn chdir_to(file: &OpenFile) -> SysResult {
    match file.kind() {
        FileKind::Host { fd, .. } => {
            if !file.stat()?.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            retry(|| nix::unistd::fchdir(fd).map_err(std::io::Error::from))?;
        }
        FileKind::Path { host } => {
            retry(|| nix::unistd::chdir(host.as_c_str()).map_err(std::io::Error::from))?;
        }
        FileKind::Device(_) | FileKind::Event(_) => return Err(Errno::ENOTDIR),
    }
    Ok(0)
}

/// `chroot(2)`: the path is resolved first (`ENOENT`, `ENOTDIR`), then unprivileged callers
/// get `EPERM` as on Linux. Changing the guest root is not supported, which a privileged caller
/// learns as `ENOSYS`.
pub fn sys_chroot(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let path = ctx.path(a[0])?;
    match fs::lookup(
        ctx.process(),
        at::AT_FDCWD as u32 as u64,
        &path,
        false,
        true,
    )? {
        Node::Host(p) => {
            let st = retry(|| host::fs::fstatat(p.dirfd(), &p.path, true))?;
            if !st.is_dir() {
                return Err(Errno::ENOTDIR);
            }
        }
        _ => return Err(Errno::ENOTDIR),
    }
    if lock(&ctx.process().creds).euid != 0 {
        return Err(Errno::EPERM);
    }
    info!("chroot is not supported; returning ENOSYS");
    Err(Errno::ENOSYS)
}

/// `umask(2)`: returns the previous mask. The host process mask follows, since the host kernel
/// applies it to files the guest creates.
pub fn sys_umask(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let new = a[0] as u32 & 0o777;
    let old = std::mem::replace(&mut lock(&ctx.process().fs).umask, new);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(new as _));
    Ok(u64::from(old))
}

/// `mkdirat(2)`.
pub fn sys_mkdirat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let path = ctx.path(a[1])?;
    let p = target(ctx, a[0], &path, Errno::EEXIST)?;
    retry(|| host::fs::mkdirat(p.dirfd(), &p.path, a[2] as u32 & 0o7777))?;
    Ok(0)
}

/// `mknodat(2)`: regular files and FIFOs; device nodes need privilege.
pub fn sys_mknodat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let path = ctx.path(a[1])?;
    let m = a[2] as u32;
    let perm = m & 0o7777;
    let p = target(ctx, a[0], &path, Errno::EEXIST)?;
    match m & mode::S_IFMT {
        0 | mode::S_IFREG => {
            let flags = libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC;
            drop(retry(|| host::fs::openat(p.dirfd(), &p.path, flags, perm))?);
        }
        mode::S_IFIFO => retry(|| host::fs::mkfifoat(p.dirfd(), &p.path, perm))?,
        mode::S_IFCHR | mode::S_IFBLK => {
            if lock(&ctx.process().creds).euid != 0 {
                return Err(Errno::EPERM);
            }
            let (major, minor) = host::fs::linux_major_minor(a[3]);
            let kind = if m & mode::S_IFMT == mode::S_IFCHR {
                NodeKind::Char
            } else {
                NodeKind::Block
            };
            retry(|| host::fs::mknodat(p.dirfd(), &p.path, kind, perm, major, minor))?;
        }
        mode::S_IFSOCK => {
            retry(|| host::fs::mknodat(p.dirfd(), &p.path, NodeKind::Socket, perm, 0, 0))?;
        }
        mode::S_IFDIR => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

/// `unlinkat(2)`.
pub fn sys_unlinkat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let flags = a[2] as u32 as u64;
    if flags & !at::AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let path = ctx.path(a[1])?;
    let p = target(ctx, a[0], &path, Errno::EACCES)?;
    let rmdir = flags & at::AT_REMOVEDIR != 0;
    if rmdir
        && matches!(
            path.rsplit(|&b| b == b'/').find(|c| !c.is_empty()),
            Some(b".")
        )
    {
        return Err(Errno::EINVAL);
    }
    match retry(|| host::fs::unlinkat(p.dirfd(), &p.path, rmdir)) {
        // macOS answers EPERM where Linux says the target is a directory.
        Err(Errno::EPERM) if !rmdir => {
            let st = retry(|| host::fs::fstatat(p.dirfd(), &p.path, false))?;
            Err(if st.is_dir() {
                Errno::EISDIR
            } else {
                Errno::EPERM
            })
        }
        other => other.map(|()| 0),
    }
}

/// `symlinkat(2)`.
pub fn sys_symlinkat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let link_target = ctx.path(a[0])?;
    if link_target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let path = ctx.path(a[2])?;
    let p = target(ctx, a[1], &path, Errno::EEXIST)?;
    let target_c = std::ffi::CString::new(link_target).map_err(|_| Errno::EINVAL)?;
    retry(|| host::fs::symlinkat(&target_c, p.dirfd(), &p.path))?;
    Ok(0)
}

/// `linkat(2)`.
pub fn sys_linkat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let flags = a[4] as u32 as u64;
    if flags & !(at::AT_SYMLINK_FOLLOW | at::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old_path = ctx.path(a[1])?;
    if old_path.is_empty() && flags & at::AT_EMPTY_PATH != 0 {
        // Linking a descriptor by itself needs CAP_DAC_READ_SEARCH.
        return Err(if lock(&ctx.process().creds).euid == 0 {
            Errno::EOPNOTSUPP
        } else {
            Errno::ENOENT
        });
    }
    let old = target(ctx, a[0], &old_path, Errno::EPERM)?;
    let new_path = ctx.path(a[3])?;
    let new = target(ctx, a[2], &new_path, Errno::EEXIST)?;
    let follow = flags & at::AT_SYMLINK_FOLLOW != 0;
    retry(|| host::fs::linkat(old.dirfd(), &old.path, new.dirfd(), &new.path, follow))?;
    Ok(0)
}

/// `renameat(2)`.
pub fn sys_renameat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    rename(ctx, a[0], a[1], a[2], a[3], 0)
}

/// `renameat2(2)`.
pub fn sys_renameat2(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    rename(ctx, a[0], a[1], a[2], a[3], a[4] as u32 as u64)
}

fn rename(
    ctx: &Ctx<'_>,
    old_dir: u64,
    old_addr: u64,
    new_dir: u64,
    new_addr: u64,
    flags: u64,
) -> SysResult {
    let known = at::RENAME_NOREPLACE | at::RENAME_EXCHANGE | at::RENAME_WHITEOUT;
    if flags & !known != 0 {
        return Err(Errno::EINVAL);
    }
    let noreplace = flags & at::RENAME_NOREPLACE != 0;
    let exchange = flags & at::RENAME_EXCHANGE != 0;
    if exchange && (noreplace || flags & at::RENAME_WHITEOUT != 0) {
        return Err(Errno::EINVAL);
    }
    let old_path = ctx.path(old_addr)?;
    let new_path = ctx.path(new_addr)?;
    if flags & at::RENAME_WHITEOUT != 0 {
        // Whiteouts are for overlay file systems and need CAP_MKNOD.
        return Err(if lock(&ctx.process().creds).euid == 0 {
            Errno::EINVAL
        } else {
            Errno::EPERM
        });
    }
    let old = target(ctx, old_dir, &old_path, Errno::EBUSY)?;
    let new = target(ctx, new_dir, &new_path, Errno::EBUSY)?;
    if flags == 0 {
        retry(|| host::fs::renameat(old.dirfd(), &old.path, new.dirfd(), &new.path))?;
    } else {
        retry(|| {
            host::renameat2(
                old.dirfd(),
                &old.path,
                new.dirfd(),
                &new.path,
                noreplace,
                exchange,
            )
        })?;
    }
    Ok(0)
}
