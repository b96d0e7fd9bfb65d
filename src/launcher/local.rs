//! Per-directory `.elfuse.toml` files and the record of which ones the user trusts.
//!
//! A project can say which sysroot its programs use with a `.elfuse.toml` holding one key,
//! `sysroot = "NAME"` or `sysroot = "./path"` (relative to the file). Only the nearest such
//! file in the current directory or its ancestors counts, and only once the user has trusted
//! it with `elfuse sysroot trust`: a file that arrives with a cloned repository must not decide
//! which libraries elfuse runs unasked.
//!
//! Trust is bound to the file's canonical path and to a SHA-256 of its content, stored as one
//! small file per trusted path under `$XDG_DATA_HOME/elfuse/trust/`; editing the file makes
//! it untrusted again until it is trusted anew.
//!
//! Limitations: an untrusted nearest file is ignored, and files further up are not consulted
//! in its place.

use std::fmt;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::config::{ConfigError, Dirs, line_of};

/// The name of a per-directory file.
pub const LOCAL_FILE: &str = ".elfuse.toml";

/// A `.elfuse.toml` file as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFile {
    /// Its path (the directory it was found in, joined with the file name).
    pub path: PathBuf,
    /// Its content.
    pub content: Vec<u8>,
}

/// The validated content of a `.elfuse.toml` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalSetting {
    /// The `sysroot` value as written: a sysroot name or a path.
    pub sysroot: String,
    /// Its line.
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocal {
    sysroot: Spanned<String>,
}

/// Something elfuse tells the user while choosing a sysroot, without failing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The nearest `.elfuse.toml` is not trusted and was ignored.
    Untrusted {
        /// The file.
        file: PathBuf,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Untrusted { file } => {
                let dir = file.parent().unwrap_or(Path::new("/"));
                write!(
                    f,
                    "ignoring {} (not trusted; run 'elfuse sysroot trust {}' to use it)",
                    file.display(),
                    dir.display()
                )
            }
        }
    }
}

impl LocalFile {
    /// The nearest `.elfuse.toml` in `dir` (absolute) or its ancestors, read.
    pub fn find(dir: &Path) -> Result<Option<LocalFile>, ConfigError> {
        for ancestor in dir.ancestors() {
            let path = ancestor.join(LOCAL_FILE);
            match std::fs::read(&path) {
                Ok(content) => return Ok(Some(LocalFile { path, content })),
                Err(e) if is_absent(&e) => continue,
                // A directory the user may not search cannot hold a file for them.
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    tracing::debug!("skipping {}: {e}", path.display());
                    continue;
                }
                Err(e) => return Err(ConfigError::io(&path, e)),
            }
        }
        Ok(None)
    }

    /// The directory the file is in (relative paths in it start here).
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// Parses and validates the content.
    pub fn setting(&self) -> Result<LocalSetting, ConfigError> {
        let text = std::str::from_utf8(&self.content).map_err(|e| ConfigError::Syntax {
            file: self.path.clone(),
            line: line_of(
                &String::from_utf8_lossy(&self.content[..e.valid_up_to()]),
                e.valid_up_to(),
            ),
            message: "not valid UTF-8".to_string(),
        })?;
        let raw: RawLocal = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: self.path.clone(),
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            message: e.message().trim_end().to_string(),
        })?;
        Ok(LocalSetting {
            line: line_of(text, raw.sysroot.span().start),
            sysroot: raw.sysroot.into_inner(),
        })
    }

    /// Whether the user trusts this file with exactly this content.
    pub fn is_trusted(&self, dirs: &Dirs) -> Result<bool, ConfigError> {
        let (record, expected) = self.record(dirs)?;
        match std::fs::read(&record) {
            Ok(found) => Ok(found == expected),
            Err(e) if is_absent(&e) => Ok(false),
            Err(e) => Err(ConfigError::io(&record, e)),
        }
    }

    /// Records that the user trusts this file with its current content.
    pub fn trust(&self, dirs: &Dirs) -> Result<(), ConfigError> {
        let (record, expected) = self.record(dirs)?;
        let dir = dirs.trust_dir();
        std::fs::create_dir_all(&dir).map_err(|e| ConfigError::io(&dir, e))?;
        write_atomically(&record, &expected)
    }

    /// Forgets any trust in this file; tells whether there was any.
    pub fn untrust(&self, dirs: &Dirs) -> Result<bool, ConfigError> {
        let (record, _) = self.record(dirs)?;
        match std::fs::remove_file(&record) {
            Ok(()) => Ok(true),
            Err(e) if is_absent(&e) => Ok(false),
            Err(e) => Err(ConfigError::io(&record, e)),
        }
    }

    /// The trust record's path (named by the hash of the canonical path) and the content a
    /// record of trust in the current content has.
    fn record(&self, dirs: &Dirs) -> Result<(PathBuf, Vec<u8>), ConfigError> {
        let canonical =
            std::fs::canonicalize(&self.path).map_err(|e| ConfigError::io(&self.path, e))?;
        let name = hex(&Sha256::digest(canonical.as_os_str().as_bytes()));
        let mut content = hex(&Sha256::digest(&self.content)).into_bytes();
        content.push(b' ');
        content.extend_from_slice(canonical.as_os_str().as_bytes());
        content.push(b'\n');
        Ok((dirs.trust_dir().join(name), content))
    }
}

fn is_absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Replaces `path` with `content` through a temporary file in the same directory and a
/// rename, so that readers see the old file or the new one, never a part.
pub(crate) fn write_atomically(path: &Path, content: &[u8]) -> Result<(), ConfigError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = std::fs::File::create(&temp).and_then(|mut file| {
        file.write_all(content)?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(ConfigError::io(&temp, e));
    }
    std::fs::rename(&temp, path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        ConfigError::io(path, e)
    })
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
    fn the_nearest_file_is_found_from_a_subdirectory() {
        let root = tempfile::tempdir().unwrap();
        let sub = root.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(root.path().join(LOCAL_FILE), "sysroot = \"outer\"\n").unwrap();
        std::fs::write(
            root.path().join("a").join(LOCAL_FILE),
            "\nsysroot = \"inner\"\n",
        )
        .unwrap();
        let found = LocalFile::find(&sub).unwrap().unwrap();
        assert_eq!(found.path, root.path().join("a").join(LOCAL_FILE));
        let setting = found.setting().unwrap();
        assert_eq!(setting.sysroot, "inner");
        assert_eq!(setting.line, 2);
    }

    #[test]
    fn trust_is_bound_to_the_content() {
        let root = tempfile::tempdir().unwrap();
        let dirs = dirs(root.path());
        let path = root.path().join(LOCAL_FILE);
        std::fs::write(&path, "sysroot = \"a\"\n").unwrap();
        let file = LocalFile::find(root.path()).unwrap().unwrap();
        assert!(!file.is_trusted(&dirs).unwrap());

        file.trust(&dirs).unwrap();
        assert!(file.is_trusted(&dirs).unwrap());
        assert!(
            LocalFile::find(root.path())
                .unwrap()
                .unwrap()
                .is_trusted(&dirs)
                .unwrap()
        );

        std::fs::write(&path, "sysroot = \"b\"\n").unwrap();
        let changed = LocalFile::find(root.path()).unwrap().unwrap();
        assert!(!changed.is_trusted(&dirs).unwrap());

        changed.trust(&dirs).unwrap();
        assert!(changed.is_trusted(&dirs).unwrap());
        assert!(changed.untrust(&dirs).unwrap());
        assert!(!changed.is_trusted(&dirs).unwrap());
        assert!(!changed.untrust(&dirs).unwrap());
    }

    #[test]
    fn malformed_local_files_name_the_file_and_line() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join(LOCAL_FILE);
        let file = |text: &str| LocalFile {
            path: path.clone(),
            content: text.as_bytes().to_vec(),
        };
        assert_eq!(
            file("sysroot = \"a\"\nextra = 1\n")
                .setting()
                .unwrap_err()
                .to_string(),
            format!(
                "{}:2: unknown field `extra`, expected `sysroot`",
                path.display()
            )
        );
        assert_eq!(
            file("# nothing\n").setting().unwrap_err().to_string(),
            format!("{}:1: missing field `sysroot`", path.display())
        );
    }

    #[test]
    fn the_untrusted_notice_names_the_file_and_the_command() {
        let notice = Notice::Untrusted {
            file: PathBuf::from("/abs/path/.elfuse.toml"),
        };
        assert_eq!(
            notice.to_string(),
            "ignoring /abs/path/.elfuse.toml (not trusted; run 'elfuse sysroot trust \
             /abs/path' to use it)"
        );
    }
}
