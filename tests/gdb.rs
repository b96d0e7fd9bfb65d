//! The debugger stub (`--gdb`), driven by the real debuggers: `gdb-multiarch` in batch mode
//! (and lldb) against `tests/guest/gdb_target.c`, asserting each step's output.
//!
//! Every run picks a free port, gives the debugger a time limit and kills elfuse at the end,
//! so a broken stub fails the test instead of hanging it.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Link, build_guest, elfuse_cmd};

/// How long one debugger session may take.
const SESSION_LIMIT: &str = "90";

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().unwrap().port()
}

/// elfuse serving a debugger for `program ARGS`, stopped at its entry point.
struct Debuggee {
    child: Child,
    port: u16,
}

impl Debuggee {
    fn start(extra: &[&str], program: &Path, args: &[&str]) -> Debuggee {
        let port = free_port();
        let child = elfuse_cmd()
            .arg("--gdb")
            .arg(port.to_string())
            .arg("--gdb-stop-on-entry")
            .args(extra)
            .arg(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start elfuse");
        Debuggee { child, port }
    }

    /// Waits (bounded) for elfuse to end; returns its status, stdout and stderr.
    fn finish(mut self) -> (std::process::ExitStatus, String, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("elfuse did not end after the debugger session");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        let mut err = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status, out, err)
    }
}

impl Drop for Debuggee {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `gdb-multiarch -batch` on `program` with `commands` against the stub on `port`.
fn gdb(program: &Path, port: u16, setup: &[String], commands: &[&str]) -> String {
    let mut args: Vec<String> = vec![
        "-batch".into(),
        "-nx".into(),
        "-ex".into(),
        "set pagination off".into(),
        "-ex".into(),
        "set confirm off".into(),
    ];
    for line in setup {
        args.push("-ex".into());
        args.push(line.clone());
    }
    args.push("-ex".into());
    args.push(format!("target remote 127.0.0.1:{port}"));
    for line in commands {
        args.push("-ex".into());
        args.push((*line).to_string());
    }
    args.push(program.display().to_string());
    let out = Command::new("timeout")
        .arg(SESSION_LIMIT)
        .arg("gdb-multiarch")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run gdb-multiarch ({e}); install it with `apt-get install gdb-multiarch`"
            )
        });
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(124), "gdb timed out:\n{text}");
    text
}

/// Asserts that `text` has a line containing each of `expected`, in that order.
fn assert_in_order(text: &str, expected: &[&str]) {
    let mut rest = text;
    for want in expected {
        match rest.find(want) {
            Some(at) => rest = &rest[at + want.len()..],
            None => panic!("missing {want:?} (in order) in the debugger's output:\n{text}"),
        }
    }
}

fn target() -> PathBuf {
    build_guest("gdb_target", "gdb_target", Link::Static)
}

#[test]
fn gdb_breaks_reads_state_steps_and_sees_the_exit_status() {
    let program = target();
    let debuggee = Debuggee::start(&[], &program, &[]);
    let out = gdb(
        &program,
        debuggee.port,
        &[],
        &[
            "break add",
            "continue",
            "info registers x0 x1 pc",
            "print a",
            "print b",
            "print global_value",
            "x/4gx $sp",
            "next",
            "print sum",
            "step",
            "step",
            "step",
            "print counter",
            "up",
            "print local",
            "continue",
        ],
    );
    assert_in_order(
        &out,
        &[
            "in _start ()",
            "Breakpoint 1 at 0x",
            "Breakpoint 1, add (a=42, b=8) at ",
            "gdb_target.c:23",
            "x0             0x2a                42",
            "x1             0x8                 8",
            "pc             0x",
            "<add+",
            "$1 = 42",
            "$2 = 8",
            "$3 = 1234",
            // The frame's spill of `b` and `a` (w1 at sp+8, w0 at sp+12), as -O0 lays it out.
            ":\t0x",
            "0x0000002a00000008",
            "24\t    return sum;      /* LINE_ADD_RETURN */",
            "$4 = 50",
            "25\t}",
            "main (argc=1, ",
            "55\t    bump();                /* LINE_CALL_BUMP */",
            "bump () at ",
            "29\t    counter += 5; /* LINE_BUMP */",
            "$5 = 0",
            "main (argc=1, ",
            "$6 = 42",
            "[Inferior 1 (process ",
            ") exited with code 07]",
        ],
    );
    let (status, stdout, stderr) = debuggee.finish();
    assert_eq!(status.code(), Some(7), "stderr: {stderr}");
    assert_eq!(stdout, "result 50 counter 10\n");
    assert_eq!(stderr, "", "elfuse added to the guest's stderr");
}

#[test]
fn gdb_watchpoints_stop_on_the_writes() {
    let program = target();
    let debuggee = Debuggee::start(&[], &program, &[]);
    let out = gdb(
        &program,
        debuggee.port,
        &[],
        &[
            "watch counter",
            "continue",
            "continue",
            "delete",
            "continue",
        ],
    );
    assert_in_order(
        &out,
        &[
            "Hardware watchpoint 1: counter",
            "Old value = 0",
            "New value = 5",
            "bump () at ",
            "Old value = 5",
            "New value = 10",
            "exited with code 07]",
        ],
    );
    let (status, stdout, _) = debuggee.finish();
    assert_eq!(status.code(), Some(7));
    assert_eq!(stdout, "result 50 counter 10\n");
}

#[test]
fn gdb_stops_at_the_faulting_line_and_the_signal_then_kills() {
    let program = target();
    let debuggee = Debuggee::start(&[], &program, &["crash"]);
    let out = gdb(&program, debuggee.port, &[], &["continue", "continue"]);
    assert_in_order(
        &out,
        &[
            "Program received signal SIGSEGV, Segmentation fault.",
            "in crash () at ",
            "35\t    *p = 42; /* LINE_CRASH */",
            "Program terminated with signal SIGSEGV, Segmentation fault.",
        ],
    );
    let (status, _, _) = debuggee.finish();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(11), "elfuse should die by SIGSEGV");
}

#[test]
fn gdb_lists_the_four_threads_of_a_threaded_program() {
    let program = target();
    let debuggee = Debuggee::start(&[], &program, &["threads"]);
    let out = gdb(
        &program,
        debuggee.port,
        &[],
        &["break all_started", "continue", "info threads", "continue"],
    );
    assert_in_order(
        &out,
        &[
            "hit Breakpoint 1, all_started () at ",
            "  Id   Target Id",
            "* 1    Thread ",
            "all_started () at ",
            "exited with code 07]",
        ],
    );
    let listing = out
        .split("  Id   Target Id")
        .nth(1)
        .expect("info threads output");
    let threads = listing
        .lines()
        .filter(|line| {
            line.trim_start()
                .starts_with(|c: char| c.is_ascii_digit() || c == '*')
        })
        .filter(|line| line.contains("Thread "))
        .count();
    assert_eq!(threads, 4, "info threads:\n{listing}");
    let (status, _, _) = debuggee.finish();
    assert_eq!(status.code(), Some(7));
}

#[test]
fn gdb_resolves_shared_library_symbols_of_a_dynamic_program() {
    let program = build_guest("gdb_target", "gdb_target_dyn", Link::Dynamic);
    let sysroot = common::test_sysroot();
    let sysroot_arg = sysroot.display().to_string();
    let debuggee = Debuggee::start(&["--sysroot", &sysroot_arg], &program, &[]);
    let out = gdb(
        &program,
        debuggee.port,
        &[format!("set sysroot {sysroot_arg}")],
        &[
            "break add",
            "continue",
            "info registers x0 x1",
            "print a",
            "print global_value",
            "x/2gx $sp",
            "next",
            "print sum",
            "info sharedlibrary",
            "break printf",
            "continue",
            "bt",
            "continue",
        ],
    );
    let libc = format!("{sysroot_arg}/lib/aarch64-linux-gnu/libc.so.6");
    assert_in_order(
        &out,
        &[
            "Breakpoint 1, add (a=42, b=8) at ",
            "gdb_target.c:23",
            "x0             0x2a                42",
            "$1 = 42",
            "$2 = 1234",
            "0x0000002a00000008",
            "24\t    return sum;      /* LINE_ADD_RETURN */",
            "$3 = 50",
            "From                To                  Syms Read   Shared Object Library",
            "ld-linux-aarch64.so.1",
            &format!("Yes (*)     {libc}"),
            "Breakpoint 2 at 0x",
            "Breakpoint 2, 0x",
            &format!("in printf () from {libc}"),
            "#1  0x",
            " in main (argc=1, ",
            "exited with code 07]",
        ],
    );
    assert!(
        !out.contains("warning: while parsing target library list"),
        "the library list was rejected:\n{out}"
    );
    let (status, stdout, stderr) = debuggee.finish();
    assert_eq!(status.code(), Some(7), "stderr: {stderr}");
    assert_eq!(stdout, "result 50 counter 10\n");
}

#[test]
fn lldb_connects_breaks_and_reads_the_stack_and_registers() {
    let program = target();
    let debuggee = Debuggee::start(&[], &program, &[]);
    let commands = [
        format!("file {}", program.display()),
        format!("gdb-remote 127.0.0.1:{}", debuggee.port),
        "breakpoint set --name add".to_string(),
        "continue".to_string(),
        "bt".to_string(),
        "register read x0 x1 pc".to_string(),
        "continue".to_string(),
    ];
    let mut cmd = Command::new("timeout");
    cmd.arg(SESSION_LIMIT).arg("lldb").arg("--batch");
    for line in &commands {
        cmd.arg("-o").arg(line);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("cannot run lldb ({e}); install it with `apt-get install lldb`")
    });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_ne!(out.status.code(), Some(124), "lldb timed out:\n{text}");
    assert_in_order(
        &text,
        &[
            "Process 1 stopped",
            "stop reason = signal SIGTRAP",
            "gdb_target`_start",
            "Breakpoint 1: where = gdb_target`add at gdb_target.c:22",
            "stop reason = breakpoint 1.1",
            "frame #0: 0x",
            "gdb_target`add(a=",
            "frame #1: 0x",
            "gdb_target`main(argc=1, ",
            "x0 = 0x000000000000002a",
            "x1 = 0x0000000000000008",
            "pc = 0x",
            "gdb_target`add at gdb_target.c:22",
            "Process 1 exited with status = 7 (0x00000007)",
        ],
    );
    let (status, stdout, _) = debuggee.finish();
    assert_eq!(status.code(), Some(7));
    assert_eq!(stdout, "result 50 counter 10\n");
}

#[test]
fn a_debugger_that_detaches_lets_the_program_run_on() {
    let program = target();
    let debuggee = Debuggee::start(&[], &program, &[]);
    let out = gdb(
        &program,
        debuggee.port,
        &[],
        &["break add", "continue", "detach"],
    );
    assert_in_order(
        &out,
        &[
            "Breakpoint 1, add (a=42, b=8) at ",
            "[Inferior 1 (process 1) detached]",
        ],
    );
    let (status, stdout, stderr) = debuggee.finish();
    assert_eq!(status.code(), Some(7), "stderr: {stderr}");
    assert_eq!(stdout, "result 50 counter 10\n");
}

#[test]
fn a_port_in_use_is_reported_before_the_program_runs() {
    let program = target();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let out = elfuse_cmd()
        .arg("--gdb")
        .arg(port.to_string())
        .arg(&program)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(out.stdout.is_empty(), "the program ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen for a debugger on 127.0.0.1:{port}")),
        "{stderr}"
    );
}
