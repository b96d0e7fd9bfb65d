//! Thread and process lifetime and attributes: `exit(2)`, `exit_group(2)`,
//! `set_tid_address(2)`, `set_robust_list(2)`/`get_robust_list(2)`, `rseq(2)` and `prctl(2)`.

use super::Ctx;
use crate::host;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::signal::NSIG;
use crate::kernel::abi::structs::RobustListHead;
use crate::kernel::process::lock;
use crate::kernel::task::{ExitStatus, Outcome};

/// `exit(2)`: ends the calling thread.
pub fn sys_exit(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    ctx.task.outcome = Some(Outcome::ThreadExit(a[0] as u32 as i32));
    Ok(0)
}

/// `exit_group(2)`: ends every thread of the process.
pub fn sys_exit_group(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let status = ExitStatus::Exited((a[0] & 0xff) as u8);
    ctx.task.outcome = Some(Outcome::ProcessExit(status));
    Ok(0)
}

/// `set_tid_address(2)`: returns the caller's thread id.
pub fn sys_set_tid_address(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    ctx.task.clear_child_tid = a[0];
    Ok(ctx.task.tid as u64)
}

/// `set_robust_list(2)`: registers the caller's robust list, walked when it ends.
pub fn sys_set_robust_list(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[1] != std::mem::size_of::<RobustListHead>() as u64 {
        return Err(Errno::EINVAL);
    }
    ctx.task.shared.set_robust_list(a[0], a[1]);
    Ok(0)
}

/// `get_robust_list(2)`: the robust list head of the caller (`pid` 0) or of another thread of
/// its process; `ESRCH` for any other id. The length written is always the structure's size.
pub fn sys_get_robust_list(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let tid = a[0] as u32 as i32;
    let (head, _) = if tid == 0 || tid == ctx.task.tid {
        ctx.task.shared.robust_list()
    } else {
        ctx.process().thread(tid).ok_or(Errno::ESRCH)?.robust_list()
    };
    let len = std::mem::size_of::<RobustListHead>() as u64;
    ctx.mem().write_val(a[2], &len)?;
    ctx.mem().write_val(a[1], &head)?;
    Ok(0)
}

/// `rseq(2)`: not provided. C libraries probe it at start-up and work without it.
pub fn sys_rseq(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    super::sys_deliberate_enosys(ctx, a)
}

/// `prctl` options handled here.
mod pr {
    pub const SET_PDEATHSIG: u64 = 1;
    pub const GET_PDEATHSIG: u64 = 2;
    pub const GET_DUMPABLE: u64 = 3;
    pub const SET_DUMPABLE: u64 = 4;
    pub const GET_KEEPCAPS: u64 = 7;
    pub const SET_KEEPCAPS: u64 = 8;
    pub const SET_NAME: u64 = 15;
    pub const GET_NAME: u64 = 16;
    pub const GET_SECCOMP: u64 = 21;
    pub const SET_SECCOMP: u64 = 22;
    pub const CAPBSET_READ: u64 = 23;
    pub const SET_TIMERSLACK: u64 = 29;
    pub const GET_TIMERSLACK: u64 = 30;
    pub const SET_CHILD_SUBREAPER: u64 = 36;
    pub const GET_CHILD_SUBREAPER: u64 = 37;
    pub const SET_NO_NEW_PRIVS: u64 = 38;
    pub const GET_NO_NEW_PRIVS: u64 = 39;
    pub const GET_TID_ADDRESS: u64 = 40;
    pub const SET_THP_DISABLE: u64 = 41;
    pub const GET_THP_DISABLE: u64 = 42;
    /// The highest capability number Linux 6.x knows (`CAP_CHECKPOINT_RESTORE`).
    pub const CAP_LAST_CAP: u64 = 40;
}

/// `prctl(2)`.
pub fn sys_prctl(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let option = a[0] as u32 as u64;
    let arg = a[1];
    match option {
        pr::SET_NAME => {
            let mut name = [0u8; 16];
            let raw = ctx.mem().read_cstr(arg, 15)?;
            let bytes = match raw {
                Some(s) => s,
                None => {
                    let mut buf = [0u8; 15];
                    ctx.mem().read(arg, &mut buf)?;
                    buf.to_vec()
                }
            };
            name[..bytes.len()].copy_from_slice(&bytes);
            ctx.task.comm = name;
            Ok(0)
        }
        pr::GET_NAME => {
            let name = ctx.task.comm;
            ctx.mem().write(arg, &name)?;
            Ok(0)
        }
        pr::SET_PDEATHSIG => {
            if arg > u64::from(NSIG) {
                return Err(Errno::EINVAL);
            }
            host::process::set_parent_death_signal(arg as u32)?;
            lock(&ctx.process().prctl).pdeathsig = arg as u32;
            Ok(0)
        }
        pr::GET_PDEATHSIG => {
            let sig = lock(&ctx.process().prctl).pdeathsig as i32;
            ctx.mem().write_val(arg, &sig)?;
            Ok(0)
        }
        pr::GET_DUMPABLE => Ok(u64::from(lock(&ctx.process().prctl).dumpable)),
        pr::SET_DUMPABLE => {
            if arg > 1 {
                return Err(Errno::EINVAL);
            }
            lock(&ctx.process().prctl).dumpable = arg as u32;
            Ok(0)
        }
        pr::GET_KEEPCAPS => Ok(u64::from(lock(&ctx.process().prctl).keepcaps)),
        pr::SET_KEEPCAPS => {
            if arg > 1 {
                return Err(Errno::EINVAL);
            }
            lock(&ctx.process().prctl).keepcaps = arg == 1;
            Ok(0)
        }
        pr::GET_SECCOMP => Ok(0),
        // Seccomp filters are not enforced; a kernel without seccomp answers EINVAL.
        pr::SET_SECCOMP => Err(Errno::EINVAL),
        pr::CAPBSET_READ => {
            if arg > pr::CAP_LAST_CAP {
                return Err(Errno::EINVAL);
            }
            Ok(1)
        }
        pr::GET_TIMERSLACK => Ok(lock(&ctx.process().prctl).timerslack_ns),
        pr::SET_TIMERSLACK => {
            lock(&ctx.process().prctl).timerslack_ns = if arg == 0 { 50_000 } else { arg };
            Ok(0)
        }
        pr::SET_CHILD_SUBREAPER => {
            host::process::set_child_subreaper(arg != 0);
            lock(&ctx.process().prctl).child_subreaper = arg != 0;
            Ok(0)
        }
        pr::GET_CHILD_SUBREAPER => {
            let value = i32::from(lock(&ctx.process().prctl).child_subreaper);
            ctx.mem().write_val(arg, &value)?;
            Ok(0)
        }
        pr::SET_NO_NEW_PRIVS => {
            if arg != 1 || a[2] != 0 || a[3] != 0 || a[4] != 0 {
                return Err(Errno::EINVAL);
            }
            lock(&ctx.process().prctl).no_new_privs = true;
            Ok(0)
        }
        pr::GET_NO_NEW_PRIVS => {
            if arg != 0 || a[2] != 0 || a[3] != 0 || a[4] != 0 {
                return Err(Errno::EINVAL);
            }
            Ok(u64::from(lock(&ctx.process().prctl).no_new_privs))
        }
        pr::GET_TID_ADDRESS => {
            let address = ctx.task.clear_child_tid;
            ctx.mem().write_val(arg, &address)?;
            Ok(0)
        }
        pr::SET_THP_DISABLE => {
            if a[2] != 0 || a[3] != 0 || a[4] != 0 {
                return Err(Errno::EINVAL);
            }
            lock(&ctx.process().prctl).thp_disable = arg != 0;
            Ok(0)
        }
        pr::GET_THP_DISABLE => {
            if arg != 0 || a[2] != 0 || a[3] != 0 || a[4] != 0 {
                return Err(Errno::EINVAL);
            }
            Ok(u64::from(lock(&ctx.process().prctl).thp_disable))
        }
        _ => Err(Errno::EINVAL),
    }
}
