//! Shims and elfuse in Makefiles: `elfuse shim add|rm|ls|dir|rehash`, running a shim by path
//! and through `PATH` (elfuse dispatching on `argv[0]`), the exit statuses of shims that
//! cannot run, and `tests/make/Makefile` under `make -j8`: exact outputs, nothing printed on
//! success, shims re-added while others run them, and a failing guest failing make with its
//! status.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Run, arm64_busybox, elfuse, elfuse_cmd, repo, scratch};

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
            .current_dir(self.path("lin"));
    }

    fn elfuse(&self, args: &[&str]) -> Run {
        let mut cmd = elfuse_cmd();
        self.env(&mut cmd);
        cmd.args(args).output().expect("run elfuse").into()
    }

    fn ok(&self, args: &[&str]) -> String {
        let run = self.elfuse(args);
        assert_eq!(
            (run.code(), run.stderr()),
            (0, String::new()),
            "elfuse {args:?}"
        );
        run.stdout()
    }

    /// Runs `program ARGS` with the shim folder first on PATH.
    fn run(&self, program: &Path, args: &[&str]) -> Run {
        let mut cmd = Command::new(program);
        self.env(&mut cmd);
        let path = format!(
            "{}:{}",
            self.path("data/elfuse/shims/bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env("PATH", path)
            .args(args)
            .output()
            .expect("run")
            .into()
    }
}

#[test]
fn shims_are_added_listed_run_and_removed() {
    let home = Home::new();
    let program = home.path("lin/busybox");
    assert_eq!(
        home.ok(&["shim", "add", "busybox"]),
        format!("busybox\t{}\n", program.display())
    );
    assert_eq!(
        home.ok(&["shim", "ls"]),
        format!("busybox\t{}\n", program.display())
    );
    let bin = home.path("data/elfuse/shims/bin");
    assert_eq!(home.ok(&["shim", "dir"]), format!("{}\n", bin.display()));
    assert_eq!(
        std::fs::read_link(bin.join("busybox")).unwrap(),
        std::fs::canonicalize(elfuse()).unwrap()
    );

    // By path and by name on PATH, with the guest's status and argv[0] the shim's name.
    let by_path = home.run(
        &bin.join("busybox"),
        &["sh", "-c", "echo \"$0\" ok; exit 5"],
    );
    assert_eq!(
        (by_path.code(), by_path.stdout()),
        (5, "sh ok\n".to_string())
    );
    let by_name = home.run(Path::new("busybox"), &["basename", "/a/b"]);
    assert_eq!((by_name.code(), by_name.stdout()), (0, "b\n".to_string()));

    home.ok(&["shim", "rm", "busybox"]);
    assert_eq!(home.ok(&["shim", "ls"]), "");
    assert!(std::fs::symlink_metadata(bin.join("busybox")).is_err());
    let gone = home.elfuse(&["shim", "rm", "busybox"]);
    assert_eq!(
        (gone.code(), gone.stderr()),
        (
            1,
            "elfuse: busybox: no shim of that name (see 'elfuse shim ls')\n".to_string()
        )
    );
}

#[test]
fn a_directory_adds_every_linux_program_in_it_and_nothing_else() {
    let home = Home::new();
    std::fs::copy(arm64_busybox(), home.path("lin/ls")).unwrap();
    std::fs::write(home.path("lin/notes"), "text\n").unwrap();
    let listed = home.ok(&["shim", "add", "."]);
    let lin = home.path("lin");
    assert_eq!(
        listed,
        format!("busybox\t{0}/busybox\nls\t{0}/ls\n", lin.display())
    );
    let refused = home.elfuse(&["shim", "add", "notes"]);
    assert_eq!(
        (refused.code(), refused.stderr()),
        (1, "elfuse: notes: Permission denied\n".to_string())
    );
}

#[test]
fn shims_that_cannot_run_fail_like_a_shell_would() {
    let home = Home::new();
    let bin = home.path("data/elfuse/shims/bin");
    std::fs::create_dir_all(&bin).unwrap();

    // A symlink to elfuse with no record: no such shim.
    std::os::unix::fs::symlink(elfuse(), bin.join("stray")).unwrap();
    let run = home.run(&bin.join("stray"), &[]);
    assert_eq!(
        (run.code(), run.stderr()),
        (
            127,
            "elfuse: stray: no shim of that name (see 'elfuse shim ls')\n".to_string()
        )
    );

    // A shim whose program is elfuse itself: a clean error, not a loop.
    home.ok(&["shim", "add", "busybox"]);
    let record = home.path("data/elfuse/shims/targets/busybox");
    std::fs::write(&record, format!("{}\n", bin.join("stray").display())).unwrap();
    let run = home.run(&bin.join("busybox"), &["true"]);
    assert_eq!(run.code(), 126);
    assert_eq!(
        run.stderr(),
        format!(
            "elfuse: busybox: the shim points at {}, which is elfuse itself; remove it with \
             'elfuse shim rm busybox'\n",
            bin.join("stray").display()
        )
    );

    // A directory's folder that is not trusted.
    let project = home.path("project");
    let local = project.join(".elfuse/shims");
    std::fs::create_dir_all(local.join("bin")).unwrap();
    std::fs::create_dir_all(local.join("targets")).unwrap();
    std::fs::write(
        local.join("targets/busybox"),
        format!("{}\n", home.path("lin/busybox").display()),
    )
    .unwrap();
    std::os::unix::fs::symlink(elfuse(), local.join("bin/busybox")).unwrap();
    let run = home.run(&local.join("bin/busybox"), &["true"]);
    let project = std::fs::canonicalize(&project).unwrap();
    assert_eq!(
        (run.code(), run.stderr()),
        (
            126,
            format!(
                "elfuse: {}: not trusted; run 'elfuse shim trust {}' to use its shims\n",
                local.display(),
                project.display()
            )
        )
    );
    home.ok(&["shim", "trust", project.to_str().unwrap()]);
    assert_eq!(home.run(&local.join("bin/busybox"), &["true"]).code(), 0);
}

fn make(home: &Home, target: &str) -> Run {
    let mut cmd = Command::new("make");
    home.env(&mut cmd);
    let path = format!(
        "{}:{}",
        home.path("data/elfuse/shims/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path)
        .env_remove("MAKEFLAGS")
        .args(["-s", "-j8", "-f"])
        .arg(repo().join("tests/make/Makefile"))
        .arg(format!("ELFUSE={}", elfuse().display()))
        .arg(format!("BUSYBOX={}", home.path("lin/busybox").display()))
        .arg(format!("OUT={}", home.path("out").display()))
        .arg(target)
        .output()
        .expect("run make (apt-get install make)")
        .into()
}

#[test]
fn a_makefile_runs_guests_in_parallel_and_prints_nothing_of_elfuse() {
    let home = Home::new();
    std::fs::create_dir_all(home.path("out")).unwrap();
    home.ok(&["shim", "add", "busybox"]);
    let run = make(&home, "all");
    assert_eq!(
        (run.code(), run.stdout(), run.stderr()),
        (0, String::new(), String::new())
    );
    for n in 1..=8 {
        for kind in ["direct", "shim"] {
            let file = home.path(&format!("out/{kind}-{n}.txt"));
            assert_eq!(
                std::fs::read_to_string(&file).unwrap(),
                format!("{kind} {n}\n")
            );
        }
    }
    assert_eq!(
        home.ok(&["shim", "ls"]),
        format!("busybox\t{}\n", home.path("lin/busybox").display())
    );
    let leftovers: Vec<_> = std::fs::read_dir(home.path("data/elfuse/shims/bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["busybox"], "temporary links left behind");
}

#[test]
fn a_failing_guest_fails_make_with_its_status() {
    let home = Home::new();
    std::fs::create_dir_all(home.path("out")).unwrap();
    let run = make(&home, "fail");
    assert_eq!(run.code(), 2, "make's own status for a failed recipe");
    assert!(run.stderr().contains("fail] Error 3"), "{}", run.stderr());
    assert!(!home.path("out/not-reached").exists());
}

/// Regression: a guest fork handed over to a new elfuse (`/proc/self/exe internal-handover`)
/// was taken for a shim called `exe`, and the fork failed with EAGAIN.
#[test]
fn a_handed_over_fork_is_not_taken_for_a_shim() {
    let home = Home::new();
    home.ok(&["shim", "add", "busybox"]);
    let script = "./busybox true & wait; echo \"forked $?\"";
    let mut direct = elfuse_cmd();
    home.env(&mut direct);
    let direct: Run = direct
        .env("ELFUSE_FORK", "handover")
        .args(["./busybox", "sh", "-c", script])
        .output()
        .unwrap()
        .into();
    assert_eq!(
        (direct.code(), direct.stdout(), direct.stderr()),
        (0, "forked 0\n".to_string(), String::new())
    );
    let bin = home.path("data/elfuse/shims/bin/busybox");
    let mut shimmed = Command::new(&bin);
    home.env(&mut shimmed);
    let shimmed: Run = shimmed
        .env("ELFUSE_FORK", "handover")
        .args(["sh", "-c", script])
        .output()
        .unwrap()
        .into();
    assert_eq!(
        (shimmed.code(), shimmed.stdout(), shimmed.stderr()),
        (0, "forked 0\n".to_string(), String::new())
    );
}
