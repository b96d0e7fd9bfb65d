//! The command line as users meet it: exit statuses, death by signal, options, the built-in
//! self-test, and every kind of bad input with its status and one-line message.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use common::{Link, Run, build_guest, elfuse_cmd, repo, run_elfuse, scratch};

fn probe() -> PathBuf {
    build_guest("cli_probe", "cli_probe", Link::Static)
}

fn elfuse(args: &[&str]) -> Run {
    run_elfuse(args, &repo())
}

fn probe_run(args: &[&str]) -> Run {
    let bin = probe();
    let mut all: Vec<&str> = vec![bin.to_str().unwrap()];
    all.extend_from_slice(args);
    elfuse(&all)
}

/// Runs `elfuse PROBE ARGS` from `/bin/sh`, so that `args` may carry redirections.
fn probe_through_sh(args: &str) -> Run {
    std::process::Command::new("/bin/sh")
        .args(["-c", &format!("exec \"$0\" \"$1\" {args}")])
        .arg(common::elfuse())
        .arg(probe())
        .output()
        .expect("run elfuse through sh")
        .into()
}

/// Writes `bytes` to an executable file in `dir`.
fn executable(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Runs elfuse on `path` and checks the status and the exact one-line message.
fn rejects(path: &Path, code: i32, message: &str) {
    let run = elfuse(&[path.to_str().unwrap()]);
    assert_eq!(run.code(), code, "stderr: {}", run.stderr());
    assert_eq!(
        run.stderr(),
        format!("elfuse: {}: {message}\n", path.display())
    );
    assert_eq!(run.stdout(), "");
}

#[test]
fn guest_exit_status_is_elfuses() {
    for (arg, want) in [("0", 0), ("3", 3), ("255", 255), ("256", 0), ("257", 1)] {
        let run = probe_run(&["exit", arg]);
        assert_eq!(run.code(), want, "exit {arg}");
        assert_eq!(run.stderr(), "");
    }
}

#[test]
fn guest_killed_by_a_signal_kills_elfuse_by_the_same_signal_without_a_core_file() {
    let dir = scratch();
    let bin = probe();
    for (args, signal) in [
        (vec!["signal", "6"], 6),
        (vec!["segv"], 11),
        (vec!["signal", "15"], 15),
    ] {
        let run = elfuse_cmd()
            .arg(&bin)
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let run = Run::from(run);
        assert_eq!(run.signal(), Some(signal), "{args:?}: {:?}", run.status);
        assert_eq!(run.stderr(), "", "{args:?}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "no core file may be left behind: {leftovers:?}"
    );
}

#[test]
fn arguments_and_argv0_reach_the_program() {
    let bin = probe();
    let run = elfuse(&[bin.to_str().unwrap(), "args", "a b", "--help", "-v"]);
    assert_eq!(
        run.stdout(),
        format!("{}\nargs\na b\n--help\n-v\n", bin.display())
    );
    let run = elfuse(&["--argv0", "custom", bin.to_str().unwrap(), "args"]);
    assert_eq!(run.stdout(), "custom\nargs\n");
    let run = elfuse(&["exec", "--", bin.to_str().unwrap(), "args", "--"]);
    assert_eq!(run.stdout(), format!("{}\nargs\n--\n", bin.display()));
}

#[test]
fn environment_options_build_the_program_environment() {
    let bin = probe();
    let run = elfuse_cmd()
        .env("ELFUSE_TEST_IMPORTED", "from-host")
        .args([
            "--clear-env",
            "--env",
            "A=1",
            "--env",
            "B=x=y",
            "--env",
            "ELFUSE_TEST_IMPORTED",
        ])
        .arg(&bin)
        .arg("env")
        .output()
        .unwrap();
    let run = Run::from(run);
    assert_eq!(run.stdout(), "A=1\nB=x=y\nELFUSE_TEST_IMPORTED=from-host\n");
    let run = elfuse_cmd()
        .env("ELFUSE_TEST_KEPT", "yes")
        .arg(&bin)
        .arg("env")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&run.stdout)
            .lines()
            .any(|l| l == "ELFUSE_TEST_KEPT=yes")
    );
}

#[test]
fn programs_are_found_on_path() {
    let dir = scratch();
    std::fs::copy(probe(), dir.path().join("elfuse-probe")).unwrap();
    let run = elfuse_cmd()
        .env("PATH", dir.path())
        .args(["elfuse-probe", "args"])
        .output()
        .unwrap();
    let run = Run::from(run);
    assert_eq!(
        run.stdout(),
        "elfuse-probe\nargs\n",
        "argv[0] is the name as typed"
    );

    // A file of that name that may not be executed is refused as the shells refuse it.
    let blocked = dir.path().join("elfuse-noexec");
    std::fs::copy(probe(), &blocked).unwrap();
    std::fs::set_permissions(&blocked, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = Run::from(
        elfuse_cmd()
            .env("PATH", dir.path())
            .arg("elfuse-noexec")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code(), 126);
    assert_eq!(run.stderr(), "elfuse: elfuse-noexec: Permission denied\n");
}

#[test]
fn selftest_passes_and_names_the_backend() {
    let run = elfuse(&["selftest"]);
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    assert_eq!(run.stdout(), "elfuse selftest: passed on the emu backend\n");
    assert_eq!(run.stderr(), "");
}

#[test]
fn nothing_is_added_to_stderr_on_success() {
    let selftest = repo().join("src/cli/selftest/selftest.elf");
    let run = elfuse(&[selftest.to_str().unwrap()]);
    assert_eq!(run.code(), 0);
    assert_eq!((run.stdout(), run.stderr()), (String::new(), String::new()));
}

#[test]
fn a_closed_stdout_is_closed_for_the_guest() {
    let run = probe_run(&["stdout-closed"]);
    assert_eq!(run.stderr(), "closed\n");
}

#[test]
fn unimplemented_syscalls_are_logged_once_with_v_and_never_without() {
    let bin = probe();
    let quiet = elfuse(&[bin.to_str().unwrap(), "enosys"]);
    assert_eq!(quiet.code(), 0);
    assert_eq!(quiet.stderr(), "");
    let verbose = elfuse(&["-v", bin.to_str().unwrap(), "enosys"]);
    assert_eq!(verbose.code(), 0);
    let lines: Vec<String> = verbose.stderr().lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("unimplemented syscall io_setup (0) returns ENOSYS"),
        "{lines:?}"
    );
}

#[test]
fn trace_prints_strace_shaped_lines() {
    let bin = probe();
    let run = elfuse(&["--trace", bin.to_str().unwrap(), "exit", "7"]);
    assert_eq!(run.code(), 7);
    let last = run.stderr().lines().last().unwrap_or_default().to_string();
    let (tid, call) = last.split_once(' ').expect("tid and call");
    assert!(tid.parse::<u32>().is_ok(), "{last}");
    assert_eq!(call, "exit_group(7) = 0");
    let dir = scratch();
    let file = dir.path().join("trace.txt");
    let run = elfuse(&[
        "--trace-file",
        file.to_str().unwrap(),
        bin.to_str().unwrap(),
        "exit",
        "0",
    ]);
    assert_eq!(run.stderr(), "");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.lines().any(|l| l.ends_with("exit_group(0) = 0")),
        "{text}"
    );
}

#[test]
fn missing_programs_exit_127() {
    let run = elfuse(&["./no-such-program"]);
    assert_eq!(run.code(), 127);
    assert_eq!(
        run.stderr(),
        "elfuse: ./no-such-program: No such file or directory\n"
    );
    let run = elfuse_cmd()
        .env("PATH", "/nonexistent")
        .arg("no-such-command")
        .output()
        .unwrap();
    let run = Run::from(run);
    assert_eq!(run.code(), 127);
    assert_eq!(
        run.stderr(),
        "elfuse: no-such-command: No such file or directory\n"
    );
}

#[test]
fn non_elf_and_foreign_files_exit_126_with_the_reason() {
    let dir = scratch();
    let d = dir.path();
    rejects(
        &executable(d, "script", b"#!/bin/sh\necho hi\n"),
        126,
        "not an ELF executable",
    );
    rejects(&executable(d, "empty", b""), 126, "not an ELF executable");

    let good = std::fs::read(repo().join("src/cli/selftest/selftest.elf")).unwrap();
    let mut x86 = good.clone();
    x86[18..20].copy_from_slice(&62u16.to_le_bytes());
    rejects(
        &executable(d, "x86", &x86),
        126,
        "this is an ELF executable for x86-64, not aarch64",
    );

    let mut elf32 = good.clone();
    elf32[4] = 1;
    rejects(
        &executable(d, "elf32", &elf32),
        126,
        "32-bit ELF executables are not supported (elfuse runs 64-bit aarch64 programs)",
    );

    let mut object = good.clone();
    object[16..18].copy_from_slice(&1u16.to_le_bytes());
    rejects(
        &executable(d, "object", &object),
        126,
        "ELF type REL (relocatable object) is not executable",
    );
}

#[test]
fn truncated_and_corrupt_elfs_exit_126() {
    let dir = scratch();
    let d = dir.path();
    let good = std::fs::read(repo().join("src/cli/selftest/selftest.elf")).unwrap();

    let header_only = executable(d, "header", &good[..40]);
    rejects(
        &header_only,
        126,
        "truncated ELF file: the ELF header needs 64 bytes, the file has 40",
    );

    let cut = executable(d, "cut", &good[..good.len() / 2]);
    let run = elfuse(&[cut.to_str().unwrap()]);
    assert_eq!(run.code(), 126);
    assert!(
        run.stderr().starts_with(&format!(
            "elfuse: {}: truncated ELF file: segment at",
            cut.display()
        )),
        "{}",
        run.stderr()
    );

    // The first program header's p_memsz (offset 40 in the entry) made absurd.
    let phoff = u64::from_le_bytes(good[32..40].try_into().unwrap()) as usize;
    let mut absurd = good.clone();
    absurd[phoff + 40..phoff + 48].copy_from_slice(&(u64::MAX - 4096).to_le_bytes());
    let absurd = executable(d, "absurd", &absurd);
    let run = elfuse(&[absurd.to_str().unwrap()]);
    assert_eq!(run.code(), 126);
    assert!(
        run.stderr().contains("corrupt ELF file"),
        "{}",
        run.stderr()
    );
    assert_eq!(run.stderr().lines().count(), 1);

    // Overlapping segments: the second PT_LOAD moved onto the first (a glibc program has
    // text and data segments).
    let good = std::fs::read(probe()).unwrap();
    let phoff = u64::from_le_bytes(good[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(good[56..58].try_into().unwrap()) as usize;
    let loads: Vec<usize> = (0..phnum)
        .map(|i| phoff + i * 56)
        .filter(|&at| u32::from_le_bytes(good[at..at + 4].try_into().unwrap()) == 1)
        .collect();
    assert!(loads.len() >= 2, "two loadable segments");
    let mut overlap = good.clone();
    let first_vaddr = u64::from_le_bytes(good[loads[0] + 16..loads[0] + 24].try_into().unwrap());
    let second_offset = u64::from_le_bytes(good[loads[1] + 8..loads[1] + 16].try_into().unwrap());
    let moved = first_vaddr + (second_offset % 4096);
    overlap[loads[1] + 16..loads[1] + 24].copy_from_slice(&moved.to_le_bytes());
    let overlap = executable(d, "overlap", &overlap);
    let run = elfuse(&[overlap.to_str().unwrap()]);
    assert_eq!(run.code(), 126);
    assert!(run.stderr().contains("overlap"), "{}", run.stderr());
}

#[test]
fn unrunnable_files_exit_126() {
    let dir = scratch();
    let good = std::fs::read(repo().join("src/cli/selftest/selftest.elf")).unwrap();
    let plain = dir.path().join("not-executable");
    std::fs::write(&plain, &good).unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    rejects(&plain, 126, "Permission denied");
    rejects(dir.path(), 126, "Is a directory");
}

#[test]
fn an_unavailable_backend_is_a_clear_error() {
    let run = probe_run(&["exit", "0"]);
    assert_eq!(run.code(), 0);
    let bin = probe();
    let run = elfuse(&["--backend", "hvf", bin.to_str().unwrap(), "exit", "0"]);
    assert_eq!(run.code(), 125);
    assert_eq!(
        run.stderr(),
        "elfuse: the hvf backend is not available on this host (it needs macOS on Apple Silicon)\n"
    );
}

#[test]
fn bad_command_lines_exit_2() {
    let run = elfuse(&[]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr().starts_with("elfuse: no program given"),
        "{}",
        run.stderr()
    );
    let run = elfuse(&["--no-such-option"]);
    assert_eq!(run.code(), 2);
    for args in [&["exec"][..], &["exec", "--"], &["exec", "--trace"]] {
        let run = elfuse(args);
        assert_eq!(run.code(), 2, "elfuse {args:?}");
        assert!(
            run.stderr().starts_with("elfuse: no program given"),
            "elfuse {args:?}: {}",
            run.stderr()
        );
    }
}

#[test]
fn the_selftest_binary_is_built_from_its_source() {
    let dir = scratch();
    let out = dir.path().join("selftest.elf");
    let status = std::process::Command::new(repo().join("src/cli/selftest/build.sh"))
        .arg(&out)
        .status()
        .expect("run src/cli/selftest/build.sh (needs aarch64-linux-gnu-gcc)");
    assert!(status.success());
    let rebuilt = std::fs::read(&out).unwrap();
    let shipped = std::fs::read(repo().join("src/cli/selftest/selftest.elf")).unwrap();
    assert!(
        rebuilt == shipped,
        "selftest.elf does not match selftest.c; run build.sh"
    );
}

#[test]
fn a_guest_exec_of_a_host_program_is_enoexec_by_default() {
    let run = probe_run(&["exec", "/bin/sh", "-c", "echo ran"]);
    assert_eq!(run.stdout(), "exec /bin/sh: Exec format error\n");
    assert_eq!(run.code(), 126);
    assert_eq!(run.stderr(), "");
}

#[test]
fn with_elfuse_host_exec_the_host_program_takes_over_the_process() {
    let script =
        "echo \"$@\" >&9; kill -USR1 $$; echo alive; grep SigIgn /proc/self/status; exit 7";
    let output = elfuse_cmd()
        .env("ELFUSE_HOST_EXEC", "1")
        .arg(probe())
        .args(["exec", "/bin/sh", "-c", script, "sh", "x", "y z"])
        .current_dir(repo())
        .output()
        .expect("run elfuse");
    let run: Run = output.into();
    // Descriptor 9 (no close-on-exec) reached the host program, and SIGUSR1 stayed ignored.
    let stdout = run.stdout();
    let (head, sig_ign) = stdout.split_once("SigIgn:").expect("the SigIgn line");
    assert_eq!(head, "x y z\nalive\n");
    // SIGUSR1 (bit 9) stays ignored; SIGPIPE (bit 12), which elfuse ignores for itself, is
    // back to its default. (Other bits depend on what started the test.)
    let ignored = u64::from_str_radix(sig_ign.trim(), 16).expect("a hex mask");
    assert_eq!(ignored & (1 << 9), 1 << 9, "SigIgn {ignored:#x}");
    assert_eq!(ignored & (1 << 12), 0, "SigIgn {ignored:#x}");
    assert_eq!(run.code(), 7, "stderr: {}", run.stderr());
}

#[test]
fn descriptors_inherited_from_the_shell_reach_the_guest() {
    let dir = scratch();
    let file = dir.path().join("five");
    std::fs::write(&file, "on descriptor 5\n").unwrap();
    let run = probe_through_sh(&format!("cat-fd 5 5<'{}'", file.display()));
    assert_eq!(
        run.stdout(),
        "on descriptor 5\n",
        "stderr: {}",
        run.stderr()
    );
    assert_eq!(run.code(), 0);
}

#[test]
fn the_trace_names_the_program_a_successful_execve_ran() {
    let dir = scratch();
    let trace = dir.path().join("trace");
    let probe = probe();
    let probe = probe.to_str().unwrap();
    let run = elfuse(&[
        "--trace-file",
        trace.to_str().unwrap(),
        probe,
        "exec",
        probe,
        "exit",
        "3",
    ]);
    assert_eq!(run.code(), 3, "stderr: {}", run.stderr());
    let text = std::fs::read_to_string(&trace).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(" execve("))
        .expect("an execve line");
    // The trace cuts strings at 32 bytes.
    let shown = &probe[..probe.len().min(32)];
    assert!(
        line.contains(&format!("execve(\"{shown}")) && line.ends_with(" = 0"),
        "{line}"
    );
}

#[test]
fn a_standard_descriptor_closed_by_the_shell_is_closed_for_the_guest() {
    // cat-fd exits 1 when reading its descriptor fails (EBADF), 0 at end of file.
    for (redirect, code) in [("<&-", 1), ("</dev/null", 0)] {
        let run = probe_through_sh(&format!("cat-fd 0 {redirect}"));
        assert_eq!(run.code(), code, "{redirect}: stderr {}", run.stderr());
    }
}

#[test]
fn an_unreadable_elfuse_log_is_named_and_ignored() {
    let run = Run::from(
        elfuse_cmd()
            .env("ELFUSE_LOG", "[[[")
            .args([probe().to_str().unwrap(), "exit", "4"])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code(), 4);
    assert_eq!(
        run.stderr(),
        "elfuse: ignoring ELFUSE_LOG=\"[[[\": invalid filter directive\n"
    );
}

/// Waits for `pid` to stop or end (`WUNTRACED`), giving up after `limit`.
fn wait_with_limit(
    pid: nix::unistd::Pid,
    limit: std::time::Duration,
) -> nix::sys::wait::WaitStatus {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let start = std::time::Instant::now();
    loop {
        let flags = WaitPidFlag::WUNTRACED | WaitPidFlag::WNOHANG;
        match waitpid(pid, Some(flags)).unwrap() {
            WaitStatus::StillAlive if start.elapsed() < limit => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            WaitStatus::StillAlive => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL);
                let _ = waitpid(pid, None);
                panic!("elfuse did not stop or end within {limit:?}");
            }
            status => return status,
        }
    }
}

#[test]
#[expect(
    clippy::zombie_processes,
    reason = "waitpid reaps the child, to see it stop"
)]
fn a_stop_signal_stops_elfuse_by_that_signal_until_continued() {
    use nix::sys::signal::{Signal, kill};
    use nix::sys::wait::WaitStatus;
    let limit = std::time::Duration::from_secs(20);
    // SIGTSTP (a terminal's Ctrl-Z) and SIGSTOP, each raised by the guest with its default
    // action: the shell must see the job stopped by that very signal.
    for (number, signal) in [("20", Signal::SIGTSTP), ("19", Signal::SIGSTOP)] {
        // A process group of its own, whose parent (this test) is outside it: in an orphaned
        // group, which is what the test runner's may be, Linux discards terminal stop signals.
        let child = elfuse_cmd()
            .arg(probe())
            .args(["signal", number])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        assert_eq!(
            wait_with_limit(pid, limit),
            WaitStatus::Stopped(pid, signal)
        );
        kill(pid, Signal::SIGCONT).unwrap();
        // Continued, the guest's raise returns and the probe exits 65.
        assert_eq!(wait_with_limit(pid, limit), WaitStatus::Exited(pid, 65));
    }
}

#[test]
#[expect(
    clippy::zombie_processes,
    reason = "waitpid reaps the child, with a time limit"
)]
fn a_signal_sent_while_the_program_loads_is_not_lost() {
    use nix::sys::signal::{Signal, kill};
    use nix::sys::wait::WaitStatus;
    // The probe blocks reading a pipe that never ends, so only the SIGINT can end it. Sent at
    // different points of elfuse's start-up, it must always kill the guest (before the guest
    // exists, elfuse itself dies by it, which the shell sees the same way).
    for delay_ms in [0, 1, 2, 4, 6, 8, 10, 12, 16, 20, 30, 50] {
        let mut cmd = elfuse_cmd();
        cmd.arg(probe())
            .args(["cat-fd", "0"])
            .stdin(std::process::Stdio::piped());
        // A shell starts background jobs with SIGINT ignored, and the guest inherits that, as
        // on Linux; this test needs the default action whoever runs it.
        // SAFETY: signal() is async-signal-safe, and nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        kill(pid, Signal::SIGINT).unwrap();
        let status = wait_with_limit(pid, std::time::Duration::from_secs(20));
        assert_eq!(
            status,
            WaitStatus::Signaled(pid, Signal::SIGINT, false),
            "SIGINT after {delay_ms} ms"
        );
        drop(child.stdin.take());
    }
}
