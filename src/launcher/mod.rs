//! The launcher: from what the user typed to a program the runtime can load.
//!
//! A name without a slash is looked up on `PATH`, like a shell does; a path is used as given.
//! The file must exist, be executable and be an aarch64 Linux ELF. Each failure has its own
//! message and the exit status shells use: 127 when there is no such program, 126 when it
//! exists but cannot be run.
//!
//! Choosing a sysroot is in [`sysroot`], from the configuration in [`config`] and [`local`];
//! [`edit`] and [`unpack`] carry out `elfuse sysroot add|remove|default`.
//!
//! The ways of starting programs without typing `elfuse`: [`hooks`] (the shell scripts, with
//! [`rcfile`] editing start-up files), [`shim`] (names on `PATH`) and [`binfmt`] (Linux's
//! `binfmt_misc`).

pub mod binfmt;
pub mod case;
pub mod config;
pub mod edit;
pub mod hooks;
pub mod local;
pub mod rcfile;
pub mod shim;
pub mod sysroot;
pub mod unpack;
pub mod volume;

pub mod world;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::loader::elf::{self, LoaderError};

/// Why a program cannot be launched.
#[derive(Debug, Error)]
pub enum LaunchError {
    /// Nothing by that name exists.
    #[error("{}: No such file or directory", .0.to_string_lossy())]
    NotFound(OsString),
    /// The file exists but may not be executed.
    #[error("{}: Permission denied", .0.to_string_lossy())]
    PermissionDenied(OsString),
    /// It is a directory.
    #[error("{}: Is a directory", .0.to_string_lossy())]
    IsDirectory(OsString),
    /// It is not an aarch64 Linux executable (or is corrupt).
    #[error("{}: {reason}", name.to_string_lossy())]
    NotRunnable {
        /// The name as given.
        name: OsString,
        /// What is wrong with it (part of the message, not a separate cause).
        reason: LoaderError,
    },
}

impl LaunchError {
    /// The exit status a shell would report for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            LaunchError::NotFound(_) => 127,
            _ => 126,
        }
    }
}

/// A program found and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The host path to load.
    pub path: PathBuf,
    /// The name the program is invoked by: the path as given, or the `PATH` match.
    pub invoked_as: OsString,
}

/// Finds `name` (on `PATH` if it has no slash) and checks that it can be run.
pub fn resolve(name: &OsStr) -> Result<Resolved, LaunchError> {
    let has_slash = name.as_encoded_bytes().contains(&b'/');
    let path = if has_slash || name.is_empty() {
        PathBuf::from(name)
    } else {
        which::which(name).map_err(|_| not_on_path(name))?
    };
    let invoked_as = if has_slash {
        name.to_owned()
    } else {
        path.clone().into_os_string()
    };
    check(&path, name)?;
    Ok(Resolved { path, invoked_as })
}

/// Why a `PATH` search found nothing runnable: like the shells' `execvp`, a file of that name
/// that may not be executed is "Permission denied" (126), and no file at all "not found" (127).
fn not_on_path(name: &OsStr) -> LaunchError {
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    let exists = std::env::split_paths(&dirs).any(|dir| {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        dir.join(name).is_file()
    });
    if exists {
        LaunchError::PermissionDenied(name.to_owned())
    } else {
        LaunchError::NotFound(name.to_owned())
    }
}

/// Checks that `path` is an executable aarch64 ELF file.
pub fn check(path: &Path, name: &OsStr) -> Result<(), LaunchError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => LaunchError::PermissionDenied(name.to_owned()),
        _ => LaunchError::NotFound(name.to_owned()),
    })?;
    if meta.is_dir() {
        return Err(LaunchError::IsDirectory(name.to_owned()));
    }
    if !executable(path) {
        return Err(LaunchError::PermissionDenied(name.to_owned()));
    }
    elf::probe(path).map_err(|source| match source {
        LoaderError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            LaunchError::PermissionDenied(name.to_owned())
        }
        reason => LaunchError::NotRunnable {
            name: name.to_owned(),
            reason,
        },
    })
}

/// Whether the current user may execute `path`.
fn executable(path: &Path) -> bool {
    nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn missing_programs_exit_127() {
        let err = resolve(OsStr::new("./definitely-not-here")).unwrap_err();
        assert_eq!(err.exit_code(), 127);
        assert_eq!(
            err.to_string(),
            "./definitely-not-here: No such file or directory"
        );
        let err = resolve(OsStr::new("no-such-command-elfuse-test")).unwrap_err();
        assert_eq!(err.exit_code(), 127);
    }

    #[test]
    fn unrunnable_files_exit_126_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script");
        std::fs::write(&script, b"#!/bin/sh\necho hi\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = resolve(script.as_os_str()).unwrap_err();
        assert_eq!(err.exit_code(), 126);
        assert!(err.to_string().ends_with("not an ELF executable"), "{err}");

        let err = resolve(dir.path().as_os_str()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: Is a directory", dir.path().display())
        );
    }
}
