//! The guest's root directory: which host file each guest path names.
//!
//! Without a sysroot the guest's `/` is the host's, and a guest path is a host path. With one,
//! the guest sees a name space stitched from the sysroot and the host, decided by the path's
//! leading components:
//!
//! 1. The *system directories* `/bin`, `/boot`, `/etc`, `/lib`, `/lib32`, `/lib64`, `/libx32`,
//!    `/opt`, `/sbin`, `/srv`, `/usr` and `/var` always come from the sysroot, even where the
//!    sysroot lacks the name, so a program never picks up a host library or configuration file.
//! 2. The *host directories* come from the host, with everything below them: `/tmp` (so
//!    temporary files are shared with host tools), the user's home directory and the directory
//!    elfuse was started in (so `elfuse exec ./tool ~/data.txt` works). A host directory inside
//!    a system directory stays hidden by rule 1.
//! 3. Any other top-level name comes from the sysroot when the sysroot has it (`/home`, `/mnt`,
//!    `/run`) and from the host otherwise (`/Users`, `/Volumes`, `/work`).
//!
//! `/dev` and `/proc` belong to the runtime (see the parent module); names there that the
//! runtime does not provide come from the host's `/dev`, or do not exist under `/proc`.
//!
//! Guest paths are resolved component by component ([`super::walk`]): `..` never climbs above
//! `/`, and the target of a symbolic link, absolute ones included, is itself a guest path, so
//! no link inside the sysroot leads out of the guest's name space.
//!
//! # Limitations
//! A host directory inside a system directory (a working directory under the host's
//! `/usr/local`, say) cannot be named by an absolute guest path: `getcwd` reports its host
//! path, and relative paths from it work. Listing `/` shows the sysroot's top level only, not
//! the host names rule 3 makes reachable.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Top-level directories that always come from the sysroot.
const SYSTEM_DIRS: [&[u8]; 12] = [
    b"bin", b"boot", b"etc", b"lib", b"lib32", b"lib64", b"libx32", b"opt", b"sbin", b"srv",
    b"usr", b"var",
];

/// Top-level directories served by the runtime itself.
const RUNTIME_DIRS: [&[u8]; 2] = [b"dev", b"proc"];

/// Which tree a guest path's host file lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The sysroot.
    Sysroot,
    /// The host's own file system.
    Host,
}

/// The guest's root: the host's `/`, or a sysroot with host directories reachable through it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestRoot {
    sysroot: Option<Sysroot>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Sysroot {
    /// The sysroot's canonical host path, without a trailing slash.
    dir: Vec<u8>,
    /// Host directories reachable by their own path, as component lists.
    host_dirs: Vec<Vec<Vec<u8>>>,
    /// Files in the guest's `/etc` served from elsewhere: (name, host file).
    etc_views: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A file the guest sees in `/etc` in place of the sysroot's own (see `launcher::world`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcView {
    /// The name in `/etc`.
    pub name: String,
    /// The host file with its contents.
    pub file: PathBuf,
}

fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

impl GuestRoot {
    /// The host's own root: guest paths are host paths.
    pub fn host() -> GuestRoot {
        GuestRoot { sysroot: None }
    }

    /// A sysroot at host directory `dir`, with `host_dirs` (absolute host paths) reachable by
    /// their own names besides `/tmp`, and `views` in place of files in its `/etc`. `dir` must
    /// exist and be a directory.
    pub fn sysroot(dir: &Path, host_dirs: &[PathBuf], views: &[EtcView]) -> io::Result<GuestRoot> {
        let canonical = std::fs::canonicalize(dir)?;
        if !canonical.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        let mut dirs: Vec<Vec<Vec<u8>>> = vec![vec![b"tmp".to_vec()]];
        for host in host_dirs {
            let canonical = std::fs::canonicalize(host).unwrap_or_else(|_| host.clone());
            let parts: Vec<Vec<u8>> = components(canonical.as_os_str().as_bytes())
                .map(<[u8]>::to_vec)
                .collect();
            // The host's root as a "host directory" would hide the sysroot entirely.
            if !parts.is_empty() && !dirs.contains(&parts) {
                dirs.push(parts);
            }
        }
        let etc_views = views
            .iter()
            .map(|v| {
                (
                    v.name.as_bytes().to_vec(),
                    v.file.as_os_str().as_bytes().to_vec(),
                )
            })
            .collect();
        Ok(GuestRoot {
            sysroot: Some(Sysroot {
                dir: canonical.as_os_str().as_bytes().to_vec(),
                host_dirs: dirs,
                etc_views,
            }),
        })
    }

    /// The sysroot's host directory, if there is a sysroot.
    pub fn sysroot_dir(&self) -> Option<&Path> {
        self.sysroot
            .as_ref()
            .map(|s| Path::new(OsStr::from_bytes(&s.dir)))
    }

    /// The host directories besides `/tmp` reachable by their own names (empty without a
    /// sysroot), as absolute host paths.
    pub fn host_dirs(&self) -> Vec<PathBuf> {
        let Some(sysroot) = &self.sysroot else {
            return Vec::new();
        };
        sysroot.host_dirs[1..]
            .iter()
            .map(|parts| PathBuf::from(OsStr::from_bytes(&join(parts))))
            .collect()
    }

    /// The files served in place of the sysroot's own in `/etc`.
    pub fn etc_views(&self) -> Vec<EtcView> {
        let Some(sysroot) = &self.sysroot else {
            return Vec::new();
        };
        sysroot
            .etc_views
            .iter()
            .map(|(name, file)| EtcView {
                name: String::from_utf8_lossy(name).into_owned(),
                file: PathBuf::from(OsStr::from_bytes(file)),
            })
            .collect()
    }

    /// Whether guest paths are host paths.
    pub fn is_host(&self) -> bool {
        self.sysroot.is_none()
    }

    /// Whether the runtime serves the top-level directory `name` (`dev`, `proc`).
    pub fn is_runtime_dir(name: &[u8]) -> bool {
        RUNTIME_DIRS.contains(&name)
    }

    /// Which tree holds the guest path made of `guest` (normalized components: no `.`, `..`
    /// or empty names).
    pub fn side(&self, guest: &[Vec<u8>]) -> Side {
        let Some(sysroot) = &self.sysroot else {
            return Side::Host;
        };
        let Some(first) = guest.first() else {
            return Side::Sysroot;
        };
        if SYSTEM_DIRS.contains(&first.as_slice()) {
            return Side::Sysroot;
        }
        if sysroot
            .host_dirs
            .iter()
            .any(|dir| guest.len() >= dir.len() && guest[..dir.len()] == dir[..])
        {
            return Side::Host;
        }
        let mut top = sysroot.dir.clone();
        top.push(b'/');
        top.extend_from_slice(first);
        if std::fs::symlink_metadata(OsStr::from_bytes(&top)).is_ok() {
            Side::Sysroot
        } else {
            Side::Host
        }
    }

    /// The absolute host path of the guest path made of `guest` (normalized components).
    pub fn host_path(&self, guest: &[Vec<u8>]) -> Vec<u8> {
        let joined = join(guest);
        if let (Some(sysroot), [etc, name]) = (&self.sysroot, guest)
            && etc == b"etc"
            && let Some((_, file)) = sysroot.etc_views.iter().find(|(n, _)| n == name)
        {
            return file.clone();
        }
        match (&self.sysroot, self.side(guest)) {
            (Some(sysroot), Side::Sysroot) => {
                let mut path = sysroot.dir.clone();
                if !guest.is_empty() {
                    path.extend_from_slice(&joined);
                }
                path
            }
            _ => joined,
        }
    }

    /// The guest path of the absolute host path `host`: inside the sysroot, the part below it;
    /// elsewhere, the host path itself.
    pub fn guest_path(&self, host: &[u8]) -> Vec<u8> {
        let Some(sysroot) = &self.sysroot else {
            return host.to_vec();
        };
        match host.strip_prefix(sysroot.dir.as_slice()) {
            Some(b"") => b"/".to_vec(),
            Some(rest) if rest.starts_with(b"/") => rest.to_vec(),
            _ => host.to_vec(),
        }
    }

    /// The guest path of the absolute host path `host`, as normalized components.
    pub fn guest_components(&self, host: &[u8]) -> Vec<Vec<u8>> {
        normalize(&self.guest_path(host))
    }
}

/// `/a/b` from `[a, b]`; `/` from nothing.
pub fn join(parts: &[Vec<u8>]) -> Vec<u8> {
    if parts.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::new();
    for part in parts {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    out
}

/// The components of an absolute path with `.` and `..` applied lexically (for paths that are
/// already resolved, such as the working directory).
pub fn normalize(path: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for part in components(path) {
        if part == b".." {
            out.pop();
        } else {
            out.push(part.to_vec());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(path: &str) -> Vec<Vec<u8>> {
        normalize(path.as_bytes())
    }

    fn tree() -> (tempfile::TempDir, GuestRoot) {
        let dir = tempfile::tempdir().unwrap();
        for d in ["usr/bin", "etc", "home", "tmp", "mnt"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let views = [EtcView {
            name: "passwd".into(),
            file: PathBuf::from("/views/passwd"),
        }];
        let root = GuestRoot::sysroot(
            dir.path(),
            &[PathBuf::from("/home/user"), PathBuf::from("/")],
            &views,
        )
        .unwrap();
        (dir, root)
    }

    #[test]
    fn host_root_is_the_identity() {
        let root = GuestRoot::host();
        assert_eq!(root.host_path(&parts("/etc/passwd")), b"/etc/passwd");
        assert_eq!(root.guest_path(b"/x/y"), b"/x/y");
        assert_eq!(root.side(&parts("/")), Side::Host);
    }

    #[test]
    fn system_directories_always_come_from_the_sysroot() {
        let (dir, root) = tree();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let base = base.as_os_str().as_bytes();
        assert_eq!(
            root.host_path(&parts("/usr/bin/env")),
            [base, b"/usr/bin/env"].concat()
        );
        // Missing from the sysroot, and still never the host's.
        assert_eq!(
            root.host_path(&parts("/lib64/x")),
            [base, b"/lib64/x"].concat()
        );
        assert_eq!(root.host_path(&parts("/")), base);
        // A view replaces the sysroot's file, and only that file.
        assert_eq!(root.host_path(&parts("/etc/passwd")), b"/views/passwd");
        assert_eq!(
            root.host_path(&parts("/etc/group")),
            [base, b"/etc/group"].concat()
        );
    }

    #[test]
    fn host_directories_and_unknown_names_come_from_the_host() {
        let (_dir, root) = tree();
        assert_eq!(root.side(&parts("/tmp/a")), Side::Host);
        assert_eq!(root.side(&parts("/tmp")), Side::Host);
        assert_eq!(root.side(&parts("/home/user/data.txt")), Side::Host);
        assert_eq!(root.side(&parts("/home/other")), Side::Sysroot);
        assert_eq!(root.side(&parts("/mnt")), Side::Sysroot);
        assert_eq!(root.side(&parts("/work/x")), Side::Host);
        assert_eq!(root.host_path(&parts("/work/x")), b"/work/x");
        // "/" given as a host directory is ignored rather than hiding the sysroot.
        assert_eq!(root.host_dirs(), vec![PathBuf::from("/home/user")]);
    }

    #[test]
    fn host_paths_map_back_to_guest_paths() {
        let (dir, root) = tree();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let base = base.as_os_str().as_bytes();
        assert_eq!(root.guest_path(&[base, b"/usr/bin"].concat()), b"/usr/bin");
        assert_eq!(root.guest_path(base), b"/");
        // A sibling whose name merely starts with the sysroot's is not inside it.
        assert_eq!(
            root.guest_path(&[base, b"-other/x"].concat()),
            [base, b"-other/x"].concat()
        );
        assert_eq!(root.guest_path(b"/home/user"), b"/home/user");
    }

    #[test]
    fn normalize_applies_dots_lexically() {
        assert_eq!(parts("/a/./b/../c//d/"), parts("/a/c/d"));
        assert_eq!(parts("/../.."), Vec::<Vec<u8>>::new());
    }
}
