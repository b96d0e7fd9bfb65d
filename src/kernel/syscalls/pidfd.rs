//! Process descriptors: `pidfd_open` and `pidfd_send_signal` (and the `CLONE_PIDFD` and
//! `waitid(P_PIDFD)` uses, in their own modules). A pidfd is a guest descriptor over the
//! host's handle for the process (see [`crate::host::process::process_handle`]), which is
//! readable once the process has ended.
//!
//! # Limitations
//! `PIDFD_THREAD` descriptors (for one thread rather than a process) are not supported
//! (`EINVAL`), nor is `pidfd_getfd`.

use super::Ctx;
use super::signal::{may_signal, queued_info};
use crate::host;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::open as lo;
use crate::kernel::abi::signal::{self as sig, NSIG};
use crate::kernel::file::OpenFile;
use crate::kernel::signal::SigInfo;

/// `PIDFD_NONBLOCK`, which is `O_NONBLOCK`.
const PIDFD_NONBLOCK: u64 = lo::O_NONBLOCK;
/// `PIDFD_THREAD`, which is `O_EXCL`.
const PIDFD_THREAD: u64 = lo::O_EXCL;

/// `pidfd_send_signal` flags: the target's thread, thread group or process group.
const PIDFD_SIGNAL_THREAD: u64 = 1;
const PIDFD_SIGNAL_THREAD_GROUP: u64 = 2;
const PIDFD_SIGNAL_PROCESS_GROUP: u64 = 4;

/// `pidfd_open(2)`.
pub fn sys_pidfd_open(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let pid = a[0] as u32 as i32;
    let flags = a[1] & 0xffff_ffff;
    if flags & PIDFD_THREAD != 0 && flags & !(PIDFD_NONBLOCK | PIDFD_THREAD) == 0 {
        tracing::info!("pidfd_open(PIDFD_THREAD) is not supported");
    }
    if flags & !PIDFD_NONBLOCK != 0 || pid <= 0 {
        return Err(Errno::EINVAL);
    }
    // Another thread of this process is no process of its own.
    if pid != ctx.process().pid && ctx.process().thread(pid).is_some() {
        return Err(Errno::EINVAL);
    }
    let nonblock = flags & PIDFD_NONBLOCK != 0;
    let handle = host::process::process_handle(pid, nonblock)?;
    let file = OpenFile::pidfd(handle, lo::O_RDWR | (flags & PIDFD_NONBLOCK), pid);
    ctx.install(file, true)
}

/// `pidfd_send_signal(2)`.
pub fn sys_pidfd_send_signal(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    let pid = file.pidfd_pid().ok_or(Errno::EBADF)?;
    let signo = a[1] as u32;
    let flags = a[3] & 0xffff_ffff;
    let scope = PIDFD_SIGNAL_THREAD | PIDFD_SIGNAL_THREAD_GROUP | PIDFD_SIGNAL_PROCESS_GROUP;
    if flags & !scope != 0 || flags.count_ones() > 1 || signo > NSIG {
        return Err(Errno::EINVAL);
    }
    let info = if a[2] != 0 {
        Some(queued_info(ctx, signo, a[2], pid)?)
    } else {
        None
    };
    let (own_pid, uid) = may_signal(ctx);

    if flags == PIDFD_SIGNAL_PROCESS_GROUP {
        let group = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid)))?;
        return send_host(-group.as_raw(), signo);
    }
    if pid != own_pid {
        return send_host(pid, signo);
    }
    if signo == 0 {
        return Ok(0);
    }
    let info = info.unwrap_or_else(|| SigInfo::user(signo, sig::code::SI_USER, own_pid, uid));
    if flags == PIDFD_SIGNAL_THREAD {
        ctx.process().send_thread_signal(own_pid, info);
    } else {
        ctx.process().send_signal(info);
    }
    Ok(0)
}

/// Signals another process (or group, for a negative `pid`) through the host.
fn send_host(pid: i32, signo: u32) -> SysResult {
    let host_sig = if signo == 0 {
        0
    } else {
        host::signals::to_host(signo).ok_or(Errno::EINVAL)?
    };
    host::signals::kill(pid, host_sig)?;
    Ok(0)
}
