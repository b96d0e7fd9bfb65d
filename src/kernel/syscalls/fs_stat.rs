//! File metadata: `fstat(2)`, `newfstatat(2)`, `statx(2)`, `statfs(2)`/`fstatfs(2)`,
//! `faccessat(2)`/`faccessat2(2)`, `readlinkat(2)` and `getdents64(2)`.

use std::os::unix::ffi::OsStrExt;

use super::Ctx;
use crate::host;
use crate::host::fs::{FileStat, linux_major_minor};
use crate::kernel::abi::at;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::mode;
use crate::kernel::abi::structs::{Stat, Statfs, Statx, StatxTimestamp};
use crate::kernel::file::{FileKind, OpenFile, retry};
use crate::kernel::fs::root::GuestRoot;
use crate::kernel::fs::{self, Node};
use crate::kernel::process::lock;

/// The Linux `struct stat` for `st`.
pub fn to_linux_stat(st: &FileStat) -> Stat {
    Stat {
        st_dev: st.dev,
        st_ino: st.ino,
        st_mode: st.mode,
        st_nlink: st.nlink.min(u64::from(u32::MAX)) as u32,
        st_uid: st.uid,
        st_gid: st.gid,
        st_rdev: st.rdev,
        st_size: st.size,
        st_blksize: st.blksize as i32,
        st_blocks: st.blocks,
        st_atime: st.atime.0,
        st_atime_nsec: st.atime.1 as u64,
        st_mtime: st.mtime.0,
        st_mtime_nsec: st.mtime.1 as u64,
        st_ctime: st.ctime.0,
        st_ctime_nsec: st.ctime.1 as u64,
        ..Stat::default()
    }
}

/// The metadata of a symbolic link the runtime synthesizes (`/proc/self/exe`, `fd/N`).
fn magic_link_stat(target_len: usize) -> FileStat {
    FileStat {
        dev: host::fs::linux_makedev(0, 23),
        mode: mode::S_IFLNK | 0o777,
        nlink: 1,
        size: target_len as i64,
        blksize: 1024,
        ..FileStat::default()
    }
}

/// Metadata of whatever `node` names.
fn stat_node(ctx: &Ctx<'_>, node: Node, follow: bool) -> SysResult<FileStat> {
    match node {
        Node::Host(path) => retry(|| host::fs::fstatat(path.dirfd(), &path.path, follow)),
        Node::Device(device) => Ok(device.stat()),
        Node::Descriptor(file) => file.stat(),
        Node::GuestFd(fd) => {
            let file = lock(&ctx.process().fds)
                .get(fd)
                .map_err(|_| Errno::ENOENT)?;
            if follow {
                file.stat()
            } else {
                Ok(magic_link_stat(
                    descriptor_target(&ctx.process().root, &file).len(),
                ))
            }
        }
        Node::Exe => {
            let exec = lock(&ctx.process().exec).clone();
            if follow {
                let c = std::ffi::CString::new(exec.host_path.as_os_str().as_bytes())
                    .map_err(|_| Errno::ENOENT)?;
                retry(|| host::fs::fstatat(host::fs::CWD, &c, true))
            } else {
                Ok(magic_link_stat(exec.exe.len()))
            }
        }
    }
}

/// Reads the path argument of a `*at` call that takes `AT_EMPTY_PATH`.
fn at_path(ctx: &Ctx<'_>, addr: u64, flags: u64) -> SysResult<Vec<u8>> {
    if addr == 0 && flags & at::AT_EMPTY_PATH != 0 {
        return Ok(Vec::new());
    }
    ctx.path(addr)
}

/// `fstat(2)`.
pub fn sys_fstat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let st = ctx.file(a[0])?.stat()?;
    ctx.mem().write_val(a[1], &to_linux_stat(&st))?;
    Ok(0)
}

/// `newfstatat(2)` (`fstatat`).
pub fn sys_newfstatat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let flags = a[3] as u32 as u64;
    if flags & !(at::AT_SYMLINK_NOFOLLOW | at::AT_NO_AUTOMOUNT | at::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = at_path(ctx, a[1], flags)?;
    let follow = flags & at::AT_SYMLINK_NOFOLLOW == 0;
    let node = fs::lookup(
        ctx.process(),
        a[0],
        &path,
        flags & at::AT_EMPTY_PATH != 0,
        follow,
    )?;
    let st = stat_node(ctx, node, follow)?;
    ctx.mem().write_val(a[2], &to_linux_stat(&st))?;
    Ok(0)
}

/// `statx(2)`.
pub fn sys_statx(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    const STATX_BASIC_STATS: u32 = 0x7ff;
    const STATX_BTIME: u32 = 0x800;
    const STATX_RESERVED: u32 = 0x8000_0000;
    const FORCE_SYNC: u64 = 0x2000;
    const DONT_SYNC: u64 = 0x4000;
    let flags = a[2] as u32 as u64;
    let known =
        at::AT_SYMLINK_NOFOLLOW | at::AT_NO_AUTOMOUNT | at::AT_EMPTY_PATH | at::AT_STATX_SYNC_TYPE;
    if flags & !known != 0 || flags & at::AT_STATX_SYNC_TYPE == FORCE_SYNC | DONT_SYNC {
        return Err(Errno::EINVAL);
    }
    if a[3] as u32 & STATX_RESERVED != 0 {
        return Err(Errno::EINVAL);
    }
    let path = at_path(ctx, a[1], flags)?;
    let follow = flags & at::AT_SYMLINK_NOFOLLOW == 0;
    let node = fs::lookup(
        ctx.process(),
        a[0],
        &path,
        flags & at::AT_EMPTY_PATH != 0,
        follow,
    )?;
    let btime = match &node {
        Node::Host(p) => host::birth_time(p.dirfd(), &p.path, follow),
        _ => None,
    };
    let st = stat_node(ctx, node, follow)?;

    let ts = |(sec, nsec): (i64, i64)| StatxTimestamp {
        tv_sec: sec,
        tv_nsec: nsec as u32,
        __reserved: 0,
    };
    let (dev_major, dev_minor) = linux_major_minor(st.dev);
    let (rdev_major, rdev_minor) = linux_major_minor(st.rdev);
    let mut stx = Statx {
        stx_mask: STATX_BASIC_STATS,
        stx_blksize: st.blksize as u32,
        stx_nlink: st.nlink as u32,
        stx_uid: st.uid,
        stx_gid: st.gid,
        stx_mode: st.mode as u16,
        stx_ino: st.ino,
        stx_size: st.size as u64,
        stx_blocks: st.blocks as u64,
        stx_atime: ts(st.atime),
        stx_ctime: ts(st.ctime),
        stx_mtime: ts(st.mtime),
        stx_rdev_major: rdev_major,
        stx_rdev_minor: rdev_minor,
        stx_dev_major: dev_major,
        stx_dev_minor: dev_minor,
        ..Statx::default()
    };
    if let Some(birth) = btime {
        stx.stx_mask |= STATX_BTIME;
        stx.stx_btime = ts(birth);
    }
    ctx.mem().write_val(a[4], &stx)?;
    Ok(0)
}

/// Linux `statfs` for host file-system information.
fn to_linux_statfs(fs: &host::FsStat) -> Statfs {
    Statfs {
        f_type: fs.magic,
        f_bsize: fs.bsize,
        f_blocks: fs.blocks,
        f_bfree: fs.bfree,
        f_bavail: fs.bavail,
        f_files: fs.files,
        f_ffree: fs.ffree,
        f_fsid: fs.fsid,
        f_namelen: fs.namelen,
        f_frsize: fs.frsize,
        f_flags: fs.flags,
        f_spare: [0; 4],
    }
}

/// What `statfs` reports for the runtime's own nodes (a `devtmpfs`-like file system).
/// `ANON_INODE_FS_MAGIC`: what `fstatfs` reports for event objects.
const ANON_INODE_FS_MAGIC: i64 = 0x0904_1934;

fn synthetic_statfs() -> host::FsStat {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    host::FsStat {
        magic: TMPFS_MAGIC,
        bsize: 4096,
        namelen: 255,
        frsize: 4096,
        ..host::FsStat::default()
    }
}

fn statfs_file(file: &OpenFile) -> SysResult<host::FsStat> {
    match file.kind() {
        FileKind::Host { fd, .. } => {
            use std::os::fd::AsFd;
            retry(|| host::statfs_fd(fd.as_fd()))
        }
        FileKind::Path { host } => retry(|| host::statfs_path(host)),
        FileKind::Device(_) => Ok(synthetic_statfs()),
        FileKind::Event(_) => Ok(host::FsStat {
            magic: ANON_INODE_FS_MAGIC,
            ..synthetic_statfs()
        }),
    }
}

/// `statfs(2)`.
pub fn sys_statfs(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let path = ctx.path(a[0])?;
    let fs = match fs::lookup(
        ctx.process(),
        at::AT_FDCWD as u32 as u64,
        &path,
        false,
        true,
    )? {
        Node::Host(p) => {
            let c = super::fs_open::absolute_host_path(ctx, &p)?;
            retry(|| host::statfs_path(&c))?
        }
        Node::Descriptor(file) => statfs_file(&file)?,
        Node::GuestFd(fd) => {
            let file = lock(&ctx.process().fds)
                .get(fd)
                .map_err(|_| Errno::ENOENT)?;
            statfs_file(&file)?
        }
        Node::Device(_) | Node::Exe => synthetic_statfs(),
    };
    ctx.mem().write_val(a[1], &to_linux_statfs(&fs))?;
    Ok(0)
}

/// `fstatfs(2)`.
pub fn sys_fstatfs(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    let fs = statfs_file(&file)?;
    ctx.mem().write_val(a[1], &to_linux_statfs(&fs))?;
    Ok(0)
}

/// `faccessat(2)`.
pub fn sys_faccessat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    access(ctx, a[0], a[1], a[2], 0)
}

/// `faccessat2(2)`.
pub fn sys_faccessat2(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    access(ctx, a[0], a[1], a[2], a[3])
}

fn access(ctx: &Ctx<'_>, dirfd: u64, addr: u64, amode: u64, flags: u64) -> SysResult {
    let (amode, flags) = (amode as u32, flags as u32 as u64);
    if amode & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & !(at::AT_EACCESS | at::AT_SYMLINK_NOFOLLOW | at::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = at_path(ctx, addr, flags)?;
    let follow = flags & at::AT_SYMLINK_NOFOLLOW == 0;
    let node = fs::lookup(
        ctx.process(),
        dirfd,
        &path,
        flags & at::AT_EMPTY_PATH != 0,
        follow,
    )?;
    let host_path = match node {
        Node::Host(p) => p,
        Node::Device(_) => {
            return if amode & 1 != 0 {
                Err(Errno::EACCES)
            } else {
                Ok(0)
            };
        }
        Node::Descriptor(file) => {
            let c = descriptor_host_path(&file).ok_or(Errno::ENOENT)?;
            crate::kernel::fs::HostPath::absolute(c)
        }
        Node::GuestFd(fd) => {
            let file = lock(&ctx.process().fds)
                .get(fd)
                .map_err(|_| Errno::ENOENT)?;
            let c = descriptor_host_path(&file).ok_or(Errno::ENOENT)?;
            crate::kernel::fs::HostPath::absolute(c)
        }
        Node::Exe => {
            let exe = lock(&ctx.process().exec).host_path.clone();
            let c =
                std::ffi::CString::new(exe.as_os_str().as_bytes()).map_err(|_| Errno::ENOENT)?;
            crate::kernel::fs::HostPath::absolute(c)
        }
    };
    let mut host_flags = 0;
    if flags & at::AT_EACCESS != 0 {
        host_flags |= libc::AT_EACCESS;
    }
    if flags & at::AT_SYMLINK_NOFOLLOW != 0 {
        host_flags |= libc::AT_SYMLINK_NOFOLLOW;
    }
    let host_mode = [(4, libc::R_OK), (2, libc::W_OK), (1, libc::X_OK)]
        .iter()
        .filter(|&&(bit, _)| amode & bit != 0)
        .fold(libc::F_OK, |acc, &(_, h)| acc | h);
    retry(|| host::fs::faccessat(host_path.dirfd(), &host_path.path, host_mode, host_flags))?;
    Ok(0)
}

/// The host path behind a descriptor, where it has one.
fn descriptor_host_path(file: &OpenFile) -> Option<std::ffi::CString> {
    match file.kind() {
        FileKind::Host { fd, .. } => {
            use std::os::fd::AsFd;
            let path = host::fd_path(fd.as_fd())?;
            std::ffi::CString::new(path.as_os_str().as_bytes()).ok()
        }
        FileKind::Path { host } => Some(host.clone()),
        FileKind::Device(_) | FileKind::Event(_) => None,
    }
}

/// What `readlink` of `/proc/self/fd/N` shows for a descriptor.
pub fn descriptor_target(root: &GuestRoot, file: &OpenFile) -> Vec<u8> {
    match file.kind() {
        FileKind::Device(_) | FileKind::Event(_) => file.path.clone(),
        FileKind::Path { host } => root.guest_path(host.to_bytes()),
        FileKind::Host { fd, .. } => {
            use std::os::fd::AsFd;
            let st = file.stat().ok();
            match st.map(|s| (s.kind(), s.ino)) {
                Some((mode::S_IFIFO, ino)) => format!("pipe:[{ino}]").into_bytes(),
                Some((mode::S_IFSOCK, ino)) => format!("socket:[{ino}]").into_bytes(),
                _ => host::fd_path(fd.as_fd())
                    .map(|p| root.guest_path(p.as_os_str().as_bytes()))
                    .unwrap_or_else(|| file.path.clone()),
            }
        }
    }
}

/// `readlinkat(2)`.
pub fn sys_readlinkat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let size = a[3] as u32 as i32;
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = ctx.path(a[1])?;
    // An empty path reads the link an O_PATH|O_NOFOLLOW descriptor refers to.
    let target = match fs::lookup(ctx.process(), a[0], &path, true, false)? {
        Node::Host(p) => retry(|| host::fs::readlinkat(p.dirfd(), &p.path))?,
        Node::Descriptor(file) => match file.kind() {
            FileKind::Path { host } => retry(|| host::fs::readlinkat(host::fs::CWD, host))?,
            _ => return Err(Errno::ENOENT),
        },
        Node::Device(_) => return Err(Errno::EINVAL),
        Node::GuestFd(fd) => {
            let file = lock(&ctx.process().fds)
                .get(fd)
                .map_err(|_| Errno::ENOENT)?;
            descriptor_target(&ctx.process().root, &file)
        }
        Node::Exe => lock(&ctx.process().exec).exe.clone(),
    };
    let len = target.len().min(size as usize);
    ctx.mem().write(a[2], &target[..len])?;
    Ok(len as u64)
}

/// `getdents64(2)`.
pub fn sys_getdents64(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    file.getdents(ctx.mem(), a[1], a[2] as u32 as u64)
}
