//! The sysroot configuration file, `$XDG_CONFIG_HOME/elfuse/config.toml`, and where elfuse
//! keeps its files.
//!
//! The file names sysroots, the default one and rules that pick one by the program's
//! interpreter (`PT_INTERP`) or by where the program lives; `docs/config.md` describes the
//! format. Reading it validates everything that does not depend on the file system: syntax,
//! unknown keys, rules and a default that name undefined sysroots. Whether a sysroot's
//! directory exists is checked only when that sysroot is chosen (or listed), so a stale entry
//! does not make the rest of the file unusable. Every error names the file and the line.
//!
//! `XDG_CONFIG_HOME` and `XDG_DATA_HOME` are honoured on every host when set to an absolute
//! path; otherwise the platform's directories apply (`~/.config` and `~/.local/share` on
//! Linux, `~/Library/Application Support` on macOS).
//!
//! Limitations: `~user/...` is not expanded (only `~` and `~/...`); paths in the file must be
//! valid UTF-8, as TOML strings are.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

/// The name of the file inside the configuration directory.
pub const CONFIG_FILE: &str = "config.toml";

/// Why the configuration (or a per-directory file, or a requested sysroot) cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// Neither the XDG variable nor the platform gives a directory.
    #[error("cannot tell where the {0} directory is: set {1} or HOME")]
    NoDirectory(&'static str, &'static str),
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The host error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has a key or value of the wrong kind.
    #[error("{}:{line}: {message}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// The line the problem is on (1-based).
        line: usize,
        /// The TOML parser's description.
        message: String,
    },
    /// A rule or the default names a sysroot that `[sysroots]` does not define.
    #[error("{}:{line}: {what} names sysroot \"{name}\", which is not defined", file.display())]
    Undefined {
        /// The file.
        file: PathBuf,
        /// The line of the name.
        line: usize,
        /// `rule N` or `default`.
        what: String,
        /// The undefined name.
        name: String,
    },
    /// A value is present but unusable (a rule that matches nothing, an unexpandable path).
    #[error("{}:{line}: {message}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The line of the value.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The chosen sysroot's directory is missing or is not a directory.
    #[error("{}:{line}: sysroot {label}: {}: {problem}", file.display(), path.display())]
    Unusable {
        /// The file that defines (or names) it.
        file: PathBuf,
        /// The line of its path or name.
        line: usize,
        /// Its name, quoted, or the value as written.
        label: String,
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: Problem,
    },
    /// No sysroot of that name is defined.
    #[error("{}: no sysroot named \"{name}\"", file.display())]
    NoSuchSysroot {
        /// The configuration file.
        file: PathBuf,
        /// The name.
        name: String,
    },
    /// A name that cannot be a sysroot name (it also names a directory).
    #[error("invalid sysroot name \"{0}\": use letters, digits, '.', '_' and '-'")]
    BadName(String),
    /// A path that TOML cannot hold.
    #[error("{}: not valid UTF-8, which the configuration file requires", .0.display())]
    NotUtf8(PathBuf),
    /// A `--sysroot` or `ELFUSE_SYSROOT` value that is neither a sysroot name nor a directory.
    #[error("{origin} {value}: {problem}")]
    BadRequest {
        /// `--sysroot` or `ELFUSE_SYSROOT`.
        origin: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong.
        problem: String,
    },
}

impl ConfigError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> ConfigError {
        ConfigError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What is wrong with a sysroot directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum Problem {
    /// Nothing exists at the path.
    #[error("No such file or directory")]
    Missing,
    /// Something other than a directory is there.
    #[error("Not a directory")]
    NotDirectory,
}

/// Checks that `path` is a directory (following symlinks).
pub fn check_dir(path: &Path) -> Result<(), Problem> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Problem::NotDirectory),
        Err(_) => Err(Problem::Missing),
    }
}

/// Where elfuse's configuration and data live; tests point these at scratch directories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirs {
    /// The configuration file (`$XDG_CONFIG_HOME/elfuse/config.toml`).
    pub config_file: PathBuf,
    /// elfuse's data directory (`$XDG_DATA_HOME/elfuse`): trust records, unpacked sysroots.
    pub data_dir: PathBuf,
    /// The home directory `~` expands to, if known.
    pub home: Option<PathBuf>,
}

impl Dirs {
    /// The directories for this user, from the XDG variables or the platform's defaults.
    pub fn from_env() -> Result<Dirs, ConfigError> {
        let config = xdg_dir("XDG_CONFIG_HOME")
            .or_else(dirs::config_dir)
            .ok_or(ConfigError::NoDirectory("configuration", "XDG_CONFIG_HOME"))?;
        let data = xdg_dir("XDG_DATA_HOME")
            .or_else(dirs::data_dir)
            .ok_or(ConfigError::NoDirectory("data", "XDG_DATA_HOME"))?;
        Ok(Dirs {
            config_file: config.join("elfuse").join(CONFIG_FILE),
            data_dir: data.join("elfuse"),
            home: dirs::home_dir(),
        })
    }

    /// Where trust records for `.elfuse.toml` files are kept.
    pub fn trust_dir(&self) -> PathBuf {
        self.data_dir.join("trust")
    }

    /// Where `elfuse sysroot add` unpacks tarballs.
    pub fn sysroots_dir(&self) -> PathBuf {
        self.data_dir.join("sysroots")
    }
}

/// An XDG base directory variable, if set to an absolute path (the specification says to
/// ignore relative ones).
fn xdg_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// The configuration file as read and validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    /// The default sysroot's name.
    pub default: Option<String>,
    /// The line of `default`.
    pub default_line: usize,
    /// The sysroots, by name.
    pub sysroots: BTreeMap<String, Sysroot>,
    /// The rules, in file order (the first match wins).
    pub rules: Vec<Rule>,
}

/// A named sysroot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sysroot {
    /// Its directory, `~` expanded and made absolute.
    pub path: PathBuf,
    /// The line of its `path`.
    pub line: usize,
}

/// One `[[rules]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The interpreter a program must have, exactly as in `PT_INTERP`.
    pub interpreter: Option<String>,
    /// The directory (or file) a program must be at or under, expanded, as written.
    pub path: Option<(PathBuf, String)>,
    /// The sysroot it chooses.
    pub sysroot: String,
    /// The line of `sysroot`.
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    default: Option<Spanned<String>>,
    #[serde(default)]
    sysroots: BTreeMap<String, RawSysroot>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSysroot {
    path: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    interpreter: Option<String>,
    path: Option<Spanned<String>>,
    sysroot: Spanned<String>,
}

impl Config {
    /// Reads the configuration file; a missing file is an empty configuration.
    pub fn load(dirs: &Dirs) -> Result<Config, ConfigError> {
        let file = &dirs.config_file;
        match std::fs::read_to_string(file) {
            Ok(text) => Config::parse(file, &text, dirs.home.as_deref()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config {
                file: file.clone(),
                ..Config::default()
            }),
            Err(e) => Err(ConfigError::io(file, e)),
        }
    }

    /// Parses and validates the text of `file`.
    pub fn parse(file: &Path, text: &str, home: Option<&Path>) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| syntax(file, text, &e))?;
        let base = file.parent().unwrap_or(Path::new("/"));
        let at = |span: Range<usize>| line_of(text, span.start);

        let mut sysroots = BTreeMap::new();
        for (name, entry) in raw.sysroots {
            let line = at(entry.path.span());
            let path = expand(entry.path.get_ref(), base, home)
                .map_err(|message| invalid(file, line, message))?;
            sysroots.insert(name, Sysroot { path, line });
        }

        let mut rules = Vec::new();
        for (index, rule) in raw.rules.into_iter().enumerate() {
            let rule_line = at(rule.span());
            let rule = rule.into_inner();
            let line = at(rule.sysroot.span());
            let sysroot = rule.sysroot.into_inner();
            if !sysroots.contains_key(&sysroot) {
                return Err(undefined(
                    file,
                    line,
                    format!("rule {}", index + 1),
                    sysroot,
                ));
            }
            if rule.interpreter.is_none() && rule.path.is_none() {
                let message = format!("rule {} has neither 'interpreter' nor 'path'", index + 1);
                return Err(invalid(file, rule_line, message));
            }
            let path = match rule.path {
                Some(written) => {
                    let line = at(written.span());
                    let written = written.into_inner();
                    let path = expand(&written, base, home).map_err(|m| invalid(file, line, m))?;
                    Some((path, written))
                }
                None => None,
            };
            rules.push(Rule {
                interpreter: rule.interpreter,
                path,
                sysroot,
                line,
            });
        }

        let (default, default_line) = match raw.default {
            Some(name) => {
                let line = at(name.span());
                let name = name.into_inner();
                if !sysroots.contains_key(&name) {
                    return Err(undefined(file, line, "default".into(), name));
                }
                (Some(name), line)
            }
            None => (None, 0),
        };

        Ok(Config {
            file: file.to_path_buf(),
            default,
            default_line,
            sysroots,
            rules,
        })
    }

    /// The sysroot called `name`, checked to be a directory.
    pub fn usable(&self, name: &str) -> Result<&Sysroot, ConfigError> {
        let sysroot = self
            .sysroots
            .get(name)
            .ok_or_else(|| ConfigError::NoSuchSysroot {
                file: self.file.clone(),
                name: name.to_string(),
            })?;
        check_dir(&sysroot.path).map_err(|problem| ConfigError::Unusable {
            file: self.file.clone(),
            line: sysroot.line,
            label: format!("\"{name}\""),
            path: sysroot.path.clone(),
            problem,
        })?;
        Ok(sysroot)
    }

    /// The first rule matching a program at `program` (absolute) with `interpreter`, and its
    /// number (1-based).
    pub fn matching_rule(&self, program: &Path, interpreter: &[u8]) -> Option<(usize, &Rule)> {
        let programs: Vec<PathBuf> = std::iter::once(program.to_path_buf())
            .chain(std::fs::canonicalize(program).ok())
            .collect();
        self.rules.iter().enumerate().find_map(|(index, rule)| {
            let interp_ok = rule
                .interpreter
                .as_ref()
                .is_none_or(|want| want.as_bytes() == interpreter);
            let path_ok = rule.path.as_ref().is_none_or(|(dir, _)| {
                let mut dirs = std::iter::once(dir.clone()).chain(std::fs::canonicalize(dir).ok());
                dirs.any(|d| programs.iter().any(|p| p.starts_with(&d)))
            });
            (interp_ok && path_ok).then_some((index + 1, rule))
        })
    }
}

/// The error for a TOML parse or deserialization failure.
fn syntax(file: &Path, text: &str, error: &toml::de::Error) -> ConfigError {
    let line = error.span().map_or(1, |span| line_of(text, span.start));
    ConfigError::Syntax {
        file: file.to_path_buf(),
        line,
        message: error.message().trim_end().to_string(),
    }
}

pub(crate) fn invalid(file: &Path, line: usize, message: String) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_path_buf(),
        line,
        message,
    }
}

fn undefined(file: &Path, line: usize, what: String, name: String) -> ConfigError {
    ConfigError::Undefined {
        file: file.to_path_buf(),
        line,
        what,
        name,
    }
}

/// The 1-based line number of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Expands a leading `~` to `home` and makes a relative path absolute against `base`, then
/// removes `.` and `..` components lexically.
pub fn expand(written: &str, base: &Path, home: Option<&Path>) -> Result<PathBuf, String> {
    if written.is_empty() {
        return Err("empty path".to_string());
    }
    let path = if written == "~" || written.starts_with("~/") {
        let home = home.ok_or_else(|| format!("cannot expand \"{written}\": HOME is not set"))?;
        home.join(written[1..].trim_start_matches('/'))
    } else if written.starts_with('~') {
        return Err(format!(
            "cannot expand \"{written}\": only ~ and ~/ are supported"
        ));
    } else {
        base.join(written)
    };
    Ok(normalize(&path))
}

/// Removes `.` components and resolves `..` lexically (never above the root).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(
            Path::new("/c/elfuse/config.toml"),
            text,
            Some(Path::new("/home/me")),
        )
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn a_full_file_parses_with_expanded_paths_and_lines() {
        let config = parse(
            "# mine\ndefault = \"bookworm\"\n\n[sysroots.bookworm]\npath = \"/s/bookworm\"\n\
             [sysroots.alpine]\npath = \"~/sysroots/alpine\"\n\
             [sysroots.rel]\npath = \"r/./x/../y\"\n\
             [[rules]]\ninterpreter = \"/lib/ld-musl-aarch64.so.1\"\nsysroot = \"alpine\"\n",
        )
        .unwrap();
        assert_eq!(config.default.as_deref(), Some("bookworm"));
        assert_eq!(config.default_line, 2);
        assert_eq!(config.sysroots["bookworm"].path, Path::new("/s/bookworm"));
        assert_eq!(config.sysroots["bookworm"].line, 5);
        assert_eq!(
            config.sysroots["alpine"].path,
            Path::new("/home/me/sysroots/alpine")
        );
        assert_eq!(config.sysroots["rel"].path, Path::new("/c/elfuse/r/y"));
        assert_eq!(config.rules.len(), 1);
        assert_eq!(config.rules[0].line, 12);
        assert_eq!(config.rules[0].sysroot, "alpine");
    }

    #[test]
    fn an_empty_file_is_an_empty_configuration() {
        let config = parse("").unwrap();
        assert!(config.sysroots.is_empty() && config.rules.is_empty());
        assert_eq!(config.default, None);
    }

    #[test]
    fn bad_toml_names_the_file_and_line() {
        assert_eq!(
            error("[sysroots.a]\npath = \"/x\"\ndefault = \n"),
            "/c/elfuse/config.toml:3: string values must be quoted, expected literal string"
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        assert_eq!(
            error("[sysroots.a]\npath = \"/x\"\ncolour = \"red\"\n"),
            "/c/elfuse/config.toml:3: unknown field `colour`, expected `path`"
        );
        assert_eq!(
            error("defualt = \"a\"\n"),
            "/c/elfuse/config.toml:1: unknown field `defualt`, expected one of `default`, \
             `sysroots`, `rules`"
        );
    }

    #[test]
    fn undefined_sysroots_are_refused_with_their_line() {
        assert_eq!(
            error("[sysroots.a]\npath = \"/x\"\n[[rules]]\npath = \"/p\"\nsysroot = \"b\"\n"),
            "/c/elfuse/config.toml:5: rule 1 names sysroot \"b\", which is not defined"
        );
        assert_eq!(
            error("default = \"zz\"\n[sysroots.a]\npath = \"/x\"\n"),
            "/c/elfuse/config.toml:1: default names sysroot \"zz\", which is not defined"
        );
    }

    #[test]
    fn a_rule_that_matches_nothing_is_refused() {
        assert_eq!(
            error("[sysroots.a]\npath = \"/x\"\n\n[[rules]]\nsysroot = \"a\"\n"),
            "/c/elfuse/config.toml:4: rule 1 has neither 'interpreter' nor 'path'"
        );
    }

    #[test]
    fn a_missing_sysroot_directory_is_reported_when_used() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(dir.path().join("plain"), b"").unwrap();
        let text = "[sysroots.gone]\npath = \"gone\"\n[sysroots.file]\npath = \"plain\"\n\
                    [sysroots.ok]\npath = \".\"\n";
        let config = Config::parse(&file, text, None).unwrap();
        assert_eq!(
            config.usable("gone").unwrap_err().to_string(),
            format!(
                "{}:2: sysroot \"gone\": {}: No such file or directory",
                file.display(),
                dir.path().join("gone").display()
            )
        );
        assert_eq!(
            config.usable("file").unwrap_err().to_string(),
            format!(
                "{}:4: sysroot \"file\": {}: Not a directory",
                file.display(),
                dir.path().join("plain").display()
            )
        );
        assert_eq!(config.usable("ok").unwrap().path, dir.path());
    }

    #[test]
    fn tilde_user_is_refused() {
        assert_eq!(
            error("[sysroots.a]\npath = \"~bob/x\"\n"),
            "/c/elfuse/config.toml:2: cannot expand \"~bob/x\": only ~ and ~/ are supported"
        );
    }

    #[test]
    fn rules_match_by_interpreter_and_by_path_component_wise() {
        let config = parse(
            "[sysroots.a]\npath = \"/a\"\n[sysroots.b]\npath = \"/b\"\n\
             [[rules]]\ninterpreter = \"/lib/ld-musl-aarch64.so.1\"\nsysroot = \"a\"\n\
             [[rules]]\npath = \"~/src/old\"\nsysroot = \"b\"\n\
             [[rules]]\npath = \"/opt\"\ninterpreter = \"/lib/ld-linux-aarch64.so.1\"\n\
             sysroot = \"a\"\n",
        )
        .unwrap();
        let musl = b"/lib/ld-musl-aarch64.so.1".as_slice();
        let glibc = b"/lib/ld-linux-aarch64.so.1".as_slice();
        let number = |program: &str, interp: &[u8]| {
            config
                .matching_rule(Path::new(program), interp)
                .map(|(n, _)| n)
        };
        assert_eq!(number("/anywhere/prog", musl), Some(1));
        assert_eq!(number("/home/me/src/old/bin/prog", musl), Some(1));
        assert_eq!(number("/home/me/src/old/bin/prog", glibc), Some(2));
        assert_eq!(number("/home/me/src/old", glibc), Some(2));
        assert_eq!(number("/home/me/src/older/prog", glibc), None);
        assert_eq!(number("/opt/x", glibc), Some(3));
        assert_eq!(number("/opt/x", b"/other"), None);
    }

    #[test]
    fn line_numbers_count_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a", 99), 1);
    }
}
