//! The guest's world: the few files in a sysroot's `/etc` that describe the machine and the
//! user rather than the distribution, served from files elfuse writes for the guest instead of
//! the sysroot's own (which is never written to).
//!
//! - `/etc/passwd` and `/etc/group`: the sysroot's, plus a line for the user running elfuse
//!   (with the host's user name, home directory and `/bin/sh` as the shell) and for the user's
//!   group when the sysroot has no entry with those ids, so that shells and `id` show names,
//!   not "I have no name!".
//! - `/etc/hostname`: the host's name.
//! - `/etc/resolv.conf`: the host's, so name resolution uses the host's servers.
//! - `/etc/localtime`: the host's time zone file, so the guest's local time is the host's.
//!
//! The files live in the user's cache directory (`$XDG_CACHE_HOME/elfuse/world/KEY`, keyed by
//! sysroot and user), are rewritten atomically when their contents change, and outlive the
//! guest so that forked and executed guest processes see the same ones.
//!
//! # Limitations
//! The views are made when elfuse starts: a change to the sysroot's `/etc/passwd` made by the
//! guest itself is not seen in the view until the next start.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tracing::debug;

use crate::kernel::fs::root::EtcView;

/// Writes the views for `sysroot` and returns them; a view that cannot be made is left out
/// (the guest then sees the sysroot's own file), since none of them is needed to run.
pub fn prepare(sysroot: &Path) -> Vec<EtcView> {
    let Some(dir) = views_dir(sysroot) else {
        debug!("no cache directory for the sysroot's /etc views");
        return Vec::new();
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        debug!("cannot create {}: {e}", dir.display());
        return Vec::new();
    }
    let user = User::current();
    let etc = sysroot.join("etc");
    let read = |name: &str| std::fs::read(etc.join(name)).unwrap_or_default();
    let mut views = vec![
        (
            "passwd",
            with_line(read("passwd"), 2, user.uid, &user.passwd_line()),
        ),
        (
            "group",
            with_line(read("group"), 2, user.gid, &user.group_line()),
        ),
        ("hostname", format!("{}\n", hostname()).into_bytes()),
    ];
    for name in ["resolv.conf", "localtime"] {
        if let Ok(bytes) = std::fs::read(Path::new("/etc").join(name)) {
            views.push((name, bytes));
        }
    }

    views
        .into_iter()
        .filter_map(|(name, contents)| {
            let file = dir.join(name);
            match write_if_changed(&file, &contents) {
                Ok(()) => Some(EtcView {
                    name: name.to_string(),
                    file,
                }),
                Err(e) => {
                    debug!("cannot write {}: {e}", file.display());
                    None
                }
            }
        })
        .collect()
}

/// `$XDG_CACHE_HOME/elfuse/world/KEY` (or `~/.cache/...`), KEY naming the sysroot and user.
fn views_dir(sysroot: &Path) -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::home_dir().map(|h| h.join(".cache")))?;
    let mut hasher = DefaultHasher::new();
    sysroot.as_os_str().as_bytes().hash(&mut hasher);
    nix::unistd::getuid().as_raw().hash(&mut hasher);
    Some(
        cache
            .join("elfuse/world")
            .join(format!("{:016x}", hasher.finish())),
    )
}

/// `table` (a colon-separated file such as `/etc/passwd`) with `line` appended unless some
/// line's field `field` (0-based) is `id`.
fn with_line(mut table: Vec<u8>, field: usize, id: u32, line: &str) -> Vec<u8> {
    let id = id.to_string();
    let present = table
        .split(|&b| b == b'\n')
        .any(|l| l.split(|&b| b == b':').nth(field) == Some(id.as_bytes()));
    if !present {
        if !table.is_empty() && !table.ends_with(b"\n") {
            table.push(b'\n');
        }
        table.extend_from_slice(line.as_bytes());
        table.push(b'\n');
    }
    table
}

/// The user running elfuse, as the guest's files describe them.
struct User {
    uid: u32,
    gid: u32,
    name: String,
    group: String,
    gecos: String,
    home: String,
}

impl User {
    fn current() -> User {
        let uid = nix::unistd::getuid();
        let gid = nix::unistd::getgid();
        let entry = nix::unistd::User::from_uid(uid).ok().flatten();
        let name = entry
            .as_ref()
            .map(|u| u.name.clone())
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| format!("user{uid}"));
        let group = nix::unistd::Group::from_gid(gid)
            .ok()
            .flatten()
            .map(|g| g.name)
            .unwrap_or_else(|| name.clone());
        let gecos = entry
            .as_ref()
            .map(|u| u.gecos.to_string_lossy().into_owned())
            .unwrap_or_default();
        let home = std::env::home_dir()
            .or_else(|| entry.as_ref().map(|u| u.dir.clone()))
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
        User {
            uid: uid.as_raw(),
            gid: gid.as_raw(),
            name,
            group,
            gecos: gecos.replace([':', '\n'], " "),
            home,
        }
    }

    fn passwd_line(&self) -> String {
        format!(
            "{}:x:{}:{}:{}:{}:/bin/sh",
            self.name, self.uid, self.gid, self.gecos, self.home
        )
    }

    fn group_line(&self) -> String {
        format!("{}:x:{}:{}", self.group, self.gid, self.name)
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Replaces `file` with `contents` atomically, unless it already holds them.
fn write_if_changed(file: &Path, contents: &[u8]) -> std::io::Result<()> {
    if std::fs::read(file).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    let tmp = file.with_file_name(name);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .and_then(|mut f| f.write_all(contents))
        .and_then(|()| std::fs::rename(&tmp, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_user_is_added_once() {
        let table = b"root:x:0:0:root:/root:/bin/bash\nbin:x:2:2::/bin:/sbin/nologin".to_vec();
        let added = with_line(table.clone(), 2, 1000, "me:x:1000:1000::/home/me:/bin/sh");
        assert_eq!(
            added,
            b"root:x:0:0:root:/root:/bin/bash\nbin:x:2:2::/bin:/sbin/nologin\n\
              me:x:1000:1000::/home/me:/bin/sh\n"
        );
        assert_eq!(with_line(added.clone(), 2, 1000, "again"), added);
        // Root is already there.
        assert_eq!(with_line(table.clone(), 2, 0, "x"), table);
        // An empty file gets just the line.
        assert_eq!(with_line(Vec::new(), 2, 5, "g:x:5:"), b"g:x:5:\n");
    }
}
