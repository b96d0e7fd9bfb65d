//! The command line.
//!
//! ```text
//! elfuse [OPTIONS] PROG [ARGS...]        run PROG
//! elfuse exec [OPTIONS] PROG [ARGS...]   the same, explicitly
//! elfuse selftest                        run the built-in test program
//! elfuse sysroot COMMAND                 manage sysroots (see `sysroot.rs`)
//! elfuse init|install-hooks|uninstall-hooks   shell hooks (see `hooks.rs`)
//! elfuse shim COMMAND                    shims (see `shim.rs`)
//! elfuse doctor | completions SHELL      checks and completions (see `doctor.rs`)
//! ```
//!
//! Started under another name (a shim's symlink), elfuse runs the shim's program; started by
//! Linux's `binfmt_misc` (with `AT_EXECFD`), it runs the program the kernel handed it.
//!
//! Subcommand names win over program names: a program called `exec` or `selftest` is run
//! by path (`./exec`) or as `elfuse exec exec`. Options go before PROG; everything after it
//! belongs to the program.
//!
//! Exit status: the guest's own status; when the guest dies by a signal, elfuse dies by the
//! same signal. elfuse's own failures use 127 (no such program), 126 (the program cannot be
//! run: not an aarch64 Linux ELF, corrupt, no permission), 125 (elfuse itself failed) and 2
//! (bad command line).

mod doctor;
mod hooks;
mod selftest;
mod shim;
mod sysroot;

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsFd, FromRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use clap::{ArgAction, Args, Parser, Subcommand};

use crate::kernel::{self, ExitStatus, Program, RunSpec};
use crate::launcher;
use crate::trace::Tracer;
use crate::vm::{self, BackendKind};

/// Exit status when elfuse itself fails (as `env` and `timeout` use it).
pub const EXIT_INTERNAL: i32 = 125;

#[derive(Parser, Debug)]
#[command(
    name = "elfuse",
    version,
    about = "Run aarch64 Linux programs without a Linux kernel",
    args_conflicts_with_subcommands = true,
    subcommand_value_name = "COMMAND",
    after_help = "Run a program: elfuse [OPTIONS] PROG [ARGS...]"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run an aarch64 Linux program (the same as giving PROG directly).
    Exec(RunArgs),
    /// Run the small aarch64 test program built into elfuse and report the result.
    Selftest(SelftestArgs),
    /// Manage sysroots: list, add, remove, default, which, trust, untrust, volume.
    Sysroot(sysroot::SysrootArgs),
    /// Print the shell hook script for zsh or bash (eval it from the shell's start-up file).
    Init(hooks::InitArgs),
    /// Add the hooks to the shell's start-up file (and with --binfmt, register binfmt_misc).
    InstallHooks(hooks::InstallArgs),
    /// Remove what install-hooks added.
    UninstallHooks(hooks::InstallArgs),
    /// Manage shims, names on PATH that run Linux programs: add, rm, ls, rehash, dir, trust.
    Shim(shim::ShimArgs),
    /// Report the backend, entitlement, hooks, shims, sysroots and binfmt_misc, with fixes.
    Doctor,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(doctor::CompletionsArgs),
    /// Take over a guest process forked by another elfuse (internal).
    #[command(name = kernel::handover::SUBCOMMAND, hide = true)]
    Handover(SelftestArgs),
}

/// Options for running a program.
#[derive(Args, Debug, Default)]
struct RunArgs {
    /// Set KEY to VALUE in the program's environment; a bare KEY copies elfuse's own value.
    #[arg(long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<OsString>,

    /// Start the program with an empty environment (before --env).
    #[arg(long)]
    clear_env: bool,

    /// The argv[0] the program sees (default: PROG as given).
    #[arg(long, value_name = "NAME")]
    argv0: Option<OsString>,

    #[command(flatten)]
    common: CommonArgs,

    /// Print one strace-like line per syscall to stderr.
    #[arg(long)]
    trace: bool,

    /// Write the --trace output to FILE instead of stderr.
    #[arg(long, value_name = "FILE")]
    trace_file: Option<PathBuf>,

    /// The sysroot to run against: a configured name, or a directory (overrides
    /// ELFUSE_SYSROOT and the configuration; see 'elfuse sysroot --help').
    #[arg(long, value_name = "NAME|DIR")]
    sysroot: Option<OsString>,

    #[command(flatten)]
    gdb: GdbArgs,

    /// The program and its arguments.
    #[arg(value_name = "PROG", trailing_var_arg = true, num_args = 1..)]
    command: Vec<OsString>,

    /// Where to load the program from, when not from PROG (binfmt_misc's descriptor).
    #[arg(skip)]
    load_from: Option<PathBuf>,
}

/// Options for debugging the program with gdb or lldb.
#[derive(Args, Debug, Default)]
struct GdbArgs {
    /// Serve a debugger (gdb's remote protocol) on 127.0.0.1:PORT (1-65535).
    #[arg(
        long,
        value_name = "PORT",
        conflicts_with = "gdb_listen",
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    gdb: Option<u16>,

    /// Serve a debugger on ADDR:PORT (any address, said explicitly).
    #[arg(long, value_name = "ADDR:PORT")]
    gdb_listen: Option<std::net::SocketAddr>,

    /// Stop before the program's first instruction until a debugger connects and resumes it.
    #[arg(long)]
    gdb_stop_on_entry: bool,
}

impl GdbArgs {
    /// The stub's options, if a debugger is to be served.
    fn options(&self) -> Result<Option<crate::gdb::GdbOptions>, Failure> {
        let listen = match (self.gdb, self.gdb_listen) {
            (Some(port), _) => std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            (None, Some(addr)) => addr,
            (None, None) if self.gdb_stop_on_entry => {
                return Err(Failure {
                    error: anyhow::anyhow!("--gdb-stop-on-entry needs --gdb or --gdb-listen"),
                    code: 2,
                });
            }
            (None, None) => return Ok(None),
        };
        Ok(Some(crate::gdb::GdbOptions {
            listen,
            stop_on_entry: self.gdb_stop_on_entry,
        }))
    }
}

/// Options every command takes.
#[derive(Args, Debug, Default)]
struct CommonArgs {
    /// Which CPU backend runs the program.
    #[arg(long, value_enum, default_value_t = BackendKind::Auto)]
    backend: BackendKind,

    /// Log what elfuse does to stderr: -v for notable events (unimplemented syscalls),
    /// -vv for details, -vvv for everything. ELFUSE_LOG overrides (e.g. ELFUSE_LOG=debug).
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,
}

#[derive(Args, Debug)]
struct SelftestArgs {
    #[command(flatten)]
    common: CommonArgs,
}

/// The entry point of the `elfuse` binary.
pub fn main() -> ! {
    // binfmt_misc's descriptor for the program is elfuse's, not the guest's.
    let exec_fd = launcher::binfmt::take_exec_fd();
    // The descriptors elfuse was started with belong to the guest: note them before elfuse
    // opens any of its own.
    let own = exec_fd.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    let inherited = crate::host::open_descriptors()
        .into_iter()
        .filter(|&fd| Some(fd) != own);
    kernel::adopt_inherited_descriptors(inherited.collect());
    // elfuse's own messages go through a private copy of stderr: the guest owns fd 2.
    let stderr = private_stderr();
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    let argv0 = if argv.is_empty() {
        OsString::new()
    } else {
        argv.remove(0)
    };
    let result = if let Some(fd) = exec_fd {
        binfmt_run(&fd, argv, &stderr).map(Ok)
    } else if shim::started_as_shim(&argv0, argv.first()) {
        shim::run_shim(argv0, argv, &stderr).map(Ok)
    } else {
        dispatch(Cli::parse(), &stderr)
    };
    let status = match result {
        Ok(status) => status,
        Err(failure) => {
            let mut err = stderr.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(err, "elfuse: {:#}", failure.error);
            Err(failure.code)
        }
    };
    exit_with(status)
}

/// A failure with the exit status it maps to.
struct Failure {
    error: anyhow::Error,
    code: i32,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Failure {
        let error = error.into();
        let code = match error.downcast_ref::<launcher::LaunchError>() {
            Some(launch) => launch.exit_code(),
            None => match error.downcast_ref::<kernel::RuntimeError>() {
                Some(kernel::RuntimeError::Loader(_)) => 126,
                Some(kernel::RuntimeError::Interpreter(e)) => e.exit_code(),
                _ => EXIT_INTERNAL,
            },
        };
        Failure { error, code }
    }
}

/// What the process should do when elfuse is done.
enum Status {
    Exit(i32),
    Guest(ExitStatus),
}

fn exit_with(status: Result<Status, i32>) -> ! {
    match status {
        Ok(Status::Exit(code)) | Err(code) => std::process::exit(code),
        Ok(Status::Guest(status)) => kernel::exit_host(status),
    }
}

type SharedStderr = Arc<Mutex<std::fs::File>>;

/// A private copy of stderr, numbered 10 or above so that low numbers stay free (a
/// handed-over child finds its channel at descriptor 3).
fn private_stderr() -> SharedStderr {
    let file = nix::fcntl::fcntl(std::io::stderr(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))
        .map(|fd| {
            // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
            std::fs::File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
        })
        .unwrap_or_else(|_| std::fs::File::create("/dev/null").expect("/dev/null exists"));
    Arc::new(Mutex::new(file))
}

fn dispatch(cli: Cli, stderr: &SharedStderr) -> Result<Result<Status, i32>, Failure> {
    match cli.command {
        Some(Command::Exec(args)) if args.command.is_empty() => Ok(no_program(stderr)),
        Some(Command::Exec(args)) => run(args, stderr).map(Ok),
        Some(Command::Selftest(args)) => selftest::run(&args.common, stderr).map(Ok),
        Some(Command::Handover(args)) => handover(&args.common, stderr).map(Ok),
        Some(Command::Sysroot(args)) => sysroot::run(args, stderr).map(Ok),
        Some(Command::Init(args)) => hooks::init(args).map(Ok),
        Some(Command::InstallHooks(args)) => hooks::install(args).map(Ok),
        Some(Command::UninstallHooks(args)) => hooks::uninstall(args).map(Ok),
        Some(Command::Shim(args)) => shim::run(args).map(Ok),
        Some(Command::Doctor) => doctor::doctor().map(Ok),
        Some(Command::Completions(args)) => Ok(Ok(doctor::completions(
            args,
            <Cli as clap::CommandFactory>::command(),
        ))),
        None if cli.run.command.is_empty() => Ok(no_program(stderr)),
        None => run(cli.run, stderr).map(Ok),
    }
}

/// The answer to a command line without a program: usage on stderr, status 2.
fn no_program(stderr: &SharedStderr) -> Result<Status, i32> {
    let mut err = stderr.lock().unwrap_or_else(|p| p.into_inner());
    let _ = writeln!(
        err,
        "elfuse: no program given\n\nUsage: elfuse [OPTIONS] PROG [ARGS...]\nFor more information, try '--help'."
    );
    Err(2)
}

/// Sets up logging from `-v` and `ELFUSE_LOG`, written through elfuse's private stderr.
fn init_logging(verbose: u8, stderr: &SharedStderr) {
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0 => "error",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // An empty ELFUSE_LOG is no setting; an unreadable one is named once and ignored.
    let from_env = std::env::var("ELFUSE_LOG")
        .ok()
        .filter(|spec| !spec.is_empty())
        .and_then(|spec| match EnvFilter::try_new(&spec) {
            Ok(filter) => Some(filter),
            Err(e) => {
                let mut err = stderr.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(err, "elfuse: ignoring ELFUSE_LOG={spec:?}: {e}");
                None
            }
        });
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(format!("elfuse={level}")));
    let writer = stderr.clone();
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(colour)
        .without_time()
        .with_writer(move || LogWriter(writer.clone()))
        .try_init();
}

/// A `Write` handle on the shared stderr for the log subscriber.
struct LogWriter(SharedStderr);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

/// The environment the program starts with: elfuse's own, fitted to the sysroot (see
/// `launcher::world`), then the `--env` changes.
fn environment(args: &RunArgs, root: &kernel::GuestRoot) -> Vec<Vec<u8>> {
    let mut env: Vec<(OsString, OsString)> = if args.clear_env {
        Vec::new()
    } else {
        launcher::world::guest_env(root, std::env::vars_os().collect())
    };
    for item in &args.env {
        let bytes = item.as_bytes();
        let (key, value) = match bytes.iter().position(|&b| b == b'=') {
            Some(eq) => (
                OsString::from_vec(bytes[..eq].to_vec()),
                Some(OsString::from_vec(bytes[eq + 1..].to_vec())),
            ),
            None => (item.clone(), std::env::var_os(item)),
        };
        env.retain(|(k, _)| *k != key);
        if let Some(value) = value {
            env.push((key, value));
        }
    }
    env.into_iter()
        .map(|(k, v)| {
            let mut entry = k.into_vec();
            entry.push(b'=');
            entry.extend_from_slice(v.as_bytes());
            entry
        })
        .collect()
}

fn tracer(args: &RunArgs) -> Result<Option<Tracer>> {
    if let Some(path) = &args.trace_file {
        let tracer = Tracer::file(path)
            .with_context(|| format!("cannot open trace file {}", path.display()))?;
        return Ok(Some(tracer));
    }
    if args.trace {
        return Ok(Some(
            Tracer::stderr().context("cannot duplicate stderr for --trace")?,
        ));
    }
    Ok(None)
}

/// Decides how guest forks work (`ELFUSE_FORK`) and what a handed-over child is started with.
fn configure_forks(
    common: &CommonArgs,
    backend: &dyn vm::Backend,
    stderr: &SharedStderr,
) -> Result<()> {
    let mode = kernel::handover::ForkMode::from_env().map_err(anyhow::Error::msg)?;
    let mut child_args = vec!["--backend".to_string(), backend.name().to_string()];
    if common.verbose > 0 {
        child_args.push(format!("-{}", "v".repeat(usize::from(common.verbose))));
    }
    let diagnostics = stderr
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_fd()
        .try_clone_to_owned()
        .ok();
    kernel::handover::configure(kernel::handover::Config {
        mode,
        child_args,
        diagnostics,
    });
    Ok(())
}

/// The hidden subcommand a handed-over child runs.
fn handover(common: &CommonArgs, stderr: &SharedStderr) -> Result<Status, Failure> {
    init_logging(common.verbose, stderr);
    let backend = vm::select_backend(common.backend)?;
    configure_forks(common, backend.as_ref(), stderr)
        .map_err(|error| Failure { error, code: 2 })?;
    let status = kernel::handover::run_child(backend)?;
    Ok(Status::Guest(status))
}

/// The guest's root: the sysroot chosen for `program` (see `launcher::sysroot`), with the
/// user's home and working directories reachable, or the host's own root for a static program
/// nothing gives a sysroot to.
fn guest_root(
    args: &RunArgs,
    program: &launcher::Resolved,
    stderr: &SharedStderr,
) -> Result<kernel::GuestRoot, Failure> {
    // An unreadable or corrupt program is reported by the loader, with its own message.
    let interpreter = crate::loader::elf::interpreter(&program.path)
        .ok()
        .flatten();
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let env = std::env::var_os("ELFUSE_SYSROOT");
    let request = launcher::sysroot::Request {
        cli: args.sysroot.as_deref(),
        env: env.as_deref(),
        program: &program.path,
        interpreter: interpreter.as_deref(),
        cwd: &cwd,
    };
    let dirs = launcher::config::Dirs::from_env()?;
    let selection = launcher::sysroot::choose(&request, &dirs)?;
    for notice in &selection.notices {
        let mut err = stderr.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(err, "elfuse: {notice}");
    }

    let dir = match selection.decision {
        launcher::sysroot::Decision::Static => return Ok(kernel::GuestRoot::host()),
        launcher::sysroot::Decision::Unconfigured => {
            let message =
                launcher::sysroot::unconfigured_message(interpreter.as_deref().unwrap_or_default());
            return Err(Failure {
                error: anyhow::anyhow!("{}: {message}", program.invoked_as.to_string_lossy()),
                code: 127,
            });
        }
        launcher::sysroot::Decision::Chosen(choice) => {
            tracing::debug!("sysroot {} ({})", choice.path.display(), choice.reason);
            choice.path
        }
    };
    let mut host_dirs = Vec::new();
    host_dirs.extend(std::env::home_dir());
    host_dirs.push(cwd);
    let views = launcher::world::prepare(&dir);
    let root = kernel::GuestRoot::sysroot(&dir, &host_dirs, &views)
        .with_context(|| format!("sysroot {}", dir.display()))?;
    Ok(root)
}

/// Runs the program `binfmt_misc` handed over as `fd`: the arguments after elfuse's own
/// `argv[0]` are the program's file name, its `argv[0]` (the entry has flag `P`) and the rest.
fn binfmt_run(
    fd: &std::os::fd::OwnedFd,
    mut args: Vec<OsString>,
    stderr: &SharedStderr,
) -> Result<Status, Failure> {
    use std::os::fd::AsRawFd;

    if args.len() < 2 {
        args.resize(2, OsString::new());
    }
    let argv0 = args.remove(1);
    let run_args = RunArgs {
        argv0: Some(argv0),
        command: args,
        load_from: Some(PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))),
        ..RunArgs::default()
    };
    run(run_args, stderr)
}

fn run(args: RunArgs, stderr: &SharedStderr) -> Result<Status, Failure> {
    init_logging(args.common.verbose, stderr);
    let (name, rest) = args.command.split_first().expect("clap requires PROG");
    let program = match &args.load_from {
        Some(load_from) => {
            launcher::check(load_from, name)?;
            launcher::Resolved {
                path: PathBuf::from(name),
                invoked_as: name.clone(),
            }
        }
        None => launcher::resolve(name)?,
    };
    let backend = vm::select_backend(args.common.backend)?;
    configure_forks(&args.common, backend.as_ref(), stderr)
        .map_err(|error| Failure { error, code: 2 })?;

    let argv0 = args.argv0.clone().unwrap_or_else(|| name.clone());
    let mut argv = vec![argv0.into_vec()];
    argv.extend(rest.iter().map(|a| a.as_bytes().to_vec()));
    let root = guest_root(&args, &program, stderr)?;
    let spec = RunSpec {
        program: Program::Path(
            args.load_from
                .clone()
                .unwrap_or_else(|| program.path.clone()),
        ),
        execfn: program.invoked_as.clone().into_vec(),
        argv,
        env: environment(&args, &root),
        backend,
        tracer: tracer(&args)?,
        root,
        debug: args.gdb.options()?,
    };
    let status = kernel::run(spec).with_context(|| name.to_string_lossy().into_owned())?;
    Ok(Status::Guest(status))
}
