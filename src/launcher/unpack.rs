//! Unpacking a root file system tarball into a sysroot directory.
//!
//! `.tar`, `.tar.gz`/`.tgz` and `.tar.xz`/`.txz` archives are read with the `tar` crate
//! (gzip through `flate2`, xz through the pure-Rust `lzma-rust2`). The archive is read twice:
//! first to refuse it whole if any member or hard-link target would land outside the
//! destination (a `..` component), or if it holds names that differ only in case while the
//! destination's file system ignores case; then to unpack it into a temporary directory
//! beside the destination, renamed into place only once everything is written. Symlinks, hard
//! links and permission bits (without set-user-ID, set-group-ID and sticky bits) are kept;
//! ownership is not (the files belong to the user who runs elfuse). Writes through a symlink
//! that points outside the destination are refused by the `tar` crate.
//!
//! Limitations: device nodes and FIFOs are skipped (elfuse provides `/dev` itself); extended
//! attributes are not restored; members with absolute paths are unpacked relative to the
//! destination, as GNU tar does.

use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

use super::case::{self, CaseProbe, Collision};

/// Why an archive could not be unpacked.
#[derive(Debug, Error)]
pub enum UnpackError {
    /// The archive could not be read, or a file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The archive or the file being written.
        path: PathBuf,
        /// The host error.
        source: std::io::Error,
    },
    /// A member would be written outside the destination.
    #[error(
        "{}: member {} points outside the sysroot; refusing the archive",
        archive.display(),
        member.display()
    )]
    Escapes {
        /// The archive.
        archive: PathBuf,
        /// The member's path (or hard-link target).
        member: PathBuf,
    },
    /// The archive holds names that differ only in case, and the destination ignores case.
    #[error(
        "{}: {collision} differ only in case, and {} is on a case-insensitive file system \
         that would merge them; {}",
        archive.display(),
        dir.display(),
        case::advice()
    )]
    CaseCollision {
        /// The archive.
        archive: PathBuf,
        /// The destination's parent directory.
        dir: PathBuf,
        /// The two names.
        collision: Collision,
    },
    /// The destination already exists.
    #[error("{}: already exists", .0.display())]
    Exists(PathBuf),
    /// The file name does not end in a known archive suffix.
    #[error("{}: not a directory nor a .tar, .tar.gz, .tgz, .tar.xz or .txz file", .0.display())]
    NotArchive(PathBuf),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How an archive is compressed, from its file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain `.tar`.
    None,
    /// `.tar.gz` or `.tgz`.
    Gzip,
    /// `.tar.xz` or `.txz`.
    Xz,
}

impl Compression {
    /// The compression of a file with this name, if it is a tarball.
    pub fn of(path: &Path) -> Option<Compression> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".tar") {
            Some(Compression::None)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Compression::Gzip)
        } else if name.ends_with(".tar.xz") || name.ends_with(".txz") {
            Some(Compression::Xz)
        } else {
            None
        }
    }
}

/// What [`unpack`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// Members written.
    pub members: usize,
    /// Device nodes and FIFOs skipped.
    pub skipped: usize,
}

/// Unpacks the tarball `archive` into `dest`, which must not exist yet; `probe` tells whether
/// the destination's file system ignores case.
pub fn unpack(archive: &Path, dest: &Path, probe: &dyn CaseProbe) -> Result<Unpacked, UnpackError> {
    let compression =
        Compression::of(archive).ok_or_else(|| UnpackError::NotArchive(archive.to_path_buf()))?;
    if dest.symlink_metadata().is_ok() {
        return Err(UnpackError::Exists(dest.to_path_buf()));
    }
    let parent = dest.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    let ignores_case = probe.case_insensitive(parent).map_err(io_error(parent))?;

    // First pass: refuse the archive before anything is written.
    let members = scan(archive, compression)?;
    if ignores_case && let Some(collision) = case::find_collision(&members) {
        return Err(UnpackError::CaseCollision {
            archive: archive.to_path_buf(),
            dir: parent.to_path_buf(),
            collision,
        });
    }

    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging).map_err(io_error(&staging))?;
    let result = extract(archive, compression, &staging).and_then(|done| {
        std::fs::rename(&staging, dest)
            .map(|()| done)
            .map_err(io_error(dest))
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// Opens the archive through its decompressor.
fn open(
    archive: &Path,
    compression: Compression,
) -> Result<tar::Archive<Box<dyn Read>>, UnpackError> {
    let file = std::fs::File::open(archive).map_err(io_error(archive))?;
    let reader = BufReader::new(file);
    let stream: Box<dyn Read> = match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Xz => Box::new(lzma_rust2::XzReader::new(reader, true)),
    };
    let mut tar = tar::Archive::new(stream);
    tar.set_preserve_permissions(false);
    tar.set_preserve_mtime(true);
    tar.set_unpack_xattrs(false);
    tar.set_overwrite(true);
    Ok(tar)
}

/// Lists the members' paths, refusing any that (or whose hard-link target) climbs out.
fn scan(archive: &Path, compression: Compression) -> Result<Vec<PathBuf>, UnpackError> {
    let mut tar = open(archive, compression)?;
    let mut members = Vec::new();
    for entry in tar.entries().map_err(io_error(archive))? {
        let entry = entry.map_err(io_error(archive))?;
        let path = entry.path().map_err(io_error(archive))?.into_owned();
        if climbs(&path) {
            return Err(escapes(archive, path));
        }
        if entry.header().entry_type().is_hard_link()
            && let Some(target) = entry.link_name().map_err(io_error(archive))?
            && climbs(&target)
        {
            return Err(escapes(archive, target.into_owned()));
        }
        members.push(path);
    }
    Ok(members)
}

/// Writes the members into `dest`; directories last, deepest first, so that a read-only
/// directory does not stop its own contents from being written.
fn extract(archive: &Path, compression: Compression, dest: &Path) -> Result<Unpacked, UnpackError> {
    let mut tar = open(archive, compression)?;
    let mut done = Unpacked::default();
    let mut directories = Vec::new();
    for entry in tar.entries().map_err(io_error(archive))? {
        let mut entry = entry.map_err(io_error(archive))?;
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            done.skipped += 1;
            continue;
        }
        if kind.is_dir() {
            directories.push(entry);
            continue;
        }
        unpack_member(archive, &mut entry, dest)?;
        done.members += 1;
    }
    directories.sort_by(|a, b| b.path_bytes().cmp(&a.path_bytes()));
    for mut entry in directories {
        unpack_member(archive, &mut entry, dest)?;
        done.members += 1;
    }
    Ok(done)
}

fn unpack_member<R: Read>(
    archive: &Path,
    entry: &mut tar::Entry<R>,
    dest: &Path,
) -> Result<(), UnpackError> {
    let path = entry.path().map_err(io_error(archive))?.into_owned();
    match entry.unpack_in(dest) {
        Ok(true) => Ok(()),
        Ok(false) => Err(escapes(archive, path)),
        Err(source) => Err(UnpackError::Io {
            path: archive.to_path_buf(),
            source: std::io::Error::new(source.kind(), format!("{}: {source}", path.display())),
        }),
    }
}

/// Whether a member path has a `..` component.
fn climbs(path: &Path) -> bool {
    path.components().any(|c| c == Component::ParentDir)
}

fn escapes(archive: &Path, member: PathBuf) -> UnpackError {
    UnpackError::Escapes {
        archive: archive.to_path_buf(),
        member,
    }
}

#[cfg(test)]
mod tests;
