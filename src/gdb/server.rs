//! The stub's host thread: accepts debugger connections one at a time and serves each with
//! `gdbstub`'s blocking event loop over a [`Target`] that reads and changes the parked
//! threads, guest memory and the debugger's breakpoints.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gdbstub::common::{Endianness, Pid, Signal, Tid};
use gdbstub::conn::ConnectionExt;
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, MultiThreadStopReason};
use gdbstub::target::ext::auxv::{Auxv, AuxvOps};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::single_register_access::{
    SingleRegisterAccess, SingleRegisterAccessOps,
};
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps, WatchKind,
};
use gdbstub::target::ext::exec_file::{ExecFile, ExecFileOps};
use gdbstub::target::ext::host_info::{HostInfo, HostInfoOps, HostInfoResponse};
use gdbstub::target::ext::host_io::{
    FsKind, HostIo, HostIoClose, HostIoCloseOps, HostIoErrno, HostIoError, HostIoFstat,
    HostIoFstatOps, HostIoOpen, HostIoOpenFlags, HostIoOpenMode, HostIoOpenOps, HostIoOps,
    HostIoPread, HostIoPreadOps, HostIoResult, HostIoSetfs, HostIoSetfsOps, HostIoStat,
};
use gdbstub::target::ext::libraries::{LibrariesSvr4, LibrariesSvr4Ops};
use gdbstub::target::ext::process_info::{ProcessInfo, ProcessInfoOps, ProcessInfoResponse};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::aarch64::reg::id::AArch64RegId;
use tracing::{debug, info, warn};

use super::arch::{self, ElfuseAarch64, GdbRegisters};
use super::files::FileTable;
use super::{Action, Debugger, PARK_TIMEOUT, StopKind, libraries, signals};
use crate::kernel::abi::errno::Errno;
use crate::kernel::abi::signal as sig;
use crate::kernel::task::ExitStatus;
use crate::vm::{self, Access, Watchpoint};

/// The triple debuggers are told (lldb's `qHostInfo`/`qProcessInfo`).
const TRIPLE: &str = "aarch64-unknown-linux-gnu";
/// How often a running program's stop and the connection are looked at.
const POLL: Duration = Duration::from_millis(10);
/// The process id of the protocol's thread ids (`gdbstub` uses 1 without extended mode).
const PROTOCOL_PID: NonZeroUsize = NonZeroUsize::MIN;
/// The most breakpoints at once (each is a hook in every thread's engine).
const MAX_BREAKPOINTS: usize = 4096;
/// The longest watched range (each watched page slows every access to it).
const MAX_WATCH_LEN: u64 = 1 << 16;
/// `EFAULT`, the error number of a memory access outside the guest's mappings.
const EFAULT: u8 = 14;

/// Starts the thread that serves debuggers on `listener`.
pub fn spawn(listener: TcpListener, debugger: Arc<Debugger>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("elfuse-gdb".into())
        .spawn(move || serve(listener, debugger))?;
    Ok(())
}

/// Accepts debuggers one after another until the process is gone.
fn serve(listener: TcpListener, debugger: Arc<Debugger>) {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                warn!("cannot accept a debugger connection: {e}");
                continue;
            }
        };
        if debugger.process().is_none() || debugger.lock().exit.is_some() {
            return;
        }
        info!(peer = ?stream.peer_addr().ok(), "debugger connected");
        session(&debugger, stream);
    }
}

/// Serves one connection: halts the program, runs the protocol, and leaves the program as
/// the connection's end asks (running on, killed, or ended).
fn session(debugger: &Arc<Debugger>, stream: TcpStream) {
    {
        let mut state = debugger.lock();
        state.attached = true;
        if !state.halted {
            let first = debugger
                .process()
                .and_then(|p| p.threads().first().map(|t| t.tid))
                .unwrap_or(0);
            debugger.set_halted(&mut state, true);
            state.event = Some((first, StopKind::Interrupt));
            drop(state);
            debugger.kick_all(None);
        }
    }
    let mut target = ElfuseTarget::new(debugger.clone());
    target.wait_stopped(None);
    let _ = stream.set_nodelay(true);

    let result = GdbStub::new(stream).run_blocking::<EventLoop>(&mut target);
    let mut state = debugger.lock();
    state.attached = false;
    match result {
        Ok(DisconnectReason::TargetExited(_) | DisconnectReason::TargetTerminated(_)) => {
            state.exit_reported = true;
            debugger.changed.notify_all();
        }
        Ok(DisconnectReason::Kill) => {
            info!("the debugger killed the program");
            drop(state);
            if let Some(process) = debugger.process() {
                process.finish(ExitStatus::Signaled(sig::SIGKILL));
            }
        }
        Ok(DisconnectReason::Disconnect) | Err(_) => {
            if let Err(e) = &result {
                debug!("debugger connection ended: {e}");
            }
            info!("debugger detached; the program runs on");
            detach(debugger, &mut state);
        }
    }
}

/// Lets the program run on without the debugger: no breakpoints, no steps, every parked
/// thread resumed (a signal it stopped for is delivered).
fn detach(debugger: &Debugger, state: &mut super::State) {
    state.breakpoints.clear();
    state.watchpoints.clear();
    state.generation += 1;
    let event = state.event.take();
    debugger.set_halted(state, false);
    for (tid, parked) in state.parked.iter_mut() {
        let signal = match event {
            Some((stopped, StopKind::Signal(signo))) if stopped == *tid => Some(signo),
            _ => None,
        };
        parked.resume = Some(Action::Continue(signal));
    }
    debugger.changed.notify_all();
}

fn tid_of(tid: i32) -> Option<Tid> {
    NonZeroUsize::new(usize::try_from(tid).ok()?)
}

/// The protocol's view of one debugged process.
struct ElfuseTarget {
    debugger: Arc<Debugger>,
    /// Per-thread actions of the next resume.
    actions: BTreeMap<i32, Action>,
    /// Whether threads without an action stay stopped (scheduler locking).
    locked: bool,
    /// When the current stop began, to bound the wait for every thread to park.
    stopping_since: Option<Instant>,
    /// The thread of the last stop reported.
    last_stop: Option<i32>,
    /// Files the debugger has open.
    files: FileTable,
}

impl ElfuseTarget {
    fn new(debugger: Arc<Debugger>) -> ElfuseTarget {
        ElfuseTarget {
            debugger,
            actions: BTreeMap::new(),
            locked: false,
            stopping_since: None,
            last_stop: None,
            files: FileTable::default(),
        }
    }

    /// Waits (up to `limit`, or for good) until the program has stopped with every thread
    /// parked, or has ended; returns what to tell the debugger.
    fn wait_stopped(&mut self, limit: Option<Duration>) -> Option<MultiThreadStopReason<u64>> {
        let deadline = limit.map(|l| Instant::now() + l);
        let mut state = self.debugger.lock();
        loop {
            if let Some(status) = state.exit {
                return Some(match status {
                    ExitStatus::Exited(code) => MultiThreadStopReason::Exited(code),
                    ExitStatus::Signaled(signo) => {
                        MultiThreadStopReason::Terminated(Signal(signals::to_gdb(signo)))
                    }
                });
            }
            if let Some((tid, kind)) = state.event {
                let since = *self.stopping_since.get_or_insert_with(Instant::now);
                let threads = self
                    .debugger
                    .process()
                    .map(|p| p.threads())
                    .unwrap_or_default();
                let all_parked = threads
                    .iter()
                    .all(|t| state.parked.get(&t.tid).is_some_and(|p| p.resume.is_none()));
                if all_parked || since.elapsed() >= PARK_TIMEOUT {
                    if !all_parked {
                        warn!("reporting a stop before every thread has parked");
                    }
                    self.stopping_since = None;
                    self.last_stop = Some(tid);
                    let watch = state.watchpoints.clone();
                    return Some(stop_reason(tid, kind, &watch));
                }
            }
            let wait = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return None;
                    }
                    (deadline - now).min(POLL)
                }
                None => POLL,
            };
            state = self
                .debugger
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The registers of parked thread `tid`.
    fn parked_regs(&self, tid: Tid) -> TargetResult<GdbRegisters, Self> {
        let state = self.debugger.lock();
        let tid = i32::try_from(tid.get()).map_err(|_| TargetError::NonFatal)?;
        match state.parked.get(&tid) {
            Some(parked) => Ok(GdbRegisters::from_snapshot(&parked.regs)),
            None => Err(TargetError::NonFatal),
        }
    }

    /// Replaces the registers of parked thread `tid`.
    fn set_parked_regs(&self, tid: Tid, regs: &GdbRegisters) -> TargetResult<(), Self> {
        let mut state = self.debugger.lock();
        let tid = i32::try_from(tid.get()).map_err(|_| TargetError::NonFatal)?;
        let parked = state.parked.get_mut(&tid).ok_or(TargetError::NonFatal)?;
        regs.store(&mut parked.regs);
        parked.dirty = true;
        Ok(())
    }

    fn changed_breakpoints(&self, change: impl FnOnce(&mut super::State) -> bool) -> bool {
        let mut state = self.debugger.lock();
        let done = change(&mut state);
        if done {
            state.generation += 1;
        }
        done
    }
}

/// The stop reason the protocol reports for `kind` in thread `tid`.
fn stop_reason(tid: i32, kind: StopKind, watches: &[Watchpoint]) -> MultiThreadStopReason<u64> {
    let Some(thread) = tid_of(tid) else {
        return MultiThreadStopReason::Signal(Signal::SIGTRAP);
    };
    let signal = |signo: u32| MultiThreadStopReason::SignalWithThread {
        tid: thread,
        signal: Signal(signals::to_gdb(signo)),
    };
    match kind {
        StopKind::Entry | StopKind::Step => signal(sig::SIGTRAP),
        StopKind::Interrupt => signal(sig::SIGINT),
        StopKind::Signal(signo) => signal(signo),
        StopKind::Breakpoint => MultiThreadStopReason::SwBreak(thread),
        StopKind::Watch { addr, access } => {
            let hit = watches
                .iter()
                .find(|w| w.kind.matches(access) && w.overlaps(addr, 1));
            let kind = match hit.map(|w| w.kind) {
                Some(vm::WatchKind::Read) => WatchKind::Read,
                Some(vm::WatchKind::Access) => WatchKind::ReadWrite,
                _ if access == Access::Read => WatchKind::Read,
                _ => WatchKind::Write,
            };
            let addr = hit.map_or(addr, |w| w.addr.max(addr));
            MultiThreadStopReason::Watch {
                tid: thread,
                kind,
                addr,
            }
        }
    }
}

/// Copies the part of `data` from `offset` that fits `buf` (the `qXfer` convention).
fn copy_window(data: &[u8], offset: u64, length: usize, buf: &mut [u8]) -> usize {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(data.len());
    let len = (data.len() - start).min(length).min(buf.len());
    buf[..len].copy_from_slice(&data[start..start + len]);
    len
}

impl Target for ElfuseTarget {
    type Arch = ElfuseAarch64;
    type Error = &'static str;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_exec_file(&mut self) -> Option<ExecFileOps<'_, Self>> {
        Some(self)
    }

    fn support_auxv(&mut self) -> Option<AuxvOps<'_, Self>> {
        Some(self)
    }

    fn support_libraries_svr4(&mut self) -> Option<LibrariesSvr4Ops<'_, Self>> {
        Some(self)
    }

    fn support_host_info(&mut self) -> Option<HostInfoOps<'_, Self>> {
        Some(self)
    }

    fn support_process_info(&mut self) -> Option<ProcessInfoOps<'_, Self>> {
        Some(self)
    }

    fn support_host_io(&mut self) -> Option<HostIoOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadBase for ElfuseTarget {
    fn read_registers(&mut self, regs: &mut GdbRegisters, tid: Tid) -> TargetResult<(), Self> {
        *regs = self.parked_regs(tid)?;
        Ok(())
    }

    fn write_registers(&mut self, regs: &GdbRegisters, tid: Tid) -> TargetResult<(), Self> {
        self.set_parked_regs(tid, regs)
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, Tid, Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], _tid: Tid) -> TargetResult<usize, Self> {
        let process = self.debugger.process().ok_or(TargetError::Errno(EFAULT))?;
        let memory = process.memory();
        let len = memory.accessible(start, data.len() as u64, vm::vma::Prot::empty());
        if len == 0 {
            return Err(TargetError::Errno(EFAULT));
        }
        let len = len as usize;
        memory
            .host_range(start..start + len as u64)
            .read(&mut data[..len]);
        Ok(len)
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], _tid: Tid) -> TargetResult<(), Self> {
        let process = self.debugger.process().ok_or(TargetError::Errno(EFAULT))?;
        let memory = process.memory();
        let len = data.len() as u64;
        if memory.accessible(start, len, vm::vma::Prot::empty()) != len {
            return Err(TargetError::Errno(EFAULT));
        }
        // Like ptrace, the debugger may write pages the guest cannot (its code).
        memory.host_range(start..start + len).write(data);
        memory.invalidate(start..start + len);
        Ok(())
    }

    fn list_active_threads(&mut self, report: &mut dyn FnMut(Tid)) -> Result<(), Self::Error> {
        if let Some(process) = self.debugger.process() {
            for thread in process.threads() {
                if let Some(tid) = tid_of(thread.tid) {
                    report(tid);
                }
            }
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleRegisterAccess<Tid> for ElfuseTarget {
    fn read_register(
        &mut self,
        tid: Tid,
        reg: AArch64RegId,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let regs = self.parked_regs(tid)?;
        arch::read_register(&regs, reg, buf).ok_or(TargetError::NonFatal)
    }

    fn write_register(
        &mut self,
        tid: Tid,
        reg: AArch64RegId,
        val: &[u8],
    ) -> TargetResult<(), Self> {
        let mut regs = self.parked_regs(tid)?;
        if !arch::write_register(&mut regs, reg, val) {
            return Err(TargetError::NonFatal);
        }
        self.set_parked_regs(tid, &regs)
    }
}

impl MultiThreadResume for ElfuseTarget {
    fn resume(&mut self) -> Result<(), Self::Error> {
        let mut state = self.debugger.lock();
        // A legacy `c`/`s` names the protocol's default thread, which may be no thread of
        // ours: such an action is for the thread that stopped last, and the others run.
        let stray: Vec<i32> = self
            .actions
            .keys()
            .copied()
            .filter(|tid| !state.parked.contains_key(tid))
            .collect();
        for tid in stray {
            if let Some(action) = self.actions.remove(&tid)
                && let Some(last) = self.last_stop
            {
                self.actions.entry(last).or_insert(action);
            }
            self.locked = false;
        }
        let default = (!self.locked).then_some(Action::Continue(None));
        state.event = None;
        self.debugger.set_halted(&mut state, false);
        for (tid, parked) in state.parked.iter_mut() {
            parked.resume = self.actions.get(tid).copied().or(default);
        }
        self.debugger.changed.notify_all();
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.actions.clear();
        self.locked = false;
        Ok(())
    }

    fn set_resume_action_continue(
        &mut self,
        tid: Tid,
        signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        let signal = signal.and_then(|s| signals::from_gdb(s.0));
        if let Ok(tid) = i32::try_from(tid.get()) {
            self.actions.insert(tid, Action::Continue(signal));
        }
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadSingleStep for ElfuseTarget {
    fn set_resume_action_step(
        &mut self,
        tid: Tid,
        signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        let signal = signal.and_then(|s| signals::from_gdb(s.0));
        if let Ok(tid) = i32::try_from(tid.get()) {
            self.actions.insert(tid, Action::Step(signal));
        }
        Ok(())
    }
}

impl MultiThreadSchedulerLocking for ElfuseTarget {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), Self::Error> {
        self.locked = true;
        Ok(())
    }
}

impl Breakpoints for ElfuseTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for ElfuseTarget {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        // Inserting an address already set is still a success; past the limit, none is.
        Ok(self.changed_breakpoints(|s| {
            if s.breakpoints.len() >= MAX_BREAKPOINTS && !s.breakpoints.contains(&addr) {
                return false;
            }
            s.breakpoints.insert(addr);
            true
        }))
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.changed_breakpoints(|s| s.breakpoints.remove(&addr)))
    }
}

/// Hardware breakpoints are the same code hooks as software ones on the emulator.
impl HwBreakpoint for ElfuseTarget {
    fn add_hw_breakpoint(&mut self, addr: u64, kind: usize) -> TargetResult<bool, Self> {
        self.add_sw_breakpoint(addr, kind)
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, kind: usize) -> TargetResult<bool, Self> {
        self.remove_sw_breakpoint(addr, kind)
    }
}

fn watchpoint(addr: u64, len: u64, kind: WatchKind) -> Watchpoint {
    Watchpoint {
        addr,
        len: len.max(1),
        kind: match kind {
            WatchKind::Write => vm::WatchKind::Write,
            WatchKind::Read => vm::WatchKind::Read,
            WatchKind::ReadWrite => vm::WatchKind::Access,
        },
    }
}

impl HwWatchpoint for ElfuseTarget {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        if len > MAX_WATCH_LEN {
            // Refused: the debugger falls back to its own (software) watchpoint.
            return Ok(false);
        }
        let watch = watchpoint(addr, len, kind);
        Ok(self.changed_breakpoints(|s| {
            s.watchpoints.push(watch);
            true
        }))
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        let watch = watchpoint(addr, len, kind);
        Ok(
            self.changed_breakpoints(|s| match s.watchpoints.iter().position(|w| *w == watch) {
                Some(at) => {
                    s.watchpoints.remove(at);
                    true
                }
                None => false,
            }),
        )
    }
}

impl ExecFile for ElfuseTarget {
    fn get_exec_file(
        &self,
        _pid: Option<Pid>,
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let process = self.debugger.process().ok_or(TargetError::NonFatal)?;
        // The guest's own name for it (`/proc/self/exe`): the debugger opens it through the
        // stub's files, or on the host when the guest's root is the host's.
        let exec = crate::kernel::process::lock(&process.exec);
        let bytes = if exec.exe.starts_with(b"/") {
            exec.exe.clone()
        } else {
            let path = std::fs::canonicalize(&exec.host_path).unwrap_or(exec.host_path.clone());
            std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec()
        };
        Ok(copy_window(&bytes, offset, length, buf))
    }
}

impl Auxv for ElfuseTarget {
    fn get_auxv(&self, offset: u64, length: usize, buf: &mut [u8]) -> TargetResult<usize, Self> {
        let process = self.debugger.process().ok_or(TargetError::NonFatal)?;
        let auxv = crate::kernel::process::lock(&process.exec).auxv.clone();
        let mut bytes = Vec::with_capacity((auxv.len() + 1) * 16);
        for (key, value) in auxv.iter().filter(|(key, _)| *key != 0) {
            bytes.extend_from_slice(&key.to_le_bytes());
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        bytes.extend_from_slice(&[0u8; 16]);
        Ok(copy_window(&bytes, offset, length, buf))
    }
}

impl LibrariesSvr4 for ElfuseTarget {
    fn get_libraries_svr4(
        &self,
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let process = self.debugger.process().ok_or(TargetError::NonFatal)?;
        let xml = libraries::svr4_xml(&process);
        Ok(copy_window(xml.as_bytes(), offset, length, buf))
    }
}

impl HostInfo for ElfuseTarget {
    fn host_info(&self, write: &mut dyn FnMut(&HostInfoResponse<'_>)) -> Result<(), Self::Error> {
        write(&HostInfoResponse::Triple(TRIPLE));
        write(&HostInfoResponse::Endianness(Endianness::Little));
        write(&HostInfoResponse::PointerSize(8));
        Ok(())
    }
}

impl ProcessInfo for ElfuseTarget {
    fn process_info(
        &self,
        write: &mut dyn FnMut(&ProcessInfoResponse<'_>),
    ) -> Result<(), Self::Error> {
        // The process id every thread id of this session carries (`gdbstub`'s fixed one), so
        // that lldb matches the stop replies to this process.
        write(&ProcessInfoResponse::Pid(PROTOCOL_PID));
        write(&ProcessInfoResponse::Triple(TRIPLE));
        write(&ProcessInfoResponse::Endianness(Endianness::Little));
        write(&ProcessInfoResponse::PointerSize(8));
        Ok(())
    }
}

/// `gdbstub`'s blocking loop: waits for a stop while watching the connection.
enum EventLoop {}

impl BlockingEventLoop for EventLoop {
    type Target = ElfuseTarget;
    type Connection = TcpStream;
    type StopReason = MultiThreadStopReason<u64>;

    fn wait_for_stop_reason(
        target: &mut ElfuseTarget,
        conn: &mut TcpStream,
    ) -> Result<
        Event<MultiThreadStopReason<u64>>,
        WaitForStopReasonError<&'static str, std::io::Error>,
    > {
        loop {
            if let Some(reason) = target.wait_stopped(Some(POLL)) {
                return Ok(Event::TargetStopped(reason));
            }
            if readable(conn).map_err(WaitForStopReasonError::Connection)? {
                let byte = conn.read().map_err(WaitForStopReasonError::Connection)?;
                return Ok(Event::IncomingData(byte));
            }
        }
    }

    fn on_interrupt(
        target: &mut ElfuseTarget,
    ) -> Result<Option<MultiThreadStopReason<u64>>, &'static str> {
        let debugger = &target.debugger;
        let mut state = debugger.lock();
        if !state.halted {
            let first = debugger
                .process()
                .and_then(|p| p.threads().first().map(|t| t.tid))
                .unwrap_or(0);
            debugger.set_halted(&mut state, true);
            state.event = Some((first, StopKind::Interrupt));
            drop(state);
            debugger.kick_all(None);
        }
        Ok(None)
    }
}

/// Whether the connection has a byte (or its end) to read, without blocking.
fn readable(conn: &TcpStream) -> std::io::Result<bool> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(conn.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut fds, PollTimeout::ZERO).map_err(std::io::Error::from)?;
    Ok(ready > 0)
}

/// The protocol's error for `errno`.
fn host_io_error(errno: Errno) -> HostIoError<&'static str> {
    let code = match errno {
        Errno::EPERM => HostIoErrno::EPERM,
        Errno::ENOENT => HostIoErrno::ENOENT,
        Errno::EBADF => HostIoErrno::EBADF,
        Errno::EACCES => HostIoErrno::EACCES,
        Errno::ENOTDIR => HostIoErrno::ENOTDIR,
        Errno::EISDIR => HostIoErrno::EISDIR,
        Errno::EINVAL => HostIoErrno::EINVAL,
        Errno::EMFILE => HostIoErrno::EMFILE,
        Errno::ENAMETOOLONG => HostIoErrno::ENAMETOOLONG,
        Errno::ELOOP | Errno::EIO => HostIoErrno::EIO,
        _ => HostIoErrno::EUNKNOWN,
    };
    HostIoError::Errno(code)
}

/// Files are read by the guest's paths; writes are refused.
impl HostIo for ElfuseTarget {
    fn support_open(&mut self) -> Option<HostIoOpenOps<'_, Self>> {
        Some(self)
    }

    fn support_close(&mut self) -> Option<HostIoCloseOps<'_, Self>> {
        Some(self)
    }

    fn support_pread(&mut self) -> Option<HostIoPreadOps<'_, Self>> {
        Some(self)
    }

    fn support_fstat(&mut self) -> Option<HostIoFstatOps<'_, Self>> {
        Some(self)
    }

    fn support_setfs(&mut self) -> Option<HostIoSetfsOps<'_, Self>> {
        Some(self)
    }
}

impl HostIoOpen for ElfuseTarget {
    fn open(
        &mut self,
        filename: &[u8],
        flags: HostIoOpenFlags,
        _mode: HostIoOpenMode,
    ) -> HostIoResult<u32, Self> {
        let writes = HostIoOpenFlags::O_WRONLY
            | HostIoOpenFlags::O_RDWR
            | HostIoOpenFlags::O_CREAT
            | HostIoOpenFlags::O_TRUNC
            | HostIoOpenFlags::O_APPEND;
        if flags.intersects(writes) {
            return Err(HostIoError::Errno(HostIoErrno::EACCES));
        }
        let process = self
            .debugger
            .process()
            .ok_or(HostIoError::Errno(HostIoErrno::ENOENT))?;
        self.files.open(&process, filename).map_err(host_io_error)
    }
}

impl HostIoClose for ElfuseTarget {
    fn close(&mut self, fd: u32) -> HostIoResult<(), Self> {
        self.files.close(fd).map_err(host_io_error)
    }
}

impl HostIoPread for ElfuseTarget {
    fn pread(
        &mut self,
        fd: u32,
        count: usize,
        offset: u64,
        buf: &mut [u8],
    ) -> HostIoResult<usize, Self> {
        let len = count.min(buf.len());
        self.files
            .pread(fd, offset, &mut buf[..len])
            .map_err(host_io_error)
    }
}

impl HostIoFstat for ElfuseTarget {
    fn fstat(&mut self, fd: u32) -> HostIoResult<HostIoStat, Self> {
        let stat = self.files.fstat(fd).map_err(host_io_error)?;
        Ok(HostIoStat {
            st_dev: stat.dev as u32,
            st_ino: stat.ino as u32,
            st_mode: HostIoOpenMode::from_bits_truncate(stat.mode),
            st_nlink: stat.nlink as u32,
            st_uid: stat.uid,
            st_gid: stat.gid,
            st_rdev: 0,
            st_size: stat.size,
            st_blksize: stat.blksize,
            st_blocks: stat.blocks,
            st_atime: stat.atime as u32,
            st_mtime: stat.mtime as u32,
            st_ctime: stat.ctime as u32,
        })
    }
}

/// Every process's files are this process's: the file-system name space is the guest's.
impl HostIoSetfs for ElfuseTarget {
    fn setfs(&mut self, _fs: FsKind) -> HostIoResult<(), Self> {
        Ok(())
    }
}
