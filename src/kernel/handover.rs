//! Forking by hand-over: the child of a guest `fork` is a new elfuse process, started from the
//! elfuse executable, that receives the guest's state from its parent and runs it.
//!
//! This is how fork works where the host's fork cannot copy a running guest (a
//! Hypervisor.framework VM does not survive `fork()`), and the mode runs on Linux too, so the
//! process tests run through it in CI. `ELFUSE_FORK=handover` selects it, `ELFUSE_FORK=fork`
//! the host `fork()`; the default is the hand-over on macOS and the host fork elsewhere.
//!
//! What travels: the calling thread's registers (the child's, with `x0 = 0`), every mapping
//! with its protection, private memory in a memory file (see [`crate::host::handover`]),
//! shared memory as the host objects behind it, the descriptor table (host descriptors attached
//! to the message, so open file descriptions stay shared as after `fork`), signal actions and
//! mask, resource limits, credentials, umask, `prctl` state, the program's `/proc` identity, the
//! `CLONE_CHILD_SETTID`/`CLONE_CHILD_CLEARTID` address, and the `vfork` parent's wake-up pipe.
//! The runtime's event objects travel as their state (an eventfd's count, a timerfd's setting
//! and unread expirations, an epoll instance's entries whose targets the table holds): the
//! child gets copies, not shared objects (see [`crate::kernel::poll`]).
//! The working directory, process group and session come with the new process itself. The
//! parent waits until the child has taken everything (or failed: then `fork` fails with
//! `EAGAIN`).
//!
//! The channel stays open until the child's guest runs `execve`: the host sees the child as a
//! process that has already run exec, so it refuses the parent's `setpgid` on it (`EACCES`);
//! the parent asks the child to move itself instead ([`move_child_to_group`]).
//!
//! # Limitations
//! Private memory is copied once per fork (resident pages only, for anonymous memory), where
//! the host fork shares it copy-on-write; `docs/internals.md` has the measured cost.

use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::{debug, warn};

use crate::host;
use crate::host::handover::Channel;
use crate::kernel::abi::clone::{CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID};
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::structs::{KernelSigaction, SigaltStack};
use crate::kernel::fd::FdTable;
use crate::kernel::file::{Device, FileKind, OpenFile};
use crate::kernel::fs::root::{EtcView, GuestRoot};
use crate::kernel::mm::{Brk, Layout};
use crate::kernel::poll::epoll::{self, InterestCopy};
use crate::kernel::poll::{Epoll, EventFd, EventObject, TimerFd};
use crate::kernel::process::{
    Credentials, ExecInfo, MmState, PrctlState, Process, ProcessInit, lock,
};
use crate::kernel::syscalls::Ctx;
use crate::kernel::syscalls::thread::CloneArgs;
use crate::kernel::task::Task;
use crate::kernel::{ExitStatus, RuntimeError};
use crate::trace::Tracer;
use crate::vm::memory::GuestMemory;
use crate::vm::vma::{Backing, FileMapping, FileSource, PAGE_SIZE, Prot, SharedObject, Vma};
use crate::vm::{Backend, CpuSnapshot, FpState};

/// How a guest fork makes its child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkMode {
    /// The host's `fork()`.
    HostFork,
    /// A new elfuse process that receives the state.
    Handover,
}

impl ForkMode {
    /// The mode `ELFUSE_FORK` asks for, or the host's default; an error names a bad value.
    pub fn from_env() -> Result<ForkMode, String> {
        match std::env::var("ELFUSE_FORK") {
            Err(_) => Ok(Self::default_for_host()),
            Ok(value) => match value.as_str() {
                "" => Ok(Self::default_for_host()),
                "fork" => Ok(ForkMode::HostFork),
                "handover" => Ok(ForkMode::Handover),
                other => Err(format!(
                    "ELFUSE_FORK={other:?} is not a fork mode (use \"fork\" or \"handover\")"
                )),
            },
        }
    }

    fn default_for_host() -> ForkMode {
        if cfg!(target_os = "macos") {
            ForkMode::Handover
        } else {
            ForkMode::HostFork
        }
    }
}

/// What the command line decided for the processes it starts.
pub struct Config {
    /// How guest forks work.
    pub mode: ForkMode,
    /// Arguments for a new elfuse process after the hand-over subcommand (backend, verbosity).
    pub child_args: Vec<String>,
    /// Where elfuse's own messages go, for the new process's standard error.
    pub diagnostics: Option<OwnedFd>,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// Sets the configuration once, at start-up.
pub fn configure(config: Config) {
    let _ = CONFIG.set(config);
}

/// Whether guest forks are handed over.
pub fn enabled() -> bool {
    CONFIG
        .get()
        .map_or(ForkMode::default_for_host(), |c| c.mode)
        == ForkMode::Handover
}

/// The name of the hidden subcommand a new process is started with.
pub const SUBCOMMAND: &str = "internal-handover";

/// The first bytes of every state message.
const MAGIC: &[u8; 8] = b"ELFUSEH1";

/// One hand-over at a time: the channel ends must reach only their own child.
static SERIAL: Mutex<()> = Mutex::new(());

// ---- the parent -------------------------------------------------------------------------------

/// Makes the child of a guest `fork` as a new elfuse process and returns its pid. `vfork_done`
/// is the write end of the pipe a `vfork` parent waits on.
pub fn fork(ctx: &mut Ctx<'_>, args: &CloneArgs, vfork_done: Option<&OwnedFd>) -> SysResult<i32> {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut message = Encoder::default();
    let mut fds: Vec<BorrowedFd<'_>> = Vec::new();

    // Keep every object whose descriptor travels alive until the message is sent.
    let process = ctx.process().clone();
    let memory_file = host::handover::memory_file(ctx.mem().span()).map_err(|e| {
        warn!("fork: cannot create the memory file: {e}");
        Errno::ENOMEM
    })?;
    let vmas: Vec<Vma> = ctx.mem().vmas().iter().cloned().collect();
    copy_private_memory(ctx.mem(), &vmas, memory_file.as_fd())?;
    let files: Vec<(i32, bool, Arc<OpenFile>)> = lock(&process.fds)
        .iter()
        .map(|(fd, entry)| (fd, entry.cloexec, entry.file.clone()))
        .collect();
    let tracer_fd = process.tracer.as_ref().and_then(|t| t.clone_fd().ok());

    message.bytes(MAGIC);
    message.u64(ctx.mem().span());
    fds.push(memory_file.as_fd());

    encode_regs(&mut message, &args.child_regs(&*ctx.cpu));

    message.u64(vmas.len() as u64);
    for vma in &vmas {
        encode_vma(&mut message, &mut fds, vma);
    }

    // Open file descriptions, once each, then the table that refers to them.
    let mut unique: Vec<Arc<OpenFile>> = Vec::new();
    let mut slots = Vec::new();
    for (fd, cloexec, file) in &files {
        let index = match unique.iter().position(|f| Arc::ptr_eq(f, file)) {
            Some(index) => index,
            None => {
                unique.push(file.clone());
                unique.len() - 1
            }
        };
        slots.push((*fd, *cloexec, index));
    }
    message.u64(unique.len() as u64);
    for file in &unique {
        encode_file(&mut message, &mut fds, file);
    }
    encode_interests(&mut message, &unique);
    message.u64(slots.len() as u64);
    for (fd, cloexec, index) in slots {
        message.u64(fd as u64);
        message.bool(cloexec);
        message.u64(index as u64);
    }

    message.bytes(bytemuck::cast_slice(&lock(&process.sigactions)[..]));
    message.bytes(bytemuck::cast_slice(&lock(&process.limits)[..]));
    encode_creds(&mut message, &lock(&process.creds));
    message.u64(u64::from(lock(&process.fs).umask));
    encode_root(&mut message, &process.root);
    encode_exec(&mut message, &lock(&process.exec));
    encode_mm(&mut message, &lock(&process.mm));
    encode_prctl(&mut message, &lock(&process.prctl));
    message.words(&lock(&process.affinity));

    let task = &*ctx.task;
    message.bytes(&task.comm);
    message.u64(task.sigmask());
    message.bytes(bytemuck::bytes_of(&task.altstack));
    let child_tid = if args.flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID) != 0 {
        args.child_tid
    } else {
        0
    };
    message.u64(child_tid);
    message.bool(args.flags & CLONE_CHILD_SETTID != 0);
    message.bool(args.flags & CLONE_CHILD_CLEARTID != 0);
    message.bool(tracer_fd.is_some());
    if let Some(fd) = &tracer_fd {
        fds.push(fd.as_fd());
    }
    message.bool(vfork_done.is_some());
    if let Some(fd) = vfork_done {
        fds.push(fd.as_fd());
    }

    let pid = start_child(&message.0, &fds).map_err(|e| {
        warn!("fork: cannot hand the process over: {e}");
        Errno::EAGAIN
    })?;
    debug!(child = pid, bytes = message.0.len(), "handed over");
    Ok(pid)
}

/// Starts the new process, sends it the state and waits for its answer.
fn start_child(payload: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<i32> {
    // Linux names the running executable even after it was replaced or removed.
    let exe = if cfg!(target_os = "linux") {
        std::path::PathBuf::from("/proc/self/exe")
    } else {
        std::env::current_exe()?
    };
    let config = CONFIG.get();
    let mut args = vec![SUBCOMMAND.to_string()];
    if let Some(config) = config {
        args.extend(config.child_args.iter().cloned());
    }
    let diagnostics = config.and_then(|c| c.diagnostics.as_ref().map(AsFd::as_fd));
    let (ours, theirs) = Channel::pair()?;
    let pid = host::handover::spawn(&exe, &args, &theirs, diagnostics)?;
    drop(theirs);
    let answer = ours.send(payload, fds).and_then(|()| ours.recv());
    match answer {
        Ok((reply, _)) if reply == b"ok" => {
            lock(&CHILDREN).insert(pid, ours);
            Ok(pid)
        }
        other => {
            // The child is of no use; make sure it is gone and reaped before failing.
            let _ = host::signals::kill(pid, libc::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            Err(match other {
                Ok((reply, _)) => {
                    std::io::Error::other(String::from_utf8_lossy(&reply).into_owned())
                }
                Err(e) => e,
            })
        }
    }
}

/// Channels to handed-over children whose guests have not run `execve` yet, by pid.
static CHILDREN: Mutex<BTreeMap<i32, Channel>> = Mutex::new(BTreeMap::new());

/// Asks handed-over child `pid` to join process group `group` (`setpgid(pid, group)` from the
/// parent). `None` if `pid` is not such a child (any more).
pub fn move_child_to_group(pid: i32, group: i32) -> Option<SysResult<()>> {
    let mut children = lock(&CHILDREN);
    let channel = children.get(&pid)?;
    let mut request = Encoder::default();
    request.u64(REQUEST_SETPGID);
    request.u64(group as u32 as u64);
    match channel.send(&request.0, &[]).and_then(|()| channel.recv()) {
        Ok((reply, _)) => {
            let mut d = Decoder {
                bytes: &reply,
                fds: Vec::new(),
                next_fd: 0,
            };
            let errno = d.u64().unwrap_or(libc::EIO as u64) as i32;
            Some(match errno {
                0 => Ok(()),
                e => Err(Errno::from_raw(e).unwrap_or(Errno::EIO)),
            })
        }
        // The child has run execve or ended: the host's answer stands.
        Err(_) => {
            children.remove(&pid);
            None
        }
    }
}

/// Forgets child `pid` once it has been reaped.
pub fn forget_child(pid: i32) {
    lock(&CHILDREN).remove(&pid);
}

/// A request from the parent: join the process group that follows.
const REQUEST_SETPGID: u64 = 1;

/// The child's end of the channel, until its guest runs `execve`.
static PARENT: Mutex<Option<Arc<Channel>>> = Mutex::new(None);

/// Serves the parent's requests until the channel closes.
fn serve_parent(channel: Arc<Channel>) {
    while let Ok((request, _)) = channel.recv() {
        let mut d = Decoder {
            bytes: &request,
            fds: Vec::new(),
            next_fd: 0,
        };
        let errno = match (d.u64(), d.u64()) {
            (Ok(REQUEST_SETPGID), Ok(group)) => {
                let group = nix::unistd::Pid::from_raw(group as u32 as i32);
                match nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), group) {
                    Ok(()) => 0,
                    Err(e) => e as i32,
                }
            }
            _ => libc::EINVAL,
        };
        let mut reply = Encoder::default();
        reply.u64(errno as u64);
        if channel.send(&reply.0, &[]).is_err() {
            break;
        }
    }
}

/// Called at `execve`: from now on the parent's `setpgid` gets the host's `EACCES`, as on
/// Linux after exec.
pub fn on_exec() {
    if let Some(channel) = lock(&PARENT).take() {
        channel.shut_down();
    }
}

/// Writes the private pages of `vmas` into `file` at their guest addresses: resident pages of
/// anonymous memory (the others read as zeroes), every page of a private file mapping.
fn copy_private_memory(memory: &GuestMemory, vmas: &[Vma], file: BorrowedFd<'_>) -> SysResult<()> {
    let host_page = host::memory::page_size();
    for vma in vmas.iter().filter(|v| !v.shared && !v.past_eof) {
        let range = memory.host_range(vma.start..vma.end);
        let resident = match vma.backing {
            Backing::Anonymous => range.residency(host_page).ok(),
            _ => None,
        };
        let pages = (vma.len()).div_ceil(host_page);
        let mut page = 0;
        while page < pages {
            let wanted = |p: u64| resident.as_ref().is_none_or(|r| r[p as usize]);
            if !wanted(page) {
                page += 1;
                continue;
            }
            let first = page;
            while page < pages && wanted(page) {
                page += 1;
            }
            let start = vma.start + first * host_page;
            let end = (vma.start + page * host_page).min(vma.end);
            let run = memory.host_range(start..end);
            run.with(|bytes| write_all_at(file, bytes, start))?;
        }
    }
    Ok(())
}

fn write_all_at(file: BorrowedFd<'_>, mut bytes: &[u8], mut offset: u64) -> SysResult<()> {
    while !bytes.is_empty() {
        let n = crate::kernel::file::retry(|| host::io::pwrite(file, bytes, offset as i64))?;
        if n == 0 {
            return Err(Errno::ENOSPC);
        }
        bytes = &bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

const LABELS: [&str; 3] = ["[heap]", "[stack]", "[vdso]"];

fn encode_vma<'a>(message: &mut Encoder, fds: &mut Vec<BorrowedFd<'a>>, vma: &'a Vma) {
    message.u64(vma.start);
    message.u64(vma.end);
    message.u64(u64::from(vma.prot.bits()));
    message.u64(u64::from(vma.max_prot.bits()));
    message.bool(vma.shared);
    message.u64(vma.offset);
    message.bool(vma.past_eof);
    let label = vma
        .label
        .and_then(|l| LABELS.iter().position(|&known| known == l))
        .map_or(0, |i| i as u64 + 1);
    message.u64(label);
    match &vma.backing {
        Backing::Anonymous => message.u64(0),
        Backing::SharedAnonymous(object) => {
            message.u64(1);
            fds.push(object.0.as_fd());
        }
        Backing::File(mapping) => {
            message.u64(2);
            message.bytes(mapping.path.as_bytes());
            message.u64(mapping.dev);
            message.u64(mapping.ino);
            let fd = mapping.source.as_ref().and_then(|s| s.host_fd());
            message.bool(fd.is_some());
            if let Some(fd) = fd {
                fds.push(fd);
            }
        }
    }
}

fn encode_file<'a>(message: &mut Encoder, fds: &mut Vec<BorrowedFd<'a>>, file: &'a OpenFile) {
    match file.kind() {
        FileKind::Host { fd, .. } => {
            message.u64(0);
            fds.push(fd.as_fd());
        }
        FileKind::Device(_) => message.u64(1),
        FileKind::Path { host } => {
            message.u64(2);
            message.bytes(host.as_bytes());
        }
        FileKind::Event(EventObject::EventFd(e)) => {
            let (value, semaphore) = e.snapshot();
            message.u64(3);
            message.u64(value);
            message.bool(semaphore);
        }
        FileKind::Event(EventObject::TimerFd(t)) => {
            message.u64(4);
            message.u64(t.clock_id() as u64);
            message.words(&t.snapshot());
        }
        // The interest list follows the whole table (see encode_interests).
        FileKind::Event(EventObject::Epoll(_)) => message.u64(5),
    }
    message.u64(file.pidfd_pid().map_or(0, |pid| pid as u64));
    message.u64(file.status_flags());
    message.bytes(&file.path);
    message.u64(file.owner() as u32 as u64);
    message.u64(u64::from(file.io_signal()));
}

/// The interest lists of the epoll instances among `files`, each entry naming its target by
/// index in `files`. Targets that no descriptor refers to are left behind.
fn encode_interests(message: &mut Encoder, files: &[Arc<OpenFile>]) {
    for file in files {
        let Some(epoll) = epoll::epoll_of(file) else {
            message.u64(0);
            continue;
        };
        let entries: Vec<(usize, InterestCopy)> = epoll
            .interests()
            .into_iter()
            .filter_map(|i| Some((files.iter().position(|f| Arc::ptr_eq(f, &i.file))?, i)))
            .collect();
        message.u64(entries.len() as u64);
        for (index, interest) in entries {
            message.u64(index as u64);
            message.u64(interest.fd as u32 as u64);
            message.u64(u64::from(interest.events));
            message.u64(interest.data);
        }
    }
}

fn decode_interests(d: &mut Decoder<'_>, files: &[Arc<OpenFile>]) -> Result<(), String> {
    for file in files {
        let count = d.u64()?;
        for _ in 0..count {
            let target = files.get(d.u64()? as usize).ok_or("bad epoll target")?;
            let copy = InterestCopy {
                fd: d.u64()? as u32 as i32,
                file: target.clone(),
                events: d.u64()? as u32,
                data: d.u64()?,
            };
            epoll::epoll_of(file)
                .ok_or("interests for a file that is no epoll instance")?
                .restore(&copy);
        }
    }
    Ok(())
}

fn encode_regs(message: &mut Encoder, regs: &CpuSnapshot) {
    message.words(&regs.x);
    for word in [regs.sp, regs.pc, regs.pstate, regs.tpidr] {
        message.u64(word);
    }
    for v in regs.fp.v {
        message.u64(v as u64);
        message.u64((v >> 64) as u64);
    }
    message.u64(u64::from(regs.fp.fpsr));
    message.u64(u64::from(regs.fp.fpcr));
}

fn encode_creds(message: &mut Encoder, creds: &Credentials) {
    for id in [
        creds.uid, creds.euid, creds.suid, creds.gid, creds.egid, creds.sgid,
    ] {
        message.u64(u64::from(id));
    }
    let groups: Vec<u64> = creds.groups.iter().map(|&g| u64::from(g)).collect();
    message.words(&groups);
}

fn encode_root(message: &mut Encoder, root: &GuestRoot) {
    message.bool(root.sysroot_dir().is_some());
    if let Some(dir) = root.sysroot_dir() {
        message.bytes(dir.as_os_str().as_bytes());
        let host_dirs = root.host_dirs();
        message.u64(host_dirs.len() as u64);
        for dir in host_dirs {
            message.bytes(dir.as_os_str().as_bytes());
        }
        let views = root.etc_views();
        message.u64(views.len() as u64);
        for view in views {
            message.bytes(view.name.as_bytes());
            message.bytes(view.file.as_os_str().as_bytes());
        }
    }
}

fn decode_root(d: &mut Decoder) -> Result<GuestRoot, String> {
    if !d.bool()? {
        return Ok(GuestRoot::host());
    }
    let dir = PathBuf::from(OsString::from_vec(d.bytes_()?));
    let count = d.u64()?;
    let mut host_dirs = Vec::new();
    for _ in 0..count {
        host_dirs.push(PathBuf::from(OsString::from_vec(d.bytes_()?)));
    }
    let count = d.u64()?;
    let mut views = Vec::new();
    for _ in 0..count {
        let name = String::from_utf8(d.bytes_()?).map_err(|e| e.to_string())?;
        let file = PathBuf::from(OsString::from_vec(d.bytes_()?));
        views.push(EtcView { name, file });
    }
    GuestRoot::sysroot(&dir, &host_dirs, &views)
        .map_err(|e| format!("sysroot {}: {e}", dir.display()))
}

fn encode_exec(message: &mut Encoder, exec: &ExecInfo) {
    message.bytes(&exec.path);
    message.bytes(exec.host_path.as_os_str().as_encoded_bytes());
    message.bytes(&exec.exe);
    let auxv: Vec<u64> = exec.auxv.iter().flat_map(|&(k, v)| [k, v]).collect();
    message.words(&auxv);
    for word in [exec.args.start, exec.args.end, exec.env.start, exec.env.end] {
        message.u64(word);
    }
}

fn encode_mm(message: &mut Encoder, mm: &MmState) {
    let l = &mm.layout;
    for word in [l.span, l.stack_top, l.stack_size, l.mmap_base, l.dyn_base] {
        message.u64(word);
    }
    message.u64(mm.brk.start);
    message.u64(mm.brk.current);
    message.bool(mm.lock_future);
    message.u64(mm.sigreturn_trampoline);
}

fn encode_prctl(message: &mut Encoder, p: &PrctlState) {
    // A fork child starts without a parent-death signal.
    message.u64(u64::from(p.dumpable));
    message.bool(p.keepcaps);
    message.u64(p.timerslack_ns);
    message.bool(p.child_subreaper);
    message.bool(p.no_new_privs);
    message.bool(p.thp_disable);
    message.u64(p.sched_policy);
}

// ---- the child --------------------------------------------------------------------------------

/// Runs the process handed over through the inherited channel to its end.
pub fn run_child(backend: Arc<dyn Backend>) -> Result<ExitStatus, RuntimeError> {
    let channel = Channel::inherited().map_err(RuntimeError::Handover)?;
    let (payload, fds) = channel.recv().map_err(RuntimeError::Handover)?;
    let restored = match restore(&payload, fds, backend) {
        Ok(restored) => restored,
        Err(e) => {
            let _ = channel.send(e.as_bytes(), &[]);
            return Err(RuntimeError::Handover(std::io::Error::other(e)));
        }
    };
    channel.send(b"ok", &[]).map_err(RuntimeError::Handover)?;
    let channel = Arc::new(channel);
    *lock(&PARENT) = Some(channel.clone());
    let _ = std::thread::Builder::new()
        .name("elfuse-handover".into())
        .spawn(move || serve_parent(channel));

    let (task, regs) = restored;
    let process = crate::kernel::thread::run(task, regs)?;
    Ok(process.wait_exit())
}

type Restored = (Task, CpuSnapshot);

fn restore(
    payload: &[u8],
    fds: Vec<OwnedFd>,
    backend: Arc<dyn Backend>,
) -> Result<Restored, String> {
    let mut d = Decoder {
        bytes: payload,
        fds: fds.into_iter().map(Some).collect(),
        next_fd: 0,
    };
    if d.bytes_()? != MAGIC {
        return Err("not a hand-over message".into());
    }
    let span = d.u64()?;
    let memory_file = d.fd()?;
    let regs = decode_regs(&mut d)?;

    crate::kernel::init_host();
    let memory = Arc::new(GuestMemory::new(span).map_err(|e| e.to_string())?);
    let count = d.u64()?;
    for _ in 0..count {
        restore_vma(&mut d, &memory, &memory_file)?;
    }
    drop(memory_file);

    let file_count = d.u64()?;
    let mut files = Vec::new();
    for _ in 0..file_count {
        files.push(decode_file(&mut d)?);
    }
    decode_interests(&mut d, &files)?;
    let mut table = FdTable::new();
    let slots = d.u64()?;
    for _ in 0..slots {
        let fd = d.u64()? as usize;
        let cloexec = d.bool()?;
        let file = files.get(d.u64()? as usize).ok_or("bad file index")?;
        table.insert_at(fd, file.clone(), cloexec);
    }

    let sigactions: [KernelSigaction; 64] = pod_array(&d.bytes_()?)?;
    let limits = pod_array(&d.bytes_()?)?;
    let creds = decode_creds(&mut d)?;
    let umask = d.u64()? as u32;
    let root = decode_root(&mut d)?;
    let exec = decode_exec(&mut d)?;
    let mm = decode_mm(&mut d)?;
    let prctl = decode_prctl(&mut d)?;
    let affinity = d.words()?;
    let comm: [u8; 16] = d.bytes_()?.try_into().map_err(|_| "bad comm")?;
    let sigmask = d.u64()?;
    let altstack: SigaltStack =
        *bytemuck::try_from_bytes(&d.bytes_()?).map_err(|e| e.to_string())?;
    let child_tid = d.u64()?;
    let set_tid = d.bool()?;
    let clear_tid = d.bool()?;
    let tracer = if d.bool()? {
        Some(Arc::new(Tracer::from_fd(d.fd()?)))
    } else {
        None
    };
    let vfork_done = if d.bool()? { Some(d.fd()?) } else { None };

    let pid = std::process::id() as i32;
    let process = Process::new(ProcessInit {
        pid,
        backend,
        memory: memory.clone(),
        mm,
        fds: table,
        umask,
        root,
        sigactions,
        limits,
        creds,
        exec,
        prctl,
        affinity,
        tracer,
    });
    *lock(&process.vfork_done) = vfork_done;
    let child = &sigactions[crate::kernel::abi::signal::SIGCHLD as usize - 1];
    host::signals::set_child_action(host::signals::ChildAction {
        ignore: child.handler == crate::kernel::abi::signal::SIG_IGN,
        no_wait: child.flags & crate::kernel::abi::signal::SA_NOCLDWAIT != 0,
        no_stop: child.flags & crate::kernel::abi::signal::SA_NOCLDSTOP != 0,
    });
    crate::kernel::set_current_process(&process);

    let shared = process.add_thread(pid, sigmask);
    let mut task = Task::new(process, shared, comm);
    task.altstack = altstack;
    if set_tid {
        let _ = memory.write_val(child_tid, &(pid as u32));
    }
    if clear_tid {
        task.clear_child_tid = child_tid;
    }
    Ok((task, regs))
}

fn restore_vma(
    d: &mut Decoder<'_>,
    memory: &GuestMemory,
    memory_file: &OwnedFd,
) -> Result<(), String> {
    let start = d.u64()?;
    let end = d.u64()?;
    if start >= end || end > memory.span() || start % PAGE_SIZE != 0 || end % PAGE_SIZE != 0 {
        return Err(format!("bad mapping {start:#x}..{end:#x}"));
    }
    let prot = Prot::from_bits_truncate(d.u64()? as u32);
    let max_prot = Prot::from_bits_truncate(d.u64()? as u32);
    let shared = d.bool()?;
    let offset = d.u64()?;
    let past_eof = d.bool()?;
    let label = match d.u64()? {
        0 => None,
        n => Some(*LABELS.get(n as usize - 1).ok_or("bad label")?),
    };
    let (backing, shared_fd) = match d.u64()? {
        0 => (Backing::Anonymous, None),
        1 => {
            let object = Arc::new(SharedObject(d.fd()?));
            (
                Backing::SharedAnonymous(object.clone()),
                Some(SharedFd::Object(object)),
            )
        }
        2 => {
            let path = String::from_utf8_lossy(&d.bytes_()?).into_owned();
            let dev = d.u64()?;
            let ino = d.u64()?;
            let source = if d.bool()? {
                let file = OpenFile::host(d.fd()?, crate::kernel::abi::open::O_RDWR, Vec::new());
                Some(file)
            } else {
                None
            };
            let fd = source.clone().map(SharedFd::File);
            let mapping = FileMapping {
                path,
                dev,
                ino,
                source: source.map(|s| s as Arc<dyn FileSource>),
            };
            (Backing::File(Arc::new(mapping)), fd)
        }
        _ => return Err("bad backing".into()),
    };
    let vma = Vma {
        start,
        end,
        prot,
        max_prot,
        shared,
        backing,
        offset,
        label,
        past_eof,
    };
    memory.map(vma);
    if past_eof {
        return Ok(());
    }
    let range = memory.host_range(start..end);
    if shared {
        let writable = max_prot.contains(Prot::WRITE);
        let fd = shared_fd.ok_or("a shared mapping without its object")?;
        range
            .map_file(fd.as_fd(), offset, true, writable)
            .map_err(|e| format!("mapping shared memory: {e}"))
    } else if host::handover::can_map_guest_pages() {
        range
            .map_file(memory_file.as_fd(), start, false, true)
            .map_err(|e| format!("mapping private memory: {e}"))
    } else {
        range.with_mut(|bytes| read_all_at(memory_file.as_fd(), bytes, start))
    }
}

/// The host object behind a shared mapping being restored.
enum SharedFd {
    Object(Arc<SharedObject>),
    File(Arc<OpenFile>),
}

impl SharedFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            SharedFd::Object(object) => object.0.as_fd(),
            SharedFd::File(file) => file.host_fd().expect("a host file"),
        }
    }
}

fn read_all_at(file: BorrowedFd<'_>, mut bytes: &mut [u8], mut offset: u64) -> Result<(), String> {
    while !bytes.is_empty() {
        let n = crate::kernel::file::retry(|| host::io::pread(file, bytes, offset as i64))
            .map_err(|e| format!("reading private memory: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        bytes = &mut bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

fn decode_file(d: &mut Decoder<'_>) -> Result<Arc<OpenFile>, String> {
    let kind = d.u64()?;
    let host_fd = if kind == 0 { Some(d.fd()?) } else { None };
    let host_path = if kind == 2 { Some(d.bytes_()?) } else { None };
    let event = match kind {
        3 => Some(EventObject::EventFd(EventFd::restore(d.u64()?, d.bool()?))),
        4 => {
            let clock_id = d.u64()? as i64;
            let words = d.words()?.try_into().map_err(|_| "bad timerfd")?;
            Some(EventObject::TimerFd(TimerFd::restore(clock_id, words)))
        }
        5 => Some(EventObject::Epoll(Epoll::new())),
        _ => None,
    };
    let pidfd = d.u64()? as i32;
    let flags = d.u64()?;
    let path = d.bytes_()?;
    let owner = d.u64()? as u32 as i32;
    let io_signal = d.u64()? as u32;
    let file = match (kind, host_fd, host_path) {
        (0, Some(fd), _) if pidfd > 0 => OpenFile::pidfd(fd, flags, pidfd),
        (0, Some(fd), _) => OpenFile::host(fd, flags, path),
        (1, _, _) => {
            let name = path.strip_prefix(b"/dev/").ok_or("bad device")?;
            OpenFile::device(Device::from_name(name).ok_or("bad device")?, flags)
        }
        (2, _, Some(host)) => {
            let host = CString::new(host).map_err(|_| "bad path")?;
            OpenFile::path_only(host, flags, path)
        }
        (3..=5, _, _) => OpenFile::event(event.ok_or("bad event object")?, flags),
        _ => return Err("bad file".into()),
    };
    file.set_owner(owner);
    file.set_io_signal(io_signal);
    Ok(file)
}

fn decode_regs(d: &mut Decoder<'_>) -> Result<CpuSnapshot, String> {
    let x: [u64; 31] = d.words()?.try_into().map_err(|_| "bad registers")?;
    let (sp, pc, pstate, tpidr) = (d.u64()?, d.u64()?, d.u64()?, d.u64()?);
    let mut v = [0u128; 32];
    for reg in &mut v {
        let lo = d.u64()?;
        let hi = d.u64()?;
        *reg = u128::from(lo) | (u128::from(hi) << 64);
    }
    let fpsr = d.u64()? as u32;
    let fpcr = d.u64()? as u32;
    Ok(CpuSnapshot {
        x,
        sp,
        pc,
        pstate,
        tpidr,
        fp: FpState { v, fpsr, fpcr },
    })
}

fn decode_creds(d: &mut Decoder<'_>) -> Result<Credentials, String> {
    let mut ids = [0u32; 6];
    for id in &mut ids {
        *id = d.u64()? as u32;
    }
    let groups = d.words()?.into_iter().map(|g| g as u32).collect();
    Ok(Credentials {
        uid: ids[0],
        euid: ids[1],
        suid: ids[2],
        gid: ids[3],
        egid: ids[4],
        sgid: ids[5],
        groups,
    })
}

fn decode_exec(d: &mut Decoder<'_>) -> Result<ExecInfo, String> {
    let path = d.bytes_()?;
    let host_path = std::path::PathBuf::from(std::ffi::OsString::from(
        String::from_utf8_lossy(&d.bytes_()?).into_owned(),
    ));
    let exe = d.bytes_()?;
    let auxv = d
        .words()?
        .chunks(2)
        .map(|p| (p[0], p.get(1).copied().unwrap_or(0)))
        .collect();
    let (a0, a1, e0, e1) = (d.u64()?, d.u64()?, d.u64()?, d.u64()?);
    Ok(ExecInfo {
        path,
        host_path,
        exe,
        auxv,
        args: a0..a1,
        env: e0..e1,
    })
}

fn decode_mm(d: &mut Decoder<'_>) -> Result<MmState, String> {
    let layout = Layout {
        span: d.u64()?,
        stack_top: d.u64()?,
        stack_size: d.u64()?,
        mmap_base: d.u64()?,
        dyn_base: d.u64()?,
    };
    let brk = Brk {
        start: d.u64()?,
        current: d.u64()?,
    };
    Ok(MmState {
        layout,
        brk,
        lock_future: d.bool()?,
        sigreturn_trampoline: d.u64()?,
    })
}

fn decode_prctl(d: &mut Decoder<'_>) -> Result<PrctlState, String> {
    Ok(PrctlState {
        pdeathsig: 0,
        dumpable: d.u64()? as u32,
        keepcaps: d.bool()?,
        timerslack_ns: d.u64()?,
        child_subreaper: d.bool()?,
        no_new_privs: d.bool()?,
        thp_disable: d.bool()?,
        sched_policy: d.u64()?,
    })
}

fn pod_array<T: bytemuck::Pod + Default + Copy, const N: usize>(
    bytes: &[u8],
) -> Result<[T; N], String> {
    let items: &[T] = bytemuck::try_cast_slice(bytes).map_err(|e| e.to_string())?;
    let mut out = [T::default(); N];
    if items.len() != N {
        return Err("bad array length".into());
    }
    out.copy_from_slice(items);
    Ok(out)
}

// ---- the message format -------------------------------------------------------------------------

/// Little-endian words and length-prefixed byte strings.
#[derive(Default)]
struct Encoder(Vec<u8>);

impl Encoder {
    fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn bool(&mut self, value: bool) {
        self.u64(u64::from(value));
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.u64(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn words(&mut self, words: &[u64]) {
        self.u64(words.len() as u64);
        for &w in words {
            self.u64(w);
        }
    }
}

/// Reads what [`Encoder`] wrote, and hands out the attached descriptors in order.
struct Decoder<'a> {
    bytes: &'a [u8],
    fds: Vec<Option<OwnedFd>>,
    next_fd: usize,
}

impl Decoder<'_> {
    fn u64(&mut self) -> Result<u64, String> {
        let (head, rest) = self.bytes.split_at_checked(8).ok_or("message too short")?;
        self.bytes = rest;
        Ok(u64::from_le_bytes(head.try_into().expect("8 bytes")))
    }

    fn bool(&mut self) -> Result<bool, String> {
        Ok(self.u64()? != 0)
    }

    fn bytes_(&mut self) -> Result<Vec<u8>, String> {
        let len = usize::try_from(self.u64()?).map_err(|_| "bad length")?;
        let (head, rest) = self
            .bytes
            .split_at_checked(len)
            .ok_or("message too short")?;
        self.bytes = rest;
        Ok(head.to_vec())
    }

    fn words(&mut self) -> Result<Vec<u64>, String> {
        let len = self.u64()?;
        if len > self.bytes.len() as u64 / 8 {
            return Err("message too short".into());
        }
        (0..len).map(|_| self.u64()).collect()
    }

    fn fd(&mut self) -> Result<OwnedFd, String> {
        let fd = self
            .fds
            .get_mut(self.next_fd)
            .and_then(Option::take)
            .ok_or("a descriptor is missing")?;
        self.next_fd += 1;
        Ok(fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_format_round_trips() {
        let mut e = Encoder::default();
        e.u64(7);
        e.bool(true);
        e.bytes(b"abc");
        e.words(&[1, 2, 3]);
        let mut d = Decoder {
            bytes: &e.0,
            fds: Vec::new(),
            next_fd: 0,
        };
        assert_eq!(d.u64(), Ok(7));
        assert_eq!(d.bool(), Ok(true));
        assert_eq!(d.bytes_(), Ok(b"abc".to_vec()));
        assert_eq!(d.words(), Ok(vec![1, 2, 3]));
        assert!(d.u64().is_err());
        assert!(d.fd().is_err());
    }

    #[test]
    fn a_truncated_message_is_an_error_not_a_panic() {
        let mut e = Encoder::default();
        e.bytes(b"abcdef");
        let cut = &e.0[..10];
        let mut d = Decoder {
            bytes: cut,
            fds: Vec::new(),
            next_fd: 0,
        };
        assert!(d.bytes_().is_err());
        let mut huge = Encoder::default();
        huge.u64(u64::MAX);
        let mut d = Decoder {
            bytes: &huge.0,
            fds: Vec::new(),
            next_fd: 0,
        };
        assert!(d.words().is_err());
    }
}
