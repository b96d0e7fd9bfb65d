//! The shell hooks: the scripts `elfuse init SHELL` prints and the start-up files
//! `elfuse install-hooks` puts a line into.
//!
//! The scripts are the templates in `shell/`, built into the binary, with the absolute path of
//! the elfuse binary and of elfuse's data directory filled in (shell-quoted). The line in the
//! start-up file evaluates `elfuse init SHELL` at every shell start, so that an upgraded
//! elfuse brings its new hooks along without a second install.
//!
//! Start-up files: zsh reads `$ZDOTDIR/.zshrc` (`~/.zshrc` without `ZDOTDIR`); bash reads
//! `~/.bashrc` for interactive non-login shells and, on macOS where every Terminal window is a
//! login shell, `~/.bash_profile`, so both get the block there.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The zsh template.
const ZSH_TEMPLATE: &str = include_str!("../../shell/elfuse.zsh");
/// The bash template.
const BASH_TEMPLATE: &str = include_str!("../../shell/elfuse.bash");

/// A shell elfuse has hooks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Shell {
    /// zsh 5 and later.
    Zsh,
    /// bash (3.2 gets the directory hook only; see the template).
    Bash,
}

impl Shell {
    /// Every shell, in the order reports list them.
    pub const ALL: [Shell; 2] = [Shell::Zsh, Shell::Bash];

    /// The shell's name.
    pub fn name(self) -> &'static str {
        match self {
            Shell::Zsh => "zsh",
            Shell::Bash => "bash",
        }
    }

    /// The shell a login shell path (`$SHELL`) names, if elfuse knows it.
    pub fn from_path(path: &OsStr) -> Option<Shell> {
        match Path::new(path).file_name()?.as_bytes() {
            b"zsh" => Some(Shell::Zsh),
            b"bash" => Some(Shell::Bash),
            _ => None,
        }
    }
}

/// Why the hooks cannot be set up.
#[derive(Debug, Error)]
pub enum HookError {
    /// No home directory to find start-up files in.
    #[error("cannot tell where the home directory is: set HOME")]
    NoHome,
    /// `$SHELL` names no shell elfuse has hooks for.
    #[error("cannot tell which shell to use from SHELL={0:?}: give --shell zsh or --shell bash")]
    UnknownShell(String),
    /// A path that shell quoting here cannot carry (it is not UTF-8).
    #[error("{}: not valid UTF-8, which the hook scripts need", .0.display())]
    NotUtf8(PathBuf),
}

/// Quotes `text` for POSIX shells: single quotes, with `'` written as `'\''`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The script `elfuse init SHELL` prints, for the elfuse binary at `elfuse` and the data
/// directory `data_dir`.
pub fn init_script(shell: Shell, elfuse: &Path, data_dir: &Path) -> Result<String, HookError> {
    let template = match shell {
        Shell::Zsh => ZSH_TEMPLATE,
        Shell::Bash => BASH_TEMPLATE,
    };
    let elfuse = elfuse
        .to_str()
        .ok_or_else(|| HookError::NotUtf8(elfuse.to_path_buf()))?;
    let data = data_dir
        .to_str()
        .ok_or_else(|| HookError::NotUtf8(data_dir.to_path_buf()))?;
    Ok(template
        .replace("@ELFUSE@", &shell_quote(elfuse))
        .replace("@DATA@", &shell_quote(data)))
}

/// The lines between the markers in a start-up file for `shell`. bash's line checks that bash
/// reads it, since on macOS it may go into `~/.profile`, which `sh` reads too.
pub fn block_lines(shell: Shell, elfuse: &Path) -> Result<Vec<String>, HookError> {
    let elfuse = elfuse
        .to_str()
        .ok_or_else(|| HookError::NotUtf8(elfuse.to_path_buf()))?;
    let eval = format!("eval \"$({} init {})\"", shell_quote(elfuse), shell.name());
    let load = match shell {
        Shell::Zsh => eval,
        Shell::Bash => format!("if [ -n \"${{BASH_VERSION-}}\" ]; then {eval}; fi"),
    };
    Ok(vec![
        "# Added by 'elfuse install-hooks'; 'elfuse uninstall-hooks' removes it.".to_string(),
        load,
    ])
}

/// Where a user's environment says start-up files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Homes {
    /// `$HOME`.
    pub home: PathBuf,
    /// `$ZDOTDIR`, if set and not empty.
    pub zdotdir: Option<PathBuf>,
    /// Whether this is macOS (bash login shells in every terminal window).
    pub macos: bool,
}

impl Homes {
    /// From the environment.
    pub fn from_env() -> Result<Homes, HookError> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(dirs::home_dir)
            .ok_or(HookError::NoHome)?;
        Ok(Homes {
            home,
            zdotdir: std::env::var_os("ZDOTDIR")
                .filter(|z| !z.is_empty())
                .map(PathBuf::from),
            macos: cfg!(target_os = "macos"),
        })
    }

    /// The start-up files that get the block for `shell`. On macOS bash also reads a login
    /// file: the first of `~/.bash_profile`, `~/.bash_login` and `~/.profile` that exists
    /// (creating `~/.bash_profile` would make bash stop reading the others), else
    /// `~/.bash_profile`.
    pub fn rc_files(&self, shell: Shell) -> Vec<PathBuf> {
        self.rc_files_with(shell, |path| path.exists())
    }

    fn rc_files_with(&self, shell: Shell, exists: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
        match shell {
            Shell::Zsh => vec![self.zdotdir.as_ref().unwrap_or(&self.home).join(".zshrc")],
            Shell::Bash if self.macos => {
                let login = BASH_LOGIN_FILES
                    .iter()
                    .map(|name| self.home.join(name))
                    .find(|path| exists(path))
                    .unwrap_or_else(|| self.home.join(BASH_LOGIN_FILES[0]));
                vec![self.home.join(".bashrc"), login]
            }
            Shell::Bash => vec![self.home.join(".bashrc")],
        }
    }

    /// Every start-up file that may hold a block for `shell` (what uninstalling looks at).
    pub fn all_rc_files(&self, shell: Shell) -> Vec<PathBuf> {
        match shell {
            Shell::Zsh => self.rc_files(shell),
            Shell::Bash => std::iter::once(".bashrc")
                .chain(BASH_LOGIN_FILES)
                .map(|name| self.home.join(name))
                .collect(),
        }
    }
}

/// The files a bash login shell reads, the first that exists only.
const BASH_LOGIN_FILES: [&str; 3] = [".bash_profile", ".bash_login", ".profile"];

/// The shell to install for when none is given: the one `$SHELL` names.
pub fn default_shell(login_shell: Option<&OsStr>) -> Result<Shell, HookError> {
    let value = login_shell.unwrap_or_default();
    Shell::from_path(value).ok_or_else(|| HookError::UnknownShell(value.to_string_lossy().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_carry_quoted_paths_and_no_placeholders() {
        for shell in Shell::ALL {
            let script =
                init_script(shell, Path::new("/opt/it's/elfuse"), Path::new("/d")).unwrap();
            for placeholder in ["@ELFUSE@", "@DATA@"] {
                assert!(
                    !script.contains(placeholder),
                    "{shell:?} left {placeholder}"
                );
            }
            assert!(script.contains(r"_ELFUSE_BIN='/opt/it'\''s/elfuse'"));
            assert!(script.contains("_ELFUSE_DATA='/d'"));
        }
    }

    #[test]
    fn start_up_files_follow_zdotdir_and_the_host() {
        let mut homes = Homes {
            home: PathBuf::from("/h"),
            zdotdir: None,
            macos: false,
        };
        assert_eq!(homes.rc_files(Shell::Zsh), [PathBuf::from("/h/.zshrc")]);
        assert_eq!(homes.rc_files(Shell::Bash), [PathBuf::from("/h/.bashrc")]);
        homes.zdotdir = Some(PathBuf::from("/z"));
        homes.macos = true;
        assert_eq!(homes.rc_files(Shell::Zsh), [PathBuf::from("/z/.zshrc")]);
        assert_eq!(
            homes.rc_files_with(Shell::Bash, |_| false),
            [
                PathBuf::from("/h/.bashrc"),
                PathBuf::from("/h/.bash_profile")
            ]
        );
        assert_eq!(
            homes.rc_files_with(Shell::Bash, |p| p.ends_with(".profile")),
            [PathBuf::from("/h/.bashrc"), PathBuf::from("/h/.profile")]
        );
        assert_eq!(homes.all_rc_files(Shell::Bash).len(), 4);
    }

    #[test]
    fn the_default_shell_comes_from_the_login_shell() {
        assert_eq!(
            default_shell(Some(OsStr::new("/bin/zsh"))).unwrap(),
            Shell::Zsh
        );
        assert_eq!(
            default_shell(Some(OsStr::new("/usr/local/bin/bash"))).unwrap(),
            Shell::Bash
        );
        assert_eq!(
            default_shell(Some(OsStr::new("/bin/fish")))
                .unwrap_err()
                .to_string(),
            "cannot tell which shell to use from SHELL=\"/bin/fish\": give --shell zsh or \
             --shell bash"
        );
    }
}
