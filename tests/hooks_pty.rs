//! The hooks as a user meets them: real interactive zsh and bash in a tmux pseudo-terminal,
//! with a clean home whose start-up file got its block from `elfuse install-hooks`. Typed lines
//! run aarch64 programs through pipes, give `$?` the guest's status, find programs through a
//! shim, leave unknown names to the shell's usual message, stop on Ctrl-C with the shell still
//! alive, stop and resume as jobs (Ctrl-Z, fg), and stay in history as typed; native commands are untouched. `uninstall-hooks` then
//! leaves the start-up file byte-identical.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Link, arm64_busybox, build_guest, elfuse_cmd, scratch};

/// A tmux server of the test's own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
    prompt: &'static str,
}

impl Tmux {
    fn start(socket: String, prompt: &'static str, dir: &Path, command: &str) -> Tmux {
        let tmux = Tmux { socket, prompt };
        let status = tmux
            .cmd()
            .args([
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "60",
                "-c",
            ])
            .arg(dir)
            .arg(command)
            .status()
            .expect("run tmux (apt-get install tmux)");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket]);
        cmd
    }

    /// Types `text` and Enter.
    fn line(&self, text: &str) {
        assert!(
            self.cmd()
                .args(["send-keys", "-l", text])
                .status()
                .unwrap()
                .success()
        );
        self.key("Enter");
    }

    fn key(&self, key: &str) {
        assert!(
            self.cmd()
                .args(["send-keys", key])
                .status()
                .unwrap()
                .success()
        );
    }

    /// The screen and its scroll-back, line by line.
    fn screen(&self) -> Vec<String> {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-S", "-500"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect()
    }

    /// Waits until `check` accepts the screen; panics with the screen after 30 s.
    fn wait(&self, what: &str, check: impl Fn(&[String]) -> bool) {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if check(&screen) {
                return;
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "timed out waiting for {what}; screen:\n{}",
                    screen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the lines after the last prompt line ending with `typed` begin with
    /// `expected`.
    fn wait_after(&self, typed: &str, expected: &[&str]) {
        self.wait(&format!("{expected:?} after {typed:?}"), |screen| {
            let typed_line = |l: &String| l.starts_with(self.prompt) && l.ends_with(typed);
            let Some(at) = screen.iter().rposition(typed_line) else {
                return false;
            };
            let after = &screen[at + 1..];
            after.len() >= expected.len() && after.iter().zip(expected).all(|(a, e)| a == e)
        });
    }
}

impl Tmux {
    /// Waits until the line after the last prompt line ending with `typed` passes `check`.
    fn wait_after_matching(&self, typed: &str, check: impl Fn(&str) -> bool) {
        self.wait(&format!("a matching line after {typed:?}"), |screen| {
            let typed_line = |l: &String| l.starts_with(self.prompt) && l.ends_with(typed);
            let Some(at) = screen.iter().rposition(typed_line) else {
                return false;
            };
            screen.get(at + 1).is_some_and(|l| check(l))
        });
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .arg("kill-server")
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// One shell's session, from install to uninstall.
fn session(shell: &str, rc_name: &str, rc_text: &str, not_found: &str) {
    let home = scratch();
    let path = |rel: &str| home.path().join(rel);
    let elfuse_in_home = |args: &[&str]| {
        let mut cmd = elfuse_cmd();
        let out = cmd
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", path("config"))
            .env("XDG_DATA_HOME", path("data"))
            .current_dir(home.path())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "elfuse {args:?}: {out:?}");
    };
    std::fs::create_dir_all(path("lin/extra")).unwrap();
    std::fs::copy(arm64_busybox(), path("lin/busybox")).unwrap();
    let probe = build_guest("cli_probe", "cli_probe", Link::Static);
    std::fs::copy(probe, path("lin/extra/linuxprobe")).unwrap();
    let rc: PathBuf = path(rc_name);
    std::fs::write(&rc, rc_text).unwrap();

    elfuse_in_home(&["install-hooks", "--shell", shell]);
    elfuse_in_home(&["shim", "add", "lin/extra/linuxprobe"]);
    assert!(
        std::fs::read_to_string(&rc)
            .unwrap()
            .contains("# >>> elfuse hooks >>>")
    );

    let command = format!(
        "env -u ZDOTDIR -u ELFUSE_PATH HOME={home} XDG_CONFIG_HOME={home}/config \
         XDG_DATA_HOME={home}/data {shell} -i",
        home = home.path().display()
    );
    let socket = format!("elfuse-test-{shell}-{}", std::process::id());
    let prompt = if shell == "zsh" { "%" } else { "$" };
    let tmux = Tmux::start(socket, prompt, &path("lin"), &command);
    tmux.wait("the first prompt", |s| s.iter().any(|l| l == prompt));

    let typed = r#"./busybox echo "a  b" | tr a-z A-Z"#;
    tmux.line(typed);
    tmux.wait_after(typed, &["A  B"]);

    tmux.line("./busybox false; echo $?");
    tmux.wait_after("./busybox false; echo $?", &["1"]);

    tmux.line("linuxprobe args hi");
    tmux.wait_after("linuxprobe args hi", &["linuxprobe", "args", "hi"]);

    tmux.line("nosuchcmd-elfuse");
    tmux.wait_after("nosuchcmd-elfuse", &[not_found]);

    // Ctrl-C reaches the guest once elfuse runs it; the shell survives with status 130.
    tmux.line("./busybox sleep 100");
    tmux.wait("sleep to start", |_| pgrep_sleep(home.path()));
    // At once: a SIGINT that arrives while elfuse is still loading the program waits for it.
    tmux.key("C-c");
    tmux.line("echo \"after=$?\"");
    tmux.wait_after("echo \"after=$?\"", &["after=130"]);

    // Ctrl-Z stops it as a job; fg brings it back to the foreground, where Ctrl-C ends it.
    tmux.line("./busybox sleep 100");
    tmux.wait("sleep to start again", |_| pgrep_sleep(home.path()));
    tmux.key("C-z");
    tmux.line("jobs");
    // Stopped by SIGTSTP itself: both shells add "(signal)" for a job SIGSTOP stopped.
    tmux.wait_after_matching("jobs", |line| {
        line.starts_with("[1]")
            && (line.contains("suspended") || line.contains("Stopped"))
            && !line.contains("(signal)")
    });
    tmux.line("fg");
    std::thread::sleep(Duration::from_millis(300));
    tmux.key("C-c");
    tmux.line("echo \"fg=$?\"");
    tmux.wait_after("echo \"fg=$?\"", &["fg=130"]);
    assert!(
        !pgrep_sleep(home.path()),
        "{shell}: the stopped job still runs"
    );

    tmux.line("/bin/echo native-$((1+2)) ./busybox");
    tmux.wait_after(
        "/bin/echo native-$((1+2)) ./busybox",
        &["native-3 ./busybox"],
    );

    let history = path("history.txt");
    tmux.line("fc -ln 1 > \"$HOME/history.txt\"; echo saved");
    tmux.wait_after("echo saved", &["saved"]);
    let saved = std::fs::read_to_string(&history).unwrap();
    let lines: Vec<&str> = saved.lines().map(str::trim).collect();
    for typed_line in [typed, "./busybox false; echo $?", "./busybox sleep 100"] {
        assert!(
            lines.contains(&typed_line),
            "{shell}: {typed_line:?} not in history:\n{saved}"
        );
    }
    assert!(
        !saved.contains(" exec "),
        "{shell}: rewritten line in history:\n{saved}"
    );

    tmux.line("exit");
    drop(tmux);
    elfuse_in_home(&["uninstall-hooks"]);
    assert_eq!(std::fs::read_to_string(&rc).unwrap(), rc_text);
}

/// Whether a `busybox sleep 100` started from this home's `lin` runs.
fn pgrep_sleep(home: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cwd = std::fs::read_link(entry.path().join("cwd")).unwrap_or_default();
        cmdline.split(|&b| b == 0).any(|a| a == b"100") && cwd.starts_with(home)
    })
}

#[test]
fn zsh_runs_linux_programs_typed_at_the_prompt() {
    session(
        "zsh",
        ".zshrc",
        "PS1='%% '\nHISTSIZE=100\n",
        "zsh: command not found: nosuchcmd-elfuse",
    );
}

#[test]
fn bash_runs_linux_programs_typed_at_the_prompt() {
    session(
        "bash",
        ".bashrc",
        "PS1='$ '\n",
        "bash: nosuchcmd-elfuse: command not found",
    );
}
