//! `elfuse doctor`: what elfuse will do on this host and what is set up, with a fix for every
//! problem found; and `elfuse completions SHELL`.
//!
//! The report is one `topic: finding` line per check (backend, entitlement, hooks per shell,
//! shims, sysroots, binfmt_misc), then the problems, each with the command that fixes it.
//! Exit status: 0 when nothing is wrong, 1 when a problem was found.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{Failure, Status};
use crate::launcher::config::{Config, Dirs, check_dir};
use crate::launcher::hooks::{Homes, Shell};
use crate::launcher::shim::ShimFolder;
use crate::launcher::{binfmt, rcfile};
use crate::vm::{self, BackendKind};

/// Options of `elfuse completions`.
#[derive(Args, Debug)]
pub(super) struct CompletionsArgs {
    /// The shell to print completions for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Prints the completion script for `args.shell`.
pub(super) fn completions(args: CompletionsArgs, mut command: clap::Command) -> Status {
    let mut out = Vec::new();
    if args.shell == clap_complete::Shell::Bash {
        // clap_complete fills COMPREPLY from unquoted $(compgen ...) on purpose: the
        // candidates are meant to be split into words.
        out.extend_from_slice(
            b"# shellcheck shell=bash disable=SC2207 # candidates are split on purpose\n",
        );
    }
    clap_complete::generate(args.shell, &mut command, "elfuse", &mut out);
    let _ = std::io::stdout().lock().write_all(&out);
    Status::Exit(0)
}

/// Something wrong, and how to fix it.
struct Problem {
    what: String,
    fix: String,
}

fn say(line: impl std::fmt::Display) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Runs `elfuse doctor`.
pub(super) fn doctor() -> Result<Status, Failure> {
    let mut problems = Vec::new();
    let elfuse = super::hooks::this_elfuse()?;

    backend(&mut problems);
    entitlement(&elfuse, &mut problems);
    match Homes::from_env() {
        Ok(homes) => hooks(&homes, &elfuse, &mut problems),
        Err(e) => problems.push(Problem {
            what: format!("hooks: {e}"),
            fix: "set HOME".to_string(),
        }),
    }
    match Dirs::from_env() {
        Ok(dirs) => {
            shims(&dirs, &elfuse, &mut problems);
            sysroots(&dirs, &mut problems);
        }
        Err(e) => problems.push(Problem {
            what: e.to_string(),
            fix: "set HOME or XDG_CONFIG_HOME and XDG_DATA_HOME".to_string(),
        }),
    }
    binfmt_entry(&elfuse, &mut problems);

    if problems.is_empty() {
        say("problems: none");
        return Ok(Status::Exit(0));
    }
    say(format_args!("problems: {}", problems.len()));
    for problem in &problems {
        say(format_args!("- {}\n  fix: {}", problem.what, problem.fix));
    }
    Ok(Status::Exit(1))
}

fn backend(problems: &mut Vec<Problem>) {
    let hvf = vm::select_backend(BackendKind::Hvf);
    let chosen = vm::select_backend(BackendKind::Auto);
    match (chosen, hvf) {
        (Ok(backend), Ok(_)) => say(format_args!("backend: {}", backend.name())),
        (Ok(backend), Err(why)) => say(format_args!("backend: {} ({why})", backend.name())),
        (Err(e), _) => {
            say(format_args!("backend: none ({e})"));
            problems.push(Problem {
                what: format!("no CPU backend: {e}"),
                fix: "rebuild elfuse with `cargo build --release --features emu`".to_string(),
            });
        }
    }
}

fn entitlement(elfuse: &Path, problems: &mut Vec<Problem>) {
    if !cfg!(target_os = "macos") {
        say("entitlement: not needed on this host");
        return;
    }
    let out = std::process::Command::new("codesign")
        .args(["-d", "--entitlements", "-", "--xml"])
        .arg(elfuse)
        .output();
    let has = out.as_ref().is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout).contains("com.apple.security.hypervisor")
    });
    if has {
        say("entitlement: com.apple.security.hypervisor");
    } else {
        say("entitlement: missing");
        problems.push(Problem {
            what: format!("{} lacks the hypervisor entitlement", elfuse.display()),
            fix: format!(
                "codesign --force --sign - --entitlements entitlements.plist {}",
                elfuse.display()
            ),
        });
    }
}

fn hooks(homes: &Homes, elfuse: &Path, problems: &mut Vec<Problem>) {
    for shell in Shell::ALL {
        let mut found = Vec::new();
        for rc in homes.all_rc_files(shell) {
            let Ok(text) = std::fs::read_to_string(&rc) else {
                continue;
            };
            if rcfile::has_block(&text) {
                if !text.contains(&format!("'{}'", elfuse.display())) {
                    problems.push(Problem {
                        what: format!("the hooks in {} run another elfuse binary", rc.display()),
                        fix: format!("elfuse install-hooks --shell {}", shell.name()),
                    });
                }
                found.push(rc.display().to_string());
            }
        }
        let name = shell.name();
        if found.is_empty() {
            say(format_args!(
                "hooks: {name}: not installed (elfuse install-hooks --shell {name})"
            ));
        } else {
            say(format_args!(
                "hooks: {name}: installed in {}",
                found.join(", ")
            ));
        }
    }
    if let Some(version) = bash_version()
        && version < (4, 4)
    {
        say(format_args!(
            "hooks: bash {}.{} has no READLINE_LINE or command-not-found hook: typed \
             ./programs are not rewritten there; use shims ('elfuse shim add', with \
             'elfuse shim dir' on PATH)",
            version.0, version.1
        ));
    }
}

/// The version of the `bash` on `PATH`, if any.
fn bash_version() -> Option<(u32, u32)> {
    let out = std::process::Command::new("bash")
        .args(["-c", "echo ${BASH_VERSINFO[0]} ${BASH_VERSINFO[1]}"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace().map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

fn shims(dirs: &Dirs, elfuse: &Path, problems: &mut Vec<Problem>) {
    let folder = ShimFolder::global(dirs);
    let list = match folder.list() {
        Ok(list) => list,
        Err(e) => {
            problems.push(Problem {
                what: e.to_string(),
                fix: format!("check the permissions of {}", folder.root.display()),
            });
            return;
        }
    };
    let bin = folder.bin();
    let on_path =
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d == bin));
    let where_ = if on_path { "on PATH" } else { "not on PATH" };
    say(format_args!(
        "shims: {} in {} ({where_})",
        list.len(),
        bin.display()
    ));
    for shim in &list {
        if !shim.target.exists() {
            problems.push(Problem {
                what: format!("shim {}: {} is missing", shim.name, shim.target.display()),
                fix: format!("elfuse shim rm {}", shim.name),
            });
        }
        let link: PathBuf = bin.join(&shim.name);
        let points_here = std::fs::canonicalize(&link).ok().as_deref() == Some(elfuse);
        if !points_here {
            problems.push(Problem {
                what: format!("shim {} does not lead to {}", shim.name, elfuse.display()),
                fix: "elfuse shim rehash".to_string(),
            });
        }
    }
}

fn sysroots(dirs: &Dirs, problems: &mut Vec<Problem>) {
    let config = match Config::load(dirs) {
        Ok(config) => config,
        Err(e) => {
            say("sysroots: the configuration cannot be read");
            problems.push(Problem {
                what: e.to_string(),
                fix: format!("fix {} (see docs/config.md)", dirs.config_file.display()),
            });
            return;
        }
    };
    let default = config
        .default
        .as_deref()
        .map_or(String::new(), |d| format!(", default \"{d}\""));
    say(format_args!(
        "sysroots: {} configured{default}",
        config.sysroots.len()
    ));
    for (name, sysroot) in &config.sysroots {
        if let Err(problem) = check_dir(&sysroot.path) {
            problems.push(Problem {
                what: format!("sysroot {name}: {}: {problem}", sysroot.path.display()),
                fix: format!("elfuse sysroot remove {name}, or restore the directory"),
            });
        }
    }
}

fn binfmt_entry(elfuse: &Path, problems: &mut Vec<Problem>) {
    if !cfg!(target_os = "linux") {
        return;
    }
    match binfmt::status(binfmt::NAME) {
        None => say("binfmt_misc: not registered (sudo elfuse install-hooks --binfmt)"),
        Some(status) => {
            let interpreter = format!("interpreter {}\n", elfuse.display());
            if status.contains(&interpreter) {
                say(format_args!("binfmt_misc: {} registered", binfmt::NAME));
            } else {
                say(format_args!(
                    "binfmt_misc: {} registered for another binary",
                    binfmt::NAME
                ));
                problems.push(Problem {
                    what: format!("binfmt_misc entry {} runs another elfuse", binfmt::NAME),
                    fix: "sudo elfuse install-hooks --binfmt".to_string(),
                });
            }
        }
    }
}
