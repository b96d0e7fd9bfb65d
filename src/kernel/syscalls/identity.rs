//! Process identity: ids of the process, its thread, its user and groups, and its session.
//!
//! A guest process is one host process, so its process, group and session ids are the host's,
//! and the user and group ids are the elfuse process's own: `setuid` and friends change the
//! host credentials (the kernel enforces the same rules), so a guest that drops privileges
//! really drops them.

use nix::unistd::{Gid, Pid, Uid};

use super::Ctx;
use crate::host;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::process::lock;

/// `getpid(2)`.
pub fn sys_getpid(ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    Ok(ctx.process().pid as u64)
}

/// `getppid(2)`.
pub fn sys_getppid(_ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    Ok(nix::unistd::getppid().as_raw() as u64)
}

/// `gettid(2)`.
pub fn sys_gettid(ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    Ok(ctx.task.tid as u64)
}

/// `getuid(2)`.
pub fn sys_getuid(ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    Ok(u64::from(lock(&ctx.process().creds).uid))
}

/// `geteuid(2)`.
pub fn sys_geteuid(ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    Ok(u64::from(lock(&ctx.process().creds).euid))
}

/// `getgid(2)`.
pub fn sys_getgid(ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    Ok(u64::from(lock(&ctx.process().creds).gid))
}

/// `getegid(2)`.
pub fn sys_getegid(ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    Ok(u64::from(lock(&ctx.process().creds).egid))
}

/// `getresuid(2)`.
pub fn sys_getresuid(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let c = lock(&ctx.process().creds).clone();
    ctx.mem().write_val(a[0], &c.uid)?;
    ctx.mem().write_val(a[1], &c.euid)?;
    ctx.mem().write_val(a[2], &c.suid)?;
    Ok(0)
}

/// `getresgid(2)`.
pub fn sys_getresgid(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let c = lock(&ctx.process().creds).clone();
    ctx.mem().write_val(a[0], &c.gid)?;
    ctx.mem().write_val(a[1], &c.egid)?;
    ctx.mem().write_val(a[2], &c.sgid)?;
    Ok(0)
}

/// `getgroups(2)`.
pub fn sys_getgroups(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let size = a[0] as u32 as i32;
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    let groups = lock(&ctx.process().creds).groups.clone();
    if size == 0 {
        return Ok(groups.len() as u64);
    }
    if (size as usize) < groups.len() {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    ctx.mem().write(a[1], &bytes)?;
    Ok(groups.len() as u64)
}

/// `setgroups(2)`.
pub fn sys_setgroups(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let size = a[0] as u32 as i32;
    if !(0..=65536).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let groups: Vec<u32> = ctx.mem().read_array(a[1], size as usize)?;
    let host_groups: Vec<Gid> = groups.iter().map(|&g| Gid::from_raw(g)).collect();
    host::set_groups(&host_groups)?;
    refresh(ctx);
    Ok(0)
}

/// Re-reads the credentials from the host after a change.
fn refresh(ctx: &Ctx<'_>) {
    *lock(&ctx.process().creds) = crate::kernel::process::Credentials::from_host();
}

/// An id argument: `-1` (as a 32-bit value) means "unchanged".
fn id(value: u64) -> Option<u32> {
    let v = value as u32;
    (v != u32::MAX).then_some(v)
}

/// `setuid(2)`.
pub fn sys_setuid(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let uid = id(a[0]).ok_or(Errno::EINVAL)?;
    nix::unistd::setuid(Uid::from_raw(uid))?;
    refresh(ctx);
    Ok(0)
}

/// `setgid(2)`.
pub fn sys_setgid(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let gid = id(a[0]).ok_or(Errno::EINVAL)?;
    nix::unistd::setgid(Gid::from_raw(gid))?;
    refresh(ctx);
    Ok(0)
}

/// `setreuid(2)`.
pub fn sys_setreuid(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    host::set_reuid(id(a[0]), id(a[1]))?;
    refresh(ctx);
    Ok(0)
}

/// `setregid(2)`.
pub fn sys_setregid(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    host::set_regid(id(a[0]), id(a[1]))?;
    refresh(ctx);
    Ok(0)
}

/// `setresuid(2)`.
pub fn sys_setresuid(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    host::set_resuid(id(a[0]), id(a[1]), id(a[2]))?;
    refresh(ctx);
    Ok(0)
}

/// `setresgid(2)`.
pub fn sys_setresgid(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    host::set_resgid(id(a[0]), id(a[1]), id(a[2]))?;
    refresh(ctx);
    Ok(0)
}

/// `setfsuid(2)`: the file-system uid follows the effective uid here; the call returns the
/// previous value and, like Linux, only changes it when permitted.
pub fn sys_setfsuid(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let c = lock(&ctx.process().creds).clone();
    let _ = a;
    Ok(u64::from(c.euid))
}

/// `setfsgid(2)`: see [`sys_setfsuid`].
pub fn sys_setfsgid(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let c = lock(&ctx.process().creds).clone();
    let _ = a;
    Ok(u64::from(c.egid))
}

fn pid(value: u64) -> Option<Pid> {
    let v = value as u32 as i32;
    (v != 0).then(|| Pid::from_raw(v))
}

/// `getpgid(2)`.
pub fn sys_getpgid(_ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    Ok(nix::unistd::getpgid(pid(a[0]))?.as_raw() as u64)
}

/// `setpgid(2)`.
pub fn sys_setpgid(_ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let target = pid(a[0]).unwrap_or_else(nix::unistd::getpid);
    let group = pid(a[1]).unwrap_or(target);
    if (a[1] as u32 as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    match nix::unistd::setpgid(target, group) {
        // The host sees a handed-over child as having run exec (it was started afresh), which
        // its guest has not: that child moves itself.
        Err(nix::errno::Errno::EACCES) => {
            match crate::kernel::handover::move_child_to_group(target.as_raw(), group.as_raw()) {
                Some(result) => result.map(|()| 0),
                None => Err(Errno::EACCES),
            }
        }
        other => {
            other?;
            Ok(0)
        }
    }
}

/// `getsid(2)`.
pub fn sys_getsid(_ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    Ok(nix::unistd::getsid(pid(a[0]))?.as_raw() as u64)
}

/// `setsid(2)`.
pub fn sys_setsid(_ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    Ok(nix::unistd::setsid()?.as_raw() as u64)
}
