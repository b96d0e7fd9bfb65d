//! The debugger stub (`--gdb`), driven by the real debuggers: `gdb-multiarch` in batch mode
//! and lldb against `tests/guest/gdb_target.c`, built static and dynamic (run against the test
//! sysroot), asserting each step's output. Source lines are found by the marker comments at
//! their ends.
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

/// elfuse serving a debugger for a program.
struct Debuggee {
    child: Child,
    port: u16,
}

impl Debuggee {
    /// Starts elfuse, stopped at its entry point if `entry`.
    fn start(entry: bool, extra: &[&str], program: &Path, args: &[&str]) -> Debuggee {
        let port = free_port();
        let child = elfuse_cmd()
            .arg("--gdb")
            .arg(port.to_string())
            .args(entry.then_some("--gdb-stop-on-entry"))
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

/// Runs `gdb-multiarch -batch` (on `program`, if given) with `commands` against the stub on
/// `port`.
fn gdb(program: Option<&Path>, port: u16, setup: &[String], commands: &[&str]) -> String {
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
    // Without a program file gdb learns it from the stub (`qXfer:exec-file`).
    if let Some(program) = program {
        args.push(program.display().to_string());
    }
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

/// How the test program is built and run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    Static,
    /// Dynamically linked, run against `common::test_sysroot()`.
    Dynamic,
}

/// The test program of `flavor` and the elfuse options that run it.
struct Program {
    path: PathBuf,
    elfuse_args: Vec<String>,
}

fn program(flavor: Flavor) -> Program {
    match flavor {
        Flavor::Static => Program {
            path: build_guest("gdb_target", "gdb_target", Link::Static),
            elfuse_args: Vec::new(),
        },
        Flavor::Dynamic => {
            let sysroot = common::test_sysroot().display().to_string();
            Program {
                path: build_guest("gdb_target", "gdb_target_dyn", Link::Dynamic),
                elfuse_args: vec!["--sysroot".into(), sysroot],
            }
        }
    }
}

impl Program {
    fn start(&self, entry: bool, args: &[&str]) -> Debuggee {
        let extra: Vec<&str> = self.elfuse_args.iter().map(String::as_str).collect();
        Debuggee::start(entry, &extra, &self.path, args)
    }

    /// gdb against `debuggee`, with its default sysroot (`target:`): it reads the program
    /// and its libraries through the stub.
    fn gdb(&self, debuggee: &Debuggee, commands: &[&str]) -> String {
        gdb(None, debuggee.port, &[], commands)
    }
}

/// The line of `tests/guest/gdb_target.c` that ends with the comment `/* MARKER */`, as gdb
/// lists it: the number, a tab and the source text.
fn line(marker: &str) -> String {
    let source = std::fs::read_to_string(common::repo().join("tests/guest/gdb_target.c"))
        .expect("read gdb_target.c");
    let tag = format!("/* {marker} */");
    source
        .lines()
        .enumerate()
        .find(|(_, text)| text.ends_with(&tag))
        .map(|(n, text)| format!("{}\t{text}", n + 1))
        .unwrap_or_else(|| panic!("no line marked {marker}"))
}

/// The line number alone.
fn line_no(marker: &str) -> String {
    line(marker).split('\t').next().unwrap().to_string()
}

const OUTPUT: &str = "result 50 counter 10 global 1234\n";

fn break_read_step_and_exit(flavor: Flavor) {
    let program = program(flavor);
    let debuggee = program.start(true, &[]);
    let out = program.gdb(
        &debuggee,
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
    let add_line = format!("gdb_target.c:{}", line_no("LINE_ADD_SUM"));
    // gdb was given no file: it found the program through the stub.
    let reading = format!("Reading symbols from target:{}...", program.path.display());
    assert!(out.contains(&reading), "{out}");
    assert_in_order(
        &out,
        &[
            "Breakpoint 1 at 0x",
            "Breakpoint 1, add (a=42, b=8) at ",
            &add_line,
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
            &line("LINE_ADD_RETURN"),
            "$4 = 50",
            "main (argc=1, ",
            &line("LINE_CALL_BUMP"),
            "bump () at ",
            &line("LINE_BUMP"),
            "$5 = 0",
            "main (argc=1, ",
            "$6 = 42",
            "[Inferior 1 (process 1) exited with code 07]",
        ],
    );
    let (status, stdout, stderr) = debuggee.finish();
    assert_eq!(status.code(), Some(7), "stderr: {stderr}");
    assert_eq!(stdout, OUTPUT);
    assert_eq!(stderr, "", "elfuse added to the guest's stderr");
}

#[test]
fn gdb_breaks_reads_state_steps_and_sees_the_exit_status() {
    break_read_step_and_exit(Flavor::Static);
}

#[test]
fn gdb_breaks_reads_state_steps_and_sees_the_exit_status_of_a_dynamic_program() {
    break_read_step_and_exit(Flavor::Dynamic);
}

fn watch_writes(flavor: Flavor) {
    let program = program(flavor);
    let debuggee = program.start(true, &[]);
    let out = program.gdb(
        &debuggee,
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
    assert_eq!(stdout, OUTPUT);
}

#[test]
fn gdb_watchpoints_stop_on_the_writes() {
    watch_writes(Flavor::Static);
}

#[test]
fn gdb_watchpoints_stop_on_the_writes_of_a_dynamic_program() {
    watch_writes(Flavor::Dynamic);
}

fn fault_then_death(flavor: Flavor) {
    let program = program(flavor);
    let debuggee = program.start(true, &["crash"]);
    let out = program.gdb(&debuggee, &["continue", "continue"]);
    assert_in_order(
        &out,
        &[
            "Program received signal SIGSEGV, Segmentation fault.",
            "in crash () at ",
            &line("LINE_CRASH"),
            "Program terminated with signal SIGSEGV, Segmentation fault.",
        ],
    );
    let (status, _, _) = debuggee.finish();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(11), "elfuse should die by SIGSEGV");
}

#[test]
fn gdb_stops_at_the_faulting_line_then_the_signal_kills() {
    fault_then_death(Flavor::Static);
}

#[test]
fn gdb_stops_at_the_faulting_line_of_a_dynamic_program() {
    fault_then_death(Flavor::Dynamic);
}

fn four_threads(flavor: Flavor) {
    let program = program(flavor);
    let debuggee = program.start(true, &["threads"]);
    let out = program.gdb(
        &debuggee,
        &["break all_started", "continue", "info threads", "continue"],
    );
    assert_in_order(
        &out,
        &[
            "hit Breakpoint 1, all_started () at ",
            &line("LINE_ALL_STARTED"),
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
        .filter(|line| line.contains("Thread 1."))
        .count();
    assert_eq!(threads, 4, "info threads:\n{listing}");
    if flavor == Flavor::Static {
        // Each thread shows its own registers: the workers wait in the barrier.
        let waiting = listing.matches(" in pthread_barrier_wait ()").count();
        assert_eq!(waiting, 3, "info threads:\n{listing}");
    }
    let (status, stdout, _) = debuggee.finish();
    assert_eq!(status.code(), Some(7));
    assert_eq!(stdout, "result 50 counter 10 global 1235\n");
}

#[test]
fn gdb_lists_the_four_threads_of_a_threaded_program() {
    four_threads(Flavor::Static);
}

#[test]
fn gdb_lists_the_four_threads_of_a_dynamic_threaded_program() {
    four_threads(Flavor::Dynamic);
}

/// The shared-library flow on the dynamic program; `local` names the sysroot to gdb (files
/// read on the host) instead of letting it read them through the stub.
fn shared_libraries(local: bool) {
    let program = program(Flavor::Dynamic);
    let sysroot = common::test_sysroot().display().to_string();
    let debuggee = program.start(true, &[]);
    let commands = [
        "break add",
        "continue",
        "info sharedlibrary",
        "break printf",
        "continue",
        "bt",
        "continue",
    ];
    let (out, prefix) = if local {
        let setup = [format!("set sysroot {sysroot}")];
        let out = gdb(Some(&program.path), debuggee.port, &setup, &commands);
        (out, sysroot.clone())
    } else {
        (program.gdb(&debuggee, &commands), "target:".to_string())
    };
    let libc = format!("{prefix}/lib/aarch64-linux-gnu/libc.so.6");
    assert_in_order(
        &out,
        &[
            "Breakpoint 1, add (a=42, b=8) at ",
            "From                To                  Syms Read   Shared Object Library",
            &format!("Yes (*)     {prefix}/lib/ld-linux-aarch64.so.1"),
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
    assert_eq!(stdout, OUTPUT);
}

#[test]
fn gdb_reads_the_sysroots_libraries_through_the_stub() {
    shared_libraries(false);
}

#[test]
fn gdb_resolves_shared_library_symbols_from_a_local_sysroot() {
    shared_libraries(true);
}

#[test]
fn gdb_writes_registers_and_memory_and_refuses_unmapped_addresses() {
    let program = program(Flavor::Static);
    let debuggee = program.start(true, &[]);
    let out = program.gdb(
        &debuggee,
        &[
            "break add",
            "continue",
            "finish",
            // The return value is still in x0: the caller stores 60 into `r` instead of 50.
            "set $x0 = 60",
            "set var global_value = 99",
            "set var counter = 100",
            "set $v0.d[0] = 2.5",
            "print $v0.d[0]",
            "print $x0",
            "print/x $cpsr",
            "x/2gx 0",
            "continue",
        ],
    );
    assert_in_order(
        &out,
        &[
            "Value returned is $1 = 50",
            "$2 = 2.5",
            "$3 = 60",
            "$4 = 0x",
            "Cannot access memory at address 0x0",
        ],
    );
    let (status, stdout, _) = debuggee.finish();
    // add() "returned" 60, so the program exits with 1; the two bumps count from 100.
    assert_eq!(stdout, "result 60 counter 110 global 99\n");
    assert_eq!(status.code(), Some(1));
}

#[test]
fn gdb_sees_signals_before_delivery_and_continues_with_one() {
    let program = program(Flavor::Static);
    let debuggee = program.start(true, &["signal"]);
    let out = program.gdb(
        &debuggee,
        &[
            // The program's SIGUSR2 stops the debugger before it is delivered.
            "continue",
            "print handled",
            // Continuing with another signal delivers that one instead.
            "break on_signal",
            "signal SIGUSR1",
            "print signo",
            "delete",
            "continue",
        ],
    );
    assert_in_order(
        &out,
        &[
            "Program received signal SIGUSR2, User defined signal 2.",
            "$1 = 0",
            "Breakpoint 1, on_signal (signo=10)",
            &line("LINE_HANDLER"),
            "$2 = 10",
            "exited with code 07]",
        ],
    );
    let (status, stdout, _) = debuggee.finish();
    assert_eq!(status.code(), Some(7));
    assert_eq!(stdout, format!("handled 10\n{OUTPUT}"));
}

#[test]
fn gdb_attaches_to_a_running_program_and_changes_its_course() {
    let program = program(Flavor::Static);
    let debuggee = program.start(false, &["spin"]);
    std::thread::sleep(Duration::from_millis(200));
    let out = program.gdb(
        &debuggee,
        &["print spinning", "set var spinning = 0", "continue"],
    );
    assert_in_order(&out, &["$1 = 1", "exited with code 07]"]);
    let (status, stdout, _) = debuggee.finish();
    assert_eq!(status.code(), Some(7));
    assert_eq!(stdout, OUTPUT);
}

#[test]
fn gdb_follows_the_parent_of_a_fork_and_the_child_runs_free() {
    let program = program(Flavor::Static);
    let debuggee = program.start(true, &["fork"]);
    // bump() runs twice in the parent before the fork, and once in the child after it.
    let out = program.gdb(
        &debuggee,
        &[
            "break bump",
            "continue",
            "continue",
            "break printf",
            "continue",
            "print counter",
            "delete",
            "continue",
        ],
    );
    assert_in_order(
        &out,
        &[
            "Breakpoint 1, bump () at ",
            "Breakpoint 1, bump () at ",
            "Breakpoint 2, ",
            "printf",
            "$1 = 10",
            "exited with code 07]",
        ],
    );
    let (status, stdout, _) = debuggee.finish();
    assert_eq!(status.code(), Some(7));
    assert_eq!(stdout, format!("child 3\n{OUTPUT}"));
}

#[test]
fn gdb_kill_ends_the_program() {
    let program = program(Flavor::Static);
    let debuggee = program.start(true, &[]);
    let out = program.gdb(&debuggee, &["break add", "continue", "kill"]);
    assert_in_order(&out, &["Breakpoint 1, add"]);
    // gdb reports the kill as its end or as the stub closing the connection after it.
    assert!(
        out.contains("[Inferior 1 (process 1) killed]") || out.contains("Remote connection closed"),
        "{out}"
    );
    let (status, stdout, _) = debuggee.finish();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9));
    assert_eq!(stdout, "");
}

#[test]
fn lldb_connects_breaks_and_reads_the_stack_and_registers() {
    let program = program(Flavor::Static);
    let debuggee = program.start(true, &[]);
    let commands = [
        format!("file {}", program.path.display()),
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
    let add_line = format!(
        "gdb_target`add at gdb_target.c:{}",
        line_no("LINE_ADD_SUM").parse::<u32>().unwrap() - 1
    );
    assert_in_order(
        &text,
        &[
            "Process 1 stopped",
            "stop reason = signal SIGTRAP",
            "gdb_target`_start",
            &format!("Breakpoint 1: where = {add_line}"),
            "stop reason = breakpoint 1.1",
            "frame #0: 0x",
            "gdb_target`add(a=",
            "frame #1: 0x",
            "gdb_target`main(argc=1, ",
            "x0 = 0x000000000000002a",
            "x1 = 0x0000000000000008",
            "pc = 0x",
            &add_line,
            "Process 1 exited with status = 7 (0x00000007)",
        ],
    );
    let (status, stdout, _) = debuggee.finish();
    assert_eq!(status.code(), Some(7));
    assert_eq!(stdout, OUTPUT);
}

#[test]
fn a_debugger_that_detaches_lets_the_program_run_on() {
    let program = program(Flavor::Static);
    let debuggee = program.start(true, &[]);
    let out = program.gdb(&debuggee, &["break add", "continue", "detach"]);
    assert_in_order(
        &out,
        &[
            "Breakpoint 1, add (a=42, b=8) at ",
            "[Inferior 1 (process 1) detached]",
        ],
    );
    let (status, stdout, stderr) = debuggee.finish();
    assert_eq!(status.code(), Some(7), "stderr: {stderr}");
    assert_eq!(stdout, OUTPUT);
}

#[test]
fn a_port_in_use_is_reported_before_the_program_runs() {
    let program = program(Flavor::Static);
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let out = elfuse_cmd()
        .arg("--gdb")
        .arg(port.to_string())
        .arg(&program.path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(out.stdout.is_empty(), "the program ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "elfuse: {}: cannot listen for a debugger on 127.0.0.1:{port}: ",
            program.path.display()
        )),
        "{stderr}"
    );
    // One line, naming the host's error once.
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(stderr.matches("in use").count(), 1, "{stderr}");

    // Port 0 would listen on a port nobody is told: refused as a bad command line.
    let out = elfuse_cmd()
        .args(["--gdb", "0"])
        .arg(&program.path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "the program ran");
}

#[test]
fn gdb_stops_each_thread_at_its_breakpoint_and_watches_reads_and_accesses() {
    let program = program(Flavor::Static);
    let debuggee = program.start(true, &["threads"]);
    let out = program.gdb(
        &debuggee,
        &[
            "break worker",
            "continue",
            "continue",
            "continue",
            "delete",
            "rwatch counter",
            "awatch global_value",
            "continue",
            "continue",
            "continue",
            "continue",
        ],
    );
    // The three workers stop in turn, each in its own thread (2, 3 and 4 in some order).
    let hits: Vec<&str> = out
        .lines()
        .filter(|line| line.contains("hit Breakpoint 1, worker (arg=0x0)"))
        .collect();
    assert_eq!(hits.len(), 3, "{out}");
    let mut threads: Vec<&str> = hits
        .iter()
        .map(|line| line.split_whitespace().nth(1).unwrap())
        .collect();
    threads.sort_unstable();
    assert_eq!(threads, ["2", "3", "4"], "{out}");
    assert_in_order(
        &out,
        &[
            "Hardware read watchpoint 2: counter",
            "Hardware access (read/write) watchpoint 3: global_value",
            // all_started() reads, then writes global_value; main reads both for printf.
            "Thread 1 hit Hardware access (read/write) watchpoint 3: global_value",
            "Value = 1234",
            "all_started () at ",
            "Thread 1 hit Hardware access (read/write) watchpoint 3: global_value",
            "Old value = 1234",
            "New value = 1235",
            "Thread 1 hit Hardware read watchpoint 2: counter",
            "Value = 10",
            "main (argc=2, ",
            "Thread 1 hit Hardware access (read/write) watchpoint 3: global_value",
            "Value = 1235",
        ],
    );
    let (status, stdout, _) = debuggee.finish();
    assert_eq!(status.code(), Some(7));
    assert_eq!(stdout, "result 50 counter 10 global 1235\n");
}

/// A minimal remote-protocol client, for the packets a debugger sends first.
struct Client {
    stream: std::net::TcpStream,
    acks: bool,
}

impl Client {
    fn connect(port: u16) -> Client {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(20)))
                        .unwrap();
                    return Client { stream, acks: true };
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot connect to the stub: {e}"),
            }
        }
    }

    fn send(&mut self, body: &str) {
        use std::io::Write;
        let sum = body.bytes().fold(0u8, |s, b| s.wrapping_add(b));
        write!(self.stream, "${body}#{sum:02x}").unwrap();
    }

    /// The next packet's body (acknowledged while acks are on).
    fn reply(&mut self) -> String {
        use std::io::Write;
        let mut byte = [0u8];
        loop {
            self.stream.read_exact(&mut byte).expect("a reply in time");
            if byte[0] == b'$' {
                break;
            }
        }
        let mut body = Vec::new();
        loop {
            self.stream.read_exact(&mut byte).unwrap();
            if byte[0] == b'#' {
                break;
            }
            body.push(byte[0]);
        }
        let mut sum = [0u8; 2];
        self.stream.read_exact(&mut sum).unwrap();
        if self.acks {
            self.stream.write_all(b"+").unwrap();
        }
        String::from_utf8_lossy(&body).into_owned()
    }

    fn ask(&mut self, body: &str) -> String {
        self.send(body);
        self.reply()
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn lldbs_first_packets_get_useful_answers_and_an_interrupt_stops_the_program() {
    let program = program(Flavor::Static);
    let debuggee = program.start(true, &["spin"]);
    let mut client = Client::connect(debuggee.port);

    assert_eq!(client.ask("QStartNoAckMode"), "OK");
    client.acks = false;
    let triple = format!("triple:{};", hex("aarch64-unknown-linux-gnu"));
    let host = client.ask("qHostInfo");
    assert!(host.contains(&triple), "{host}");
    assert!(host.contains("endian:little;"), "{host}");
    assert!(host.contains("ptrsize:8;"), "{host}");
    let process = client.ask("qProcessInfo");
    assert!(process.contains("pid:1;"), "{process}");
    assert!(process.contains(&triple), "{process}");

    let pc = client.ask("qRegisterInfo20");
    for field in ["name:pc;", "bitsize:64;", "offset:256;", "generic:pc;"] {
        assert!(pc.contains(field), "{field} in {pc}");
    }
    let fp = client.ask("qRegisterInfo1d");
    assert!(
        fp.contains("name:x29;") && fp.contains("generic:fp;"),
        "{fp}"
    );
    let v0 = client.ask("qRegisterInfo22");
    assert!(
        v0.contains("name:v0;") && v0.contains("bitsize:128;"),
        "{v0}"
    );
    assert!(
        client.ask("qRegisterInfo44").starts_with('E'),
        "past the last"
    );
    let xml = client.ask("qXfer:features:read:target.xml:0,3fff");
    assert!(
        xml.contains("<architecture>aarch64</architecture>"),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<feature name="org.gnu.gdb.aarch64.core">"#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<feature name="org.gnu.gdb.aarch64.fpu">"#),
        "{xml}"
    );

    // Stopped at the entry point; then running, until an interrupt stops it with SIGINT.
    assert!(client.ask("?").starts_with("T05thread:"));
    client.send("vCont;c");
    std::thread::sleep(Duration::from_millis(300));
    {
        use std::io::Write;
        client.stream.write_all(&[0x03]).unwrap();
    }
    let stop = client.reply();
    assert!(stop.starts_with("T02thread:"), "{stop}");
    let threads = client.ask("qfThreadInfo");
    assert!(threads.starts_with('m'), "{threads}");
    // The stopped thread's registers (run-length encoded, so only their presence is checked).
    let regs = client.ask("g");
    assert!(!regs.is_empty() && !regs.starts_with('E'), "{regs}");
    drop(debuggee);
}

#[test]
fn stopping_on_entry_needs_a_debugger_port() {
    let program = program(Flavor::Static);
    let out = elfuse_cmd()
        .arg("--gdb-stop-on-entry")
        .arg(&program.path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "the program ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--gdb-stop-on-entry needs --gdb or --gdb-listen"),
        "{stderr}"
    );
}

#[test]
fn gdb_listen_serves_the_address_given() {
    let program = program(Flavor::Static);
    let port = free_port();
    let child = elfuse_cmd()
        .arg("--gdb-listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--gdb-stop-on-entry")
        .arg(&program.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut client = Client::connect(port);
    assert!(client.ask("?").starts_with("T05thread:"));
    assert_eq!(client.ask("D"), "OK");
    let debuggee = Debuggee { child, port };
    let (status, stdout, _) = debuggee.finish();
    assert_eq!(status.code(), Some(7));
    assert_eq!(stdout, OUTPUT);
}

#[test]
fn a_debugger_that_vanishes_lets_the_program_run_on() {
    let program = program(Flavor::Static);
    let debuggee = program.start(true, &[]);
    let mut client = Client::connect(debuggee.port);
    assert!(client.ask("?").starts_with("T05thread:"));
    // A breakpoint (at an address never run), then the connection drops without a detach.
    assert_eq!(client.ask("Z0,0,4"), "OK");
    drop(client);
    let (status, stdout, _) = debuggee.finish();
    assert_eq!(status.code(), Some(7));
    assert_eq!(stdout, OUTPUT);
}

#[test]
fn the_stub_keeps_listening_after_a_detach() {
    let program = program(Flavor::Static);
    let debuggee = program.start(true, &["spin"]);
    let mut client = Client::connect(debuggee.port);
    assert!(client.ask("?").starts_with("T05thread:"));
    assert_eq!(client.ask("D"), "OK");
    drop(client);
    // The program spins on undebugged; a second debugger stops it and ends the loop.
    std::thread::sleep(Duration::from_millis(200));
    let out = program.gdb(
        &debuggee,
        &["print spinning", "set var spinning = 0", "continue"],
    );
    assert_in_order(&out, &["$1 = 1", "exited with code 07]"]);
    let (status, stdout, _) = debuggee.finish();
    assert_eq!(status.code(), Some(7));
    assert_eq!(stdout, OUTPUT);
}

/// Requests at the edges of the address space, for unmapped memory, oversized watches and
/// files that do not exist or would be written get errors, and the program runs on.
#[test]
fn odd_requests_get_errors_and_leave_the_program_running() {
    let program = program(Flavor::Static);
    let debuggee = program.start(true, &[]);
    let mut client = Client::connect(debuggee.port);
    assert!(client.ask("?").starts_with("T05thread:"));
    assert!(client.ask("mfffffffffffffff0,20").starts_with('E'));
    assert!(client.ask("m0,10").starts_with('E'));
    assert!(client.ask("Mfffffffffffffff0,4:00000000").starts_with('E'));
    assert_eq!(client.ask("Z0,fffffffffffffffc,4"), "OK");
    assert_eq!(client.ask("Z2,fffffffffffffff8,8"), "OK");
    assert!(
        client.ask("Z2,1000,ffffffffff").starts_with('E'),
        "a huge watch is declined"
    );
    assert!(
        client
            .ask("vFile:open:2f6e6f2f737563682f66696c65,0,0")
            .starts_with("F-1,")
    );
    assert!(
        client.ask("vFile:open:2f746d70,1,0").starts_with("F-1,"),
        "no writes"
    );
    client.send("vCont;c");
    let end = client.reply();
    assert_eq!(end, "W07", "{end}");
    let (status, stdout, _) = debuggee.finish();
    assert_eq!(status.code(), Some(7));
    assert_eq!(stdout, OUTPUT);
}
