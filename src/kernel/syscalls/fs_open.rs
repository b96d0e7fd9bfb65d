//! Opening and closing: `openat(2)`, `openat2(2)`, `close(2)`, `close_range(2)`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::Ctx;
use crate::host;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::open as lo;
use crate::kernel::abi::resolve;
use crate::kernel::abi::structs::OpenHow;
use crate::kernel::file::{FileKind, OpenFile, retry};
use crate::kernel::fs::walk::{self, Confinement, WalkOptions, Walked};
use crate::kernel::fs::{self, HostPath, Node};
use crate::kernel::process::lock;

/// The flags an open file description keeps (`F_GETFL`); 64-bit Linux adds `O_LARGEFILE`.
const KEPT: u64 = lo::O_ACCMODE
    | lo::O_APPEND
    | lo::O_NONBLOCK
    | lo::O_DSYNC
    | lo::O_SYNC
    | lo::O_ASYNC
    | lo::O_DIRECT
    | lo::O_NOATIME;

/// `openat(2)`.
pub fn sys_openat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let path = ctx.path(a[1])?;
    let flags = a[2] & 0xffff_ffff;
    let file = open(ctx, a[0], &path, flags, a[3] as u32, None)?;
    ctx.install(file, flags & lo::O_CLOEXEC != 0)
}

/// `openat2(2)`: `openat` with a versioned `struct open_how` and `RESOLVE_*` rules.
pub fn sys_openat2(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let size = a[3];
    if size < std::mem::size_of::<OpenHow>() as u64 {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let how: OpenHow = ctx.mem().read_val(a[2])?;
    if size > std::mem::size_of::<OpenHow>() as u64 {
        // A newer caller's extension fields must all be zero.
        let mut rest = vec![0u8; (size - std::mem::size_of::<OpenHow>() as u64) as usize];
        ctx.mem()
            .read(a[2] + std::mem::size_of::<OpenHow>() as u64, &mut rest)?;
        if rest.iter().any(|&b| b != 0) {
            return Err(Errno::E2BIG);
        }
    }
    if how.flags & !lo::VALID != 0 || how.resolve & !resolve::VALID != 0 {
        return Err(Errno::EINVAL);
    }
    let creating = how.flags & lo::O_CREAT != 0 || how.flags & lo::O_TMPFILE == lo::O_TMPFILE;
    if how.mode & !0o7777 != 0 || (!creating && how.mode != 0) {
        return Err(Errno::EINVAL);
    }
    let both = resolve::RESOLVE_BENEATH | resolve::RESOLVE_IN_ROOT;
    if how.resolve & both == both {
        return Err(Errno::EINVAL);
    }
    if how.flags & lo::O_PATH != 0
        && how.flags & !(lo::O_PATH | lo::O_DIRECTORY | lo::O_NOFOLLOW | lo::O_CLOEXEC) != 0
    {
        return Err(Errno::EINVAL);
    }
    if how.resolve & resolve::RESOLVE_CACHED != 0 {
        // Nothing is cached here; Linux answers EAGAIN when the lookup would need the disk.
        return Err(Errno::EAGAIN);
    }
    let path = ctx.path(a[1])?;
    let file = open(
        ctx,
        a[0],
        &path,
        how.flags,
        how.mode as u32,
        Some(how.resolve),
    )?;
    ctx.install(file, how.flags & lo::O_CLOEXEC != 0)
}

/// The common open path for both calls.
pub(super) fn open(
    ctx: &Ctx<'_>,
    dirfd: u64,
    path: &[u8],
    flags: u64,
    mode: u32,
    resolve_flags: Option<u64>,
) -> SysResult<Arc<OpenFile>> {
    if flags & lo::O_TMPFILE == lo::O_TMPFILE {
        if flags & lo::O_ACCMODE == lo::O_RDONLY {
            return Err(Errno::EINVAL);
        }
        // Linux answers EOPNOTSUPP on file systems without unnamed temporary files, and
        // callers fall back to a named file.
        return Err(Errno::EOPNOTSUPP);
    }
    let process = ctx.process();
    let node = match resolve_flags {
        Some(rules) if rules != 0 => resolve_confined(ctx, dirfd, path, flags, rules)?,
        _ => {
            // O_NOFOLLOW and O_CREAT|O_EXCL act on a link itself; anything else follows it.
            let excl = flags & (lo::O_CREAT | lo::O_EXCL) == lo::O_CREAT | lo::O_EXCL;
            let follow = flags & lo::O_NOFOLLOW == 0 && !excl;
            fs::lookup(process, dirfd, path, false, follow)?
        }
    };
    match node {
        Node::Host(host_path) => open_host(ctx, &host_path, path, flags, mode),
        Node::Device(device) => {
            if flags & lo::O_DIRECTORY != 0 {
                return Err(Errno::ENOTDIR);
            }
            if flags & (lo::O_CREAT | lo::O_EXCL) == lo::O_CREAT | lo::O_EXCL {
                return Err(Errno::EEXIST);
            }
            Ok(OpenFile::device(device, (flags & KEPT) | lo::O_LARGEFILE))
        }
        Node::GuestFd(fd) => reopen(ctx, fd, flags, mode),
        Node::Exe => {
            let exe = lock(&process.exec).host_path.clone();
            let c = CString::new(exe.as_os_str().as_bytes()).map_err(|_| Errno::ENOENT)?;
            let host = HostPath::absolute(c);
            open_host(ctx, &host, path, flags, mode)
        }
        Node::Descriptor(file) => Ok(file),
    }
}

/// Opens a host path with Linux `flags`.
fn open_host(
    ctx: &Ctx<'_>,
    host_path: &HostPath,
    guest_path: &[u8],
    flags: u64,
    mode: u32,
) -> SysResult<Arc<OpenFile>> {
    if flags & lo::O_PATH != 0 {
        return open_path_only(ctx, host_path, guest_path, flags);
    }
    let host_flags = host::fs::open_flags_to_host(flags);
    let fd = retry(|| {
        host::fs::openat(
            host_path.dirfd(),
            &host_path.path,
            host_flags,
            mode & 0o7777,
        )
    })?;
    let _ = ctx;
    Ok(OpenFile::host(
        fd,
        (flags & KEPT) | lo::O_LARGEFILE,
        guest_path.to_vec(),
    ))
}

/// `O_PATH`: a descriptor that only names a location. macOS has no `O_PATH`, so on every
/// host it is the absolute host path, checked to exist now.
fn open_path_only(
    ctx: &Ctx<'_>,
    host_path: &HostPath,
    guest_path: &[u8],
    flags: u64,
) -> SysResult<Arc<OpenFile>> {
    let follow = flags & lo::O_NOFOLLOW == 0;
    let st = retry(|| host::fs::fstatat(host_path.dirfd(), &host_path.path, follow))?;
    if flags & lo::O_DIRECTORY != 0 && !st.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let absolute = absolute_host_path(ctx, host_path)?;
    let kept = lo::O_PATH | (flags & (lo::O_DIRECTORY | lo::O_NOFOLLOW));
    Ok(OpenFile::path_only(absolute, kept, guest_path.to_vec()))
}

/// The absolute host path of `host_path`.
pub(super) fn absolute_host_path(ctx: &Ctx<'_>, host_path: &HostPath) -> SysResult<CString> {
    let rel = host_path.bytes();
    if rel.starts_with(b"/") {
        return Ok(host_path.path.clone());
    }
    let base = base_directory(ctx, host_path)?;
    let mut joined = base.as_os_str().as_bytes().to_vec();
    if rel != b"." {
        if !joined.ends_with(b"/") {
            joined.push(b'/');
        }
        joined.extend_from_slice(rel);
    }
    CString::new(joined).map_err(|_| Errno::EINVAL)
}

/// The host directory a relative host path starts from.
fn base_directory(ctx: &Ctx<'_>, host_path: &HostPath) -> SysResult<PathBuf> {
    let _ = ctx;
    match host_path.dir_file() {
        Some(file) => match file.kind() {
            FileKind::Host { fd, .. } => {
                use std::os::fd::AsFd;
                host::fd_path(fd.as_fd()).ok_or(Errno::ENOENT)
            }
            FileKind::Path { host } => {
                Ok(PathBuf::from(std::ffi::OsStr::from_bytes(host.to_bytes())))
            }
            FileKind::Device(_) | FileKind::Event(_) => Err(Errno::ENOTDIR),
        },
        None => std::env::current_dir().map_err(Errno::from),
    }
}

/// Resolves under `openat2`'s rules with the component walker.
fn resolve_confined(
    ctx: &Ctx<'_>,
    dirfd: u64,
    path: &[u8],
    flags: u64,
    rules: u64,
) -> SysResult<Node> {
    let anchor_node = fs::lookup(ctx.process(), dirfd, b".", false, true)?;
    let Node::Host(anchor) = anchor_node else {
        return Err(Errno::ENOTDIR);
    };
    let anchor_path = absolute_host_path(ctx, &anchor)?;
    let confine = if rules & resolve::RESOLVE_BENEATH != 0 {
        Confinement::Beneath
    } else if rules & resolve::RESOLVE_IN_ROOT != 0 {
        Confinement::InRoot
    } else {
        Confinement::None
    };
    let opts = WalkOptions {
        confine,
        no_symlinks: rules & resolve::RESOLVE_NO_SYMLINKS != 0,
        no_xdev: rules & resolve::RESOLVE_NO_XDEV != 0,
        follow_last: flags & lo::O_NOFOLLOW == 0,
    };
    let process = ctx.process();
    let anchor = process.root.guest_components(anchor_path.to_bytes());
    match walk::walk(&process.root, &anchor, path, opts)? {
        Walked::Host(host) => {
            let c = CString::new(host).map_err(|_| Errno::EINVAL)?;
            Ok(Node::Host(HostPath::absolute(c)))
        }
        // Magic links live only under the runtime's /proc and /dev.
        Walked::Runtime(guest) => match fs::runtime_node(process, &guest)? {
            Node::GuestFd(_) | Node::Exe
                if rules & (resolve::RESOLVE_NO_MAGICLINKS | resolve::RESOLVE_NO_SYMLINKS) != 0 =>
            {
                Err(Errno::ELOOP)
            }
            node => Ok(node),
        },
    }
}

/// Opening `/dev/fd/N` or `/proc/self/fd/N`: a new description of the same file where the host
/// can reopen it by path (regular files, directories), the same description otherwise (pipes,
/// terminals, sockets), as Linux does for those.
fn reopen(ctx: &Ctx<'_>, fd: i32, flags: u64, mode: u32) -> SysResult<Arc<OpenFile>> {
    let file = lock(&ctx.process().fds)
        .get(fd)
        .map_err(|_| Errno::ENOENT)?;
    match file.kind() {
        FileKind::Device(device) => Ok(OpenFile::device(*device, (flags & KEPT) | lo::O_LARGEFILE)),
        // Anonymous inodes cannot be opened again by name.
        FileKind::Event(_) => Err(Errno::ENXIO),
        FileKind::Path { host } => {
            let host_path = HostPath::absolute(host.clone());
            open_host(ctx, &host_path, &file.path, flags, mode)
        }
        FileKind::Host { fd, .. } => {
            use std::os::fd::AsFd;
            let st = file.stat()?;
            let reopenable = matches!(
                st.kind(),
                crate::kernel::abi::mode::S_IFREG | crate::kernel::abi::mode::S_IFDIR
            );
            match host::fd_path(fd.as_fd()).filter(|_| reopenable) {
                Some(path) => {
                    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::ENOENT)?;
                    open_host(ctx, &HostPath::absolute(c), &file.path, flags, mode)
                }
                None => Ok(file),
            }
        }
    }
}

/// `close(2)`.
pub fn sys_close(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let entry = lock(&ctx.process().fds).remove(a[0] as u32 as i32)?;
    drop(entry);
    Ok(0)
}

/// `close_range(2)`.
pub fn sys_close_range(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    const CLOSE_RANGE_UNSHARE: u64 = 1 << 1;
    const CLOSE_RANGE_CLOEXEC: u64 = 1 << 2;
    let (first, last, flags) = (a[0] as u32, a[1] as u32, a[2] as u32 as u64);
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    let mut fds = lock(&ctx.process().fds);
    if flags & CLOSE_RANGE_CLOEXEC != 0 {
        fds.cloexec_range(first as usize, last as usize);
        return Ok(0);
    }
    let removed = fds.remove_range(first as usize, last as usize);
    drop(fds);
    drop(removed);
    Ok(0)
}
