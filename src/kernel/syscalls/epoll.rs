//! epoll: `epoll_create1(2)`, `epoll_ctl(2)`, `epoll_pwait(2)` and `epoll_pwait2(2)`. The
//! instances themselves are [`crate::kernel::poll::epoll`].
//!
//! A wait interrupted by a signal returns `EINTR` and is never restarted, as on Linux; the
//! temporary signal mask of the `pwait` calls works as `ppoll`'s does.

use super::Ctx;
use super::poll::{Timeout, restore_mask, set_temporary_mask};
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::open as lo;
use crate::kernel::file::OpenFile;
use crate::kernel::poll::epoll::{self, EPOLLEXCLUSIVE, EXCLUSIVE_OK};
use crate::kernel::poll::{self, Epoll, EventObject};
use crate::kernel::signal::restart;

/// `EPOLL_CLOEXEC`, which is `O_CLOEXEC`.
const EPOLL_CLOEXEC: u64 = lo::O_CLOEXEC;
/// `epoll_ctl` operations.
const EPOLL_CTL_ADD: u64 = 1;
const EPOLL_CTL_DEL: u64 = 2;
const EPOLL_CTL_MOD: u64 = 3;
/// `struct epoll_event` on arm64: `u32 events`, padding, `u64 data` (not packed).
const EVENT_SIZE: u64 = 16;
/// `EP_MAX_EVENTS`: `INT_MAX / sizeof(struct epoll_event)`.
const MAX_EVENTS: u64 = i32::MAX as u64 / EVENT_SIZE;

/// `epoll_create1(2)`.
pub fn sys_epoll_create1(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let flags = a[0] as u32 as u64;
    if flags & !EPOLL_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let file = OpenFile::event(EventObject::Epoll(Epoll::new()), lo::O_RDWR);
    ctx.install(file, flags & EPOLL_CLOEXEC != 0)
}

/// `epoll_ctl(2)`.
pub fn sys_epoll_ctl(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let op = a[1] as u32 as u64;
    let fd = a[2] as u32 as i32;
    let (events, data) = if op != EPOLL_CTL_DEL {
        let raw: [u64; 2] = ctx.mem().read_val(a[3])?;
        (raw[0] as u32, raw[1])
    } else {
        (0, 0)
    };
    let epfd = ctx.file(a[0])?;
    let target = ctx.file(a[2])?;
    if matches!(poll::pollee(&target), poll::Pollee::Invalid) {
        return Err(Errno::EBADF);
    }
    if !poll::epoll_can_watch(&target) {
        return Err(Errno::EPERM);
    }
    let Some(instance) = epoll::epoll_of(&epfd) else {
        return Err(Errno::EINVAL);
    };
    if std::sync::Arc::ptr_eq(&epfd, &target) {
        return Err(Errno::EINVAL);
    }
    if op != EPOLL_CTL_DEL && events & EPOLLEXCLUSIVE != 0 {
        let nested = epoll::epoll_of(&target).is_some();
        if op == EPOLL_CTL_MOD || (op == EPOLL_CTL_ADD && (nested || events & !EXCLUSIVE_OK != 0)) {
            return Err(Errno::EINVAL);
        }
    }
    match op {
        EPOLL_CTL_ADD => instance.add(fd, &target, events, data)?,
        EPOLL_CTL_DEL => instance.remove(fd, &target)?,
        EPOLL_CTL_MOD => instance.modify(fd, &target, events, data)?,
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

/// `epoll_pwait(2)`: a timeout in milliseconds (negative: none).
pub fn sys_epoll_pwait(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let timeout = Timeout::millis(a[3] as u32 as i32);
    pwait(ctx, a, timeout)
}

/// `epoll_pwait2(2)`: a `timespec` timeout (null: none).
pub fn sys_epoll_pwait2(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let timeout = Timeout::read(ctx, a[3])?;
    pwait(ctx, a, timeout)
}

fn pwait(ctx: &mut Ctx<'_>, a: &[u64; 6], timeout: Timeout) -> SysResult {
    let old_mask = set_temporary_mask(ctx, a[4], a[5])?;
    let result = wait(ctx, a[0], a[1], a[2] as u32 as i32, &timeout);
    restore_mask(ctx, old_mask, result == Err(Errno::EINTR));
    result
}

fn wait(ctx: &mut Ctx<'_>, epfd: u64, events: u64, max: i32, timeout: &Timeout) -> SysResult {
    let max = u64::try_from(max)
        .ok()
        .filter(|&m| m > 0 && m <= MAX_EVENTS)
        .ok_or(Errno::EINVAL)?;
    if events
        .checked_add(max * EVENT_SIZE)
        .is_none_or(|end| end > 1 << 48)
    {
        return Err(Errno::EFAULT);
    }
    let file = ctx.file(epfd)?;
    let instance = epoll::epoll_of(&file).ok_or(Errno::EINVAL)?;
    let zero = timeout.is_zero();
    let found = poll::wait(timeout.deadline(), |set| {
        let found = instance.collect(set, max as usize, true);
        Ok((!found.is_empty() || zero).then_some(found))
    });
    let found = match found {
        Ok(found) => found.unwrap_or_default(),
        Err(e) if e == restart::ERESTARTSYS => return Err(Errno::EINTR),
        Err(e) => return Err(e),
    };
    for (i, (ready, data)) in found.iter().enumerate() {
        let mut record = [0u8; EVENT_SIZE as usize];
        record[0..4].copy_from_slice(&ready.to_le_bytes());
        record[8..16].copy_from_slice(&data.to_le_bytes());
        if let Err(e) = ctx.mem().write(events + i as u64 * EVENT_SIZE, &record) {
            // Events already reported are used up; a fault on the first is EFAULT.
            if i == 0 {
                return Err(e);
            }
            return Ok(i as u64);
        }
    }
    Ok(found.len() as u64)
}
