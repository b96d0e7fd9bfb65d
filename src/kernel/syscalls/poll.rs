//! Waiting for several descriptors: `ppoll(2)` and `pselect6(2)` (arm64 has no plain `poll`
//! or `select`; the C library builds them on these).
//!
//! Both take an optional signal mask that replaces the thread's for the duration of the call,
//! atomically with the wait: a signal it lets in interrupts the wait, its handler runs with the
//! temporary mask in force and returns to the caller's (the mask is put back when the call
//! returns otherwise). An interrupted call returns `ERESTARTNOHAND`: `EINTR` once a handler
//! ran, a fresh start otherwise. A timeout, when given and not zero, is rewritten with the
//! time left when the call returns, as Linux does.

use std::time::{Duration, Instant};

use super::Ctx;
use crate::host;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::structs::Timespec;
use crate::kernel::file::OpenFile;
use crate::kernel::poll::{self, WaitSet, ev};
use crate::kernel::process::lock;
use crate::kernel::signal::restart;
use crate::kernel::timer;

/// The size of the kernel's `sigset_t` on arm64.
const SIGSET_SIZE: u64 = 8;
/// `struct pollfd`: `int fd; short events; short revents;`.
const POLLFD_SIZE: u64 = 8;
/// The sets `select` reports in, as poll events (`POLLIN_SET`, `POLLOUT_SET`, `POLLEX_SET`).
const SELECT_IN: u32 = ev::POLLRDNORM | ev::POLLRDBAND | ev::POLLIN | ev::POLLHUP | ev::POLLERR;
const SELECT_OUT: u32 = ev::POLLWRBAND | ev::POLLWRNORM | ev::POLLOUT | ev::POLLERR;
const SELECT_EX: u32 = ev::POLLPRI;

/// A timeout argument: the deadline, or `None` for no limit. Zero means "do not wait".
pub(super) struct Timeout {
    addr: u64,
    deadline: Option<Instant>,
    zero: bool,
}

impl Timeout {
    /// Reads a `timespec` timeout at `addr` (0: none): `EFAULT`, or `EINVAL` for a negative or
    /// malformed one.
    pub(super) fn read(ctx: &Ctx<'_>, addr: u64) -> SysResult<Timeout> {
        if addr == 0 {
            return Ok(Timeout {
                addr,
                deadline: None,
                zero: false,
            });
        }
        let ts: Timespec = ctx.mem().read_val(addr)?;
        let ns = timer::ns_from_timespec(ts.tv_sec, ts.tv_nsec).ok_or(Errno::EINVAL)?;
        Ok(Timeout {
            addr,
            deadline: Some(Instant::now() + Duration::from_nanos(ns.min(i64::MAX as u64 / 2))),
            zero: ns == 0,
        })
    }

    /// A deadline `ms` milliseconds away (negative: none), for `epoll_pwait`.
    pub(super) fn millis(ms: i32) -> Timeout {
        Timeout {
            addr: 0,
            deadline: u64::try_from(ms)
                .ok()
                .map(|ms| Instant::now() + Duration::from_millis(ms)),
            zero: ms == 0,
        }
    }

    /// Whether the call must not wait at all.
    pub(super) fn is_zero(&self) -> bool {
        self.zero
    }

    /// The deadline of the wait (now, for a zero timeout).
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Writes the time left back (Linux's `poll_select_finish`); an unwritable timeout turns an
    /// interrupted call's restart into plain `EINTR`.
    fn finish(&self, ctx: &Ctx<'_>, result: SysResult) -> SysResult {
        let Some(deadline) = self.deadline.filter(|_| self.addr != 0 && !self.zero) else {
            return result;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        match ctx.mem().write_val(self.addr, &ts) {
            Ok(()) => result,
            Err(_) if result == Err(restart::ERESTARTNOHAND) => Err(Errno::EINTR),
            Err(_) => result,
        }
    }
}

/// Installs the temporary signal mask at `addr` (0: none) of `size` bytes: `EINVAL` for a
/// size other than the kernel's, `EFAULT`. Returns the mask to restore.
pub(super) fn set_temporary_mask(
    ctx: &mut Ctx<'_>,
    addr: u64,
    size: u64,
) -> SysResult<Option<u64>> {
    if addr == 0 {
        return Ok(None);
    }
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = ctx.mem().read_val(addr)?;
    // Signals the host already raised are the guest's before its mask changes.
    host::threads::drain();
    let old = ctx.task.sigmask();
    ctx.task.set_sigmask(mask);
    Ok(Some(old))
}

/// Puts the caller's mask back, or, when a signal interrupted the call (`interrupted`), leaves
/// the temporary one in force until the signal's handler has been entered.
pub(super) fn restore_mask(ctx: &mut Ctx<'_>, old: Option<u64>, interrupted: bool) {
    if let Some(old) = old {
        if interrupted {
            ctx.task.saved_mask = Some(old);
        } else {
            ctx.task.set_sigmask(old);
        }
    }
}

/// `ppoll(2)`.
pub fn sys_ppoll(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let timeout = Timeout::read(ctx, a[2])?;
    let old_mask = set_temporary_mask(ctx, a[3], a[4])?;
    let result = do_poll(ctx, a[0], a[1] as u32 as u64, &timeout);
    restore_mask(ctx, old_mask, result == Err(restart::ERESTARTNOHAND));
    timeout.finish(ctx, result)
}

fn do_poll(ctx: &mut Ctx<'_>, addr: u64, nfds: u64, timeout: &Timeout) -> SysResult {
    if nfds > ctx.process().fd_limit() as u64 {
        return Err(Errno::EINVAL);
    }
    let len = nfds * POLLFD_SIZE;
    let mut raw = vec![0u8; len as usize];
    ctx.mem().read(addr, &mut raw)?;
    let entries: Vec<(i32, u32)> = raw
        .chunks_exact(POLLFD_SIZE as usize)
        .map(|c| {
            let fd = i32::from_le_bytes(c[0..4].try_into().expect("4 bytes"));
            let events = u16::from_le_bytes(c[4..6].try_into().expect("2 bytes"));
            (fd, u32::from(events))
        })
        .collect();
    let files: Vec<Option<std::sync::Arc<OpenFile>>> = {
        let table = lock(&ctx.process().fds);
        entries
            .iter()
            .map(|&(fd, _)| if fd < 0 { None } else { table.get(fd).ok() })
            .collect()
    };

    let scan = |set: &mut WaitSet| -> SysResult<Option<Vec<u32>>> {
        let probes: Vec<(&OpenFile, u32)> = files
            .iter()
            .zip(&entries)
            .filter_map(|(f, &(_, events))| {
                Some((&**f.as_ref()?, events | ev::POLLERR | ev::POLLHUP))
            })
            .collect();
        let ready = poll::check(&probes, set, false);
        let mut ready = ready.into_iter();
        let mut revents = Vec::with_capacity(entries.len());
        for (file, &(fd, events)) in files.iter().zip(&entries) {
            let r = match file {
                Some(file) => {
                    let r = ready.next().map_or(0, |r| r.events);
                    if r == 0
                        && let poll::Pollee::Host(host) = poll::pollee(file)
                    {
                        set.watch_host(host, events | ev::POLLERR | ev::POLLHUP);
                    }
                    r
                }
                None if fd < 0 => 0,
                None => ev::POLLNVAL,
            };
            revents.push(r);
        }
        let found = revents.iter().any(|&r| r != 0);
        Ok((found || timeout.zero).then_some(revents))
    };
    let revents = match poll::wait(timeout.deadline(), scan) {
        Ok(Some(revents)) => revents,
        Ok(None) => vec![0; entries.len()],
        Err(e) if e == restart::ERESTARTSYS => return Err(restart::ERESTARTNOHAND),
        Err(e) => return Err(e),
    };
    for (i, r) in revents.iter().enumerate() {
        ctx.mem().write(
            addr + i as u64 * POLLFD_SIZE + 6,
            &(*r as u16).to_le_bytes(),
        )?;
    }
    Ok(revents.iter().filter(|&&r| r != 0).count() as u64)
}

/// `pselect6(2)`: the sixth argument points to `{ const sigset_t *ss; size_t ss_len; }`.
pub fn sys_pselect6(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (mask_addr, mask_size) = if a[5] != 0 {
        let pack: [u64; 2] = ctx.mem().read_val(a[5])?;
        (pack[0], pack[1])
    } else {
        (0, 0)
    };
    let timeout = Timeout::read(ctx, a[4])?;
    let old_mask = set_temporary_mask(ctx, mask_addr, mask_size)?;
    let result = do_select(ctx, a[0] as u32 as i32, [a[1], a[2], a[3]], &timeout);
    restore_mask(ctx, old_mask, result == Err(restart::ERESTARTNOHAND));
    timeout.finish(ctx, result)
}

/// Linux's `max_fds` for a table whose highest descriptor is below `len`: the table starts
/// with room for 64 and grows in powers of two.
fn table_capacity(len: usize) -> usize {
    len.max(64).next_power_of_two()
}

fn do_select(ctx: &mut Ctx<'_>, n: i32, sets: [u64; 3], timeout: &Timeout) -> SysResult {
    let Ok(n) = usize::try_from(n) else {
        return Err(Errno::EINVAL);
    };
    let table_len = lock(&ctx.process().fds).len();
    let n = n.min(table_capacity(table_len));
    let words = n.div_ceil(64);

    // The three sets, as words (absent ones are empty).
    let mut input = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    for (set, &addr) in input.iter_mut().zip(&sets) {
        if addr != 0 && words > 0 {
            ctx.mem().read(addr, bytemuck::cast_slice_mut(set))?;
        }
    }
    let wanted = |set: &[u64], fd: usize| set[fd / 64] & (1 << (fd % 64)) != 0;

    // Every descriptor named must be open.
    let mut files = Vec::new();
    {
        let table = lock(&ctx.process().fds);
        for fd in 0..n {
            let kinds = [SELECT_IN, SELECT_OUT, SELECT_EX];
            let events = (0..3)
                .filter(|&k| wanted(&input[k], fd))
                .fold(0, |acc, k| acc | kinds[k]);
            if events == 0 {
                continue;
            }
            let file = table.get(fd as i32)?;
            if matches!(poll::pollee(&file), poll::Pollee::Invalid) {
                return Err(Errno::EBADF);
            }
            files.push((fd, file, events));
        }
    }

    let scan = |set: &mut WaitSet| -> SysResult<Option<[Vec<u64>; 3]>> {
        let probes: Vec<(&OpenFile, u32)> = files
            .iter()
            .map(|(_, f, events)| (&**f, *events | ev::POLLERR | ev::POLLHUP))
            .collect();
        let ready = poll::check(&probes, set, false);
        let mut out = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
        let mut found = false;
        for ((fd, file, _), r) in files.iter().zip(&ready) {
            let kinds = [SELECT_IN, SELECT_OUT, SELECT_EX];
            for k in 0..3 {
                if wanted(&input[k], *fd) && r.events & kinds[k] != 0 {
                    out[k][fd / 64] |= 1 << (fd % 64);
                    found = true;
                }
            }
            if r.events == 0
                && let poll::Pollee::Host(host) = poll::pollee(file)
            {
                set.watch_host(host, probes_events(*fd, &input));
            }
        }
        Ok((found || timeout.zero).then_some(out))
    };
    let out = match poll::wait(timeout.deadline(), scan) {
        Ok(Some(out)) => out,
        Ok(None) => [vec![0u64; words], vec![0u64; words], vec![0u64; words]],
        Err(e) if e == restart::ERESTARTSYS => return Err(restart::ERESTARTNOHAND),
        Err(e) => return Err(e),
    };
    let mut count = 0;
    for (set, &addr) in out.iter().zip(&sets) {
        count += set.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
        if addr != 0 && words > 0 {
            ctx.mem().write(addr, bytemuck::cast_slice(set))?;
        }
    }
    Ok(count)
}

/// The poll events to block on for descriptor `fd` of a `select`.
fn probes_events(fd: usize, input: &[Vec<u64>; 3]) -> u32 {
    let bit = |k: usize| input[k][fd / 64] & (1 << (fd % 64)) != 0;
    let mut events = ev::POLLERR | ev::POLLHUP;
    if bit(0) {
        events |= SELECT_IN;
    }
    if bit(1) {
        events |= SELECT_OUT;
    }
    if bit(2) {
        events |= SELECT_EX;
    }
    events
}
