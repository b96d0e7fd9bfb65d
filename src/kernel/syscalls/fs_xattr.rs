//! Extended attributes: `setxattr(2)`, `getxattr(2)`, `listxattr(2)`, `removexattr(2)` and
//! their `l` (no-follow) and `f` (descriptor) forms.
//!
//! Names and sizes are validated as Linux validates them before the host sees anything: a
//! name must be 1..=255 bytes and carry a known namespace prefix, and a value is at most
//! 64 KiB.

use super::Ctx;
use crate::host;
use crate::host::xattr::Target;
use crate::kernel::abi::at::AT_FDCWD;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::file::{FileKind, OpenFile, retry};
use crate::kernel::fs::{self, Node};

/// Linux's `XATTR_NAME_MAX` and `XATTR_SIZE_MAX`.
const NAME_MAX: usize = 255;
const SIZE_MAX: u64 = 65536;
/// `setxattr` flags.
const XATTR_CREATE: u64 = 1;
const XATTR_REPLACE: u64 = 2;

/// Reads and checks an attribute name.
fn name(ctx: &Ctx<'_>, addr: u64) -> SysResult<Vec<u8>> {
    let name = ctx.mem().read_cstr(addr, NAME_MAX)?.ok_or(Errno::ERANGE)?;
    if name.is_empty() {
        return Err(Errno::ERANGE);
    }
    let known = [&b"user."[..], b"trusted.", b"security.", b"system."];
    if !known.iter().any(|prefix| name.starts_with(prefix)) {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(name)
}

/// The host object a path argument names.
fn path_target(ctx: &Ctx<'_>, addr: u64, follow: bool) -> SysResult<(Option<OpenFileRef>, Target)> {
    let path = ctx.path(addr)?;
    let node = fs::lookup(ctx.process(), AT_FDCWD as u32 as u64, &path, false, follow)?;
    match fs::follow_fd_link(ctx.process(), node, follow)? {
        Node::Host(p) => {
            let abs = super::fs_open::absolute_host_path(ctx, &p)?;
            Ok((None, Target::Path { path: abs, follow }))
        }
        // An O_PATH descriptor, reached through /proc/self/fd/N, names its object exactly.
        Node::Descriptor(file) => match file.kind() {
            FileKind::Path { host } => Ok((
                None,
                Target::Path {
                    path: host.clone(),
                    follow: false,
                },
            )),
            _ => fd_target(file),
        },
        _ => Err(Errno::EOPNOTSUPP),
    }
}

type OpenFileRef = std::sync::Arc<OpenFile>;

/// The host object a descriptor refers to; the file is returned to keep it open.
fn fd_target(file: OpenFileRef) -> SysResult<(Option<OpenFileRef>, Target)> {
    match file.kind() {
        FileKind::Host { fd, .. } => {
            use std::os::fd::AsRawFd;
            let raw = fd.as_raw_fd();
            Ok((Some(file.clone()), Target::Fd(raw)))
        }
        FileKind::Path { .. } => Err(Errno::EBADF),
        FileKind::Device(_) | FileKind::Event(_) => Err(Errno::EOPNOTSUPP),
    }
}

fn set(ctx: &Ctx<'_>, target: Target, a: &[u64; 6]) -> SysResult {
    let flags = a[4] as u32 as u64;
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = name(ctx, a[1])?;
    if a[3] > SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let mut value = vec![0u8; a[3] as usize];
    ctx.mem().read(a[2], &mut value)?;
    retry(|| {
        host::xattr::set(
            &target,
            &name,
            &value,
            flags & XATTR_CREATE != 0,
            flags & XATTR_REPLACE != 0,
        )
    })?;
    Ok(0)
}

fn get(ctx: &Ctx<'_>, target: Target, a: &[u64; 6]) -> SysResult {
    let name = name(ctx, a[1])?;
    let value = retry(|| host::xattr::get(&target, &name))?;
    copy_out(ctx, a[2], a[3], &value)
}

fn list(ctx: &Ctx<'_>, target: Target, a: &[u64; 6]) -> SysResult {
    let names = retry(|| host::xattr::list(&target))?;
    copy_out(ctx, a[1], a[2], &names)
}

fn remove(ctx: &Ctx<'_>, target: Target, a: &[u64; 6]) -> SysResult {
    let name = name(ctx, a[1])?;
    retry(|| host::xattr::remove(&target, &name))?;
    Ok(0)
}

/// Size 0 asks for the length; a too small buffer is `ERANGE`.
fn copy_out(ctx: &Ctx<'_>, addr: u64, size: u64, data: &[u8]) -> SysResult {
    if size == 0 {
        return Ok(data.len() as u64);
    }
    if (size as usize) < data.len() {
        return Err(Errno::ERANGE);
    }
    ctx.mem().write(addr, data)?;
    Ok(data.len() as u64)
}

/// `setxattr(2)`.
pub fn sys_setxattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (_keep, target) = path_target(ctx, a[0], true)?;
    set(ctx, target, a)
}

/// `lsetxattr(2)`.
pub fn sys_lsetxattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (_keep, target) = path_target(ctx, a[0], false)?;
    set(ctx, target, a)
}

/// `fsetxattr(2)`.
pub fn sys_fsetxattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (_keep, target) = fd_target(ctx.file(a[0])?)?;
    set(ctx, target, a)
}

/// `getxattr(2)`.
pub fn sys_getxattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (_keep, target) = path_target(ctx, a[0], true)?;
    get(ctx, target, a)
}

/// `lgetxattr(2)`.
pub fn sys_lgetxattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (_keep, target) = path_target(ctx, a[0], false)?;
    get(ctx, target, a)
}

/// `fgetxattr(2)`.
pub fn sys_fgetxattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (_keep, target) = fd_target(ctx.file(a[0])?)?;
    get(ctx, target, a)
}

/// `listxattr(2)`.
pub fn sys_listxattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (_keep, target) = path_target(ctx, a[0], true)?;
    list(ctx, target, a)
}

/// `llistxattr(2)`.
pub fn sys_llistxattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (_keep, target) = path_target(ctx, a[0], false)?;
    list(ctx, target, a)
}

/// `flistxattr(2)`.
pub fn sys_flistxattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (_keep, target) = fd_target(ctx.file(a[0])?)?;
    list(ctx, target, a)
}

/// `removexattr(2)`.
pub fn sys_removexattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (_keep, target) = path_target(ctx, a[0], true)?;
    remove(ctx, target, a)
}

/// `lremovexattr(2)`.
pub fn sys_lremovexattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (_keep, target) = path_target(ctx, a[0], false)?;
    remove(ctx, target, a)
}

/// `fremovexattr(2)`.
pub fn sys_fremovexattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (_keep, target) = fd_target(ctx.file(a[0])?)?;
    remove(ctx, target, a)
}
