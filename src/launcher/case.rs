//! Case-insensitive file systems: telling whether a directory is on one, and finding names in
//! a Linux tree that such a file system would merge.
//!
//! macOS' default APFS volumes ignore case, while Linux trees may hold `Foo` and `foo` side by
//! side (the kernel headers, Perl's and terminfo's files do). Unpacking such a tree onto a
//! case-insensitive volume silently loses one of each pair, so `elfuse sysroot add` probes the
//! destination and refuses a tree with such names, saying what to do instead.
//!
//! The probe is a trait so tests can simulate a case-insensitive file system on Linux.
//!
//! Limitations: case is folded with Unicode's simple lowercase mapping; APFS also ignores
//! Unicode normalisation differences, which are not detected.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Tells whether a directory's file system ignores case in names.
pub trait CaseProbe {
    /// Whether names in `dir` that differ only in case name the same file.
    fn case_insensitive(&self, dir: &Path) -> std::io::Result<bool>;
}

/// The real probe: creates a file with a mixed-case name in the directory and looks it up
/// with the case changed.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostProbe;

impl CaseProbe for HostProbe {
    fn case_insensitive(&self, dir: &Path) -> std::io::Result<bool> {
        let name = format!(".elfuse-Case-Probe-{}", std::process::id());
        let probe = dir.join(&name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)?;

        let found = std::fs::symlink_metadata(dir.join(name.to_lowercase())).is_ok();

        std::fs::remove_file(&probe)?;
        Ok(found)
    }
}

/// Two names that a case-insensitive file system would take for one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collision {
    /// The first name seen.
    pub first: PathBuf,
    /// The other one.
    pub second: PathBuf,
}

impl fmt::Display for Collision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} and {}", self.first.display(), self.second.display())
    }
}

/// What to do about a collision on this host.
pub fn advice() -> &'static str {
    if cfg!(target_os = "macos") {
        "create a case-sensitive APFS volume for sysroots with 'elfuse sysroot volume' and add \
         the sysroot again"
    } else {
        "put the sysroot on a case-sensitive file system"
    }
}

/// Finds, among archive member paths (relative; `./` and trailing slashes ignored), two that
/// differ only in case, including their parent directories.
pub fn find_collision<I, P>(paths: I) -> Option<Collision>
where
    I: IntoIterator<Item = P>,
    P: AsRef<Path>,
{
    let mut seen: HashMap<Vec<u8>, PathBuf> = HashMap::new();
    for path in paths {
        let mut prefix = PathBuf::new();
        for component in path.as_ref().components() {
            let Component::Normal(name) = component else {
                continue;
            };
            prefix.push(name);
            let key = fold(prefix.as_os_str());
            match seen.get(&key) {
                Some(other) if *other != prefix => {
                    return Some(Collision {
                        first: other.clone(),
                        second: prefix,
                    });
                }
                Some(_) => {}
                None => {
                    seen.insert(key, prefix.clone());
                }
            }
        }
    }
    None
}

/// Finds two names in the tree at `root` that differ only in case (symlinks are not followed).
pub fn tree_collision(root: &Path) -> std::io::Result<Option<Collision>> {
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let mut names: Vec<PathBuf> = Vec::new();
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let path = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                pending.push(path.clone());
            }
            names.push(path);
        }
        names.sort();
        if let Some(collision) = find_collision(&names) {
            return Ok(Some(collision));
        }
    }
    Ok(None)
}

/// The case-folded form of a name: Unicode lowercase when it is UTF-8, ASCII otherwise.
fn fold(name: &OsStr) -> Vec<u8> {
    match name.to_str() {
        Some(text) => text.to_lowercase().into_bytes(),
        None => name.as_bytes().to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differing_only_in_case_collide() {
        let found = find_collision(
            [
                "./usr/",
                "usr/include/linux/",
                "usr/include/linux/xt_MARK.h",
            ]
            .iter()
            .chain(&["usr/include/linux/xt_mark.h"]),
        );
        assert_eq!(
            found,
            Some(Collision {
                first: PathBuf::from("usr/include/linux/xt_MARK.h"),
                second: PathBuf::from("usr/include/linux/xt_mark.h"),
            })
        );
    }

    #[test]
    fn parent_directories_differing_in_case_collide() {
        let found = find_collision(["usr/Lib/a", "usr/lib/b"]).unwrap();
        assert_eq!(found.to_string(), "usr/Lib and usr/lib");
    }

    #[test]
    fn repeated_and_distinct_names_do_not_collide() {
        assert_eq!(
            find_collision(["./a/b", "a/b", "a/b/", "a/c", "A1/b"]),
            None
        );
        assert_eq!(find_collision(["straße", "STRASSE"]), None);
        assert!(find_collision(["Ärger", "ärger"]).is_some());
    }

    #[test]
    fn a_tree_with_case_twins_is_found() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("share/terminfo/e")).unwrap();
        std::fs::create_dir_all(root.path().join("share/terminfo/E")).unwrap();
        std::fs::create_dir_all(root.path().join("bin")).unwrap();
        let found = tree_collision(root.path()).unwrap().unwrap();
        assert_eq!(found.to_string(), "share/terminfo/E and share/terminfo/e");

        std::fs::remove_dir(root.path().join("share/terminfo/E")).unwrap();
        assert_eq!(tree_collision(root.path()).unwrap(), None);
    }

    #[test]
    fn the_host_probe_sees_a_case_sensitive_linux_directory() {
        let dir = tempfile::tempdir().unwrap();
        // The CI and development hosts are Linux with case-sensitive file systems.
        #[cfg(target_os = "linux")]
        assert!(!HostProbe.case_insensitive(dir.path()).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
