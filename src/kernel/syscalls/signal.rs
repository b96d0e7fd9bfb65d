//! Signal state, sending and waiting: `rt_sigaction(2)`, `rt_sigprocmask(2)`,
//! `rt_sigpending(2)`, `sigaltstack(2)`, `rt_sigreturn(2)`, `restart_syscall(2)`,
//! `rt_sigsuspend(2)`, `rt_sigtimedwait(2)`, `kill(2)`, `tkill(2)`, `tgkill(2)`,
//! `rt_sigqueueinfo(2)` and `rt_tgsigqueueinfo(2)`.

use std::time::{Duration, Instant};

use super::Ctx;
use crate::host;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::signal::{self as sig, NSIG};
use crate::kernel::abi::structs::{KernelSigaction, SigaltStack, Timespec};
use crate::kernel::process::lock;
use crate::kernel::signal::{self, SigInfo, restart};
use crate::kernel::task::{ExitStatus, Outcome};

/// The size of the kernel's `sigset_t` on arm64.
const SIGSET_SIZE: u64 = 8;

fn signal_number(value: u64) -> SysResult<u32> {
    let signo = value as u32 as i32;
    if !(1..=NSIG as i32).contains(&signo) {
        return Err(Errno::EINVAL);
    }
    Ok(signo as u32)
}

/// `rt_sigaction(2)`.
pub fn sys_rt_sigaction(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    // Signals the host already raised are the guest's before its signal state changes.
    host::threads::drain();
    if a[3] != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let signo = signal_number(a[0])?;
    let new = if a[1] != 0 {
        if signo == sig::SIGKILL || signo == sig::SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let mut act: KernelSigaction = ctx.mem().read_val(a[1])?;
        act.flags &= sig::SA_KNOWN;
        act.mask &= !sig::UNBLOCKABLE;
        Some(act)
    } else {
        None
    };
    let old = {
        let mut actions = lock(&ctx.process().sigactions);
        let old = actions[signo as usize - 1];
        if let Some(act) = new {
            actions[signo as usize - 1] = act;
        }
        old
    };
    // A signal that becomes ignored is discarded if pending (POSIX).
    if new.is_some() && ctx.process().ignores(signo) {
        lock(&ctx.process().pending).discard(signo);
        let threads: Vec<_> = lock(&ctx.process().threads).values().cloned().collect();
        for thread in threads {
            lock(&thread.pending).discard(signo);
        }
    }
    if let Some(act) = new
        && signo == sig::SIGCHLD
    {
        host::signals::set_child_action(host::signals::ChildAction {
            ignore: act.handler == sig::SIG_IGN,
            no_wait: act.flags & sig::SA_NOCLDWAIT != 0,
            no_stop: act.flags & sig::SA_NOCLDSTOP != 0,
        });
    }
    if a[2] != 0 {
        ctx.mem().write_val(a[2], &old)?;
    }
    Ok(0)
}

/// `rt_sigprocmask(2)`.
pub fn sys_rt_sigprocmask(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    // Signals the host already raised are the guest's before its signal state changes.
    host::threads::drain();
    if a[3] != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let old = ctx.task.sigmask();
    if a[1] != 0 {
        let set: u64 = ctx.mem().read_val(a[1])?;
        let new = match a[0] as u32 as u64 {
            sig::SIG_BLOCK => old | set,
            sig::SIG_UNBLOCK => old & !set,
            sig::SIG_SETMASK => set,
            _ => return Err(Errno::EINVAL),
        };
        ctx.task.set_sigmask(new);
    }
    if a[2] != 0 {
        ctx.mem().write_val(a[2], &old)?;
    }
    Ok(0)
}

/// `rt_sigpending(2)`: pending signals that are blocked.
pub fn sys_rt_sigpending(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    host::threads::drain();
    if a[1] > SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let pending = ctx.task.shared.pending_set() & ctx.task.sigmask();
    let bytes = pending.to_le_bytes();
    ctx.mem().write(a[0], &bytes[..a[1] as usize])?;
    Ok(0)
}

/// `sigaltstack(2)`.
pub fn sys_sigaltstack(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let sp = ctx.cpu.sp();
    let old = signal::get_altstack(ctx.task, sp);
    if a[0] != 0 {
        let new: SigaltStack = ctx.mem().read_val(a[0])?;
        signal::set_altstack(ctx.task, sp, &new)?;
    }
    if a[1] != 0 {
        ctx.mem().write_val(a[1], &old)?;
    }
    Ok(0)
}

/// `rt_sigreturn(2)`: a corrupt frame kills the process with `SIGSEGV`, as on Linux.
pub fn sys_rt_sigreturn(ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    match signal::sigreturn(ctx.task, ctx.cpu) {
        Ok(x0) => Ok(x0),
        Err(_) => {
            ctx.task.outcome = Some(Outcome::ProcessExit(ExitStatus::Signaled(sig::SIGSEGV)));
            Ok(0)
        }
    }
}

/// `restart_syscall(2)`: resumes the call a signal interrupted with no handler run, from what
/// it left in the task; with nothing to resume (called directly, or after a handler ran),
/// `EINTR`, as Linux's `do_no_restart_syscall` answers.
pub fn sys_restart_syscall(ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    match ctx.task.restart_block.take() {
        Some(resume) => resume(ctx.task),
        None => Err(Errno::EINTR),
    }
}

/// `rt_sigsuspend(2)`: waits with a temporary mask until a signal is delivered; always
/// returns `EINTR`, and the handler returns to the original mask.
pub fn sys_rt_sigsuspend(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[1] != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = ctx.mem().read_val(a[0])?;
    let old = ctx.task.sigmask();
    ctx.task.set_sigmask(mask);
    let shared = ctx.task.shared.clone();
    let _ = shared.wait(None, || false);
    ctx.task.saved_mask = Some(old);
    Err(restart::ERESTARTNOHAND)
}

/// `rt_sigtimedwait(2)`: takes a signal of `set` from the pending queues, waiting for one if
/// needed; `EAGAIN` when the timeout passes.
pub fn sys_rt_sigtimedwait(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    host::threads::drain();
    if a[3] != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let set: u64 = ctx.mem().read_val::<u64>(a[0])? & !sig::UNBLOCKABLE;
    let deadline = if a[2] != 0 {
        let ts: Timespec = ctx.mem().read_val(a[2])?;
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Some(Instant::now() + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    } else {
        None
    };
    // While waiting, the signals of `set` are unblocked so a sender wakes this thread, but
    // they are taken here, not delivered to a handler.
    let old = ctx.task.sigmask();
    let take_queued = |ctx: &Ctx<'_>| -> Option<SigInfo> {
        let mut own = lock(&ctx.task.shared.pending);
        if let Some(signo) = own.next(set) {
            return own.take(signo);
        }
        drop(own);
        let mut shared = lock(&ctx.process().pending);
        let signo = shared.next(set)?;
        shared.take(signo)
    };
    // A timer's stale signal is dropped when taken.
    let take = |ctx: &Ctx<'_>| -> Option<SigInfo> {
        loop {
            let mut info = take_queued(ctx)?;
            if ctx.process().timers.on_dequeue(&mut info) {
                return Some(info);
            }
        }
    };
    let info = match take(ctx) {
        Some(info) => info,
        None => {
            let shared = ctx.task.shared.clone();
            shared.set_real_blocked(old);
            ctx.task.set_sigmask(old & !set);
            let result = shared.wait(deadline, || shared.pending_set() & set != 0);
            ctx.task.set_sigmask(old);
            shared.set_real_blocked(0);
            match result {
                Ok(()) => take(ctx).ok_or(restart::ERESTARTSYS)?,
                Err(Errno::ETIMEDOUT) => return Err(Errno::EAGAIN),
                Err(e) => return Err(e),
            }
        }
    };
    if a[1] != 0 {
        ctx.mem().write(a[1], &info.to_bytes())?;
    }
    Ok(u64::from(info.signo))
}

/// Whether the caller may signal processes of user `target_uid` (ids as Linux compares them).
pub(super) fn may_signal(ctx: &Ctx<'_>) -> (i32, u32) {
    let creds = lock(&ctx.process().creds);
    (ctx.process().pid, creds.uid)
}

/// `kill(2)`.
pub fn sys_kill(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let pid = a[0] as u32 as i32;
    let signo = a[1] as u32;
    if signo > NSIG {
        return Err(Errno::EINVAL);
    }
    let (own_pid, uid) = may_signal(ctx);
    if pid == own_pid {
        if signo != 0 {
            ctx.process()
                .send_signal(SigInfo::user(signo, sig::code::SI_USER, own_pid, uid));
        }
        return Ok(0);
    }
    // Other processes (and groups) are host processes: the host delivers, and elfuse in each
    // receiving process hands the signal to its guest.
    let host_sig = if signo == 0 {
        0
    } else {
        host::signals::to_host(signo).ok_or(Errno::EINVAL)?
    };
    host::signals::kill(pid, host_sig)?;
    Ok(0)
}

/// `tkill(2)`.
pub fn sys_tkill(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    thread_signal(ctx, None, a[0] as u32 as i32, a[1] as u32, None)
}

/// `tgkill(2)`.
pub fn sys_tgkill(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    thread_signal(
        ctx,
        Some(a[0] as u32 as i32),
        a[1] as u32 as i32,
        a[2] as u32,
        None,
    )
}

fn thread_signal(
    ctx: &mut Ctx<'_>,
    tgid: Option<i32>,
    tid: i32,
    signo: u32,
    info: Option<SigInfo>,
) -> SysResult {
    if tid <= 0 || tgid.is_some_and(|t| t <= 0) || signo > NSIG {
        return Err(Errno::EINVAL);
    }
    let (own_pid, uid) = may_signal(ctx);
    if tgid.is_some_and(|t| t != own_pid) || ctx.process().thread(tid).is_none() {
        return Err(Errno::ESRCH);
    }
    if signo != 0 {
        let info = info.unwrap_or_else(|| SigInfo::user(signo, sig::code::SI_TKILL, own_pid, uid));
        ctx.process().send_thread_signal(tid, info);
    }
    Ok(0)
}

/// Reads the `siginfo` of `rt_sigqueueinfo`: a caller may not pretend to be the kernel or
/// `kill` (`si_code >= 0` or `SI_TKILL`) towards anyone but its own thread; `target` is the
/// pid or tid named by the call, compared with the caller's tid as Linux does.
pub(super) fn queued_info(ctx: &Ctx<'_>, signo: u32, addr: u64, target: i32) -> SysResult<SigInfo> {
    let raw: [u8; 128] = ctx.mem().read_val(addr)?;
    let code = i32::from_le_bytes(raw[8..12].try_into().expect("4 bytes"));
    if (code >= 0 || code == sig::code::SI_TKILL) && target != ctx.task.tid {
        return Err(Errno::EPERM);
    }
    let mut fields = [0u64; 4];
    for (i, f) in fields.iter_mut().enumerate() {
        *f = u64::from_le_bytes(raw[16 + 8 * i..24 + 8 * i].try_into().expect("8 bytes"));
    }
    let errno = i32::from_le_bytes(raw[4..8].try_into().expect("4 bytes"));
    Ok(SigInfo {
        signo,
        code,
        errno,
        fields,
    })
}

/// `rt_sigqueueinfo(2)`: only within this process (others need the host's own queueing).
pub fn sys_rt_sigqueueinfo(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let pid = a[0] as u32 as i32;
    let signo = a[1] as u32;
    if signo > NSIG {
        return Err(Errno::EINVAL);
    }
    let info = queued_info(ctx, signo, a[2], pid)?;
    if pid != ctx.process().pid {
        let host_sig = if signo == 0 {
            0
        } else {
            host::signals::to_host(signo).ok_or(Errno::EINVAL)?
        };
        host::signals::kill(pid, host_sig)?;
        return Ok(0);
    }
    if signo != 0 {
        ctx.process().send_signal(info);
    }
    Ok(0)
}

/// `rt_tgsigqueueinfo(2)`.
pub fn sys_rt_tgsigqueueinfo(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let signo = a[2] as u32;
    if signo > NSIG {
        return Err(Errno::EINVAL);
    }
    let info = queued_info(ctx, signo, a[3], a[1] as u32 as i32)?;
    thread_signal(
        ctx,
        Some(a[0] as u32 as i32),
        a[1] as u32 as i32,
        signo,
        Some(info),
    )
}
