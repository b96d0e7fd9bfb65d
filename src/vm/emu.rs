//! The emulator backend: guest code runs on unicorn's aarch64 CPU model.
//!
//! Each [`EmuVcpu`] owns one unicorn engine, created on and confined to its host thread (engines
//! are not `Send`). Guest memory is the runtime's host reservation, mapped into the engine
//! region by region with `mem_map_ptr`, so the engine and the syscall layer see the same bytes.
//! The engine runs at EL0 with the EL1 controls Linux sets for user space (cache-type, `DC ZVA`
//! and counter access), so privileged instructions trap as they do under Linux.
//!
//! A `svc` is served inside unicorn's interrupt hook without leaving the execution loop; other
//! exits stop the engine and are reported from [`Vcpu::run`] with the PC on the instruction.
//!
//! Debugging ([`CpuState::set_debug`]) uses the engine's own hooks: a code hook on each
//! breakpoint address stops before the instruction runs, a code hook on every address while
//! single-stepping stops before the second instruction, and watched pages lose the watched
//! access in the engine, so the access faults before it happens; a fault the watch itself
//! caused is either the watchpoint's stop or, for a neighbour of the watched bytes, one
//! instruction run with the page's real protection.
//!
//! # Limitations
//! Unicorn does not report the fault address of alignment faults, so those exits carry none.
//! Hooks are compiled into translated code, so adding a breakpoint drops the code translated
//! at its address and starting a single step drops all of it. Every access to a watched page
//! (not only to the watched bytes) costs one such single step.

use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tracing::{debug, warn};
use unicorn_engine::unicorn_const::{Arch, HookType, MemType, Mode, Prot as UcProt, uc_error};
use unicorn_engine::{Arm64CpuModel, RegisterARM64, RegisterARM64CP, UcHookId, Unicorn};

use super::cpufeatures::IdRegisters;
use super::memory::{GuestMemory, MemCursor, MemEvent};
use super::vma::Prot;
use super::{
    Access, Backend, CpuState, DebugConfig, DebugError, DebugStop, ExitHandler, FpState, HwCaps,
    Kick, Resume, Vcpu, VcpuError, VcpuExit, VcpuHandle,
};

/// QEMU's exception numbers, as unicorn passes them to the interrupt hook.
const EXCP_UDEF: u32 = 1;
const EXCP_SWI: u32 = 2;
const EXCP_PREFETCH_ABORT: u32 = 3;
const EXCP_DATA_ABORT: u32 = 4;
const EXCP_BKPT: u32 = 7;

/// An address the guest can never execute at (it is not 4-byte aligned): `emu_start` needs an
/// end address, and this one is never reached.
const NO_END: u64 = u64::MAX;

/// The unicorn-based backend.
pub struct EmuBackend {
    hwcaps: HwCaps,
}

impl EmuBackend {
    /// Creates the backend, reading the emulated CPU's features from a scratch engine.
    pub fn new() -> Result<EmuBackend, VcpuError> {
        let uc = new_engine::<()>()?;
        let id = |crm, op2| read_sysreg(&uc, 3, 0, 0, crm, op2);
        let regs = IdRegisters {
            isar0: id(6, 0)?,
            isar1: id(6, 1)?,
            pfr0: id(4, 0)?,
            pfr1: id(4, 1)?,
            mmfr2: id(7, 2)?,
        };
        Ok(EmuBackend {
            hwcaps: regs.hwcaps(),
        })
    }
}

impl Backend for EmuBackend {
    fn name(&self) -> &'static str {
        "emu"
    }

    fn hwcaps(&self) -> HwCaps {
        self.hwcaps
    }

    fn create_vcpu(&self, memory: Arc<GuestMemory>) -> Result<Box<dyn Vcpu>, VcpuError> {
        Ok(Box::new(EmuVcpu::new(memory)?))
    }

    fn serializes_guests(&self) -> bool {
        true
    }

    fn supports_debug(&self) -> bool {
        true
    }
}

fn uc_err(context: &str, err: uc_error) -> String {
    format!("{context}: unicorn error {err:?}")
}

/// A fresh engine with the most capable CPU model (the default one lacks LSE atomics).
fn new_engine<D>() -> Result<Unicorn<'static, D>, VcpuError>
where
    D: Default,
{
    let mut uc = Unicorn::new_with_data(Arch::ARM64, Mode::LITTLE_ENDIAN, D::default())
        .map_err(|e| VcpuError::Create(uc_err("opening the engine", e)))?;
    uc.ctl_set_cpu_model(Arm64CpuModel::MAX as i32)
        .map_err(|e| VcpuError::Create(uc_err("selecting the CPU model", e)))?;
    Ok(uc)
}

fn read_sysreg<D>(
    uc: &Unicorn<'_, D>,
    op0: u32,
    op1: u32,
    crn: u32,
    crm: u32,
    op2: u32,
) -> Result<u64, VcpuError> {
    let mut reg = RegisterARM64CP {
        crn,
        crm,
        op0,
        op1,
        op2,
        val: 0,
    };
    uc.reg_read_arm64_coproc(&mut reg)
        .map_err(|e| VcpuError::Create(uc_err("reading a system register", e)))?;
    Ok(reg.val)
}

fn write_sysreg<D>(
    uc: &mut Unicorn<'_, D>,
    (op0, op1, crn, crm, op2): (u32, u32, u32, u32, u32),
    val: u64,
) -> Result<(), VcpuError> {
    let reg = RegisterARM64CP {
        crn,
        crm,
        op0,
        op1,
        op2,
        val,
    };
    uc.reg_write_arm64_coproc(&reg)
        .map_err(|e| VcpuError::Create(uc_err("writing a system register", e)))
}

/// `SCTLR_EL1` and `CNTKCTL_EL1` encodings and the bits Linux sets for EL0.
const SCTLR_EL1: (u32, u32, u32, u32, u32) = (3, 0, 1, 0, 0);
const CPACR_EL1: (u32, u32, u32, u32, u32) = (3, 0, 1, 0, 2);
const CNTKCTL_EL1: (u32, u32, u32, u32, u32) = (3, 0, 14, 1, 0);
const SCTLR_DZE: u64 = 1 << 14;
const SCTLR_UCT: u64 = 1 << 15;
const SCTLR_NTWI: u64 = 1 << 16;
const SCTLR_NTWE: u64 = 1 << 18;
const SCTLR_UCI: u64 = 1 << 26;
const CPACR_FPEN: u64 = 3 << 20;
const CNTKCTL_EL0PCTEN: u64 = 1 << 0;
const CNTKCTL_EL0VCTEN: u64 = 1 << 1;
const NZCV_MASK: u64 = 0xf << 28;

/// Per-engine state reachable from unicorn's hooks.
#[derive(Default)]
struct EmuData {
    /// The exit handler of the current `run` call.
    handler: Option<NonNull<dyn ExitHandler>>,
    /// The guest memory and this engine's position in its event log.
    sync: Option<(Arc<GuestMemory>, MemCursor)>,
    /// The handler asked to stop from inside a hook.
    stop: bool,
    /// An exit recorded by a hook, reported once the engine has stopped.
    pending: Option<VcpuExit>,
    /// A failure inside a hook that must end `run`.
    error: Option<String>,
    /// The debugger's breakpoints, watchpoints and stepping.
    debug: EmuDebug,
}

/// The debugger's state in one engine.
#[derive(Default)]
struct EmuDebug {
    /// A configuration to put in force before guest code runs again.
    wanted: Option<DebugConfig>,
    /// The configuration in force.
    current: DebugConfig,
    /// The code hook of each breakpoint address.
    breakpoints: BTreeMap<u64, UcHookId>,
    /// The code hook on every address, while an instruction is being stepped.
    step_hook: Option<UcHookId>,
    /// The stepped instruction has started (the hook's next call is the one after it).
    step_ran: bool,
    /// Where a step over a neighbour of watched bytes is.
    watch_step: WatchStep,
    /// Watched pages: the protection the mapping gives, and the one the engine enforces.
    watched: BTreeMap<u64, (UcProt, UcProt)>,
}

/// A step over an access to a watched page that touches no watched bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum WatchStep {
    /// None in progress.
    #[default]
    Idle,
    /// The access faulted: its instruction must run once with the real protection.
    Requested,
    /// The instruction is running with the real protection.
    Running,
}

/// The guest page size the engine's protections work in.
const PAGE: u64 = 0x1000;

/// The cross-thread part of an engine: its raw handle, for `uc_emu_stop`.
struct EmuKick {
    engine: Mutex<usize>,
    requested: AtomicBool,
}

impl Kick for EmuKick {
    fn kick(&self) {
        self.requested.store(true, Ordering::SeqCst);
        let engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        if *engine != 0 {
            // SAFETY: the handle stays valid while it is stored here: EmuVcpu clears it under
            // this lock before closing the engine. uc_emu_stop only raises flags the engine
            // polls (the same path unicorn's own timeout thread uses from another thread).
            unsafe {
                unicorn_engine::unicorn_const::uc_emu_stop(*engine as *mut _);
            }
        }
    }
}

/// A vCPU on the unicorn emulator.
pub struct EmuVcpu {
    uc: Unicorn<'static, EmuData>,
    kick: Arc<EmuKick>,
}

impl EmuVcpu {
    /// Creates an engine at EL0 with every current guest mapping.
    pub fn new(memory: Arc<GuestMemory>) -> Result<EmuVcpu, VcpuError> {
        let mut uc = new_engine::<EmuData>()?;

        let sctlr = read_sysreg(
            &uc,
            SCTLR_EL1.0,
            SCTLR_EL1.1,
            SCTLR_EL1.2,
            SCTLR_EL1.3,
            SCTLR_EL1.4,
        )?;
        write_sysreg(
            &mut uc,
            SCTLR_EL1,
            sctlr | SCTLR_DZE | SCTLR_UCT | SCTLR_UCI | SCTLR_NTWI | SCTLR_NTWE,
        )?;
        write_sysreg(&mut uc, CPACR_EL1, CPACR_FPEN)?;
        write_sysreg(&mut uc, CNTKCTL_EL1, CNTKCTL_EL0PCTEN | CNTKCTL_EL0VCTEN)?;
        uc.reg_write(RegisterARM64::PSTATE, 0)
            .map_err(|e| VcpuError::Create(uc_err("entering EL0", e)))?;

        let (mappings, cursor) = memory.snapshot();
        for (range, prot) in mappings {
            map_region(&mut uc, &memory, range.start, range.end - range.start, prot)
                .map_err(VcpuError::Create)?;
        }
        uc.get_data_mut().sync = Some((memory, cursor));

        install_hooks(&mut uc)?;
        let kick = Arc::new(EmuKick {
            engine: Mutex::new(uc.get_handle() as usize),
            requested: AtomicBool::new(false),
        });
        Ok(EmuVcpu { uc, kick })
    }

    /// Replays guest memory changes this engine has not seen.
    fn sync_memory(&mut self) -> Result<(), VcpuError> {
        sync_engine(&mut self.uc).map_err(VcpuError::Memory)
    }
}

impl Drop for EmuVcpu {
    fn drop(&mut self) {
        *self.kick.engine.lock().unwrap_or_else(|p| p.into_inner()) = 0;
        if let Some((memory, cursor)) = self.uc.get_data_mut().sync.take() {
            memory.release_cursor(cursor);
        }
    }
}

/// Unicorn permissions for guest protection `prot`. arm64 cannot express write-only pages, and
/// Linux keeps executable pages readable.
fn uc_prot(prot: Prot) -> UcProt {
    let mut uc = UcProt::NONE;
    if prot.intersects(Prot::READ | Prot::WRITE | Prot::EXEC) {
        uc |= UcProt::READ;
    }
    if prot.contains(Prot::WRITE) {
        uc |= UcProt::WRITE;
    }
    if prot.contains(Prot::EXEC) {
        uc |= UcProt::EXEC;
    }
    uc
}

fn map_region(
    uc: &mut Unicorn<'_, EmuData>,
    memory: &GuestMemory,
    start: u64,
    len: u64,
    prot: Prot,
) -> Result<(), String> {
    let host = memory.host_range(start..start + len).as_ptr();
    // SAFETY: `host` is the reservation's backing for exactly this guest range; the
    // reservation outlives the engine (the engine's data holds an Arc to the memory, and the
    // region is unmapped before the memory could go away).
    unsafe { uc.mem_map_ptr(start, len, uc_prot(prot), host.cast()) }
        .map_err(|e| uc_err(&format!("mapping {start:#x}+{len:#x}"), e))
}

/// Applies pending memory events to `uc`.
fn sync_engine(uc: &mut Unicorn<'_, EmuData>) -> Result<(), String> {
    let Some((memory, mut cursor)) = uc.get_data_mut().sync.take() else {
        return Ok(());
    };
    let changed = memory.has_events(&cursor);
    let result = if changed {
        let events = memory.take_events(&mut cursor);
        apply_events(uc, &memory, &events)
    } else {
        Ok(())
    };
    uc.get_data_mut().sync = Some((memory, cursor));
    result?;
    if changed && !uc.get_data().debug.watched.is_empty() {
        // A protection change or a new mapping must not lift a watch.
        protect_watched(uc)?;
    }
    Ok(())
}

fn apply_events(
    uc: &mut Unicorn<'_, EmuData>,
    memory: &GuestMemory,
    events: &[MemEvent],
) -> Result<(), String> {
    for event in events {
        match event {
            MemEvent::Map { range, prot } => {
                map_region(uc, memory, range.start, range.end - range.start, *prot)?;
            }
            MemEvent::Unmap { range } => {
                uc.mem_unmap(range.start, range.end - range.start)
                    .map_err(|e| {
                        uc_err(
                            &format!("unmapping {:#x}..{:#x}", range.start, range.end),
                            e,
                        )
                    })?;
                let _ = uc.ctl_remove_cache(range.start, range.end);
                let _ = uc.ctl_flush_tlb();
            }
            MemEvent::Protect { range, prot } => {
                uc.mem_protect(range.start, range.end - range.start, uc_prot(*prot))
                    .map_err(|e| {
                        uc_err(
                            &format!("protecting {:#x}..{:#x}", range.start, range.end),
                            e,
                        )
                    })?;
                // The engine's TLB may still hold the old permissions, and code translated
                // while the range was writable must not outlive a switch to executable.
                // Translated code is dropped either way: code translated while the range was
                // writable must not outlive a switch to executable, and code translated while
                // it was executable must not keep running once it is not. Dropping code can load
                // the range's old permissions into the TLB, so the TLB is flushed after.
                let _ = uc.ctl_remove_cache(range.start, range.end);
                let _ = uc.ctl_flush_tlb();
            }
            MemEvent::Invalidate { range } => {
                let _ = uc.ctl_remove_cache(range.start, range.end);
            }
        }
    }
    Ok(())
}

fn install_hooks(uc: &mut Unicorn<'static, EmuData>) -> Result<(), VcpuError> {
    uc.add_intr_hook(on_interrupt)
        .map_err(|e| VcpuError::Create(uc_err("installing the interrupt hook", e)))?;
    let faults = HookType::MEM_READ_UNMAPPED
        | HookType::MEM_WRITE_UNMAPPED
        | HookType::MEM_FETCH_UNMAPPED
        | HookType::MEM_READ_PROT
        | HookType::MEM_WRITE_PROT
        | HookType::MEM_FETCH_PROT;
    uc.add_mem_hook(faults, 1, 0, on_memory_fault)
        .map_err(|e| VcpuError::Create(uc_err("installing the fault hook", e)))?;
    Ok(())
}

/// Calls the current exit handler for `exit`.
fn call_handler(uc: &mut Unicorn<'_, EmuData>, exit: VcpuExit) -> Resume {
    let Some(mut handler) = uc.get_data().handler else {
        return Resume::Stop;
    };
    // SAFETY: `handler` was set by `run` from a `&mut dyn ExitHandler` that stays borrowed for
    // the whole `emu_start` call this hook runs inside, and is cleared before `run` returns.
    // The handler is a distinct object from the engine, so the two `&mut` do not alias.
    let handler = unsafe { handler.as_mut() };
    handler.on_exit(uc, exit)
}

fn on_interrupt(uc: &mut Unicorn<'_, EmuData>, intno: u32) {
    let exit = match intno {
        EXCP_SWI => {
            let resume = call_handler(uc, VcpuExit::Syscall);
            if let Err(error) = sync_engine(uc) {
                uc.get_data_mut().error = Some(error);
                let _ = uc.emu_stop();
                return;
            }
            if resume == Resume::Stop {
                uc.get_data_mut().stop = true;
                let _ = uc.emu_stop();
            } else if uc.get_data().debug.wanted.is_some() {
                // The run loop puts the new debug configuration in force and carries on.
                let _ = uc.emu_stop();
            }
            return;
        }
        EXCP_UDEF => VcpuExit::Undefined,
        EXCP_BKPT => VcpuExit::Breakpoint,
        EXCP_DATA_ABORT | EXCP_PREFETCH_ABORT => VcpuExit::Alignment { addr: None },
        other => {
            warn!(
                exception = other,
                "unexpected CPU exception in the emulator; reporting SIGILL"
            );
            VcpuExit::Undefined
        }
    };
    uc.get_data_mut().pending = Some(exit);
    let _ = uc.emu_stop();
}

fn on_memory_fault(
    uc: &mut Unicorn<'_, EmuData>,
    kind: MemType,
    addr: u64,
    size: usize,
    _value: i64,
) -> bool {
    if !uc.get_data().debug.watched.is_empty() && watch_fault(uc, kind, addr, size as u64) {
        return false;
    }
    let (access, unmapped) = match kind {
        MemType::READ_UNMAPPED => (Access::Read, true),
        MemType::WRITE_UNMAPPED => (Access::Write, true),
        MemType::FETCH_UNMAPPED => (Access::Execute, true),
        MemType::READ_PROT => (Access::Read, false),
        MemType::WRITE_PROT => (Access::Write, false),
        _ => (Access::Execute, false),
    };
    uc.get_data_mut().pending = Some(VcpuExit::MemoryFault {
        addr,
        access,
        unmapped,
    });
    false
}

/// Handles a fault a watched page's reduced protection caused: the watchpoint's stop if the
/// access touches watched bytes, otherwise one instruction run with the real protection. False
/// if the fault is the guest's own.
fn watch_fault(uc: &mut Unicorn<'_, EmuData>, kind: MemType, addr: u64, size: u64) -> bool {
    let (access, need) = match kind {
        MemType::READ_PROT => (Access::Read, UcProt::READ),
        MemType::WRITE_PROT => (Access::Write, UcProt::WRITE),
        MemType::FETCH_PROT => (Access::Execute, UcProt::EXEC),
        _ => return false,
    };
    let debug = &mut uc.get_data_mut().debug;
    let last = addr.saturating_add(size.max(1) - 1);
    let ours = [addr & !(PAGE - 1), last & !(PAGE - 1)]
        .iter()
        .filter_map(|page| debug.watched.get(page))
        .any(|(real, engine)| real.0 & need.0 != 0 && engine.0 & need.0 == 0);
    if !ours {
        return false;
    }
    let hit = debug.watch_step == WatchStep::Idle
        && debug
            .current
            .watchpoints
            .iter()
            .any(|w| w.kind.matches(access) && w.overlaps(addr, size));
    let data = uc.get_data_mut();
    if hit {
        data.pending = Some(VcpuExit::Debug(DebugStop::Watchpoint { addr, access }));
    } else {
        data.debug.watch_step = WatchStep::Requested;
    }
    true
}

/// The single-step hook: lets the first instruction run and stops before the next one.
fn on_step(uc: &mut Unicorn<'_, EmuData>, _addr: u64, _size: u32) {
    let debug = &mut uc.get_data_mut().debug;
    if !debug.step_ran {
        debug.step_ran = true;
        return;
    }
    if debug.watch_step == WatchStep::Running {
        // The watched pages get their reduced protection back in the run loop.
        debug.watch_step = WatchStep::Idle;
        if !debug.current.step {
            let _ = uc.emu_stop();
            return;
        }
    }
    uc.get_data_mut().pending = Some(VcpuExit::Debug(DebugStop::Step));
    let _ = uc.emu_stop();
}

/// A breakpoint hook: stops before the instruction at a breakpoint address runs.
fn on_breakpoint(uc: &mut Unicorn<'_, EmuData>, addr: u64, _size: u32) {
    let debug = &uc.get_data().debug;
    if debug.current.step
        || debug.watch_step != WatchStep::Idle
        || !debug.current.breakpoints.contains(&addr)
    {
        return;
    }
    uc.get_data_mut().pending = Some(VcpuExit::Debug(DebugStop::Breakpoint));
    let _ = uc.emu_stop();
}

/// Puts a new debug configuration in force: breakpoint hooks, the step hook, watched pages.
fn apply_debug(uc: &mut Unicorn<'_, EmuData>, wanted: DebugConfig) -> Result<(), String> {
    let err = |what: &str, e: uc_error| uc_err(what, e);

    let old: Vec<u64> = uc.get_data().debug.breakpoints.keys().copied().collect();
    for addr in old.iter().filter(|a| !wanted.breakpoints.contains(a)) {
        if let Some(hook) = uc.get_data_mut().debug.breakpoints.remove(addr) {
            uc.remove_hook(hook)
                .map_err(|e| err("removing a breakpoint", e))?;
        }
    }
    for &addr in wanted.breakpoints.iter().filter(|a| !old.contains(a)) {
        let hook = uc
            .add_code_hook(addr, addr, on_breakpoint)
            .map_err(|e| err("adding a breakpoint", e))?;
        uc.get_data_mut().debug.breakpoints.insert(addr, hook);
        // Code already translated at the address has no call to the hook.
        let _ = uc.ctl_remove_cache(addr, addr.saturating_add(4));
    }

    uc.get_data_mut().debug.current = wanted;
    set_step_hook(uc, uc.get_data().debug.current.step)?;
    uc.get_data_mut().debug.step_ran = false;
    protect_watched(uc)
}

/// Installs or removes the hook on every instruction. Installing it drops all translated code,
/// which was compiled without calls to it.
fn set_step_hook(uc: &mut Unicorn<'_, EmuData>, on: bool) -> Result<(), String> {
    let hook = uc.get_data().debug.step_hook;
    match (on, hook) {
        (true, None) => {
            let hook = uc
                .add_code_hook(1, 0, on_step)
                .map_err(|e| uc_err("adding the single-step hook", e))?;
            uc.get_data_mut().debug.step_hook = Some(hook);
            let _ = uc.ctl_flush_tb();
        }
        (false, Some(hook)) => {
            uc.get_data_mut().debug.step_hook = None;
            uc.remove_hook(hook)
                .map_err(|e| uc_err("removing the single-step hook", e))?;
        }
        _ => {}
    }
    Ok(())
}

/// Gives every watched page the protection its watchpoints call for (or, during a watch step,
/// its real one), and every page no longer watched its real protection back.
fn protect_watched(uc: &mut Unicorn<'_, EmuData>) -> Result<(), String> {
    let Some(memory) = uc.get_data().sync.as_ref().map(|(m, _)| m.clone()) else {
        return Ok(());
    };
    let debug = &uc.get_data().debug;
    let mut reduce: BTreeMap<u64, UcProt> = BTreeMap::new();
    for watch in &debug.current.watchpoints {
        let first = watch.addr & !(PAGE - 1);
        let last = watch.addr.saturating_add(watch.len.max(1) - 1) & !(PAGE - 1);
        let mut page = first;
        while page <= last {
            let taken = reduce.entry(page).or_insert(UcProt::NONE);
            match watch.kind {
                super::WatchKind::Write => *taken |= UcProt::WRITE,
                _ => *taken |= UcProt::READ | UcProt::WRITE | UcProt::EXEC,
            }
            let Some(next) = page.checked_add(PAGE) else {
                break;
            };
            page = next;
        }
    }
    let suspended = debug.watch_step != WatchStep::Idle;
    let mut pages: Vec<u64> = debug.watched.keys().copied().collect();
    pages.extend(reduce.keys().copied());
    pages.sort_unstable();
    pages.dedup();

    let mut watched = BTreeMap::new();
    for page in pages {
        let real = match memory.vmas().find(page) {
            Some(vma) => uc_prot(vma.effective_prot()),
            None => continue,
        };
        let engine = match reduce.get(&page) {
            Some(taken) if !suspended => UcProt(real.0 & !taken.0),
            _ => real,
        };
        if reduce.contains_key(&page) {
            watched.insert(page, (real, engine));
        }
        uc.mem_protect(page, PAGE, engine)
            .map_err(|e| uc_err(&format!("protecting watched page {page:#x}"), e))?;
    }
    let _ = uc.ctl_flush_tlb();
    uc.get_data_mut().debug.watched = watched;
    Ok(())
}

impl Vcpu for EmuVcpu {
    fn run(&mut self, handler: &mut dyn ExitHandler) -> Result<(), VcpuError> {
        // SAFETY: only the lifetime is erased; the pointer is cleared below before `handler`'s
        // borrow ends, and hooks only run inside `emu_start` within this function.
        let erased: NonNull<dyn ExitHandler> = unsafe {
            std::mem::transmute::<NonNull<dyn ExitHandler + '_>, NonNull<dyn ExitHandler>>(
                NonNull::from(handler),
            )
        };
        self.uc.get_data_mut().handler = Some(erased);
        let result = self.run_loop();
        self.uc.get_data_mut().handler = None;
        result
    }

    fn state(&mut self) -> &mut dyn CpuState {
        &mut self.uc
    }

    fn handle(&self) -> VcpuHandle {
        VcpuHandle::new(self.kick.clone())
    }
}

impl EmuVcpu {
    /// Puts a new debug configuration in force, and starts or ends a watch step.
    fn sync_debug(&mut self) -> Result<(), VcpuError> {
        if let Some(wanted) = self.uc.get_data_mut().debug.wanted.take() {
            apply_debug(&mut self.uc, wanted).map_err(VcpuError::Run)?;
        }
        let debug = &mut self.uc.get_data_mut().debug;
        let stepping = debug.step_hook.is_some();
        if debug.watch_step == WatchStep::Requested {
            // A neighbour of watched bytes: run its one instruction with the real protection.
            debug.watch_step = WatchStep::Running;
            debug.step_ran = false;
            set_step_hook(&mut self.uc, true).map_err(VcpuError::Run)?;
            protect_watched(&mut self.uc).map_err(VcpuError::Run)?;
        } else if debug.watch_step == WatchStep::Idle && stepping && !debug.current.step {
            // A watch step is over: the watched pages lose the watched access again.
            set_step_hook(&mut self.uc, false).map_err(VcpuError::Run)?;
            protect_watched(&mut self.uc).map_err(VcpuError::Run)?;
        }
        Ok(())
    }

    /// Ends a watch step cut short by another exit (a real fault of the stepped instruction).
    fn end_watch_step(&mut self) -> Result<(), VcpuError> {
        let debug = &mut self.uc.get_data_mut().debug;
        if debug.watch_step == WatchStep::Idle {
            return Ok(());
        }
        debug.watch_step = WatchStep::Idle;
        let step = debug.current.step;
        set_step_hook(&mut self.uc, step).map_err(VcpuError::Run)?;
        protect_watched(&mut self.uc).map_err(VcpuError::Run)
    }

    fn run_loop(&mut self) -> Result<(), VcpuError> {
        loop {
            if self.kick.requested.swap(false, Ordering::SeqCst)
                && call_handler(&mut self.uc, VcpuExit::Interrupted) == Resume::Stop
            {
                return Ok(());
            }
            self.sync_memory()?;
            self.sync_debug()?;

            let data = self.uc.get_data_mut();
            data.stop = false;
            data.pending = None;
            let pc = self
                .uc
                .pc_read()
                .map_err(|e| VcpuError::Run(uc_err("reading PC", e)))?;
            let result = self.uc.emu_start(pc, NO_END, 0, 0);

            let data = self.uc.get_data_mut();
            if let Some(error) = data.error.take() {
                return Err(VcpuError::Memory(error));
            }
            if data.stop {
                return Ok(());
            }
            if let Some(exit) = data.pending.take() {
                self.end_watch_step()?;
                if call_handler(&mut self.uc, exit) == Resume::Stop {
                    return Ok(());
                }
                continue;
            }
            if data.debug.watch_step == WatchStep::Requested {
                continue;
            }
            match result {
                // Stopped by a kick (handled at the top of the loop) or a spurious stop.
                Ok(()) => {}
                Err(err) => {
                    debug!(?err, "emulator stopped without a recorded exit");
                    if call_handler(&mut self.uc, VcpuExit::Undefined) == Resume::Stop {
                        return Ok(());
                    }
                }
            }
        }
    }
}

fn get(uc: &Unicorn<'_, EmuData>, reg: RegisterARM64) -> u64 {
    uc.reg_read(reg).unwrap_or_default()
}

fn put(uc: &mut Unicorn<'_, EmuData>, reg: RegisterARM64, value: u64) {
    let result = uc.reg_write(reg, value);
    debug_assert!(result.is_ok(), "writing {reg:?} failed");
}

/// `x0`..`x30` as unicorn register ids.
fn xreg(n: usize) -> RegisterARM64 {
    const X: [RegisterARM64; 31] = [
        RegisterARM64::X0,
        RegisterARM64::X1,
        RegisterARM64::X2,
        RegisterARM64::X3,
        RegisterARM64::X4,
        RegisterARM64::X5,
        RegisterARM64::X6,
        RegisterARM64::X7,
        RegisterARM64::X8,
        RegisterARM64::X9,
        RegisterARM64::X10,
        RegisterARM64::X11,
        RegisterARM64::X12,
        RegisterARM64::X13,
        RegisterARM64::X14,
        RegisterARM64::X15,
        RegisterARM64::X16,
        RegisterARM64::X17,
        RegisterARM64::X18,
        RegisterARM64::X19,
        RegisterARM64::X20,
        RegisterARM64::X21,
        RegisterARM64::X22,
        RegisterARM64::X23,
        RegisterARM64::X24,
        RegisterARM64::X25,
        RegisterARM64::X26,
        RegisterARM64::X27,
        RegisterARM64::X28,
        RegisterARM64::X29,
        RegisterARM64::X30,
    ];
    X[n]
}

fn vreg(n: usize) -> RegisterARM64 {
    const V: [RegisterARM64; 32] = [
        RegisterARM64::V0,
        RegisterARM64::V1,
        RegisterARM64::V2,
        RegisterARM64::V3,
        RegisterARM64::V4,
        RegisterARM64::V5,
        RegisterARM64::V6,
        RegisterARM64::V7,
        RegisterARM64::V8,
        RegisterARM64::V9,
        RegisterARM64::V10,
        RegisterARM64::V11,
        RegisterARM64::V12,
        RegisterARM64::V13,
        RegisterARM64::V14,
        RegisterARM64::V15,
        RegisterARM64::V16,
        RegisterARM64::V17,
        RegisterARM64::V18,
        RegisterARM64::V19,
        RegisterARM64::V20,
        RegisterARM64::V21,
        RegisterARM64::V22,
        RegisterARM64::V23,
        RegisterARM64::V24,
        RegisterARM64::V25,
        RegisterARM64::V26,
        RegisterARM64::V27,
        RegisterARM64::V28,
        RegisterARM64::V29,
        RegisterARM64::V30,
        RegisterARM64::V31,
    ];
    V[n]
}

/// Register access on an engine.
impl CpuState for Unicorn<'_, EmuData> {
    fn x(&self, n: usize) -> u64 {
        get(self, xreg(n))
    }

    fn set_x(&mut self, n: usize, value: u64) {
        put(self, xreg(n), value);
    }

    fn pc(&self) -> u64 {
        get(self, RegisterARM64::PC)
    }

    fn set_pc(&mut self, value: u64) {
        put(self, RegisterARM64::PC, value);
    }

    fn sp(&self) -> u64 {
        get(self, RegisterARM64::SP)
    }

    fn set_sp(&mut self, value: u64) {
        put(self, RegisterARM64::SP, value);
    }

    fn pstate(&self) -> u64 {
        get(self, RegisterARM64::NZCV) & NZCV_MASK
    }

    fn set_pstate(&mut self, value: u64) {
        put(self, RegisterARM64::NZCV, value & NZCV_MASK);
    }

    fn tpidr(&self) -> u64 {
        get(self, RegisterARM64::TPIDR_EL0)
    }

    fn set_tpidr(&mut self, value: u64) {
        put(self, RegisterARM64::TPIDR_EL0, value);
    }

    fn fp(&self) -> FpState {
        let mut fp = FpState {
            fpsr: get(self, RegisterARM64::FPSR) as u32,
            fpcr: get(self, RegisterARM64::FPCR) as u32,
            ..FpState::default()
        };
        for (n, v) in fp.v.iter_mut().enumerate() {
            if let Ok(bytes) = self.reg_read_long(vreg(n)) {
                let mut raw = [0u8; 16];
                let len = bytes.len().min(16);
                raw[..len].copy_from_slice(&bytes[..len]);
                *v = u128::from_le_bytes(raw);
            }
        }
        fp
    }

    fn set_fp(&mut self, fp: &FpState) {
        for (n, v) in fp.v.iter().enumerate() {
            let result = self.reg_write_long(vreg(n), &v.to_le_bytes());
            debug_assert!(result.is_ok(), "writing v{n} failed");
        }
        put(self, RegisterARM64::FPSR, u64::from(fp.fpsr));
        put(self, RegisterARM64::FPCR, u64::from(fp.fpcr));
    }

    fn set_debug(&mut self, config: &DebugConfig) -> Result<(), DebugError> {
        // Hooks cannot change inside a hook: the run loop puts it in force before the guest
        // runs again.
        self.get_data_mut().debug.wanted = Some(config.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::thread;
    use std::time::Duration;

    use super::*;
    use crate::vm::vma::Vma;
    use crate::vm::{WatchKind, Watchpoint};

    const CODE: u64 = 0x10000;
    const DATA: u64 = 0x20000;
    const RX: Prot = Prot::READ.union(Prot::EXEC);
    const RW: Prot = Prot::READ.union(Prot::WRITE);

    /// A vCPU over one code page holding `code` and one data page with protection `data`.
    fn vcpu_with(code: &[u32], data: Prot) -> (Arc<GuestMemory>, EmuVcpu) {
        let memory = Arc::new(GuestMemory::new(1 << 24).expect("reserve guest memory"));
        memory.map(Vma::anonymous(CODE..CODE + 0x1000, RW));
        let bytes: Vec<u8> = code.iter().flat_map(|insn| insn.to_le_bytes()).collect();
        memory.write(CODE, &bytes).unwrap();
        memory.protect(CODE..CODE + 0x1000, RX);
        memory.map(Vma::anonymous(DATA..DATA + 0x1000, data));
        let vcpu = EmuVcpu::new(memory.clone()).expect("create a vCPU");
        (memory, vcpu)
    }

    /// Runs `vcpu` until `handler` stops it, while another thread kicks it every `interval`.
    fn run_while_kicked(vcpu: &mut EmuVcpu, handler: &mut dyn ExitHandler, interval: Duration) {
        let done = Arc::new(AtomicBool::new(false));
        let kicker = {
            let (handle, done) = (vcpu.handle(), done.clone());
            thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    handle.kick();
                    thread::sleep(interval);
                }
            })
        };
        vcpu.run(handler).unwrap();
        done.store(true, Ordering::Relaxed);
        kicker.join().unwrap();
    }

    /// Records every exit; stops at the first one that is not an interruption.
    #[derive(Default)]
    struct Recorder {
        interruptions: u64,
        last: Option<VcpuExit>,
    }

    impl ExitHandler for Recorder {
        fn on_exit(&mut self, _cpu: &mut dyn CpuState, exit: VcpuExit) -> Resume {
            if exit == VcpuExit::Interrupted {
                self.interruptions += 1;
                return Resume::Continue;
            }
            self.last = Some(exit);
            Resume::Stop
        }
    }

    /// Stops from another thread land between instructions: an instruction whose memory
    /// access has completed is never run a second time when the guest resumes.
    #[test]
    fn kicks_from_another_thread_never_repeat_an_instruction() {
        const ROUNDS: u64 = 5_000_000;
        let code = [
            0xf821_0003, // loop: ldadd x1, x3, [x0]
            0xf940_00e7, //       ldr x7, [x7]
            0xf100_0442, //       subs x2, x2, #1
            0x54ff_ffa1, //       b.ne loop
            0xd400_0001, //       svc #0
        ];
        let (memory, mut vcpu) = vcpu_with(&code, RW);
        // x7 walks a two-cell ring, so each executed `ldr` flips it between the cells.
        memory.write_val(DATA + 0x100, &(DATA + 0x108)).unwrap();
        memory.write_val(DATA + 0x108, &(DATA + 0x100)).unwrap();
        let cpu = vcpu.state();
        cpu.set_x(0, DATA);
        cpu.set_x(1, 1);
        cpu.set_x(2, ROUNDS);
        cpu.set_x(7, DATA + 0x100);
        cpu.set_pc(CODE);

        let mut recorder = Recorder::default();
        run_while_kicked(&mut vcpu, &mut recorder, Duration::from_micros(5));

        assert_eq!(recorder.last, Some(VcpuExit::Syscall));
        assert!(
            recorder.interruptions > 20,
            "only {} kicks landed",
            recorder.interruptions
        );
        assert_eq!(memory.read_val::<u64>(DATA).unwrap(), ROUNDS);
        assert_eq!(
            vcpu.state().x(7),
            DATA + 0x100,
            "ldr ran an odd number of extra times"
        );
    }

    /// Regression: unicorn did not synchronise the PC at the first stop after the runtime had
    /// written it, so a kick after a signal handler was entered or a syscall restarted (both
    /// write the PC from the syscall hook) resumed the guest at that old PC with newer
    /// registers once the code ran in chained blocks that never store the PC.
    #[test]
    fn a_kick_after_the_runtime_set_the_pc_stops_at_the_current_instruction() {
        const ROUNDS: u64 = 20_000_000;
        let code = [
            0xd400_0001, //        svc #0: the handler moves the PC to `entry`
            0xd420_0000, //        brk #0: skipped
            0x9100_0463, // entry: add x3, x3, #1
            0xf100_0442, // loop:  subs x2, x2, #1
            0x54ff_ffe1, //        b.ne loop
            0xd400_0001, //        svc #0: a second pass through the now chained blocks
        ];
        let (_memory, mut vcpu) = vcpu_with(&code, RW);
        vcpu.state().set_x(2, ROUNDS);
        vcpu.state().set_pc(CODE);

        /// Jumps to `entry` at the first two syscalls, stops at the third.
        #[derive(Default)]
        struct Jumper {
            syscalls: u32,
            interruptions: u64,
        }
        impl ExitHandler for Jumper {
            fn on_exit(&mut self, cpu: &mut dyn CpuState, exit: VcpuExit) -> Resume {
                match exit {
                    VcpuExit::Interrupted => self.interruptions += 1,
                    VcpuExit::Syscall if self.syscalls < 2 => {
                        self.syscalls += 1;
                        cpu.set_x(2, ROUNDS);
                        cpu.set_pc(CODE + 8);
                    }
                    _ => return Resume::Stop,
                }
                Resume::Continue
            }
        }

        let mut jumper = Jumper::default();
        run_while_kicked(&mut vcpu, &mut jumper, Duration::from_micros(50));

        assert!(jumper.interruptions > 1, "too few kicks landed");
        assert_eq!(vcpu.state().x(3), 2, "the code at the written PC ran again");
        assert_eq!(vcpu.state().x(2), 0);
        assert_eq!(vcpu.state().pc(), CODE + 24);
    }

    /// A store to a read-only or unmapped page stops on the store itself: it writes nothing
    /// and the next instruction does not run.
    #[test]
    fn faulting_stores_stop_on_the_store() {
        let code = [
            0xd280_00a1, // mov x1, #5
            0xf900_0001, // str x1, [x0]
            0xd280_00e2, // mov x2, #7
            0xd400_0001, // svc #0
        ];
        for (target, unmapped) in [(DATA, false), (DATA + 0x10000, true)] {
            let (memory, mut vcpu) = vcpu_with(&code, Prot::READ);
            vcpu.state().set_x(0, target);
            vcpu.state().set_pc(CODE);

            let mut recorder = Recorder::default();
            vcpu.run(&mut recorder).unwrap();

            let fault = VcpuExit::MemoryFault {
                addr: target,
                access: Access::Write,
                unmapped,
            };
            assert_eq!(recorder.last, Some(fault));
            assert_eq!(vcpu.state().pc(), CODE + 4);
            assert_eq!(vcpu.state().x(2), 0);
            assert_eq!(memory.read_val::<u64>(DATA).unwrap(), 0);
        }
    }

    /// Records every exit and stops at the first one.
    #[derive(Default)]
    struct First(Option<VcpuExit>);

    impl ExitHandler for First {
        fn on_exit(&mut self, _cpu: &mut dyn CpuState, exit: VcpuExit) -> Resume {
            self.0 = Some(exit);
            Resume::Stop
        }
    }

    const COUNTING: [u32; 5] = [
        0x9100_0421, // add x1, x1, #1
        0x9100_0421, // add x1, x1, #1
        0x9100_0421, // add x1, x1, #1
        0xf900_0001, // str x1, [x0]
        0xd400_0001, // svc #0
    ];

    fn run_with(vcpu: &mut EmuVcpu, config: &DebugConfig) -> Option<VcpuExit> {
        vcpu.state().set_debug(config).unwrap();
        let mut first = First::default();
        vcpu.run(&mut first).unwrap();
        first.0
    }

    #[test]
    fn a_breakpoint_stops_before_its_instruction_runs() {
        let (_memory, mut vcpu) = vcpu_with(&COUNTING, RW);
        vcpu.state().set_x(0, DATA);
        vcpu.state().set_pc(CODE);
        let config = DebugConfig {
            breakpoints: [CODE + 8].into(),
            ..DebugConfig::default()
        };
        let exit = run_with(&mut vcpu, &config);
        assert_eq!(exit, Some(VcpuExit::Debug(DebugStop::Breakpoint)));
        assert_eq!(vcpu.state().pc(), CODE + 8);
        assert_eq!(vcpu.state().x(1), 2);
    }

    #[test]
    fn a_single_step_runs_exactly_one_instruction_each_time() {
        let (_memory, mut vcpu) = vcpu_with(&COUNTING, RW);
        vcpu.state().set_x(0, DATA);
        vcpu.state().set_pc(CODE);
        let step = DebugConfig {
            step: true,
            ..DebugConfig::default()
        };
        for n in 1..=3 {
            let exit = run_with(&mut vcpu, &step);
            assert_eq!(exit, Some(VcpuExit::Debug(DebugStop::Step)));
            assert_eq!(vcpu.state().x(1), n);
            assert_eq!(vcpu.state().pc(), CODE + 4 * n);
        }
        let exit = run_with(&mut vcpu, &DebugConfig::default());
        assert_eq!(exit, Some(VcpuExit::Syscall));
    }

    #[test]
    fn a_write_watchpoint_stops_before_the_store_and_neighbours_run_freely() {
        let (memory, mut vcpu) = vcpu_with(&COUNTING, RW);
        vcpu.state().set_pc(CODE);
        let watch = |addr| DebugConfig {
            watchpoints: vec![Watchpoint {
                addr,
                len: 8,
                kind: WatchKind::Write,
            }],
            ..DebugConfig::default()
        };

        // A store to the next word of the same page is not stopped.
        vcpu.state().set_x(0, DATA + 8);
        let exit = run_with(&mut vcpu, &watch(DATA));
        assert_eq!(exit, Some(VcpuExit::Syscall));
        assert_eq!(memory.read_val::<u64>(DATA + 8).unwrap(), 3);

        // A store to the watched word stops on the store, which has not happened.
        vcpu.state().set_x(0, DATA);
        vcpu.state().set_x(1, 0);
        vcpu.state().set_pc(CODE);
        let exit = run_with(&mut vcpu, &watch(DATA));
        let hit = DebugStop::Watchpoint {
            addr: DATA,
            access: Access::Write,
        };
        assert_eq!(exit, Some(VcpuExit::Debug(hit)));
        assert_eq!(vcpu.state().pc(), CODE + 12);
        assert_eq!(memory.read_val::<u64>(DATA).unwrap(), 0);

        // Without the watchpoint the store goes through.
        let exit = run_with(&mut vcpu, &DebugConfig::default());
        assert_eq!(exit, Some(VcpuExit::Syscall));
        assert_eq!(memory.read_val::<u64>(DATA).unwrap(), 3);
    }

    /// Code that has run once stops being runnable when its page loses `PROT_EXEC`.
    #[test]
    fn code_that_ran_faults_once_its_page_is_not_executable() {
        let code = [
            0xd280_00a1, // mov x1, #5
            0xd400_0001, // svc #0
        ];
        let (memory, mut vcpu) = vcpu_with(&code, RW);
        vcpu.state().set_pc(CODE);
        let mut recorder = Recorder::default();
        vcpu.run(&mut recorder).unwrap();
        assert_eq!(recorder.last, Some(VcpuExit::Syscall));

        memory.protect(CODE..CODE + 0x1000, Prot::READ);
        vcpu.state().set_pc(CODE);
        let mut recorder = Recorder::default();
        vcpu.run(&mut recorder).unwrap();
        let fault = VcpuExit::MemoryFault {
            addr: CODE,
            access: Access::Execute,
            unmapped: false,
        };
        assert_eq!(recorder.last, Some(fault));
    }
}
