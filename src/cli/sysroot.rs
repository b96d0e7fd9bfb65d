//! `elfuse sysroot ...`: managing sysroots and explaining which one a program gets.
//!
//! ```text
//! elfuse sysroot list                    the configured sysroots, the default, problems
//! elfuse sysroot add NAME DIR|TARBALL    record a directory, or unpack a root file system
//! elfuse sysroot remove NAME             forget it (and delete it, if elfuse unpacked it)
//! elfuse sysroot default NAME            make it the default
//! elfuse sysroot which [--sysroot S] PROG   which sysroot PROG runs with, and why
//! elfuse sysroot trust [DIR]             let the nearest .elfuse.toml take effect
//! elfuse sysroot untrust [DIR]           stop trusting it
//! elfuse sysroot volume [--size SIZE]    macOS: a case-sensitive volume for sysroots
//! ```
//!
//! Results go to stdout; failures are one line on stderr with status 1 (2 for a bad command
//! line, from clap). `docs/config.md` describes the files these commands change.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};

use super::{Failure, SharedStderr, Status};
use crate::launcher::case::{self, CaseProbe, HostProbe};
use crate::launcher::config::{Config, Dirs, check_dir};
use crate::launcher::edit::{ConfigEdit, check_name};
use crate::launcher::local::{LOCAL_FILE, LocalFile};
use crate::launcher::sysroot::{Decision, Request, choose, unconfigured_message};
use crate::launcher::unpack::unpack;
use crate::launcher::{self, volume};
use crate::loader::elf;

/// Options of `elfuse sysroot`.
#[derive(Args, Debug)]
pub(super) struct SysrootArgs {
    #[command(subcommand)]
    command: SysrootCommand,
}

#[derive(Subcommand, Debug)]
enum SysrootCommand {
    /// List the configured sysroots (* marks the default) and any problem with them.
    List,
    /// Add a sysroot: a directory (recorded by its absolute path) or a root file system
    /// tarball (.tar, .tar.gz, .tgz, .tar.xz, .txz), unpacked into elfuse's data directory.
    Add {
        /// The name to give it.
        name: String,
        /// A directory or a tarball.
        path: PathBuf,
    },
    /// Remove a sysroot from the configuration; delete its files only if elfuse unpacked them.
    Remove {
        /// The sysroot's name.
        name: String,
    },
    /// Make a sysroot the default.
    Default {
        /// The sysroot's name.
        name: String,
    },
    /// Tell which sysroot a program runs with, and which rule chose it.
    Which {
        /// Ask as if this --sysroot were given.
        #[arg(long, value_name = "NAME|DIR")]
        sysroot: Option<OsString>,
        /// The program (looked up on PATH without a slash).
        prog: OsString,
    },
    /// Trust the nearest .elfuse.toml in DIR or above, as it is now.
    Trust {
        /// Where to look (default: the current directory).
        dir: Option<PathBuf>,
    },
    /// Stop trusting the nearest .elfuse.toml in DIR or above.
    Untrust {
        /// Where to look (default: the current directory).
        dir: Option<PathBuf>,
    },
    /// Create and mount a case-sensitive APFS disk image for sysroots (macOS only).
    Volume {
        /// The image's maximum size, as hdiutil reads sizes.
        #[arg(long, default_value = "20g")]
        size: String,
    },
}

/// A failed operation: status 1.
fn failed(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        error: error.into(),
        code: 1,
    }
}

/// Writes `line` to stdout; a closed stdout is not elfuse's failure.
fn say(line: impl std::fmt::Display) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Runs an `elfuse sysroot` command.
pub(super) fn run(args: SysrootArgs, stderr: &SharedStderr) -> Result<Status, Failure> {
    let dirs = Dirs::from_env().map_err(failed)?;
    let warn = |line: &dyn std::fmt::Display| {
        let mut err = stderr.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(err, "elfuse: {line}");
    };
    match args.command {
        SysrootCommand::List => list(&dirs),
        SysrootCommand::Add { name, path } => add(&dirs, &name, &path, &HostProbe, &warn),
        SysrootCommand::Remove { name } => remove(&dirs, &name),
        SysrootCommand::Default { name } => set_default(&dirs, &name),
        SysrootCommand::Which { sysroot, prog } => which(&dirs, sysroot, &prog, &warn),
        SysrootCommand::Trust { dir } => trust(&dirs, dir, true),
        SysrootCommand::Untrust { dir } => trust(&dirs, dir, false),
        SysrootCommand::Volume { size } => {
            let made = volume::make_volume(&dirs, &size).map_err(failed)?;
            let verb = if made.created { "created" } else { "found" };
            say(format_args!(
                "{verb} {} and mounted it on {}",
                made.image.display(),
                made.mount_point.display()
            ));
            Ok(Status::Exit(0))
        }
    }
}

fn list(dirs: &Dirs) -> Result<Status, Failure> {
    let config = Config::load(dirs).map_err(failed)?;
    if config.sysroots.is_empty() {
        say("no sysroots configured; add one with 'elfuse sysroot add NAME DIR|TARBALL'");
        return Ok(Status::Exit(0));
    }
    let width = config.sysroots.keys().map(String::len).max().unwrap_or(0);
    for (name, sysroot) in &config.sysroots {
        let mark = if config.default.as_deref() == Some(name) {
            '*'
        } else {
            ' '
        };
        let problem = match check_dir(&sysroot.path) {
            Ok(()) => String::new(),
            Err(problem) => format!("  ({problem})"),
        };
        say(format_args!(
            "{mark} {name:width$}  {}{problem}",
            sysroot.path.display()
        ));
    }
    Ok(Status::Exit(0))
}

fn add(
    dirs: &Dirs,
    name: &str,
    path: &Path,
    probe: &dyn CaseProbe,
    warn: &dyn Fn(&dyn std::fmt::Display),
) -> Result<Status, Failure> {
    let mut edit = ConfigEdit::open(dirs).map_err(failed)?;
    check_name(name).map_err(failed)?;
    if edit.config().sysroots.contains_key(name) {
        return Err(failed(anyhow!(
            "{}: sysroot \"{name}\" is already defined",
            dirs.config_file.display()
        )));
    }

    let meta = std::fs::metadata(path)
        .with_context(|| path.display().to_string())
        .map_err(failed)?;
    let (root, unpacked) = if meta.is_dir() {
        let root = std::fs::canonicalize(path)
            .with_context(|| path.display().to_string())
            .map_err(failed)?;
        check_tree_case(&root, probe, warn)?;
        (root, false)
    } else {
        // A file without a tarball suffix is refused with a message naming the accepted ones.
        let dest = dirs.sysroots_dir().join(name);
        let done = unpack(path, &dest, probe).map_err(failed)?;
        let skipped = match done.skipped {
            0 => String::new(),
            n => format!(" (skipped {n} device nodes and FIFOs)"),
        };
        say(format_args!(
            "unpacked {} entries into {}{skipped}",
            done.members,
            dest.display()
        ));
        (dest, true)
    };

    let saved = edit
        .add(name, &root)
        .and_then(|became| edit.save().map(|()| became));
    let became_default = match saved {
        Ok(became) => became,
        Err(e) => {
            if unpacked {
                let _ = std::fs::remove_dir_all(&root);
            }
            return Err(failed(e));
        }
    };
    let default = if became_default { " (the default)" } else { "" };
    say(format_args!(
        "added sysroot {name} at {}{default}",
        root.display()
    ));
    Ok(Status::Exit(0))
}

/// Refuses a directory whose names would collide on the case-insensitive file system it is
/// on; warns that such a file system may already have merged some.
fn check_tree_case(
    root: &Path,
    probe: &dyn CaseProbe,
    warn: &dyn Fn(&dyn std::fmt::Display),
) -> Result<(), Failure> {
    let ignores_case = probe
        .case_insensitive(root)
        .with_context(|| format!("cannot probe {}", root.display()))
        .map_err(failed)?;
    if !ignores_case {
        return Ok(());
    }
    let collision = case::tree_collision(root)
        .with_context(|| root.display().to_string())
        .map_err(failed)?;
    if let Some(collision) = collision {
        return Err(failed(anyhow!(
            "{}: {collision} differ only in case on a case-insensitive file system; {}",
            root.display(),
            case::advice()
        )));
    }
    warn(&format_args!(
        "warning: {} is on a case-insensitive file system, where a Linux tree can lose files \
         whose names differ only in case; {}",
        root.display(),
        case::advice()
    ));
    Ok(())
}

fn remove(dirs: &Dirs, name: &str) -> Result<Status, Failure> {
    let mut edit = ConfigEdit::open(dirs).map_err(failed)?;
    let path = edit
        .config()
        .sysroots
        .get(name)
        .map(|s| s.path.clone())
        .unwrap_or_default();
    let was_default = edit.remove(name).map_err(failed)?;
    edit.save().map_err(failed)?;
    say(format_args!(
        "removed sysroot {name} from {}",
        dirs.config_file.display()
    ));
    if was_default {
        say("it was the default; there is no default sysroot now");
    }

    if unpacked_by_elfuse(dirs, name, &path) {
        std::fs::remove_dir_all(&path)
            .with_context(|| format!("cannot delete {}", path.display()))
            .map_err(failed)?;
        say(format_args!("deleted {}", path.display()));
    } else {
        say(format_args!(
            "left {} in place (elfuse did not unpack it)",
            path.display()
        ));
    }
    Ok(Status::Exit(0))
}

/// Whether `path` is the directory `sysroot add` unpacks sysroot `name` into.
fn unpacked_by_elfuse(dirs: &Dirs, name: &str, path: &Path) -> bool {
    let (Ok(real), Ok(ours)) = (
        std::fs::canonicalize(path),
        std::fs::canonicalize(dirs.sysroots_dir()),
    ) else {
        return false;
    };
    real == ours.join(name)
}

fn set_default(dirs: &Dirs, name: &str) -> Result<Status, Failure> {
    let mut edit = ConfigEdit::open(dirs).map_err(failed)?;
    edit.set_default(name).map_err(failed)?;
    edit.save().map_err(failed)?;
    say(format_args!("default sysroot: {name}"));
    Ok(Status::Exit(0))
}

fn which(
    dirs: &Dirs,
    cli: Option<OsString>,
    prog: &std::ffi::OsStr,
    warn: &dyn Fn(&dyn std::fmt::Display),
) -> Result<Status, Failure> {
    let program = launcher::resolve(prog).map_err(failed)?;
    let interpreter = elf::interpreter(&program.path)
        .with_context(|| prog.to_string_lossy().into_owned())
        .map_err(failed)?;
    let cwd = std::env::current_dir()
        .context("cannot read the current directory")
        .map_err(failed)?;
    let env = std::env::var_os("ELFUSE_SYSROOT");
    let request = Request {
        cli: cli.as_deref(),
        env: env.as_deref(),
        program: &program.path,
        interpreter: interpreter.as_deref(),
        cwd: &cwd,
    };
    let selection = choose(&request, dirs).map_err(failed)?;
    for notice in &selection.notices {
        warn(notice);
    }

    let mut lines = vec![format!("program: {}", program.path.display())];
    lines.push(match &interpreter {
        Some(interp) => format!("interpreter: {}", String::from_utf8_lossy(interp)),
        None => "interpreter: none (statically linked)".to_string(),
    });
    match selection.decision {
        Decision::Static => lines.push("sysroot: none needed".to_string()),
        Decision::Chosen(choice) => {
            if let Some(name) = &choice.name {
                lines.push(format!("sysroot: {name}"));
            }
            lines.push(format!("path: {}", choice.path.display()));
            lines.push(format!("chosen by: {}", choice.reason));
        }
        Decision::Unconfigured => {
            let interp = interpreter.as_deref().unwrap_or_default();
            return Err(failed(anyhow!(
                "{}: {}",
                prog.to_string_lossy(),
                unconfigured_message(interp)
            )));
        }
    }
    for line in lines {
        say(line);
    }
    Ok(Status::Exit(0))
}

fn trust(dirs: &Dirs, dir: Option<PathBuf>, trusting: bool) -> Result<Status, Failure> {
    let cwd = std::env::current_dir()
        .context("cannot read the current directory")
        .map_err(failed)?;
    let dir = cwd.join(dir.unwrap_or_default());
    let file = LocalFile::find(&dir).map_err(failed)?.ok_or_else(|| {
        failed(anyhow!(
            "no {LOCAL_FILE} in {} or its parent directories",
            dir.display()
        ))
    })?;
    if trusting {
        file.setting().map_err(failed)?;
        file.trust(dirs).map_err(failed)?;
        say(format_args!("trusted {}", file.path.display()));
    } else if file.untrust(dirs).map_err(failed)? {
        say(format_args!("no longer trusting {}", file.path.display()));
    } else {
        say(format_args!("{} was not trusted", file.path.display()));
    }
    Ok(Status::Exit(0))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A probe that reports every directory as case-insensitive, as macOS' default volume is.
    struct IgnoresCase;

    impl CaseProbe for IgnoresCase {
        fn case_insensitive(&self, _dir: &Path) -> std::io::Result<bool> {
            Ok(true)
        }
    }

    #[test]
    fn a_directory_with_case_twins_on_a_case_insensitive_volume_is_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("usr/share/X11")).unwrap();
        std::fs::create_dir_all(root.path().join("usr/share/x11")).unwrap();
        let warnings = RefCell::new(Vec::new());
        let warn = |line: &dyn std::fmt::Display| warnings.borrow_mut().push(line.to_string());

        let failure = check_tree_case(root.path(), &IgnoresCase, &warn)
            .err()
            .unwrap();
        assert_eq!(failure.code, 1);
        assert_eq!(
            failure.error.to_string(),
            format!(
                "{}: usr/share/X11 and usr/share/x11 differ only in case on a case-insensitive \
                 file system; {}",
                root.path().display(),
                case::advice()
            )
        );

        std::fs::remove_dir(root.path().join("usr/share/X11")).unwrap();
        assert!(check_tree_case(root.path(), &IgnoresCase, &warn).is_ok());
        assert_eq!(warnings.borrow().len(), 1);
        assert!(warnings.borrow()[0].starts_with("warning: "));
        // Linux's file systems keep case: no warning there.
        #[cfg(target_os = "linux")]
        {
            assert!(check_tree_case(root.path(), &HostProbe, &warn).is_ok());
            assert_eq!(warnings.borrow().len(), 1);
        }
    }
}
