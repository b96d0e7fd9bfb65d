//! The marked block `elfuse install-hooks` keeps in a shell's start-up file.
//!
//! The block is a few lines between two marker comments. Adding it appends it to the file (or
//! replaces an existing block in place, so installing twice changes nothing); removing it takes
//! out exactly those lines and nothing else, so that a file that had no block before an install
//! is byte-identical after the uninstall. Two details make that hold for every file:
//!
//! - a file that does not end with a newline gets one before the block, and the opening marker
//!   says so (`# >>> elfuse hooks (no final newline) >>>`), so removal takes it away again;
//! - a file whose lines end with CRLF gets a block with CRLF line endings.
//!
//! Writing keeps a copy of the previous content as `FILE.elfuse.bak`, then replaces the file
//! through a temporary file in the same directory and a rename, with the old file's permission
//! bits. A start-up file that is a symlink (as dotfile managers make them) is edited at its
//! target, so the link survives. A file the user may not write is refused, not replaced.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The opening marker line, without its line ending.
pub const BEGIN: &str = "# >>> elfuse hooks >>>";
/// The opening marker of a block that was preceded by a newline elfuse added.
pub const BEGIN_ADDED_NEWLINE: &str = "# >>> elfuse hooks (no final newline) >>>";
/// The closing marker line.
pub const END: &str = "# <<< elfuse hooks <<<";

/// Why a start-up file could not be changed.
#[derive(Debug, Error)]
pub enum RcError {
    /// Reading, backing up or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The host error.
        source: std::io::Error,
    },
    /// The file exists but the user may not write it.
    #[error("{}: the file is read-only; make it writable or add the lines yourself", .0.display())]
    ReadOnly(PathBuf),
    /// An opening marker without a closing one (or the other way round).
    #[error("{}:{line}: unmatched elfuse hooks marker; fix or remove it by hand", path.display())]
    Unbalanced {
        /// The file.
        path: PathBuf,
        /// The line of the marker (1-based).
        line: usize,
    },
}

fn io(path: &Path, source: std::io::Error) -> RcError {
    RcError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where an existing block is: byte range of its lines, and whether a newline was added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Found {
    start: usize,
    end: usize,
    added_newline: bool,
}

/// Finds the block in `text`; `Err(line)` names an unmatched marker.
fn find(text: &str) -> Result<Option<Found>, usize> {
    let mut offset = 0;
    let mut open: Option<(usize, bool, usize)> = None;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let number = index + 1;
        if bare == BEGIN || bare == BEGIN_ADDED_NEWLINE {
            if open.is_some() {
                return Err(number);
            }
            open = Some((offset, bare == BEGIN_ADDED_NEWLINE, number));
        } else if bare == END {
            let Some((start, added_newline, _)) = open else {
                return Err(number);
            };
            return Ok(Some(Found {
                start,
                end: offset + line.len(),
                added_newline,
            }));
        }
        offset += line.len();
    }
    match open {
        Some((_, _, number)) => Err(number),
        None => Ok(None),
    }
}

/// The line ending `text` uses: CRLF if its first line ends so, else LF.
fn line_ending(text: &str) -> &'static str {
    match text.find('\n') {
        Some(i) if i > 0 && text.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// `text` with the block holding `body` (lines without endings) added or replaced.
pub fn with_block(path: &Path, text: &str, body: &[String]) -> Result<String, RcError> {
    let found = find(text).map_err(|line| unbalanced(path, line))?;
    let eol = line_ending(text);
    let render = |added_newline: bool| {
        let begin = if added_newline {
            BEGIN_ADDED_NEWLINE
        } else {
            BEGIN
        };
        let mut block = format!("{begin}{eol}");
        for line in body {
            block.push_str(line);
            block.push_str(eol);
        }
        block.push_str(END);
        block.push_str(eol);
        block
    };
    Ok(match found {
        Some(found) => {
            let mut out = text[..found.start].to_string();
            out.push_str(&render(found.added_newline));
            out.push_str(&text[found.end..]);
            out
        }
        None => {
            let added_newline = !text.is_empty() && !text.ends_with('\n');
            let mut out = text.to_string();
            if added_newline {
                out.push_str(eol);
            }
            out.push_str(&render(added_newline));
            out
        }
    })
}

/// `text` without the block (and without the newline an install added), or `None` if it has
/// no block.
pub fn without_block(path: &Path, text: &str) -> Result<Option<String>, RcError> {
    let Some(found) = find(text).map_err(|line| unbalanced(path, line))? else {
        return Ok(None);
    };
    let mut head = &text[..found.start];
    if found.added_newline {
        head = head
            .strip_suffix("\r\n")
            .or_else(|| head.strip_suffix('\n'))
            .unwrap_or(head);
    }
    Ok(Some(format!("{head}{}", &text[found.end..])))
}

fn unbalanced(path: &Path, line: usize) -> RcError {
    RcError::Unbalanced {
        path: path.to_path_buf(),
        line,
    }
}

/// Whether `text` holds a block.
pub fn has_block(text: &str) -> bool {
    matches!(find(text), Ok(Some(_)))
}

/// A start-up file read for editing.
#[derive(Debug)]
pub struct RcFile {
    /// The path as the user knows it (`~/.zshrc`).
    pub path: PathBuf,
    /// Its content (empty when it does not exist).
    pub text: String,
    /// Whether it exists.
    pub exists: bool,
}

impl RcFile {
    /// Reads `path`; a missing file is empty, and one that is not UTF-8 is refused.
    pub fn read(path: &Path) -> Result<RcFile, RcError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(RcFile {
                path: path.to_path_buf(),
                text: String::from_utf8(bytes).map_err(|e| {
                    io(
                        path,
                        std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
                    )
                })?,
                exists: true,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RcFile {
                path: path.to_path_buf(),
                text: String::new(),
                exists: false,
            }),
            Err(e) => Err(io(path, e)),
        }
    }

    /// Replaces the file's content with `text`: backup, temporary file, rename.
    pub fn save(&self, text: &str) -> Result<(), RcError> {
        // Edit a symlink's target, so that the link (a dotfile manager's) stays.
        let target = if self.exists {
            std::fs::canonicalize(&self.path).map_err(|e| io(&self.path, e))?
        } else {
            self.path.clone()
        };
        let (mode, owner) = if self.exists {
            // The write bits count even for root, who may write anything: a file made
            // read-only on purpose is not replaced behind its owner's back.
            let meta = std::fs::metadata(&target).map_err(|e| io(&target, e))?;
            let writable = nix::unistd::access(&target, nix::unistd::AccessFlags::W_OK).is_ok();
            if meta.permissions().readonly() || !writable {
                return Err(RcError::ReadOnly(self.path.clone()));
            }
            let mut backup = target.clone().into_os_string();
            backup.push(".elfuse.bak");
            std::fs::copy(&target, &backup).map_err(|e| io(Path::new(&backup), e))?;
            let owner = (meta.uid(), meta.gid());
            keep_owner(Path::new(&backup), owner).map_err(|e| io(Path::new(&backup), e))?;
            (meta.permissions().mode() & 0o7777, Some(owner))
        } else {
            (0o644, None)
        };
        write_replacing(&target, text.as_bytes(), mode, owner).map_err(|e| io(&target, e))
    }
}

/// Gives `path` the owner `(uid, gid)` when that is not already its owner: root editing a
/// user's file (`sudo elfuse install-hooks --binfmt` with the user's HOME) must leave it the
/// user's.
fn keep_owner(path: &Path, (uid, gid): (u32, u32)) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if (meta.uid(), meta.gid()) == (uid, gid) {
        return Ok(());
    }
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

/// Writes `content` to a temporary file next to `path` with permission bits `mode` (and owner
/// `owner`, if given), then renames it over `path`; a failure removes the temporary file.
pub(crate) fn write_replacing(
    path: &Path,
    content: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.elfuse-tmp-{}", std::process::id()));
    let written = std::fs::File::create(&temp).and_then(|mut file| {
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        if let Some(owner) = owner {
            keep_owner(&temp, owner)?;
        }
        file.write_all(content)?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Vec<String> {
        vec!["eval \"$('/bin/elfuse' init zsh)\"".to_string()]
    }

    fn round_trip(original: &str) -> String {
        let path = Path::new("/rc");
        let installed = with_block(path, original, &body()).unwrap();
        assert!(has_block(&installed));
        assert_eq!(with_block(path, &installed, &body()).unwrap(), installed);
        let removed = without_block(path, &installed).unwrap().unwrap();
        assert_eq!(
            removed, original,
            "install then uninstall must restore {original:?}"
        );
        installed
    }

    #[test]
    fn every_kind_of_file_is_restored_byte_for_byte() {
        assert_eq!(
            round_trip("alias ll='ls -l'\n"),
            "alias ll='ls -l'\n# >>> elfuse hooks >>>\neval \"$('/bin/elfuse' init zsh)\"\n\
             # <<< elfuse hooks <<<\n"
        );
        assert_eq!(
            round_trip("export A=1"),
            "export A=1\n# >>> elfuse hooks (no final newline) >>>\neval \"$('/bin/elfuse' \
             init zsh)\"\n# <<< elfuse hooks <<<\n"
        );
        assert_eq!(
            round_trip("a\r\nb\r\n"),
            "a\r\nb\r\n# >>> elfuse hooks >>>\r\neval \"$('/bin/elfuse' init zsh)\"\r\n\
             # <<< elfuse hooks <<<\r\n"
        );
        round_trip("a\r\nb");
        round_trip("");
        round_trip("\n\n\n");
        round_trip("# >>> elfuse hooks, but not ours\n");
    }

    #[test]
    fn a_moved_block_is_replaced_in_place_and_removed_alone() {
        let path = Path::new("/rc");
        let text = "a\n# >>> elfuse hooks >>>\nold line\n# <<< elfuse hooks <<<\nb\n";
        assert_eq!(
            with_block(path, text, &["new".to_string()]).unwrap(),
            "a\n# >>> elfuse hooks >>>\nnew\n# <<< elfuse hooks <<<\nb\n"
        );
        assert_eq!(without_block(path, text).unwrap().unwrap(), "a\nb\n");
        assert_eq!(without_block(path, "a\nb\n").unwrap(), None);
    }

    #[test]
    fn unmatched_markers_are_refused_with_their_line() {
        let path = Path::new("/home/me/.zshrc");
        let err = without_block(path, "a\n# >>> elfuse hooks >>>\nb\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/home/me/.zshrc:2: unmatched elfuse hooks marker; fix or remove it by hand"
        );
        assert!(with_block(path, "# <<< elfuse hooks <<<\n", &body()).is_err());
    }

    #[test]
    fn saving_keeps_a_backup_the_mode_and_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles-zshrc");
        std::fs::write(&real, "old\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join(".zshrc");
        std::os::unix::fs::symlink(&real, &link).unwrap();

        let rc = RcFile::read(&link).unwrap();
        rc.save("new\n").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("dotfiles-zshrc.elfuse.bak")).unwrap(),
            "old\n"
        );
        let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn root_editing_a_users_file_leaves_it_the_users() {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: needs root to make a file owned by another user");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let rc = dir.path().join(".bashrc");
        std::fs::write(&rc, "old\n").unwrap();
        std::os::unix::fs::chown(&rc, Some(4321), Some(4322)).unwrap();
        std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o640)).unwrap();

        RcFile::read(&rc).unwrap().save("new\n").unwrap();
        for file in [rc.clone(), dir.path().join(".bashrc.elfuse.bak")] {
            let meta = std::fs::metadata(&file).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (4321, 4322), "{}", file.display());
        }
        assert_eq!(std::fs::metadata(&rc).unwrap().mode() & 0o777, 0o640);
    }
}
