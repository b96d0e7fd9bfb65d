//! Signal state and sending: `rt_sigaction(2)`, `rt_sigprocmask(2)`, `rt_sigpending(2)`,
//! `sigaltstack(2)`, `rt_sigreturn(2)`, `rt_sigsuspend(2)`, `kill(2)`, `tkill(2)` and
//! `tgkill(2)`.

use super::Ctx;
use crate::host;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::signal::{self as sig, NSIG};
use crate::kernel::abi::structs::{KernelSigaction, SigaltStack};
use crate::kernel::process::lock;
use crate::kernel::signal::{self, SigInfo};
use crate::kernel::task::{ExitStatus, Outcome};

/// The size of the kernel's `sigset_t` on arm64.
const SIGSET_SIZE: u64 = 8;

/// Asynchronous signals whose ignore/default disposition is mirrored on the host process, so a
/// signal from the terminal or another process has the effect the guest asked for.
const MIRRORED: [u32; 16] = [
    sig::SIGHUP,
    sig::SIGINT,
    sig::SIGQUIT,
    sig::SIGUSR1,
    sig::SIGUSR2,
    sig::SIGALRM,
    sig::SIGTERM,
    sig::SIGTSTP,
    sig::SIGTTIN,
    sig::SIGTTOU,
    sig::SIGXCPU,
    sig::SIGXFSZ,
    sig::SIGVTALRM,
    sig::SIGPROF,
    sig::SIGWINCH,
    sig::SIGIO,
];

fn signal_number(value: u64) -> SysResult<u32> {
    let signo = value as u32 as i32;
    if !(1..=NSIG as i32).contains(&signo) {
        return Err(Errno::EINVAL);
    }
    Ok(signo as u32)
}

/// `rt_sigaction(2)`.
pub fn sys_rt_sigaction(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
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
    if let Some(act) = new {
        if MIRRORED.contains(&signo) {
            host::signals::set_disposition(signo, act.handler == sig::SIG_IGN);
        }
        // Ignoring a signal discards it if pending (POSIX).
        if act.handler == sig::SIG_IGN {
            ctx.task.pending &= !sig::bit(signo);
            ctx.task.pending_info.retain(|i| i.signo != signo);
        }
    }
    if a[2] != 0 {
        ctx.mem().write_val(a[2], &old)?;
    }
    Ok(0)
}

/// `rt_sigprocmask(2)`.
pub fn sys_rt_sigprocmask(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[3] != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let old = ctx.task.sigmask;
    if a[1] != 0 {
        let set: u64 = ctx.mem().read_val(a[1])?;
        let new = match a[0] as u32 as u64 {
            sig::SIG_BLOCK => old | set,
            sig::SIG_UNBLOCK => old & !set,
            sig::SIG_SETMASK => set,
            _ => return Err(Errno::EINVAL),
        };
        set_mask(ctx, new & !sig::UNBLOCKABLE);
    }
    if a[2] != 0 {
        ctx.mem().write_val(a[2], &old)?;
    }
    Ok(0)
}

/// Sets the thread's mask, mirroring it for the host-mirrored signals.
pub(super) fn set_mask(ctx: &mut Ctx<'_>, mask: u64) {
    ctx.task.sigmask = mask;
    let mirrored: Vec<u32> = MIRRORED
        .iter()
        .copied()
        .filter(|&s| mask & sig::bit(s) != 0)
        .collect();
    host::signals::set_thread_mask(&mirrored, &MIRRORED);
}

/// `rt_sigpending(2)`: pending signals that are blocked.
pub fn sys_rt_sigpending(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[1] > SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let pending = (ctx.task.pending | host::signals::host_pending(&MIRRORED)) & ctx.task.sigmask;
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

/// `kill(2)`.
pub fn sys_kill(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let pid = a[0] as u32 as i32;
    let signo = a[1] as u32;
    if signo > NSIG {
        return Err(Errno::EINVAL);
    }
    let own_pid = ctx.process().pid;
    if pid == own_pid {
        if signo != 0 {
            let uid = lock(&ctx.process().creds).uid;
            signal::raise(
                ctx.task,
                SigInfo::user(signo, sig::code::SI_USER, own_pid, uid),
            );
        }
        return Ok(0);
    }
    // Other processes (and groups) are host processes: the host delivers, and elfuse in the
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
    thread_kill(ctx, None, a[0] as u32 as i32, a[1] as u32)
}

/// `tgkill(2)`.
pub fn sys_tgkill(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    thread_kill(
        ctx,
        Some(a[0] as u32 as i32),
        a[1] as u32 as i32,
        a[2] as u32,
    )
}

fn thread_kill(ctx: &mut Ctx<'_>, tgid: Option<i32>, tid: i32, signo: u32) -> SysResult {
    if tid <= 0 || tgid.is_some_and(|t| t <= 0) || signo > NSIG {
        return Err(Errno::EINVAL);
    }
    let own_pid = ctx.process().pid;
    if tgid.is_some_and(|t| t != own_pid) || tid != ctx.task.tid {
        return Err(Errno::ESRCH);
    }
    if signo != 0 {
        let uid = lock(&ctx.process().creds).uid;
        signal::raise(
            ctx.task,
            SigInfo::user(signo, sig::code::SI_TKILL, own_pid, uid),
        );
    }
    Ok(0)
}
