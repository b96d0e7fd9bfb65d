//! Choosing the sysroot a program runs against.
//!
//! [`choose`] is what both the runtime and `elfuse sysroot which` call. The first source that
//! says anything wins:
//!
//! 1. `--sysroot VALUE`,
//! 2. `ELFUSE_SYSROOT=VALUE` (empty counts as unset),
//! 3. the nearest `.elfuse.toml`, if trusted (an untrusted one yields a [`Notice`]),
//! 4. the first matching `[[rules]]` entry of the configuration file,
//! 5. its `default`.
//!
//! A VALUE (or a `.elfuse.toml` setting) is a path when it contains `/`; otherwise it is a
//! configured sysroot name, or else a directory of that name (relative to the current
//! directory, or to the `.elfuse.toml`). Anything else is an error that names it.
//!
//! A static program (no `PT_INTERP`) needs no sysroot: only `--sysroot` and `ELFUSE_SYSROOT`
//! are honoured for it, since it may exec dynamic programs or expect the sysroot's files; the
//! other sources are not even read, so a broken configuration never stops a static program.
//!
//! Limitations: the chosen path is absolute but not canonicalised; the caller resolves
//! symlinks if it needs to.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::config::{self, Config, ConfigError, Dirs, check_dir};
use super::local::{LocalFile, Notice};

/// What is known about the program being started.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The `--sysroot` value, if given.
    pub cli: Option<&'a OsStr>,
    /// The `ELFUSE_SYSROOT` value, if set.
    pub env: Option<&'a OsStr>,
    /// The program's host path (absolute, or relative to `cwd`).
    pub program: &'a Path,
    /// Its `PT_INTERP`, if dynamically linked.
    pub interpreter: Option<&'a [u8]>,
    /// The current directory (absolute), where `.elfuse.toml` is looked for.
    pub cwd: &'a Path,
}

/// A chosen sysroot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// Its configured name, when chosen by name.
    pub name: Option<String>,
    /// Its directory (absolute; checked to be a directory).
    pub path: PathBuf,
    /// Which source chose it.
    pub reason: Reason,
}

/// Which source chose a sysroot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `--sysroot`.
    Cli,
    /// `ELFUSE_SYSROOT`.
    Env,
    /// A trusted `.elfuse.toml`.
    Local(PathBuf),
    /// A rule of the configuration file.
    Rule {
        /// The configuration file.
        file: PathBuf,
        /// The rule's number (1-based, in file order).
        number: usize,
        /// What it matched on, as written: `interpreter X`, `path Y` or both.
        matched: String,
    },
    /// The configuration file's `default`.
    Default(PathBuf),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Cli => f.write_str("--sysroot"),
            Reason::Env => f.write_str("ELFUSE_SYSROOT"),
            Reason::Local(file) => write!(f, "{}", file.display()),
            Reason::Rule {
                file,
                number,
                matched,
            } => write!(f, "rule {number} in {} ({matched})", file.display()),
            Reason::Default(file) => write!(f, "default in {}", file.display()),
        }
    }
}

/// The outcome of [`choose`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The program is static and no sysroot was asked for: it runs without one.
    Static,
    /// This sysroot.
    Chosen(Choice),
    /// The program is dynamic and nothing chooses a sysroot for it.
    Unconfigured,
}

/// A decision and what to tell the user about it (print each notice as one line on stderr).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The decision.
    pub decision: Decision,
    /// Things the user should hear about, such as an ignored untrusted `.elfuse.toml`.
    pub notices: Vec<Notice>,
}

/// The message for a dynamic program with no sysroot.
pub fn unconfigured_message(interpreter: &[u8]) -> String {
    format!(
        "dynamically linked (interpreter {}) and no sysroot is configured; add one with \
         'elfuse sysroot add NAME DIR|TARBALL' or pass --sysroot DIR",
        String::from_utf8_lossy(interpreter)
    )
}

/// Chooses the sysroot for `req`, reading the files `dirs` names only as far as needed.
pub fn choose(req: &Request, dirs: &Dirs) -> Result<Selection, ConfigError> {
    let mut config = Lazy { dirs, config: None };
    let mut notices = Vec::new();

    let explicit = [
        (req.cli, "--sysroot", Reason::Cli),
        (
            req.env.filter(|v| !v.is_empty()),
            "ELFUSE_SYSROOT",
            Reason::Env,
        ),
    ];
    for (value, origin, reason) in explicit {
        if let Some(value) = value {
            let (name, path) = from_request(origin, value, req.cwd, &mut config)?;
            let choice = Choice { name, path, reason };
            return Ok(Selection {
                decision: Decision::Chosen(choice),
                notices,
            });
        }
    }

    let Some(interpreter) = req.interpreter else {
        return Ok(Selection {
            decision: Decision::Static,
            notices,
        });
    };

    if let Some(local) = LocalFile::find(req.cwd)? {
        if local.is_trusted(dirs)? {
            let (name, path) = from_local(&local, &mut config)?;
            let reason = Reason::Local(local.path);
            return Ok(Selection {
                decision: Decision::Chosen(Choice { name, path, reason }),
                notices,
            });
        }
        notices.push(Notice::Untrusted { file: local.path });
    }

    let config = config.get()?;
    let program = config::normalize(&req.cwd.join(req.program));
    let named = if let Some((number, rule)) = config.matching_rule(&program, interpreter) {
        let mut matched = Vec::new();
        if let Some(interp) = &rule.interpreter {
            matched.push(format!("interpreter {interp}"));
        }
        if let Some((_, written)) = &rule.path {
            matched.push(format!("path {written}"));
        }
        let reason = Reason::Rule {
            file: config.file.clone(),
            number,
            matched: matched.join(", "),
        };
        Some((rule.sysroot.clone(), reason))
    } else {
        config
            .default
            .clone()
            .map(|name| (name, Reason::Default(config.file.clone())))
    };
    let decision = match named {
        Some((name, reason)) => {
            let path = config.usable(&name)?.path.clone();
            tracing::debug!("sysroot {name} at {} chosen by {reason}", path.display());
            Decision::Chosen(Choice {
                name: Some(name),
                path,
                reason,
            })
        }
        None => Decision::Unconfigured,
    };
    Ok(Selection { decision, notices })
}

/// The configuration file, read on first use.
struct Lazy<'a> {
    dirs: &'a Dirs,
    config: Option<Config>,
}

impl Lazy<'_> {
    fn get(&mut self) -> Result<&Config, ConfigError> {
        if self.config.is_none() {
            self.config = Some(Config::load(self.dirs)?);
        }
        Ok(self.config.as_ref().expect("just loaded"))
    }
}

/// A sysroot named or located by a `--sysroot` or `ELFUSE_SYSROOT` value.
fn from_request(
    origin: &'static str,
    value: &OsStr,
    cwd: &Path,
    config: &mut Lazy,
) -> Result<(Option<String>, PathBuf), ConfigError> {
    let shown = value.to_string_lossy().into_owned();
    let bad = |problem: String| ConfigError::BadRequest {
        origin,
        value: shown.clone(),
        problem,
    };
    if value.is_empty() {
        return Err(bad("empty value".to_string()));
    }

    let home = config.dirs.home.clone();
    let path = match classify(value, cwd, home.as_deref(), config)? {
        Located::Named(name, path) => return Ok((Some(name), path)),
        Located::Path(path) => path,
        Located::Unknown(file) => {
            return Err(bad(format!(
                "no sysroot of that name in {} and no such directory",
                file.display()
            )));
        }
    };
    check_dir(&path).map_err(|problem| bad(problem.to_string()))?;
    Ok((None, path))
}

/// A sysroot named or located by the `sysroot` value of a `.elfuse.toml`.
fn from_local(
    local: &LocalFile,
    config: &mut Lazy,
) -> Result<(Option<String>, PathBuf), ConfigError> {
    let setting = local.setting()?;
    let home = config.dirs.home.clone();
    let value = OsStr::new(&setting.sysroot);
    let path = match classify(value, local.dir(), home.as_deref(), config)? {
        Located::Named(name, path) => return Ok((Some(name), path)),
        Located::Path(path) => path,
        Located::Unknown(file) => {
            let message = format!(
                "sysroot \"{}\" is neither defined in {} nor a directory",
                setting.sysroot,
                file.display()
            );
            return Err(config::invalid(&local.path, setting.line, message));
        }
    };
    check_dir(&path).map_err(|problem| ConfigError::Unusable {
        file: local.path.clone(),
        line: setting.line,
        label: format!("\"{}\"", setting.sysroot),
        path: path.clone(),
        problem,
    })?;
    Ok((None, path))
}

/// What a sysroot value refers to.
enum Located {
    /// A configured sysroot, checked usable.
    Named(String, PathBuf),
    /// A directory path (not yet checked).
    Path(PathBuf),
    /// Neither a configured name nor an existing directory; carries the configuration file.
    Unknown(PathBuf),
}

fn classify(
    value: &OsStr,
    base: &Path,
    home: Option<&Path>,
    config: &mut Lazy,
) -> Result<Located, ConfigError> {
    let as_path = || match value.to_str() {
        Some(text) if text.starts_with('~') => config::expand(text, base, home)
            .unwrap_or_else(|_| config::normalize(&base.join(value))),
        _ => config::normalize(&base.join(value)),
    };
    if value.as_bytes().contains(&b'/') {
        return Ok(Located::Path(as_path()));
    }

    let config = config.get()?;
    if let Some(name) = value.to_str().filter(|n| config.sysroots.contains_key(*n)) {
        let path = config.usable(name)?.path.clone();
        return Ok(Located::Named(name.to_string(), path));
    }
    let path = as_path();
    if path.is_dir() {
        Ok(Located::Path(path))
    } else {
        Ok(Located::Unknown(config.file.clone()))
    }
}

#[cfg(test)]
mod tests;
