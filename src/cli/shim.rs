//! `elfuse shim ...`, and running a shim (elfuse started under another name).
//!
//! ```text
//! elfuse shim add [--local] PATH...   shim a Linux program, or every one in a directory
//! elfuse shim rm [--local] NAME...    remove shims
//! elfuse shim ls [--local]            NAME<TAB>PROGRAM, one per line
//! elfuse shim rehash [--local]        re-point every shim at this elfuse binary
//! elfuse shim dir [--local]           the folder to put on PATH
//! elfuse shim trust|untrust [DIR]     let DIR/.elfuse/shims be used (or stop)
//! ```
//!
//! `--local` means the current directory's folder (`.elfuse/shims`) instead of the global
//! one. Results go to stdout; failures are one line on stderr with status 1 (2 for a bad
//! command line). A shim that cannot be run exits 127 (no such shim) or 126 (untrusted, or a
//! shim of elfuse itself), like a shell for a program it cannot find or run.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{Failure, RunArgs, SharedStderr, Status};
use crate::kernel;
use crate::launcher::config::Dirs;
use crate::launcher::shim::{self, ShimError, ShimFolder};

/// Options of `elfuse shim`.
#[derive(Args, Debug)]
pub(super) struct ShimArgs {
    #[command(subcommand)]
    command: ShimCommand,
}

#[derive(Subcommand, Debug)]
enum ShimCommand {
    /// Make shims for Linux programs: each PATH is a program or a directory of them.
    Add {
        /// Use the current directory's folder (and trust the directory).
        #[arg(long)]
        local: bool,
        /// Programs or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Remove shims.
    Rm {
        /// Use the current directory's folder.
        #[arg(long)]
        local: bool,
        /// Shim names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// List shims: name, a tab, the program.
    Ls {
        /// Use the current directory's folder.
        #[arg(long)]
        local: bool,
    },
    /// Point every shim at this elfuse binary, and drop links without a record.
    Rehash {
        /// Use the current directory's folder.
        #[arg(long)]
        local: bool,
    },
    /// Print the folder to put on PATH.
    Dir {
        /// Use the current directory's folder.
        #[arg(long)]
        local: bool,
    },
    /// Let DIR's shim folder be used (default: the current directory).
    Trust {
        /// The directory.
        dir: Option<PathBuf>,
    },
    /// Stop using DIR's shim folder.
    Untrust {
        /// The directory.
        dir: Option<PathBuf>,
    },
}

/// A failed operation: status 1.
fn failed(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        error: error.into(),
        code: 1,
    }
}

fn say(line: impl std::fmt::Display) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn folder(dirs: &Dirs, local: bool) -> Result<ShimFolder, Failure> {
    if local {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        Ok(ShimFolder::local(&cwd))
    } else {
        Ok(ShimFolder::global(dirs))
    }
}

fn canonical_dir(dir: Option<PathBuf>) -> Result<PathBuf, Failure> {
    let dir = match dir {
        Some(dir) => dir,
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    std::fs::canonicalize(&dir)
        .with_context(|| dir.display().to_string())
        .map_err(failed)
}

/// Runs an `elfuse shim` command.
pub(super) fn run(args: ShimArgs) -> Result<Status, Failure> {
    let dirs = Dirs::from_env().map_err(failed)?;
    match args.command {
        ShimCommand::Add { local, paths } => {
            let folder = folder(&dirs, local)?;
            let elfuse = super::hooks::this_elfuse()?;
            if local {
                shim::set_trusted(&dirs, &canonical_dir(None)?, true).map_err(failed)?;
            }
            for path in paths {
                for (name, program) in shim::programs(&path).map_err(failed)? {
                    folder.add(&name, &program, &elfuse).map_err(failed)?;
                    say(format_args!("{name}\t{}", program.display()));
                }
            }
        }
        ShimCommand::Rm { local, names } => {
            let folder = folder(&dirs, local)?;
            for name in names {
                folder.remove(&name).map_err(failed)?;
            }
        }
        ShimCommand::Ls { local } => {
            for shim in folder(&dirs, local)?.list().map_err(failed)? {
                let missing = if shim.target.exists() {
                    ""
                } else {
                    "  (missing)"
                };
                say(format_args!(
                    "{}\t{}{missing}",
                    shim.name,
                    shim.target.display()
                ));
            }
        }
        ShimCommand::Rehash { local } => {
            let elfuse = super::hooks::this_elfuse()?;
            folder(&dirs, local)?.rehash(&elfuse).map_err(failed)?;
        }
        ShimCommand::Dir { local } => say(folder(&dirs, local)?.bin().display()),
        ShimCommand::Trust { dir } => {
            shim::set_trusted(&dirs, &canonical_dir(dir)?, true).map_err(failed)?;
        }
        ShimCommand::Untrust { dir } => {
            shim::set_trusted(&dirs, &canonical_dir(dir)?, false).map_err(failed)?;
        }
    }
    Ok(Status::Exit(0))
}

/// Whether elfuse was started under a name that is not its own (a shim): an `argv[0]` whose
/// file name does not start with `elfuse`. elfuse starting itself again (a guest fork handed
/// over to a new process runs `/proc/self/exe internal-handover`) is not a shim.
pub(super) fn started_as_shim(argv0: &OsString, argv1: Option<&OsString>) -> bool {
    if argv0 == "/proc/self/exe" || argv1.is_some_and(|a| a == kernel::handover::SUBCOMMAND) {
        return false;
    }
    Path::new(argv0)
        .file_name()
        .is_some_and(|name| !name.as_encoded_bytes().starts_with(b"elfuse"))
}

/// Runs the shim elfuse was started as, with the arguments after `argv[0]`.
pub(super) fn run_shim(
    argv0: OsString,
    args: Vec<OsString>,
    stderr: &SharedStderr,
) -> Result<Status, Failure> {
    let dirs = Dirs::from_env().map_err(failed)?;
    let code = |e: &ShimError| match e {
        ShimError::NoSuchShim(_) => 127,
        _ => 126,
    };
    let found = shim::find(&dirs, &argv0).map_err(|e| Failure {
        code: code(&e),
        error: e.into(),
    })?;
    let elfuse = super::hooks::this_elfuse()?;
    shim::check_not_elfuse(&found, &elfuse).map_err(|e| Failure {
        code: code(&e),
        error: e.into(),
    })?;
    let name = Path::new(&argv0).file_name().unwrap_or_default().to_owned();
    let mut command = vec![found.target.into_os_string()];
    command.extend(args);
    let run = RunArgs {
        argv0: Some(name),
        command,
        ..RunArgs::default()
    };
    super::run(run, stderr)
}
