//! `elfuse init`, `elfuse install-hooks` and `elfuse uninstall-hooks`.
//!
//! ```text
//! elfuse init zsh|bash                                   print the hook script
//! elfuse install-hooks [--shell S]... [--binfmt] [--dry-run]
//! elfuse uninstall-hooks [--shell S]... [--binfmt] [--dry-run]
//! ```
//!
//! `install-hooks` without `--shell` installs for the shell `$SHELL` names; `uninstall-hooks`
//! without it removes the block from every start-up file that has one. `--dry-run` prints the
//! change as a unified diff and writes nothing. Reports go to stdout, one line per file;
//! failures are one line on stderr with status 1 (2 for a bad command line).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{Failure, Status};
use crate::launcher::binfmt;
use crate::launcher::config::Dirs;
use crate::launcher::hooks::{self, Homes, Shell};
use crate::launcher::rcfile::{self, RcFile};

/// Options of `elfuse init`.
#[derive(Args, Debug)]
pub(super) struct InitArgs {
    /// The shell to print the script for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Options of `elfuse install-hooks` and `elfuse uninstall-hooks`.
#[derive(Args, Debug)]
pub(super) struct InstallArgs {
    /// The shell whose start-up files change (repeatable; default for install: $SHELL's;
    /// for uninstall: every shell).
    #[arg(long, value_enum)]
    shell: Vec<Shell>,

    /// Also (un)register elfuse with the Linux kernel's binfmt_misc, so that aarch64 programs
    /// run through elfuse everywhere (Linux hosts only; needs root).
    #[arg(long)]
    binfmt: bool,

    /// The binfmt_misc entry's name (tests use their own, to leave the usual one alone).
    #[arg(long, value_name = "NAME", default_value = binfmt::NAME, hide = true)]
    binfmt_name: String,

    /// Show the changes as a diff and change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// A failed operation: status 1.
fn failed(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        error: error.into(),
        code: 1,
    }
}

/// Writes `text` to stdout; a closed stdout is not elfuse's failure.
fn say(text: impl std::fmt::Display) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// The elfuse binary the hooks should run: this one, by its real path.
pub(super) fn this_elfuse() -> Result<PathBuf, Failure> {
    let exe = std::env::current_exe().context("cannot find the elfuse binary")?;
    Ok(std::fs::canonicalize(&exe).unwrap_or(exe))
}

/// `elfuse init SHELL`.
pub(super) fn init(args: InitArgs) -> Result<Status, Failure> {
    let dirs = Dirs::from_env().map_err(failed)?;
    let script = hooks::init_script(args.shell, &this_elfuse()?, &dirs.data_dir).map_err(failed)?;
    let _ = std::io::stdout().lock().write_all(script.as_bytes());
    Ok(Status::Exit(0))
}

/// `elfuse install-hooks`.
pub(super) fn install(args: InstallArgs) -> Result<Status, Failure> {
    let homes = Homes::from_env().map_err(failed)?;
    let shells = if args.shell.is_empty() {
        let login = std::env::var_os("SHELL");
        vec![hooks::default_shell(login.as_deref()).map_err(failed)?]
    } else {
        args.shell.clone()
    };
    let elfuse = this_elfuse()?;
    for shell in shells {
        let body = hooks::block_lines(shell, &elfuse).map_err(failed)?;
        for path in homes.rc_files(shell) {
            let rc = RcFile::read(&path).map_err(failed)?;
            let new = rcfile::with_block(&path, &rc.text, &body).map_err(failed)?;
            change(
                &rc,
                &new,
                args.dry_run,
                "installed hooks in",
                "hooks already in",
            )?;
        }
    }
    if args.binfmt {
        let mut registration = binfmt::Registration::for_elfuse(&elfuse);
        registration.name = args.binfmt_name.clone();
        if args.dry_run {
            say(format_args!(
                "would register binfmt_misc entry {}: {}",
                registration.name,
                registration.register_line()
            ));
        } else {
            binfmt::register(&registration).map_err(failed)?;
            say(format_args!(
                "registered binfmt_misc entry {} for {}",
                registration.name,
                elfuse.display()
            ));
        }
    }
    Ok(Status::Exit(0))
}

/// `elfuse uninstall-hooks`.
pub(super) fn uninstall(args: InstallArgs) -> Result<Status, Failure> {
    let homes = Homes::from_env().map_err(failed)?;
    let shells = if args.shell.is_empty() {
        Shell::ALL.to_vec()
    } else {
        args.shell.clone()
    };
    for shell in shells {
        for path in homes.all_rc_files(shell) {
            let rc = RcFile::read(&path).map_err(failed)?;
            if let Some(new) = rcfile::without_block(&path, &rc.text).map_err(failed)? {
                change(&rc, &new, args.dry_run, "removed hooks from", "")?;
            }
        }
    }
    if args.binfmt {
        let name = args.binfmt_name.as_str();
        if args.dry_run {
            say(format_args!("would unregister binfmt_misc entry {name}"));
        } else if binfmt::unregister(name).map_err(failed)? {
            say(format_args!("unregistered binfmt_misc entry {name}"));
        }
    }
    Ok(Status::Exit(0))
}

/// Writes `new` over the start-up file (or shows the diff), and says what happened.
fn change(
    rc: &RcFile,
    new: &str,
    dry_run: bool,
    done: &str,
    unchanged: &str,
) -> Result<(), Failure> {
    if new == rc.text {
        if !unchanged.is_empty() {
            say(format_args!("{unchanged} {}", rc.path.display()));
        }
        return Ok(());
    }
    if dry_run {
        let name = rc.path.display().to_string();
        let diff = similar::TextDiff::from_lines(rc.text.as_str(), new);
        let shown = diff.unified_diff().header(&name, &name).to_string();
        let _ = std::io::stdout().lock().write_all(shown.as_bytes());
        return Ok(());
    }
    rc.save(new).map_err(failed)?;
    say(format_args!("{done} {}", rc.path.display()));
    Ok(())
}
