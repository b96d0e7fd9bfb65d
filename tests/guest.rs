//! The guest C corpus (`tests/guest/*.c`): each program checks Linux's behaviour with expected
//! values written into it, and must pass under elfuse with nothing on stderr.
//!
//! The same programs run under `qemu-aarch64` as a second reference: they must pass there
//! too, except where `tests/guest/qemu-divergences.txt` lists a known qemu gap (and then they
//! must still fail, so the list stays honest).
//!
//! Every program runs twice: with the host's `fork()` behind a guest fork, and with the
//! hand-over to a fresh elfuse process that macOS needs (`ELFUSE_FORK=handover`, the tests in
//! `handover::`).
//!
//! `syscall_coverage` runs the corpus with `--trace-file`, checks that every syscall in the
//! table is exercised by some program, and keeps `docs/syscalls.md` in step with the table
//! (`ELFUSE_BLESS=1` rewrites it).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::{Link, Run, build_guest, elfuse_cmd, repo, run_qemu, scratch};

/// One guest program and how it is run.
struct Case {
    /// The test name (and binary name).
    name: &'static str,
    /// The source file under `tests/guest/`, without `.c`.
    source: &'static str,
    link: Link,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

const fn case(name: &'static str) -> Case {
    Case {
        name,
        source: name,
        link: Link::Static,
        args: &[],
        env: &[],
    }
}

const CASES: &[Case] = &[
    case("fs_open"),
    case("fs_io"),
    case("fs_stat"),
    case("fs_dir"),
    case("fs_attr"),
    case("mm_basic"),
    case("time_basic"),
    case("timer_basic"),
    case("futex_basic"),
    case("sys_identity"),
    case("sys_misc"),
    case("proc_fork"),
    case("proc_exec"),
    case("thread_basic"),
    case("sig_basic"),
    case("poll_basic"),
    case("epoll_basic"),
    Case {
        args: &["a", "b c"],
        env: &[("ELFUSE_TEST", "1")],
        ..case("loader_stack")
    },
    Case {
        name: "loader_stack_pie",
        source: "loader_stack",
        link: Link::StaticPie,
        args: &["a", "b c"],
        env: &[("ELFUSE_TEST", "1")],
    },
];

fn find(name: &str) -> &'static Case {
    CASES
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

fn binary(case: &Case) -> PathBuf {
    build_guest(case.source, case.name, case.link)
}

/// How a guest fork is made (`ELFUSE_FORK`).
#[derive(Clone, Copy)]
enum ForkMode {
    HostFork,
    Handover,
}

/// Runs a case under elfuse, optionally tracing to `trace`.
fn run_elfuse(case: &Case, trace: Option<&std::path::Path>) -> Run {
    run_elfuse_with(case, trace, ForkMode::HostFork)
}

fn run_elfuse_with(case: &Case, trace: Option<&std::path::Path>, mode: ForkMode) -> Run {
    let bin = binary(case);
    let dir = scratch();
    let mut cmd = elfuse_cmd();
    cmd.env(
        "ELFUSE_FORK",
        match mode {
            ForkMode::HostFork => "fork",
            ForkMode::Handover => "handover",
        },
    );
    if let Some(trace) = trace {
        cmd.arg("--trace-file").arg(trace);
    }
    cmd.arg(&bin).args(case.args).current_dir(dir.path());
    for (k, v) in case.env {
        cmd.env(k, v);
    }
    cmd.output().expect("run elfuse").into()
}

fn assert_passes(case: &Case, run: &Run, under: &str) {
    let stdout = run.stdout();
    assert!(
        run.status.success() && stdout.lines().last().is_some_and(|l| l.starts_with("ok ")),
        "{} under {under}: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        case.name,
        run.status,
        run.stderr()
    );
}

fn check(name: &str, mode: ForkMode) {
    let case = find(name);
    let run = run_elfuse_with(case, None, mode);
    let under = match mode {
        ForkMode::HostFork => "elfuse",
        ForkMode::Handover => "elfuse with ELFUSE_FORK=handover",
    };
    assert_passes(case, &run, under);
    assert_eq!(
        run.stderr(),
        "",
        "{name}: elfuse must add nothing to stderr"
    );
}

macro_rules! guest_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name), ForkMode::HostFork);
            }
        )*

        /// The same programs with guest forks handed over to a new elfuse process.
        mod handover {
            use super::{ForkMode, check};
            $(
                #[test]
                fn $name() {
                    check(stringify!($name), ForkMode::Handover);
                }
            )*
        }
    };
}

guest_tests!(
    fs_open,
    fs_io,
    fs_stat,
    fs_dir,
    fs_attr,
    mm_basic,
    time_basic,
    timer_basic,
    futex_basic,
    sys_identity,
    sys_misc,
    proc_fork,
    proc_exec,
    thread_basic,
    sig_basic,
    poll_basic,
    epoll_basic,
    loader_stack,
    loader_stack_pie,
);

/// Pins a limitation (`kernel::poll`): event objects live in one elfuse process, so after a
/// guest fork the child has a copy of an eventfd, where Linux shares it, in both fork modes.
#[test]
fn eventfd_after_fork_is_a_copy_not_shared() {
    let case = Case {
        name: "poll_fork_copy",
        ..case("poll_fork_copy")
    };
    for mode in [ForkMode::HostFork, ForkMode::Handover] {
        let run = run_elfuse_with(&case, None, mode);
        assert!(run.status.success(), "{:?}\n{}", run.status, run.stderr());
        assert_eq!(run.stdout(), "copied\n");
    }
}

/// Programs qemu-aarch64 is known to get wrong, from `tests/guest/qemu-divergences.txt`.
fn qemu_divergences() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(repo().join("tests/guest/qemu-divergences.txt"))
        .expect("read tests/guest/qemu-divergences.txt");
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (program, reason) = line.split_once(' ').unwrap_or((line, ""));
        map.entry(program.to_string())
            .or_default()
            .push(reason.to_string());
    }
    map
}

#[test]
fn qemu_agrees_except_for_listed_divergences() {
    let known = qemu_divergences();
    let mut problems = Vec::new();
    for case in CASES {
        let bin = binary(case);
        let dir = scratch();
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        for (k, v) in case.env {
            args.extend(["-E".into(), format!("{k}={v}").into()]);
        }
        args.push(bin.into_os_string());
        args.extend(case.args.iter().map(Into::into));
        let run = run_qemu(&args, dir.path());
        let passed = run.status.success()
            && run
                .stdout()
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("ok "));
        match (passed, known.contains_key(case.source)) {
            (true, true) => problems.push(format!(
                "{}: passes under qemu now; update the list",
                case.name
            )),
            (false, false) => problems.push(format!(
                "{}: fails under qemu:\n{}",
                case.name,
                run.stdout()
            )),
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The syscall names in a `--trace` file.
fn traced_calls(trace: &std::path::Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(trace).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let rest = line.split_once(' ')?.1;
            let name = rest.split('(').next()?;
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
                .then(|| name.to_string())
        })
        .collect()
}

/// Every implemented syscall, from `elfuse --list-syscalls`... read from the table source.
fn implemented() -> Vec<(u64, String)> {
    let table = std::fs::read_to_string(repo().join("src/kernel/syscalls/mod.rs")).unwrap();
    let start = table.find("syscall_table! {").expect("the syscall table");
    let body = &table[start..];
    let end = body.find("\n}\n").expect("the end of the syscall table");
    body[..end]
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let (nr, rest) = line.split_once(' ')?;
            let nr: u64 = nr.parse().ok()?;
            let name = rest.split('(').next()?.to_string();
            Some((nr, name))
        })
        .collect()
}

#[test]
fn syscall_coverage() {
    let traces = scratch();
    let mut exercised: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for case in CASES {
        let trace = traces.path().join(format!("{}.trace", case.name));
        let run = run_elfuse(case, Some(&trace));
        assert_passes(case, &run, "elfuse --trace-file");
        for call in traced_calls(&trace) {
            exercised.entry(call).or_default().insert(case.name);
        }
    }

    let table = implemented();
    assert!(
        table.len() > 100,
        "the table parse found only {} entries",
        table.len()
    );
    let untested: Vec<&str> = table
        .iter()
        .filter(|(_, name)| !exercised.contains_key(name))
        .map(|(_, name)| name.as_str())
        .collect();

    let mut doc = String::from(
        "# Implemented syscalls\n\n\
         Every syscall elfuse implements, with the guest test programs (`tests/guest/`) that \
         exercise it. Any other number returns `ENOSYS`.\n\n\
         This file is generated by `cargo test --test guest syscall_coverage` \
         (run it with `ELFUSE_BLESS=1` to rewrite it); the test fails when an implemented \
         call has no test or when this file is out of date.\n\n\
         | nr | syscall | exercised by |\n|---:|---|---|\n",
    );
    for (nr, name) in &table {
        let tests: Vec<&str> = exercised
            .get(name)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        doc.push_str(&format!("| {nr} | `{name}` | {} |\n", tests.join(", ")));
    }
    let path = repo().join("docs/syscalls.md");
    if std::env::var_os("ELFUSE_BLESS").is_some() {
        std::fs::write(&path, &doc).expect("write docs/syscalls.md");
    }
    assert!(
        untested.is_empty(),
        "implemented but exercised by no guest test: {untested:?}"
    );
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == doc,
        "docs/syscalls.md is out of date; rerun with ELFUSE_BLESS=1"
    );
}
