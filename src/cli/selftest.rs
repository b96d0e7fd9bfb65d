//! `elfuse selftest`: runs the small aarch64 program built into elfuse through the whole
//! runtime (loader, backend, syscalls) and reports the backend used and the result.
//!
//! The program's source is `selftest/selftest.c`; `selftest/selftest.elf` is its build, and a
//! test rebuilds it to prove the two match.

use std::io::Write;
use std::os::fd::AsFd;

use super::{CommonArgs, Failure, SharedStderr, Status, init_logging};
use crate::kernel::{self, ExitStatus, Program, RunSpec};
use crate::vm;

/// The built-in program.
pub static SELFTEST_ELF: &[u8] = include_bytes!("selftest/selftest.elf");

/// Runs the self-test; prints one line saying whether it passed.
pub(super) fn run(args: &CommonArgs, stderr: &SharedStderr) -> Result<Status, Failure> {
    init_logging(args.verbose, stderr);
    // The guest owns descriptor 1 while it runs; report through a copy made before.
    let mut out = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .map_err(|e| anyhow::anyhow!("cannot duplicate stdout: {e}"))?;
    let backend = vm::select_backend(args.backend)?;
    let name = backend.name();
    let spec = RunSpec {
        program: Program::Embedded(SELFTEST_ELF),
        execfn: b"elfuse-selftest".to_vec(),
        argv: vec![b"elfuse-selftest".to_vec()],
        env: Vec::new(),
        backend,
        tracer: None,
        root: kernel::GuestRoot::host(),
        debug: None,
    };
    let status = kernel::run(spec)?;
    let (line, code) = match status {
        ExitStatus::Exited(0) => (format!("elfuse selftest: passed on the {name} backend"), 0),
        ExitStatus::Exited(check) => (
            format!("elfuse selftest: FAILED at check {check} on the {name} backend"),
            1,
        ),
        ExitStatus::Signaled(sig) => (
            format!("elfuse selftest: FAILED, killed by signal {sig} on the {name} backend"),
            1,
        ),
    };
    let _ = writeln!(out, "{line}");
    Ok(Status::Exit(code))
}
