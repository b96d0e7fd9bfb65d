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
//! The environment is the user's, with the variables that name host things made to fit the
//! sysroot ([`guest_env`]):
//!
//! - `PATH` is the usual Linux one, `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`:
//!   the host's directories hold host programs (or, under a system directory, name nothing).
//! - `LANG`, `LC_ALL` and the other `LC_*` keep a locale the sysroot has; one it lacks (such as
//!   macOS' usual `en_US.UTF-8` in a sysroot with only `C.UTF-8`) becomes `C.UTF-8` when the
//!   sysroot has that, else is removed, so programs do not warn about a missing locale.
//! - `TERM` is kept when the sysroot has its terminfo entry, else becomes `xterm-256color` (or
//!   `xterm`) if the sysroot has that, so full-screen programs still start.
//! - `TMPDIR` is removed when it names a directory the guest does not see on the host (macOS'
//!   `/var/folders/...` lies under the sysroot's `/var`): programs then use `/tmp`, the host's.
//! - `SHELL` becomes `/bin/sh` when the sysroot has no such shell.
//! - `HOME` and everything else are kept: the home directory is reachable by its own path.
//!
//! The files live in the user's cache directory (`$XDG_CACHE_HOME/elfuse/world/KEY`, keyed by
//! sysroot and user), are rewritten atomically when their contents change, and outlive the
//! guest so that forked and executed guest processes see the same ones.
//!
//! # Limitations
//! The views are made when elfuse starts: a change to the sysroot's `/etc/passwd` made by the
//! guest itself is not seen in the view until the next start.

use std::collections::hash_map::DefaultHasher;
use std::ffi::{OsStr, OsString};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tracing::debug;

use crate::kernel::fs::root::{self, EtcView, GuestRoot, Side};

/// The guest's `PATH` under a sysroot.
pub const GUEST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where a sysroot keeps compiled locales, one directory each (`C.utf8`, `en_US.utf8`).
const LOCALE_DIR: &str = "usr/lib/locale";

/// Where ncurses looks for terminfo entries, as sysroot-relative directories.
const TERMINFO_DIRS: [&str; 3] = ["etc/terminfo", "lib/terminfo", "usr/share/terminfo"];

/// The environment for a guest under the sysroot of `root`, made from the user's `env` by the
/// rules in the module documentation. Without a sysroot, `env` is returned as it is.
pub fn guest_env(root: &GuestRoot, env: Vec<(OsString, OsString)>) -> Vec<(OsString, OsString)> {
    let Some(sysroot) = root.sysroot_dir() else {
        return env;
    };
    let fallback_locale = has_locale(sysroot, b"C.UTF-8").then(|| OsString::from("C.UTF-8"));

    env.into_iter()
        .filter_map(|(key, value)| {
            let name = key.as_bytes();
            let value = match name {
                b"PATH" => Some(OsString::from(GUEST_PATH)),
                _ if name == b"LANG" || name.starts_with(b"LC_") => {
                    if has_locale(sysroot, value.as_bytes()) {
                        Some(value)
                    } else {
                        fallback_locale.clone()
                    }
                }
                b"TERM" => Some(terminal(sysroot, value)),
                b"TMPDIR" => {
                    let seen = root.side(&root::normalize(value.as_bytes())) == Side::Host;
                    (value.as_bytes().starts_with(b"/") && seen).then_some(value)
                }
                b"SHELL" => {
                    let inside = sysroot.join(relative(&value));
                    Some(if inside.is_file() {
                        value
                    } else {
                        OsString::from("/bin/sh")
                    })
                }
                _ => Some(value),
            };
            value.map(|value| (key, value))
        })
        .collect()
}

/// `path` without its leading slashes, to join under the sysroot.
fn relative(path: &OsStr) -> &Path {
    let bytes = path.as_bytes();
    let start = bytes.iter().position(|&b| b != b'/').unwrap_or(bytes.len());
    Path::new(OsStr::from_bytes(&bytes[start..]))
}

/// Whether glibc in `sysroot` can load the locale `name` (`lang[_TERRITORY][.codeset][@mod]`):
/// `C` and `POSIX` always; others when compiled into their own directory (glibc normalizes
/// the codeset: `UTF-8` is found as `utf8`), or when the sysroot has a `locale-archive`, whose
/// contents are not checked.
fn has_locale(sysroot: &Path, name: &[u8]) -> bool {
    if name.is_empty() || name == b"C" || name == b"POSIX" {
        return true;
    }
    let dir = sysroot.join(LOCALE_DIR);
    if dir.join("locale-archive").is_file() {
        return true;
    }
    let (base, modifier) = match name.iter().position(|&b| b == b'@') {
        Some(at) => (&name[..at], &name[at..]),
        None => (name, &b""[..]),
    };
    let mut candidates = vec![name.to_vec()];
    if let Some(dot) = base.iter().position(|&b| b == b'.') {
        let codeset: Vec<u8> = base[dot + 1..]
            .iter()
            .filter(|b| b.is_ascii_alphanumeric())
            .map(|b| b.to_ascii_lowercase())
            .collect();
        candidates.push([&base[..=dot], &codeset[..], modifier].concat());
    }
    candidates
        .iter()
        .any(|c| !c.contains(&b'/') && dir.join(OsStr::from_bytes(c)).is_dir())
}

/// `term` if the sysroot has a terminfo entry for it, else a common one it has.
fn terminal(sysroot: &Path, term: OsString) -> OsString {
    let has = |name: &[u8]| {
        let Some(&first) = name.first() else {
            return false;
        };
        if name.contains(&b'/') {
            return false;
        }
        let name = OsStr::from_bytes(name);
        TERMINFO_DIRS.iter().any(|dir| {
            let dir = sysroot.join(dir);
            dir.join(OsStr::from_bytes(&[first])).join(name).is_file()
                || dir.join(format!("{first:02x}")).join(name).is_file()
        })
    };
    if has(term.as_bytes()) {
        return term;
    }
    ["xterm-256color", "xterm"]
        .into_iter()
        .find(|t| has(t.as_bytes()))
        .map(OsString::from)
        .unwrap_or(term)
}

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

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn the_environment_is_fitted_to_the_sysroot() {
        let dir = tempfile::tempdir().unwrap();
        let sysroot = dir.path();
        for sub in ["usr/lib/locale/C.utf8", "lib/terminfo/x", "bin", "var"] {
            std::fs::create_dir_all(sysroot.join(sub)).unwrap();
        }
        std::fs::write(sysroot.join("lib/terminfo/x/xterm-256color"), "").unwrap();
        std::fs::write(sysroot.join("bin/bash"), "").unwrap();
        let root = GuestRoot::sysroot(sysroot, &[PathBuf::from("/home/me")], &[]).unwrap();

        let user = env(&[
            ("PATH", "/opt/homebrew/bin:/usr/bin:/bin"),
            ("LANG", "en_US.UTF-8"),
            ("LC_CTYPE", "C.UTF-8"),
            ("LC_ALL", "POSIX"),
            ("TERM", "tmux-256color"),
            ("TMPDIR", "/var/folders/xy/T/"),
            ("SHELL", "/bin/zsh"),
            ("HOME", "/home/me"),
            ("FOO", "bar"),
        ]);
        let expected = env(&[
            ("PATH", GUEST_PATH),
            ("LANG", "C.UTF-8"),
            ("LC_CTYPE", "C.UTF-8"),
            ("LC_ALL", "POSIX"),
            ("TERM", "xterm-256color"),
            ("SHELL", "/bin/sh"),
            ("HOME", "/home/me"),
            ("FOO", "bar"),
        ]);
        assert_eq!(guest_env(&root, user), expected);

        // What the sysroot has is kept; a TMPDIR the guest sees on the host is kept.
        let kept = env(&[
            ("TERM", "xterm-256color"),
            ("SHELL", "/bin/bash"),
            ("TMPDIR", "/home/me/tmp"),
            ("LANG", "C.utf8"),
        ]);
        assert_eq!(guest_env(&root, kept.clone()), kept);

        // Without C.UTF-8 a missing locale is dropped: the guest gets the POSIX locale.
        std::fs::remove_dir(sysroot.join("usr/lib/locale/C.utf8")).unwrap();
        assert_eq!(
            guest_env(&root, env(&[("LANG", "de_DE.UTF-8@euro")])),
            env(&[])
        );
        std::fs::create_dir(sysroot.join("usr/lib/locale/de_DE.utf8@euro")).unwrap();
        assert_eq!(
            guest_env(&root, env(&[("LANG", "de_DE.UTF-8@euro")])),
            env(&[("LANG", "de_DE.UTF-8@euro")])
        );

        // Without a sysroot nothing changes.
        let user = env(&[("PATH", "/opt/homebrew/bin"), ("LANG", "xx_YY.UTF-8")]);
        assert_eq!(guest_env(&GuestRoot::host(), user.clone()), user);
    }
}
