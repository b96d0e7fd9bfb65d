//! The debugger stub (`--gdb`): a GDB remote-protocol server, built on `gdbstub`, through
//! which gdb or lldb debugs the guest process.
//!
//! The stub runs on its own host thread (`server`); the guest threads meet it at *stop
//! points* in their exit handler. All-stop: when one thread stops (a breakpoint, a finished
//! step, a watched access, a signal about to be delivered, the entry point), the process is
//! halted: every other thread is interrupted like a signal interrupts it (guest code is kicked,
//! waits return and are restarted later) and parks at its next stop point. A parked thread
//! publishes its registers; the debugger reads and changes that copy, and the thread loads it
//! back when resumed. Guest memory is shared, so the stub reads and writes it directly.
//!
//! Breakpoints, watchpoints and single steps are the backend's ([`CpuState::set_debug`]):
//! each thread puts the debugger's current configuration in force before it runs guest code
//! again. Signals stop the debugger before delivery, as under `ptrace`: the debugger decides
//! which signal, if any, the thread then gets.
//!
//! The debugger finds the program and its shared libraries by the guest's paths
//! (`qXfer:exec-file`, `qXfer:libraries-svr4`) and reads them through the stub (`files`),
//! resolved as the guest resolves them, sysroot included.
//!
//! A debugger that detaches or disconnects lets the program run on with no breakpoints; the
//! stub keeps listening, and a new connection stops the program again. A guest `fork` is not
//! followed: the child runs undebugged.
//!
//! # Limitations
//! A thread blocked in a call the runtime cannot interrupt is reported stopped after five seconds
//! without parking; its registers read as unavailable until it parks. Breakpoints survive an
//! `execve` unchanged (exec events are not reported). Watchpoints cover accesses by guest
//! instructions, not by system calls (as hardware watchpoints on Linux). The protocol's
//! process id is 1 (`gdbstub`'s without extended mode); threads carry their real ids. The
//! debugger's file access (`vFile`) is read-only. lldb (14) connected with `gdb-remote` does
//! not load a dynamic program's libraries through the stub; only static programs are tested
//! with it.

pub mod arch;
mod files;
mod libraries;
mod server;
pub mod signals;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use thiserror::Error;
use tracing::{debug, warn};

use crate::kernel::abi::signal as sig;
use crate::kernel::process::Process;
use crate::kernel::signal::SigInfo;
use crate::kernel::task::{ExitStatus, Outcome, Task};
use crate::kernel::{sched, signal};
use crate::vm::{Access, CpuSnapshot, CpuState, DebugConfig, DebugStop, Watchpoint};

/// How the stub is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GdbOptions {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Stop before the program's first instruction and wait for a debugger.
    pub stop_on_entry: bool,
}

/// Why the stub could not start.
#[derive(Debug, Error)]
pub enum GdbError {
    /// The listening socket could not be opened.
    #[error("cannot listen for a debugger on {addr}: {error}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The host's error (part of the message, not a separate cause).
        error: std::io::Error,
    },
    /// The stub's thread could not start.
    #[error("cannot start the debugger stub: {0}")]
    Thread(std::io::Error),
    /// The CPU backend has no breakpoints, watchpoints or single steps.
    #[error("debugging (--gdb) is not supported on the {0} backend yet")]
    Unsupported(&'static str),
}

/// How long the stub waits for every thread to park before it reports a stop anyway.
const PARK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a parked thread looks at whether its process is ending.
const PARK_POLL: Duration = Duration::from_millis(50);
/// How long a process that ended waits for the debugger to be told.
const EXIT_REPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the stub for `process`: binds the socket (so a failure is reported at once) and
/// starts the server thread.
pub fn start(process: &Arc<Process>, options: GdbOptions) -> Result<(), GdbError> {
    if !process.backend.supports_debug() {
        return Err(GdbError::Unsupported(process.backend.name()));
    }
    let listener =
        std::net::TcpListener::bind(options.listen).map_err(|error| GdbError::Listen {
            addr: options.listen,
            error,
        })?;
    let debugger = Arc::new(Debugger::new(process, options.stop_on_entry));
    let _ = process.debugger.set(debugger.clone());
    server::spawn(listener, debugger).map_err(GdbError::Thread)?;
    Ok(())
}

/// Why the process is stopped, as the debugger is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// Before the first instruction (`--gdb-stop-on-entry`).
    Entry,
    /// The debugger interrupted the program (a new connection, `Ctrl-C`).
    Interrupt,
    /// A breakpoint address was reached.
    Breakpoint,
    /// A single step finished.
    Step,
    /// A watched access is about to happen.
    Watch {
        /// The watched address accessed.
        addr: u64,
        /// How.
        access: Access,
    },
    /// A (Linux) signal is about to be delivered.
    Signal(u32),
}

/// What a resumed thread does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run, delivering the (Linux) signal first if one is given.
    Continue(Option<u32>),
    /// Run one instruction, delivering the signal first if one is given.
    Step(Option<u32>),
}

impl Action {
    fn signal(self) -> Option<u32> {
        match self {
            Action::Continue(signal) | Action::Step(signal) => signal,
        }
    }
}

/// A thread waiting at a stop point.
struct Parked {
    /// Its registers, as the debugger sees and changes them.
    regs: CpuSnapshot,
    /// The debugger changed `regs`.
    dirty: bool,
    /// What to do once resumed; `None` while it stays stopped.
    resume: Option<Action>,
}

/// The state guest threads and the server share.
#[derive(Default)]
struct State {
    /// A debugger is connected.
    attached: bool,
    /// The process is stopped or stopping: threads park at their next stop point.
    halted: bool,
    /// The thread and reason of the stop being reported.
    event: Option<(i32, StopKind)>,
    /// Parked threads.
    parked: BTreeMap<i32, Parked>,
    /// The debugger's breakpoints.
    breakpoints: BTreeSet<u64>,
    /// The debugger's watchpoints.
    watchpoints: Vec<Watchpoint>,
    /// Counts changes of breakpoints and watchpoints (threads start at generation 0 with
    /// none in force, so the first change is 1).
    generation: u64,
    /// The entry stop has been made.
    entry_done: bool,
    /// How the process ended, once it has.
    exit: Option<ExitStatus>,
    /// The debugger has been told of the end (or there is none to tell).
    exit_reported: bool,
}

/// What a thread last put in force of the debugger's configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskDebug {
    /// The configuration generation in force in the thread's vCPU.
    generation: u64,
    /// Whether the vCPU is single-stepping.
    step: bool,
    /// The step the debugger asked for when it last resumed the thread.
    want_step: bool,
    /// A signal the debugger injected, delivered without stopping again.
    pass: Option<u32>,
    /// The backend refused the configuration (reported once).
    failed: bool,
}

/// One process's debugger stub: the state shared between its threads and the server.
pub struct Debugger {
    process: Weak<Process>,
    stop_on_entry: bool,
    state: Mutex<State>,
    changed: Condvar,
}

impl Debugger {
    fn new(process: &Arc<Process>, stop_on_entry: bool) -> Debugger {
        Debugger {
            process: Arc::downgrade(process),
            stop_on_entry,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn process(&self) -> Option<Arc<Process>> {
        self.process.upgrade()
    }

    /// Marks the process halted (or not), for every thread's wake-up test too.
    fn set_halted(&self, state: &mut State, halted: bool) {
        state.halted = halted;
        if let Some(process) = self.process() {
            process.debug_halt.store(halted, Ordering::SeqCst);
        }
    }

    /// Interrupts every thread but `except`, so that each reaches a stop point soon.
    fn kick_all(&self, except: Option<i32>) {
        let Some(process) = self.process() else {
            return;
        };
        for thread in process.threads() {
            if Some(thread.tid) != except {
                thread.interrupt(&process.house);
            }
        }
    }

    /// A thread's stop: reports `kind` (or, with `None`, only parks while the process is
    /// halted). Returns what the debugger resumed the thread with, `None` if it was not
    /// stopped or the process is ending.
    fn stop(
        &self,
        task: &mut Task,
        cpu: &mut dyn CpuState,
        kind: Option<StopKind>,
    ) -> Option<Action> {
        loop {
            if task.shared.dying() {
                return None;
            }
            let mut state = self.lock();
            let Some(kind) = kind else {
                if !state.halted {
                    return None;
                }
                return self.park(state, task, cpu);
            };
            if !state.attached && kind != StopKind::Entry {
                return None;
            }
            if state.halted {
                // Another stop is in progress. A breakpoint, step or watch stop happens again
                // when the thread runs on (its instruction has not run), so it is dropped;
                // a signal waits and is reported next.
                let action = self.park(state, task, cpu);
                if matches!(kind, StopKind::Signal(_)) {
                    continue;
                }
                return action;
            }
            self.set_halted(&mut state, true);
            state.event = Some((task.tid, kind));
            self.changed.notify_all();
            drop(state);
            debug!(tid = task.tid, ?kind, "stopping for the debugger");
            self.kick_all(Some(task.tid));
            return self.park(self.lock(), task, cpu);
        }
    }

    /// Parks the calling thread until the debugger resumes it (without the run lock).
    fn park(
        &self,
        mut state: MutexGuard<'_, State>,
        task: &mut Task,
        cpu: &mut dyn CpuState,
    ) -> Option<Action> {
        let tid = task.tid;
        state.parked.insert(
            tid,
            Parked {
                regs: cpu.snapshot(),
                dirty: false,
                resume: None,
            },
        );
        self.changed.notify_all();
        drop(state);

        let shared = task.shared.clone();
        let (action, regs) = sched::blocking(|| {
            let mut state = self.lock();
            loop {
                if shared.dying() {
                    state.parked.remove(&tid);
                    self.changed.notify_all();
                    return (None, None);
                }
                if state.parked.get(&tid).is_some_and(|p| p.resume.is_some())
                    && let Some(parked) = state.parked.remove(&tid)
                {
                    return (parked.resume, parked.dirty.then_some(parked.regs));
                }
                state = self
                    .changed
                    .wait_timeout(state, PARK_POLL)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        });
        if let Some(regs) = regs {
            cpu.restore(&regs);
        }
        if let Some(action) = action {
            task.debug.want_step = matches!(action, Action::Step(_));
            if task.debug.want_step {
                // Each step is a new request to the vCPU, even with the same configuration.
                task.debug.generation = u64::MAX;
            }
        }
        action
    }

    /// Tells a debugger the process ended, waiting (a bounded time) until it has been.
    pub fn report_exit(&self, status: ExitStatus) {
        let mut state = self.lock();
        state.exit = Some(status);
        self.changed.notify_all();
        let deadline = Instant::now() + EXIT_REPORT_TIMEOUT;
        while state.attached && !state.exit_reported {
            let now = Instant::now();
            if now >= deadline {
                warn!("the debugger was not told of the program's end in time");
                return;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// The debugger of `task`'s process, if it has one.
fn debugger_of(task: &Task) -> Option<Arc<Debugger>> {
    task.process.debugger.get().cloned()
}

/// A new vCPU is about to run `task`'s guest code: the entry stop, or a park while the process
/// is halted, then the debugger's configuration.
pub fn thread_start(task: &mut Task, cpu: &mut dyn CpuState) {
    let Some(debugger) = debugger_of(task) else {
        return;
    };
    task.debug = TaskDebug::default();
    let entry = {
        let mut state = debugger.lock();
        let first = debugger.stop_on_entry && !state.entry_done;
        state.entry_done = true;
        first
    };
    let kind = entry.then_some(StopKind::Entry);
    let action = debugger.stop(task, cpu, kind);
    after_resume(task, cpu, action);
    before_guest(task, cpu);
}

/// A debug exit of the vCPU: reports it.
pub fn on_debug_exit(task: &mut Task, cpu: &mut dyn CpuState, stop: DebugStop) {
    let Some(debugger) = debugger_of(task) else {
        return;
    };
    let kind = match stop {
        DebugStop::Breakpoint => StopKind::Breakpoint,
        DebugStop::Step => StopKind::Step,
        DebugStop::Watchpoint { addr, access } => StopKind::Watch { addr, access },
    };
    let action = debugger.stop(task, cpu, Some(kind));
    after_resume(task, cpu, action);
}

/// A signal is about to be delivered to `task`: the debugger sees it first and returns the
/// signal to deliver instead (`None` to deliver nothing).
pub fn on_signal(task: &mut Task, cpu: &mut dyn CpuState, info: SigInfo) -> Option<SigInfo> {
    let Some(debugger) = debugger_of(task) else {
        return Some(info);
    };
    if task.debug.pass == Some(info.signo) {
        task.debug.pass = None;
        return Some(info);
    }
    if info.signo == sig::SIGKILL {
        return Some(info);
    }
    if !debugger.lock().attached {
        return Some(info);
    }
    let action = debugger.stop(task, cpu, Some(StopKind::Signal(info.signo)));
    if task.shared.dying() {
        return None;
    }
    let Some(action) = action else {
        return Some(info);
    };
    match action.signal() {
        Some(signo) if signo == info.signo => Some(info),
        Some(signo) => Some(SigInfo::kernel(signo)),
        None => None,
    }
}

/// Before `task` runs guest code again: parks while the process is halted, then puts the
/// debugger's breakpoints, watchpoints and single step in force in its vCPU.
pub fn before_guest(task: &mut Task, cpu: &mut dyn CpuState) {
    let Some(debugger) = debugger_of(task) else {
        return;
    };
    if debugger.lock().halted {
        let action = debugger.stop(task, cpu, None);
        after_resume(task, cpu, action);
        if task.outcome.is_some() {
            return;
        }
    }
    let state = debugger.lock();
    let step = task.debug.want_step;
    if task.debug.generation == state.generation && task.debug.step == step {
        return;
    }
    let config = DebugConfig {
        breakpoints: state.breakpoints.clone(),
        watchpoints: state.watchpoints.clone(),
        step,
    };
    let generation = state.generation;
    drop(state);
    match cpu.set_debug(&config) {
        Ok(()) => {}
        Err(e) if !task.debug.failed => {
            warn!("{e}");
            task.debug.failed = true;
        }
        Err(_) => {}
    }
    task.debug.generation = generation;
    task.debug.step = step;
}

/// What follows a resume: the thread ends if the process is ending, and a signal the debugger
/// injected is delivered now.
fn after_resume(task: &mut Task, cpu: &mut dyn CpuState, action: Option<Action>) {
    if task.shared.dying() {
        if task.outcome.is_none() {
            task.outcome = Some(Outcome::Killed);
        }
        return;
    }
    let Some(signo) = action.and_then(Action::signal) else {
        return;
    };
    if !(1..=64).contains(&signo) {
        return;
    }
    task.debug.pass = Some(signo);
    signal::raise(task, SigInfo::kernel(signo));
    signal::deliver_pending(task, cpu);
}

/// In a forked child: the debugger stays with the parent, so the child's vCPU stops for
/// nothing.
pub fn forget_in_child(task: &mut Task, cpu: &mut dyn CpuState) {
    if task.process.debugger.get().is_none() {
        return;
    }
    if task.debug != TaskDebug::default() {
        let _ = cpu.set_debug(&DebugConfig::default());
    }
    task.debug = TaskDebug::default();
}
