//! Guest path names: how every path-taking syscall finds what a guest path refers to.
//!
//! Programs run against the host's root directory. Two subtrees are the runtime's own, since the
//! host's versions describe elfuse rather than the guest (and differ between Linux and macOS):
//! the devices `/dev/{null,zero,full,random,urandom}`, the descriptor aliases `/dev/fd/N`,
//! `/dev/std{in,out,err}` and `/proc/self/fd/N`, and `/proc/self/exe`. Everything else under
//! `/proc` does not exist for the guest.
//!
//! # Limitations
//! `/proc` beyond `self/fd` and `self/exe` is not synthesized yet, so programs that read
//! `/proc/self/maps` or `/proc/cpuinfo` see `ENOENT`.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use crate::host;
use crate::kernel::abi::at::AT_FDCWD;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::file::{Device, FileKind, OpenFile};
use crate::kernel::process::{Process, lock};

pub mod root;
pub mod walk;

use self::walk::{Confinement, WalkOptions, Walked};

/// What a guest path names.
pub enum Node {
    /// A host file, named relative to a host directory.
    Host(HostPath),
    /// One of the runtime's devices.
    Device(Device),
    /// An alias for an open guest descriptor.
    GuestFd(i32),
    /// The running program (`/proc/self/exe`).
    Exe,
    /// The descriptor itself (an empty path with `AT_EMPTY_PATH`).
    Descriptor(Arc<OpenFile>),
}

/// A host path and the directory it is relative to.
pub struct HostPath {
    /// The directory descriptor's file, kept alive while the path is used.
    dir: Option<Arc<OpenFile>>,
    /// The path, relative to `dir` (or the current directory), or absolute.
    pub path: CString,
}

impl HostPath {
    /// The host directory descriptor for `*at` calls.
    pub fn dirfd(&self) -> RawFd {
        self.dir
            .as_ref()
            .and_then(|f| f.host_fd())
            .map_or(host::fs::CWD, |fd| fd.as_raw_fd())
    }

    /// The path as bytes.
    pub fn bytes(&self) -> &[u8] {
        self.path.to_bytes()
    }

    /// An absolute host path.
    pub fn absolute(path: CString) -> HostPath {
        HostPath { dir: None, path }
    }

    /// The open directory the path is relative to, if not the current directory.
    pub fn dir_file(&self) -> Option<&Arc<OpenFile>> {
        self.dir.as_ref()
    }
}

fn host_path(dir: Option<Arc<OpenFile>>, path: &[u8]) -> SysResult<Node> {
    let path = CString::new(path).map_err(|_| Errno::EINVAL)?;
    Ok(Node::Host(HostPath { dir, path }))
}

/// Parses a descriptor number in a `/dev/fd/N` style path.
fn fd_number(text: &[u8]) -> Option<i32> {
    if text.is_empty() || text.len() > 10 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// The runtime's own names under `/dev` and `/proc`, or `None` for a host path.
fn special(process: &Process, path: &[u8]) -> Option<SysResult<Node>> {
    if let Some(rest) = path.strip_prefix(b"/dev/") {
        if let Some(device) = Device::from_name(rest) {
            return Some(Ok(Node::Device(device)));
        }
        let fd = match rest {
            b"stdin" => Some(0),
            b"stdout" => Some(1),
            b"stderr" => Some(2),
            _ => rest.strip_prefix(b"fd/").and_then(fd_number),
        };
        return fd.map(|fd| Ok(Node::GuestFd(fd)));
    }
    let rest = path.strip_prefix(b"/proc/")?;
    let pid = process.pid.to_string();
    let own = rest.strip_prefix(b"self/").or_else(|| {
        rest.strip_prefix(pid.as_bytes())
            .and_then(|r| r.strip_prefix(b"/"))
    });
    let node = match own {
        Some(b"exe") => Ok(Node::Exe),
        Some(tail) => match tail.strip_prefix(b"fd/").and_then(fd_number) {
            Some(fd) => Ok(Node::GuestFd(fd)),
            None => Err(Errno::ENOENT),
        },
        None => Err(Errno::ENOENT),
    };
    Some(node)
}

/// Finds what `path`, relative to guest descriptor `dirfd`, refers to. A symbolic link in the
/// last component is followed when `follow` is set; otherwise the result names the link.
///
/// An empty path is `ENOENT` unless `empty_ok` (`AT_EMPTY_PATH`), when it names `dirfd`.
pub fn lookup(
    process: &Process,
    dirfd: u64,
    path: &[u8],
    empty_ok: bool,
    follow: bool,
) -> SysResult<Node> {
    let dirfd = dirfd as u32 as i32;
    if path.is_empty() {
        if !empty_ok {
            return Err(Errno::ENOENT);
        }
        if dirfd == AT_FDCWD {
            return host_path(None, b".");
        }
        return Ok(Node::Descriptor(lock(&process.fds).get(dirfd)?));
    }
    if !process.root.is_host() {
        return lookup_in_root(process, dirfd, path, follow);
    }
    if path.starts_with(b"/") {
        if let Some(node) = special(process, path) {
            return node;
        }
        return host_path(None, path);
    }
    if dirfd == AT_FDCWD {
        return host_path(None, path);
    }
    let dir = lock(&process.fds).get(dirfd)?;
    match dir.kind() {
        FileKind::Host { .. } => host_path(Some(dir), path),
        FileKind::Path { host } => {
            let mut joined = host.to_bytes().to_vec();
            joined.push(b'/');
            joined.extend_from_slice(path);
            host_path(None, &joined)
        }
        FileKind::Device(_) | FileKind::Event(_) => Err(Errno::ENOTDIR),
    }
}

/// `node` with a followed `/proc/self/fd/N` link replaced by the descriptor it names: on Linux
/// such a path reaches the open file itself, even an `O_PATH` one (glibc's
/// `fchmodat(AT_SYMLINK_NOFOLLOW)` chmods `/proc/self/fd/N` of an `O_PATH` descriptor). A
/// descriptor that is not open names nothing.
pub fn follow_fd_link(process: &Process, node: Node, follow: bool) -> SysResult<Node> {
    match node {
        Node::GuestFd(fd) if follow => {
            let file = lock(&process.fds).get(fd).map_err(|_| Errno::ENOENT)?;
            Ok(Node::Descriptor(file))
        }
        other => Ok(other),
    }
}

/// [`lookup`] in a sysroot's name space: every component is resolved by the walker, so no
/// `..` or symbolic link leads outside it.
fn lookup_in_root(process: &Process, dirfd: i32, path: &[u8], follow: bool) -> SysResult<Node> {
    let root = &process.root;
    let anchor = if path.starts_with(b"/") {
        Vec::new()
    } else {
        root.guest_components(&start_directory(process, dirfd)?)
    };
    let opts = WalkOptions {
        confine: Confinement::None,
        no_symlinks: false,
        no_xdev: false,
        follow_last: follow,
    };
    match walk::walk(root, &anchor, path, opts)? {
        Walked::Host(host) => host_path(None, &host),
        Walked::Runtime(guest) => runtime_node(process, &guest),
    }
}

/// What an absolute guest path under `/dev` or `/proc` names: one of the runtime's nodes, a
/// host device, or nothing.
pub fn runtime_node(process: &Process, guest: &[u8]) -> SysResult<Node> {
    special(process, guest).unwrap_or_else(|| host_path(None, guest))
}

/// The absolute host path of the directory a relative path starts from: the working directory
/// for `AT_FDCWD`, else the directory descriptor's.
pub fn start_directory(process: &Process, dirfd: i32) -> SysResult<Vec<u8>> {
    if dirfd == AT_FDCWD {
        let cwd = std::env::current_dir().map_err(Errno::from)?;
        return Ok(cwd.as_os_str().as_bytes().to_vec());
    }
    let dir = lock(&process.fds).get(dirfd)?;
    match dir.kind() {
        FileKind::Host { fd, .. } => host::fd_path(fd.as_fd())
            .map(|p| p.as_os_str().as_bytes().to_vec())
            .ok_or(Errno::ENOENT),
        FileKind::Path { host } => Ok(host.to_bytes().to_vec()),
        FileKind::Device(_) | FileKind::Event(_) => Err(Errno::ENOTDIR),
    }
}

/// Like [`lookup`], but the result must be a host path (for calls that create, remove or
/// rename names): the runtime's own nodes are not on a writable file system.
pub fn lookup_host(process: &Process, dirfd: u64, path: &[u8]) -> SysResult<HostPath> {
    match lookup(process, dirfd, path, false, false)? {
        Node::Host(host) => Ok(host),
        Node::Device(_) | Node::GuestFd(_) | Node::Exe | Node::Descriptor(_) => Err(Errno::EPERM),
    }
}
