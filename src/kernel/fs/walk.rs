//! Component-by-component path resolution, for the lookups the host kernel cannot do for us:
//! every lookup in a sysroot's name space ([`super::root`]), and `openat2`'s `RESOLVE_*`
//! rules, where the walk must be confined to a directory or must refuse symbolic links.
//!
//! The walk keeps the resolved prefix as a list of *guest* path components, maps each step to
//! its host file through the [`GuestRoot`], reads each symbolic link there and splices its
//! target into the names still to visit; an absolute target starts again at the guest's root,
//! and `..` at the root stays there, so the walk never leaves the guest's name space. A
//! confined walk (`RESOLVE_BENEATH`, `RESOLVE_IN_ROOT`) tracks how deep below its anchor it
//! is, so `..` and absolute links can be refused or clamped exactly as Linux does.

use std::collections::VecDeque;
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;

use super::root::{GuestRoot, join};
use crate::host;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::mode;

/// Linux's limit on symbolic links followed in one lookup.
pub const MAX_SYMLINKS: usize = 40;

/// How `..` and absolute names are treated relative to the anchor directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confinement {
    /// Ordinary resolution.
    None,
    /// `RESOLVE_BENEATH`: escaping the anchor is `EXDEV`.
    Beneath,
    /// `RESOLVE_IN_ROOT`: the anchor acts as `/`.
    InRoot,
}

/// Options for one walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkOptions {
    /// Confinement to the anchor.
    pub confine: Confinement,
    /// `RESOLVE_NO_SYMLINKS`: any symbolic link is `ELOOP`.
    pub no_symlinks: bool,
    /// `RESOLVE_NO_XDEV`: crossing to another device is `EXDEV`.
    pub no_xdev: bool,
    /// Follow a symbolic link in the last component.
    pub follow_last: bool,
}

fn split(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

/// Where a walk ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Walked {
    /// A host file, by absolute host path; the last component may not exist (for `O_CREAT`).
    Host(Vec<u8>),
    /// A name under a directory the runtime serves (`/dev`, `/proc`), by guest path, with
    /// the rest of the path appended unresolved.
    Runtime(Vec<u8>),
}

/// Resolves `path` in `root`'s name space, starting at the guest directory `anchor` (normalized
/// components of an absolute guest path).
pub fn walk(
    root: &GuestRoot,
    anchor: &[Vec<u8>],
    path: &[u8],
    opts: WalkOptions,
) -> SysResult<Walked> {
    let anchor_dev = if opts.no_xdev {
        Some(stat(&root.host_path(anchor), true)?.dev)
    } else {
        None
    };
    // A trailing slash makes the last component a directory, followed if it is a link.
    let trailing_slash = path.ends_with(b"/");
    let follow_last = opts.follow_last || trailing_slash;

    let mut resolved = anchor.to_vec();
    // Depth below the anchor; confinement applies while resolving inside it.
    let mut depth: usize = 0;
    let mut queue: VecDeque<Vec<u8>> = split(path).map(<[u8]>::to_vec).collect();
    let mut links = 0;

    if path.starts_with(b"/") {
        match opts.confine {
            Confinement::Beneath => return Err(Errno::EXDEV),
            Confinement::InRoot => {}
            Confinement::None => resolved.clear(),
        }
    }

    while let Some(name) = queue.pop_front() {
        let last = queue.is_empty();
        match name.as_slice() {
            b"." => continue,
            b".." => {
                match opts.confine {
                    Confinement::None => {
                        resolved.pop();
                    }
                    Confinement::Beneath => {
                        if depth == 0 {
                            return Err(Errno::EXDEV);
                        }
                        resolved.pop();
                        depth -= 1;
                    }
                    Confinement::InRoot => {
                        if depth > 0 {
                            resolved.pop();
                            depth -= 1;
                        }
                    }
                }
                continue;
            }
            _ => {}
        }

        let mut candidate = resolved.clone();
        candidate.push(name.clone());
        if candidate.len() == 1 && GuestRoot::is_runtime_dir(&candidate[0]) {
            let mut guest = join(&candidate);
            for rest in queue {
                guest.push(b'/');
                guest.extend_from_slice(&rest);
            }
            return Ok(Walked::Runtime(guest));
        }
        let here = root.host_path(&candidate);
        let st = match stat(&here, false) {
            Ok(st) => st,
            Err(Errno::ENOENT) if last => return Ok(Walked::Host(finish(here, trailing_slash))),
            Err(e) => return Err(e),
        };
        if let Some(dev) = anchor_dev
            && st.dev != dev
        {
            return Err(Errno::EXDEV);
        }
        if st.mode & mode::S_IFMT == mode::S_IFLNK && (!last || follow_last) {
            if opts.no_symlinks {
                return Err(Errno::ELOOP);
            }
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Errno::ELOOP);
            }
            let target = std::fs::read_link(OsStr::from_bytes(&here)).map_err(Errno::from)?;
            let target = target.as_os_str().as_bytes().to_vec();
            if target.starts_with(b"/") {
                match opts.confine {
                    Confinement::Beneath => return Err(Errno::EXDEV),
                    Confinement::InRoot => {
                        resolved = anchor.to_vec();
                        depth = 0;
                    }
                    Confinement::None => resolved.clear(),
                }
            }
            let parts: Vec<&[u8]> = split(&target).collect();
            for part in parts.into_iter().rev() {
                queue.push_front(part.to_vec());
            }
            continue;
        }
        if !last && st.mode & mode::S_IFMT != mode::S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        resolved = candidate;
        depth += 1;
    }
    Ok(Walked::Host(finish(
        root.host_path(&resolved),
        trailing_slash,
    )))
}

/// Puts a trailing slash back, so the host call still insists on a directory.
fn finish(mut host: Vec<u8>, trailing_slash: bool) -> Vec<u8> {
    if trailing_slash && !host.ends_with(b"/") {
        host.push(b'/');
    }
    host
}

fn stat(path: &[u8], follow: bool) -> SysResult<host::fs::FileStat> {
    let c = CString::new(path).map_err(|_| Errno::EINVAL)?;
    host::fs::fstatat(host::fs::CWD, &c, follow).map_err(Errno::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::fs::root::normalize;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    /// Walks in the host's name space from the host directory `base`; the host path found.
    fn walk(base: &Path, path: &[u8], opts: WalkOptions) -> SysResult<Vec<u8>> {
        let anchor = normalize(base.as_os_str().as_bytes());
        match super::walk(&GuestRoot::host(), &anchor, path, opts)? {
            Walked::Host(host) => Ok(host),
            Walked::Runtime(guest) => panic!("unexpected runtime path {guest:?}"),
        }
    }

    fn opts(confine: Confinement) -> WalkOptions {
        WalkOptions {
            confine,
            no_symlinks: false,
            no_xdev: false,
            follow_last: true,
        }
    }

    #[test]
    fn beneath_refuses_escapes_and_absolute_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/f"), b"x").unwrap();
        symlink("/etc", dir.path().join("abs")).unwrap();
        symlink("../..", dir.path().join("sub/up")).unwrap();

        let base = dir.path();
        let got = walk(base, b"sub/f", opts(Confinement::Beneath)).unwrap();
        assert_eq!(got, base.join("sub/f").as_os_str().as_bytes());
        assert_eq!(
            walk(base, b"../x", opts(Confinement::Beneath)),
            Err(Errno::EXDEV)
        );
        assert_eq!(
            walk(base, b"/etc", opts(Confinement::Beneath)),
            Err(Errno::EXDEV)
        );
        assert_eq!(
            walk(base, b"abs/passwd", opts(Confinement::Beneath)),
            Err(Errno::EXDEV)
        );
        assert_eq!(
            walk(base, b"sub/up/x", opts(Confinement::Beneath)),
            Err(Errno::EXDEV)
        );
        assert!(walk(base, b"sub/../sub/f", opts(Confinement::Beneath)).is_ok());
    }

    #[test]
    fn in_root_clamps_dotdot_and_rebases_absolute_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        symlink("/etc", dir.path().join("abs")).unwrap();
        let base = dir.path();
        let inside = base.join("etc");
        let want = inside.as_os_str().as_bytes();
        assert_eq!(
            walk(base, b"../../etc", opts(Confinement::InRoot)).unwrap(),
            want
        );
        assert_eq!(
            walk(base, b"/etc", opts(Confinement::InRoot)).unwrap(),
            want
        );
        assert_eq!(walk(base, b"abs", opts(Confinement::InRoot)).unwrap(), want);
    }

    #[test]
    fn symlink_rules() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        symlink("f", dir.path().join("link")).unwrap();
        symlink("loop", dir.path().join("loop")).unwrap();
        let base = dir.path();
        let no_links = WalkOptions {
            no_symlinks: true,
            ..opts(Confinement::None)
        };
        assert_eq!(walk(base, b"link", no_links), Err(Errno::ELOOP));
        assert_eq!(
            walk(base, b"loop", opts(Confinement::None)),
            Err(Errno::ELOOP)
        );
        let got = walk(base, b"link", opts(Confinement::None)).unwrap();
        assert_eq!(got, base.join("f").as_os_str().as_bytes());
        let nofollow = WalkOptions {
            follow_last: false,
            ..opts(Confinement::None)
        };
        let got = walk(base, b"link", nofollow).unwrap();
        assert_eq!(got, base.join("link").as_os_str().as_bytes());
        assert_eq!(
            walk(base, b"f/x", opts(Confinement::None)),
            Err(Errno::ENOTDIR)
        );
    }
}
