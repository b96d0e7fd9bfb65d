//! The shell hook scripts and the start-up file edits, run in real shells: every generated
//! script passes `shellcheck` (bash) or `zsh -n`, loads silently under strict flags, changes
//! nothing when loaded twice, rewrites exactly the command words that are Linux programs, and
//! chains to a command-not-found handler that was there before. `install-hooks` and
//! `uninstall-hooks` keep every byte of an existing start-up file.
//!
//! Each test gives elfuse its own HOME and XDG directories; nothing touches the real home.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Run, arm64_busybox, elfuse, elfuse_cmd, scratch};

/// A scratch home with a directory `lin` holding the aarch64 BusyBox.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let home = Home { dir: scratch() };
        std::fs::create_dir_all(home.path("lin")).unwrap();
        std::fs::copy(arm64_busybox(), home.path("lin/busybox")).unwrap();
        home
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env_remove("ZDOTDIR")
            .env_remove("ELFUSE_PATH")
            .current_dir(self.path("lin"));
    }

    fn elfuse(&self, args: &[&str]) -> Run {
        let mut cmd = elfuse_cmd();
        self.env(&mut cmd);
        cmd.args(args).output().expect("run elfuse").into()
    }

    /// `elfuse init SHELL`, written to a file; returns its path.
    fn script(&self, shell: &str) -> PathBuf {
        let run = self.elfuse(&["init", shell]);
        assert_eq!(
            (run.code(), run.stderr()),
            (0, String::new()),
            "elfuse init {shell}"
        );
        let path = self.path(&format!("init.{shell}"));
        std::fs::write(&path, &run.stdout).unwrap();
        path
    }

    /// Runs `shell ARGS` in `lin` with this home.
    fn shell(&self, shell: &str, args: &[&str]) -> Run {
        let mut cmd = Command::new(shell);
        self.env(&mut cmd);
        cmd.args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {shell} ({e}); install it with apt-get"))
            .into()
    }
}

#[test]
fn the_bash_script_passes_shellcheck() {
    let home = Home::new();
    let script = home.script("bash");
    let out = Command::new("shellcheck")
        .arg(&script)
        .output()
        .expect("run shellcheck (apt-get install shellcheck)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_zsh_script_passes_zsh_n() {
    let home = Home::new();
    let script = home.script("zsh");
    let run = home.shell("zsh", &["-n", script.to_str().unwrap()]);
    assert_eq!((run.code(), run.stderr()), (0, String::new()));
}

#[test]
fn scripts_load_silently_under_strict_flags() {
    let home = Home::new();
    let bash = home.script("bash");
    let run = home.shell(
        "bash",
        &[
            "--norc",
            "-euo",
            "pipefail",
            "-c",
            &format!("source {0}; source {0}", bash.display()),
        ],
    );
    assert_eq!(
        (run.code(), run.stdout(), run.stderr()),
        (0, String::new(), String::new())
    );
    let zsh = home.script("zsh");
    let run = home.shell(
        "zsh",
        &[
            "-f",
            "-euo",
            "pipefail",
            "-c",
            &format!("source {0}; source {0}", zsh.display()),
        ],
    );
    assert_eq!(
        (run.code(), run.stdout(), run.stderr()),
        (0, String::new(), String::new())
    );
}

/// What a shell's state looks like: the hooks' variables, functions, key bindings and hooks.
const BASH_STATE: &str = r#"
    declare -p PATH PROMPT_COMMAND ${!_ELFUSE*}
    declare -f
    bind -s; bind -X; bind -m vi-insert -s
"#;
const ZSH_STATE: &str = r#"
    typeset -p PATH ${(k)parameters[(I)_ELFUSE*]} chpwd_functions zshaddhistory_functions
    print -rl -- ${(kv)functions} ${(kv)widgets}
"#;

#[test]
fn loading_twice_changes_nothing() {
    let home = Home::new();
    let bash = home.script("bash");
    let source = format!("source {};", bash.display());
    let once = home.shell(
        "bash",
        &["--norc", "-i", "-c", &format!("{source}{BASH_STATE}")],
    );
    let twice = home.shell(
        "bash",
        &[
            "--norc",
            "-i",
            "-c",
            &format!("{source}{source}{BASH_STATE}"),
        ],
    );
    assert!(
        once.stdout().contains("__elfuse_readline"),
        "{}",
        once.stdout()
    );
    assert_eq!(once.stdout(), twice.stdout());

    let zsh = home.script("zsh");
    let source = format!("source {};", zsh.display());
    let once = home.shell("zsh", &["-f", "-i", "-c", &format!("{source}{ZSH_STATE}")]);
    let twice = home.shell(
        "zsh",
        &["-f", "-i", "-c", &format!("{source}{source}{ZSH_STATE}")],
    );
    assert!(
        once.stdout().contains("user:__elfuse_accept_line"),
        "{}",
        once.stdout()
    );
    assert_eq!(once.stdout(), twice.stdout());
}

/// Lines typed at the prompt and what the exec hook makes of them (`E` stands for
/// `ELFUSE exec `); `None` for a line it leaves alone.
fn rewrites() -> Vec<(&'static str, Option<&'static str>)> {
    vec![
        (
            r#"./busybox echo "a  b" | tr a-z A-Z"#,
            Some(r#"E./busybox echo "a  b" | tr a-z A-Z"#),
        ),
        (
            "X=1 ./busybox true && ./busybox false; /bin/true ./busybox",
            Some("X=1 E./busybox true && E./busybox false; /bin/true ./busybox"),
        ),
        (
            r#""./busybox" 'a b' *.txt 2>/dev/null >./busybox"#,
            Some(r#"E"./busybox" 'a b' *.txt 2>/dev/null >./busybox"#),
        ),
        ("(./busybox true) &", Some("(E./busybox true) &")),
        (
            "env A=1 ./busybox true; sudo ./busybox id",
            Some("env A=1 E./busybox true; sudo E./busybox id"),
        ),
        ("~/lin/busybox true", Some("E~/lin/busybox true")),
        ("ls -l ./busybox", None),
        ("/bin/true", None),
        ("./notes.txt", None),
        ("$PWD/busybox true", None),
        ("echo no slash here", None),
    ]
}

fn check_rewrites(home: &Home, shell: &str, flags: &[&str], script: &Path) {
    std::fs::write(home.path("lin/notes.txt"), "not a program\n").unwrap();
    std::fs::set_permissions(
        home.path("lin/notes.txt"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let prefix = format!("{} exec ", elfuse().display());
    for (line, expected) in rewrites() {
        let command = format!(
            "source {}; if __elfuse_rewrite \"$1\"; then printf '%s\\n' \"$REPLY\"; \
             else echo unchanged; fi",
            script.display()
        );
        let mut args = flags.to_vec();
        args.extend(["-c", &command, "probe", line]);
        let run = home.shell(shell, &args);
        let want = expected.map_or("unchanged".to_string(), |e| e.replace('E', &prefix));
        assert_eq!(
            run.stdout().trim_end(),
            want,
            "{shell}: {line}\n{}",
            run.stderr()
        );
    }
}

#[test]
fn the_exec_hook_rewrites_only_linux_programs_in_command_position_in_bash() {
    let home = Home::new();
    let script = home.script("bash");
    check_rewrites(&home, "bash", &["--norc", "-eu"], &script);
}

#[test]
fn the_exec_hook_rewrites_only_linux_programs_in_command_position_in_zsh() {
    let home = Home::new();
    let script = home.script("zsh");
    check_rewrites(&home, "zsh", &["-f"], &script);
}

#[test]
fn an_earlier_command_not_found_handler_still_runs() {
    let home = Home::new();
    let bash = home.script("bash");
    let run = home.shell(
        "bash",
        &[
            "--norc",
            "-c",
            &format!(
                "command_not_found_handle() {{ echo \"mine: $1\"; return 42; }}; source {0}; \
                 source {0}; nosuchcmd-x; echo \"status $?\"; unset -f __elfuse_previous_cnf; \
                 nosuchcmd-y",
                bash.display()
            ),
        ],
    );
    assert_eq!(run.stdout(), "mine: nosuchcmd-x\nstatus 42\n");
    assert_eq!(run.stderr(), "bash: nosuchcmd-y: command not found\n");
    assert_eq!(run.code(), 127);

    let zsh = home.script("zsh");
    let run = home.shell(
        "zsh",
        &[
            "-f",
            "-c",
            &format!(
                "command_not_found_handler() {{ echo \"mine: $1\"; return 42; }}; source {0}; \
                 source {0}; nosuchcmd-x; echo \"status $?\"; unfunction __elfuse_previous_cnf; \
                 nosuchcmd-y",
                zsh.display()
            ),
        ],
    );
    assert_eq!(run.stdout(), "mine: nosuchcmd-x\nstatus 42\n");
    assert_eq!(run.stderr(), "zsh: command not found: nosuchcmd-y\n");
    assert_eq!(run.code(), 127);
}

#[test]
fn elfuse_path_programs_and_global_shims_run_when_not_found() {
    let home = Home::new();
    let run = home.elfuse(&["shim", "add", "busybox"]);
    assert_eq!((run.code(), run.stderr()), (0, String::new()));
    std::fs::create_dir_all(home.path("other")).unwrap();
    std::fs::copy(arm64_busybox(), home.path("other/sh")).unwrap();
    for (shell, flag) in [("bash", "--norc"), ("zsh", "-f")] {
        let script = home.script(shell);
        let command = format!(
            "source {}; busybox echo via shim; ELFUSE_PATH=/nonexistent:{} sh -c 'echo via \
             path; exit 7'; echo \"status $?\"",
            script.display(),
            home.path("other").display()
        );
        let run = home.shell(shell, &[flag, "-c", &command]);
        assert_eq!(
            (run.stdout(), run.stderr()),
            ("via shim\nvia path\nstatus 7\n".to_string(), String::new()),
            "{shell}"
        );
    }
}

#[test]
fn the_directory_hook_follows_trusted_shim_folders() {
    let home = Home::new();
    let project = home.path("project");
    std::fs::create_dir_all(project.join("sub")).unwrap();
    let mut cmd = elfuse_cmd();
    home.env(&mut cmd);
    let run: Run = cmd
        .current_dir(&project)
        .args(["shim", "add", "--local"])
        .arg(home.path("lin/busybox"))
        .output()
        .unwrap()
        .into();
    assert_eq!((run.code(), run.stderr()), (0, String::new()));
    let bin = std::fs::canonicalize(&project)
        .unwrap()
        .join(".elfuse/shims/bin");
    for (shell, flag, after_cd) in [("bash", "--norc", "__elfuse_prompt"), ("zsh", "-f", ":")] {
        let script = home.script(shell);
        let command = format!(
            "source {script}; cd \"$1\"/sub; {after_cd}; echo \"$PATH\"; busybox echo inside; \
             cd \"$1\"/..; {after_cd}; echo \"$PATH\"",
            script = script.display(),
        );
        let target = std::fs::canonicalize(&project).unwrap();
        let run = home.shell(
            shell,
            &[flag, "-c", &command, "x", target.to_str().unwrap()],
        );
        let lines: Vec<String> = run.stdout().lines().map(str::to_string).collect();
        assert_eq!(lines.len(), 3, "{shell}: {}{}", run.stdout(), run.stderr());
        assert!(
            lines[0].starts_with(&format!("{}:", bin.display())),
            "{shell}: {}",
            lines[0]
        );
        assert_eq!(lines[1], "inside");
        assert!(!lines[2].contains(".elfuse/shims"), "{shell}: {}", lines[2]);
    }
}

#[test]
fn user_aliases_cannot_hijack_the_hooks() {
    let home = Home::new();
    let prefix = format!("{} exec ", elfuse().display());
    let words = "local builtin command return read printf print typeset shift emulate zle \
                 declare bind mapfile history unset eval autoload";
    let aliases: String = words
        .split_whitespace()
        .map(|w| format!("alias {w}='echo HIJACKED';"))
        .collect();
    for (shell, flags) in [
        ("bash", &["--norc", "-O", "expand_aliases"][..]),
        ("zsh", &["-f", "-i"][..]),
    ] {
        let script = home.script(shell);
        let command = format!(
            "{aliases}\nsource {0}\nsource {0}\n__elfuse_rewrite './busybox true' && \
             \\printf '%s\\n' \"$REPLY\"; nosuchcmd-z",
            script.display()
        );
        let mut args = flags.to_vec();
        args.extend(["-c", &command]);
        let run = home.shell(shell, &args);
        assert_eq!(
            run.stdout(),
            format!("{prefix}./busybox true\n"),
            "{shell}: {}",
            run.stderr()
        );
        assert!(
            run.stderr().ends_with("nosuchcmd-z: command not found\n")
                || run.stderr().ends_with("command not found: nosuchcmd-z\n"),
            "{shell}: {}",
            run.stderr()
        );
    }
}

#[test]
fn enter_keeps_what_it_did_before_the_hooks() {
    let home = Home::new();
    let bash = home.script("bash");
    let run = home.shell(
        "bash",
        &[
            "--norc",
            "-i",
            "-c",
            &format!(
                "bind '\"\\C-m\": operate-and-get-next'; source {0}; source {0}; bind -p | \
                 grep -F '\"\\e[0;99A\"'; bind -X | grep -F 99E",
                bash.display()
            ),
        ],
    );
    assert_eq!(
        run.stdout(),
        "\"\\e[0;99A\": operate-and-get-next\n\"\\e[0;99E\": \"__elfuse_readline\"\n"
    );

    let zsh = home.script("zsh");
    let run = home.shell(
        "zsh",
        &[
            "-f",
            "-i",
            "-c",
            &format!(
                "mine() {{ zle .accept-line }}; zle -N accept-line mine; source {0}; source {0}; \
                 print -r -- ${{widgets[accept-line]}} ${{widgets[__elfuse_previous_accept_line]}}",
                zsh.display()
            ),
        ],
    );
    assert_eq!(run.stdout(), "user:__elfuse_accept_line user:mine\n");
}
