//! Shims: names on `PATH` that run Linux programs through elfuse.
//!
//! A shim folder holds `bin/NAME`, a symlink to the elfuse binary, and `targets/NAME`, one
//! line naming the Linux program (an absolute path). Run as `NAME`, elfuse sees a name other
//! than its own in `argv[0]`, reads `targets/NAME` next to the symlink it was started through
//! and runs that program with the remaining arguments; every shim reuses the one (codesigned)
//! binary.
//!
//! There is one global folder, `$XDG_DATA_HOME/elfuse/shims`, and any directory can have its
//! own, `DIR/.elfuse/shims`, which the directory hook puts on `PATH` while the shell is inside
//! DIR. A directory's folder counts only once DIR is trusted (listed in
//! `$XDG_DATA_HOME/elfuse/shims/trusted`): a cloned repository must not bring commands along
//! unasked. `elfuse shim add --local` trusts the current directory, since the user made it.
//!
//! Every change goes through a temporary name and a rename, so `make -j` and other parallel
//! readers see a shim whole or not at all.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::LaunchError;
use super::config::Dirs;
use super::rcfile::write_replacing;

/// The folder, inside a directory, that holds the directory's shims.
pub const LOCAL_FOLDER: &str = ".elfuse/shims";

/// Why a shim cannot be made, removed or run.
#[derive(Debug, Error)]
pub enum ShimError {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The host error.
        source: std::io::Error,
    },
    /// The program to shim cannot be run by elfuse.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// A directory given to `shim add` holds no Linux program.
    #[error("{}: no aarch64 Linux programs in this directory", .0.display())]
    EmptyDirectory(PathBuf),
    /// No shim of that name.
    #[error("{0}: no shim of that name (see 'elfuse shim ls')")]
    NoSuchShim(String),
    /// A name that cannot be a file name in a shim folder.
    #[error(
        "{0:?}: not usable as a shim name (names beginning with \"elfuse\" or \".\" are \
         elfuse's own)"
    )]
    BadName(String),
    /// A shim whose program is elfuse itself (or another shim): running it would loop.
    #[error(
        "{name}: the shim points at {}, which is elfuse itself; remove it with \
         'elfuse shim rm {name}'",
        target.display()
    )]
    Loop {
        /// The shim's name.
        name: String,
        /// Its target.
        target: PathBuf,
    },
    /// A directory shim folder whose directory is not trusted.
    #[error(
        "{}: not trusted; run 'elfuse shim trust {}' to use its shims",
        folder.display(),
        dir.display()
    )]
    Untrusted {
        /// The shim folder.
        folder: PathBuf,
        /// The directory to trust.
        dir: PathBuf,
    },
}

fn io(path: &Path, source: std::io::Error) -> ShimError {
    ShimError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One shim folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShimFolder {
    /// The folder (`.../shims`).
    pub root: PathBuf,
}

/// A shim as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shim {
    /// The command name.
    pub name: String,
    /// The Linux program it runs.
    pub target: PathBuf,
}

/// Whether `name` can be a command name in a shim folder. Names beginning with `elfuse` are
/// refused: started under such a name, elfuse is itself, not a shim.
fn check_name(name: &str) -> Result<(), ShimError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && !name.starts_with("elfuse")
        && !name.contains(['/', '\n', '\0']);
    if ok {
        Ok(())
    } else {
        Err(ShimError::BadName(name.to_string()))
    }
}

impl ShimFolder {
    /// The global folder under elfuse's data directory.
    pub fn global(dirs: &Dirs) -> ShimFolder {
        ShimFolder {
            root: dirs.data_dir.join("shims"),
        }
    }

    /// The folder of directory `dir`.
    pub fn local(dir: &Path) -> ShimFolder {
        ShimFolder {
            root: dir.join(LOCAL_FOLDER),
        }
    }

    /// Where the symlinks are (the directory that goes on `PATH`).
    pub fn bin(&self) -> PathBuf {
        self.root.join("bin")
    }

    fn targets(&self) -> PathBuf {
        self.root.join("targets")
    }

    /// Records `name` for `target` and links it to `elfuse`.
    pub fn add(&self, name: &str, target: &Path, elfuse: &Path) -> Result<Shim, ShimError> {
        check_name(name)?;
        for dir in [self.bin(), self.targets()] {
            std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        }
        let mut line = target.as_os_str().as_bytes().to_vec();
        line.push(b'\n');
        let record = self.targets().join(name);
        write_replacing(&record, &line, 0o644, None).map_err(|e| io(&record, e))?;
        self.link(name, elfuse)?;
        Ok(Shim {
            name: name.to_string(),
            target: target.to_path_buf(),
        })
    }

    /// Points `bin/NAME` at `elfuse`, through a temporary link and a rename.
    fn link(&self, name: &str, elfuse: &Path) -> Result<(), ShimError> {
        let link = self.bin().join(name);
        let temp = self
            .bin()
            .join(format!(".{name}.elfuse-tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&temp);
        std::os::unix::fs::symlink(elfuse, &temp).map_err(|e| io(&temp, e))?;
        std::fs::rename(&temp, &link).map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            io(&link, e)
        })
    }

    /// Removes shim `name`.
    pub fn remove(&self, name: &str) -> Result<(), ShimError> {
        check_name(name)?;
        let record = self.targets().join(name);
        match std::fs::remove_file(&record) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ShimError::NoSuchShim(name.to_string()));
            }
            Err(e) => return Err(io(&record, e)),
        }
        let link = self.bin().join(name);
        match std::fs::remove_file(&link) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&link, e)),
            _ => Ok(()),
        }
    }

    /// The shim called `name`, if recorded.
    pub fn get(&self, name: &str) -> Result<Option<Shim>, ShimError> {
        check_name(name)?;
        let record = self.targets().join(name);
        match std::fs::read(&record) {
            Ok(mut line) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                Ok(Some(Shim {
                    name: name.to_string(),
                    target: PathBuf::from(OsString::from(OsStr::from_bytes(&line))),
                }))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(io(&record, e)),
        }
    }

    /// Every shim, by name.
    pub fn list(&self) -> Result<Vec<Shim>, ShimError> {
        let dir = self.targets();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir, e)),
        };
        let mut shims = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            if let Some(shim) = self.get(&name)? {
                shims.push(shim);
            }
        }
        shims.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(shims)
    }

    /// Makes `bin/` match the records: every link points at `elfuse`, and links without a
    /// record go. Returns the number of links written.
    pub fn rehash(&self, elfuse: &Path) -> Result<usize, ShimError> {
        let shims = self.list()?;
        for shim in &shims {
            self.link(&shim.name, elfuse)?;
        }
        let bin = self.bin();
        if let Ok(entries) = std::fs::read_dir(&bin) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let recorded = shims.iter().any(|s| OsStr::new(&s.name) == name);
                if !recorded && !name.as_bytes().starts_with(b".") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(shims.len())
    }
}

/// The Linux programs `path` names: itself, or the programs directly inside a directory.
pub fn programs(path: &Path) -> Result<Vec<(String, PathBuf)>, ShimError> {
    let absolute = std::path::absolute(path).map_err(|e| io(path, e))?;
    if !absolute.is_dir() {
        super::check(&absolute, path.as_os_str())?;
        let name = file_name(&absolute)?;
        return Ok(vec![(name, absolute)]);
    }
    let mut found = Vec::new();
    let entries = std::fs::read_dir(&absolute).map_err(|e| io(&absolute, e))?;
    for entry in entries.flatten() {
        let program = entry.path();
        if super::check(&program, program.as_os_str()).is_ok() {
            found.push((file_name(&program)?, program));
        }
    }
    if found.is_empty() {
        return Err(ShimError::EmptyDirectory(absolute));
    }
    found.sort();
    Ok(found)
}

fn file_name(path: &Path) -> Result<String, ShimError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| ShimError::BadName(path.to_string_lossy().into_owned()))
}

/// The file listing trusted directories.
fn trusted_file(dirs: &Dirs) -> PathBuf {
    ShimFolder::global(dirs).root.join("trusted")
}

/// Whether directory `dir` (absolute) is trusted to bring its own shims.
pub fn is_trusted(dirs: &Dirs, dir: &Path) -> bool {
    std::fs::read(trusted_file(dirs))
        .map(|text| {
            text.split(|&b| b == b'\n')
                .any(|line| line == dir.as_os_str().as_bytes())
        })
        .unwrap_or(false)
}

/// Trusts (or stops trusting) directory `dir`; tells whether anything changed.
pub fn set_trusted(dirs: &Dirs, dir: &Path, trusted: bool) -> Result<bool, ShimError> {
    let file = trusted_file(dirs);
    let text = match std::fs::read(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io(&file, e)),
    };
    let wanted = dir.as_os_str().as_bytes();
    let mut lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let present = lines.contains(&wanted);
    if present == trusted {
        return Ok(false);
    }
    if trusted {
        lines.push(wanted);
    } else {
        lines.retain(|l| *l != wanted);
    }
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    let parent = file.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    write_replacing(&file, &out, 0o644, None).map_err(|e| io(&file, e))?;
    Ok(true)
}

/// Finds the shim elfuse was started as: `argv0` is what the process got as `argv[0]`.
///
/// With a slash, the symlink's own folder is asked; without one, the first `PATH` entry with
/// a shim of that name, then the global folder. A directory's folder must be trusted.
pub fn find(dirs: &Dirs, argv0: &OsStr) -> Result<Shim, ShimError> {
    let path = Path::new(argv0);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ShimError::BadName(argv0.to_string_lossy().into_owned()))?
        .to_string();
    check_name(&name)?;
    let global = ShimFolder::global(dirs);

    let mut candidates = Vec::new();
    if argv0.as_bytes().contains(&b'/') {
        candidates.extend(path.parent().and_then(Path::parent).map(Path::to_path_buf));
    } else if let Some(search) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&search) {
            if std::fs::symlink_metadata(dir.join(&name)).is_ok_and(|m| m.is_symlink()) {
                candidates.extend(dir.parent().map(Path::to_path_buf));
            }
        }
    }
    candidates.push(global.root.clone());

    for root in candidates {
        let folder = ShimFolder { root };
        let Some(shim) = folder.get(&name)? else {
            continue;
        };
        let same_folder = |a: &Path, b: &Path| {
            std::fs::canonicalize(a)
                .ok()
                .is_some_and(|a| std::fs::canonicalize(b).ok() == Some(a))
        };
        if !same_folder(&folder.root, &global.root) {
            let dir = folder
                .root
                .parent()
                .and_then(Path::parent)
                .map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf()))
                .unwrap_or_default();
            if !is_trusted(dirs, &dir) {
                return Err(ShimError::Untrusted {
                    folder: folder.root,
                    dir,
                });
            }
        }
        return Ok(shim);
    }
    Err(ShimError::NoSuchShim(name))
}

/// Refuses a shim whose target is the elfuse binary `elfuse` (directly or through links).
pub fn check_not_elfuse(shim: &Shim, elfuse: &Path) -> Result<(), ShimError> {
    let target = std::fs::canonicalize(&shim.target).ok();
    let me = std::fs::canonicalize(elfuse).ok();
    if target.is_some() && target == me {
        return Err(ShimError::Loop {
            name: shim.name.clone(),
            target: shim.target.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(root: &Path) -> Dirs {
        Dirs {
            config_file: root.join("config/elfuse/config.toml"),
            data_dir: root.join("data/elfuse"),
            home: None,
        }
    }

    #[test]
    fn records_links_and_removal_stay_in_step() {
        let root = tempfile::tempdir().unwrap();
        let folder = ShimFolder::global(&dirs(root.path()));
        let elfuse = Path::new("/opt/elfuse");
        folder.add("tool", Path::new("/p/tool"), elfuse).unwrap();
        folder.add("other", Path::new("/p/other"), elfuse).unwrap();
        assert_eq!(
            std::fs::read_link(folder.bin().join("tool")).unwrap(),
            elfuse
        );
        let names: Vec<_> = folder.list().unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["other", "tool"]);

        std::fs::remove_file(folder.bin().join("tool")).unwrap();
        std::os::unix::fs::symlink("/x", folder.bin().join("stray")).unwrap();
        assert_eq!(folder.rehash(Path::new("/new/elfuse")).unwrap(), 2);
        assert_eq!(
            std::fs::read_link(folder.bin().join("tool")).unwrap(),
            Path::new("/new/elfuse")
        );
        assert!(std::fs::symlink_metadata(folder.bin().join("stray")).is_err());

        folder.remove("tool").unwrap();
        assert!(folder.get("tool").unwrap().is_none());
        assert!(std::fs::symlink_metadata(folder.bin().join("tool")).is_err());
        assert_eq!(
            folder.remove("tool").unwrap_err().to_string(),
            "tool: no shim of that name (see 'elfuse shim ls')"
        );
    }

    #[test]
    fn a_local_folder_counts_only_when_trusted() {
        let root = tempfile::tempdir().unwrap();
        let dirs = dirs(root.path());
        let project = root.path().join("project");
        let folder = ShimFolder::local(&project);
        folder
            .add("tool", Path::new("/p/tool"), Path::new("/e"))
            .unwrap();
        let argv0 = folder.bin().join("tool");
        let project = std::fs::canonicalize(&project).unwrap();

        assert!(matches!(
            find(&dirs, argv0.as_os_str()),
            Err(ShimError::Untrusted { .. })
        ));
        assert!(set_trusted(&dirs, &project, true).unwrap());
        assert!(!set_trusted(&dirs, &project, true).unwrap());
        assert_eq!(
            find(&dirs, argv0.as_os_str()).unwrap().target,
            Path::new("/p/tool")
        );
        assert!(set_trusted(&dirs, &project, false).unwrap());
        assert!(!is_trusted(&dirs, &project));
    }

    #[test]
    fn names_elfuse_answers_to_itself_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let folder = ShimFolder::global(&dirs(root.path()));
        let err = folder
            .add("elfuse-tool", Path::new("/p"), Path::new("/e"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"elfuse-tool\": not usable as a shim name (names beginning with \"elfuse\" or \
             \".\" are elfuse's own)"
        );
        assert!(
            folder
                .add(".hidden", Path::new("/p"), Path::new("/e"))
                .is_err()
        );
    }

    #[test]
    fn a_shim_of_elfuse_itself_is_a_clean_error() {
        let root = tempfile::tempdir().unwrap();
        let elfuse = root.path().join("elfuse");
        std::fs::write(&elfuse, "").unwrap();
        let link = root.path().join("alias");
        std::os::unix::fs::symlink(&elfuse, &link).unwrap();
        let shim = Shim {
            name: "x".to_string(),
            target: link,
        };
        assert!(matches!(
            check_not_elfuse(&shim, &elfuse),
            Err(ShimError::Loop { .. })
        ));
    }
}
