//! Waiting for children: `wait4(2)` and `waitid(2)`.
//!
//! A guest child is a host process (see `fork`), so these are host waits; the status word and
//! the `siginfo` the guest sees are rebuilt in Linux's encoding with Linux signal numbers.
//!
//! A wait that a guest signal interrupts first looks once more, without blocking, for a child
//! that changed state meanwhile: Linux returns such a child and delivers the signal after the
//! call, and a `SIGCHLD` handler must not turn the very exit it reports into `EINTR`.
//!
//! # Limitations
//! On macOS hosts, `waitid` cannot report the child's resource usage: its `rusage` argument
//! is filled with zeros there.

use super::Ctx;
use super::system::rusage;
use crate::host;
use crate::host::process::{ChildEvent, ChildState, WaitFlags, WaitTarget};
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::signal::{SIGCHLD, SIGCONT};
use crate::kernel::signal::restart;
use crate::kernel::task;

const WNOHANG: u32 = 0x1;
const WUNTRACED: u32 = 0x2;
const WEXITED: u32 = 0x4;
const WCONTINUED: u32 = 0x8;
const WNOWAIT: u32 = 0x0100_0000;
const WNOTHREAD: u32 = 0x2000_0000;
const WALL: u32 = 0x4000_0000;
const WCLONE: u32 = 0x8000_0000;

const P_ALL: u32 = 0;
const P_PID: u32 = 1;
const P_PGID: u32 = 2;
const P_PIDFD: u32 = 3;

/// `si_code` values for `SIGCHLD`.
const CLD_EXITED: i32 = 1;
const CLD_KILLED: i32 = 2;
const CLD_DUMPED: i32 = 3;
const CLD_STOPPED: i32 = 5;
const CLD_CONTINUED: i32 = 6;

/// Runs a host wait: blocking and interruptible unless `no_hang`. `wait(true)` must not block.
/// The `SIGCHLD` of whatever the wait saw is pending for the guest by the time it returns, as
/// on Linux, where the signal is sent before the child becomes waitable.
fn wait_child<T>(
    no_hang: bool,
    mut wait: impl FnMut(bool) -> std::io::Result<Option<T>>,
) -> SysResult<Option<T>> {
    let result = if no_hang {
        wait(true).map_err(Errno::from)
    } else {
        match task::interruptible(|| wait(false)) {
            Err(e) if restart::is_restart(e) => match wait(true) {
                Ok(Some(event)) => Ok(Some(event)),
                _ => Err(e),
            },
            result => result,
        }
    };
    host::threads::drain();
    result
}

/// The `wait4` status word.
fn status_word(state: ChildState) -> u32 {
    match state {
        ChildState::Exited(code) => (code as u32 & 0xff) << 8,
        ChildState::Killed { signal, core } => signal | if core { 0x80 } else { 0 },
        ChildState::Stopped(signal) => (signal << 8) | 0x7f,
        ChildState::Continued => 0xffff,
    }
}

/// `wait4(2)`.
pub fn sys_wait4(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let pid = a[0] as u32 as i32;
    let options = a[2] as u32;
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WCLONE | WALL) != 0 {
        return Err(Errno::EINVAL);
    }
    // Linux negates the pid to find the group, which overflows for INT_MIN.
    if pid == i32::MIN {
        return Err(Errno::ESRCH);
    }
    let flags = WaitFlags {
        exited: true,
        stopped: options & WUNTRACED != 0,
        continued: options & WCONTINUED != 0,
        no_hang: options & WNOHANG != 0,
        no_wait: false,
    };

    let Some((event, usage)) = wait_child(flags.no_hang, |no_hang| {
        host::process::wait4(pid, WaitFlags { no_hang, ..flags })
    })?
    else {
        return Ok(0);
    };
    if matches!(
        event.state,
        ChildState::Exited(_) | ChildState::Killed { .. }
    ) {
        crate::kernel::handover::forget_child(event.pid);
    }
    // The child is reaped either way: a bad pointer only changes what the caller hears.
    if a[1] != 0 {
        ctx.mem().write_val(a[1], &status_word(event.state))?;
    }
    if a[3] != 0 {
        ctx.mem().write_val(a[3], &rusage(usage))?;
    }
    Ok(event.pid as u64)
}

/// `waitid(2)`.
pub fn sys_waitid(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (idtype, id) = (a[0] as u32, a[1] as u32 as i32);
    let options = a[3] as u32;
    let known = WNOHANG | WNOWAIT | WEXITED | WUNTRACED | WCONTINUED | WNOTHREAD | WCLONE | WALL;
    if options & !known != 0 || options & (WEXITED | WUNTRACED | WCONTINUED) == 0 {
        return Err(Errno::EINVAL);
    }
    let mut pidfd_nonblock = false;
    let target = match idtype {
        P_ALL => WaitTarget::Any,
        P_PID if id > 0 => WaitTarget::Pid(id),
        P_PGID if id > 0 => WaitTarget::Group(id),
        P_PGID if id == 0 => WaitTarget::Group(nix::unistd::getpgrp().as_raw()),
        P_PIDFD if id >= 0 => {
            let file = ctx.file(id as u64)?;
            let pid = file.pidfd_pid().ok_or(Errno::EBADF)?;
            pidfd_nonblock = file.status_flags() & crate::kernel::abi::open::O_NONBLOCK != 0;
            WaitTarget::Pid(pid)
        }
        _ => return Err(Errno::EINVAL),
    };
    let flags = WaitFlags {
        exited: options & WEXITED != 0,
        stopped: options & WUNTRACED != 0,
        continued: options & WCONTINUED != 0,
        // A non-blocking pidfd makes the wait non-blocking too.
        no_hang: options & WNOHANG != 0 || pidfd_nonblock,
        no_wait: options & WNOWAIT != 0,
    };

    let result = wait_child(flags.no_hang, |no_hang| {
        host::process::waitid(target, WaitFlags { no_hang, ..flags })
    });
    if let Ok(Some((event, _))) = &result
        && !flags.no_wait
        && matches!(
            event.state,
            ChildState::Exited(_) | ChildState::Killed { .. }
        )
    {
        crate::kernel::handover::forget_child(event.pid);
    }
    if let Ok(Some((_, usage))) = &result
        && a[4] != 0
    {
        ctx.mem().write_val(a[4], &rusage(*usage))?;
    }
    // Linux fills these six fields whatever the outcome (zeros when no child is reported).
    let event = result
        .as_ref()
        .ok()
        .and_then(|found| found.map(|(event, _)| event));
    if a[2] != 0 {
        write_child_info(ctx, a[2], event)?;
    }
    match result {
        // Nothing to report through a non-blocking pidfd the caller did not ask WNOHANG of.
        Ok(None) if pidfd_nonblock && options & WNOHANG == 0 => Err(Errno::EAGAIN),
        other => other.map(|_| 0),
    }
}

/// Writes `si_signo`, `si_errno`, `si_code`, `si_pid`, `si_uid` and `si_status` at `addr`.
fn write_child_info(ctx: &Ctx<'_>, addr: u64, event: Option<ChildEvent>) -> SysResult<()> {
    let (signo, code, pid, uid, status) = match event {
        None => (0, 0, 0, 0, 0),
        Some(event) => {
            let (code, status) = match event.state {
                ChildState::Exited(code) => (CLD_EXITED, code),
                ChildState::Killed { signal, core } => {
                    (if core { CLD_DUMPED } else { CLD_KILLED }, signal as i32)
                }
                ChildState::Stopped(signal) => (CLD_STOPPED, signal as i32),
                ChildState::Continued => (CLD_CONTINUED, SIGCONT as i32),
            };
            (SIGCHLD, code, event.pid, event.uid, status)
        }
    };
    let mem = ctx.mem();
    mem.write_val(addr, &signo)?;
    mem.write_val(addr + 4, &0i32)?;
    mem.write_val(addr + 8, &code)?;
    mem.write_val(addr + 16, &pid)?;
    mem.write_val(addr + 20, &uid)?;
    mem.write_val(addr + 24, &status)?;
    Ok(())
}
