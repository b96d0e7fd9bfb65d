//! Futexes: wait queues keyed by guest address, the priority-inheritance lock protocol, robust
//! lists, and `futex_waitv`.
//!
//! Waiters sleep in the runtime on their thread's wake condition, not on a host futex, so a
//! signal interrupts them through the same path as any other wait. The compare-and-enqueue of
//! `FUTEX_WAIT` and every wake happen under the process's futex table lock, so a wake between
//! the value check and the sleep cannot be lost.
//!
//! # Limitations
//! Futexes are per process: a futex in memory shared with another process (a process-shared
//! mutex in a `MAP_SHARED` mapping) only wakes waiters of the same process. Priority
//! inheritance keeps the lock protocol but not the priority boost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::process::{Process, lock};
use crate::kernel::task::{Task, TaskShared};
use crate::vm::memory::GuestMemory;

/// `FUTEX_WAITERS`, `FUTEX_OWNER_DIED` and the tid mask of a PI or robust futex word.
pub const FUTEX_WAITERS: u32 = 0x8000_0000;
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// One sleeping thread.
pub struct Waiter {
    task: Arc<TaskShared>,
    bitset: u32,
    /// Set by the waker; the index of the futex that woke it for `futex_waitv`.
    woken: AtomicBool,
    which: AtomicUsize,
}

/// Waiters by futex address, each with the index of that futex in its wait list.
type Queues = HashMap<u64, Vec<(Arc<Waiter>, usize)>>;

/// A process's futex wait queues.
#[derive(Default)]
pub struct FutexTable {
    queues: Mutex<Queues>,
}

fn table(process: &Process) -> &FutexTable {
    &process.futexes
}

/// Wakes up to `count` waiters on `addr` whose bitset intersects `bitset`; returns how many.
pub fn wake(process: &Process, _memory: &GuestMemory, addr: u64, count: u32, bitset: u32) -> u32 {
    let mut queues = lock(&table(process).queues);
    wake_locked(&mut queues, addr, count, bitset)
}

fn wake_locked(queues: &mut Queues, addr: u64, count: u32, bitset: u32) -> u32 {
    let Some(queue) = queues.get_mut(&addr) else {
        return 0;
    };
    let mut woken = 0;
    queue.retain(|(waiter, index)| {
        if woken >= count || waiter.bitset & bitset == 0 || waiter.woken.load(Ordering::SeqCst) {
            return true;
        }
        waiter.which.store(*index, Ordering::SeqCst);
        waiter.woken.store(true, Ordering::SeqCst);
        waiter.task.notify();
        woken += 1;
        false
    });
    if queue.is_empty() {
        queues.remove(&addr);
    }
    woken
}

fn dequeue(queues: &mut Queues, waiter: &Arc<Waiter>, addrs: &[u64]) {
    for addr in addrs {
        if let Some(queue) = queues.get_mut(addr) {
            queue.retain(|(w, _)| !Arc::ptr_eq(w, waiter));
            if queue.is_empty() {
                queues.remove(addr);
            }
        }
    }
}

/// `FUTEX_WAIT`/`FUTEX_WAIT_BITSET`: sleeps while the word at `addr` equals `val`.
pub fn wait(
    task: &Task,
    addr: u64,
    val: u32,
    bitset: u32,
    deadline: Option<Instant>,
) -> SysResult<u64> {
    wait_many(task, &[(addr, val)], bitset, deadline).map(|_| 0)
}

/// Sleeps on every `(addr, val)` pair at once; returns the index of the one woken.
pub fn wait_many(
    task: &Task,
    futexes: &[(u64, u32)],
    bitset: u32,
    deadline: Option<Instant>,
) -> SysResult<usize> {
    let process = &task.process;
    let waiter = Arc::new(Waiter {
        task: task.shared.clone(),
        bitset,
        woken: AtomicBool::new(false),
        which: AtomicUsize::new(0),
    });
    let addrs: Vec<u64> = futexes.iter().map(|&(a, _)| a).collect();
    {
        let mut queues = lock(&table(process).queues);
        for &(addr, val) in futexes {
            if task.memory.load_u32(addr)? != val {
                return Err(Errno::EAGAIN);
            }
        }
        for (index, &addr) in addrs.iter().enumerate() {
            queues
                .entry(addr)
                .or_default()
                .push((waiter.clone(), index));
        }
    }
    let result = task
        .shared
        .wait(deadline, || waiter.woken.load(Ordering::SeqCst));
    let mut queues = lock(&table(process).queues);
    if waiter.woken.load(Ordering::SeqCst) {
        dequeue(&mut queues, &waiter, &addrs);
        return Ok(waiter.which.load(Ordering::SeqCst));
    }
    dequeue(&mut queues, &waiter, &addrs);
    result.map(|()| 0)
}

/// `FUTEX_REQUEUE`/`FUTEX_CMP_REQUEUE`: wakes `wake_count` waiters on `addr` and moves up to
/// `requeue_count` of the rest to `addr2`. With `expected`, `EAGAIN` unless `*addr` equals it.
pub fn requeue(
    task: &Task,
    addr: u64,
    wake_count: u32,
    requeue_count: u32,
    addr2: u64,
    expected: Option<u32>,
) -> SysResult<u64> {
    let mut queues = lock(&table(&task.process).queues);
    if let Some(expected) = expected
        && task.memory.load_u32(addr)? != expected
    {
        return Err(Errno::EAGAIN);
    }
    let woken = wake_locked(&mut queues, addr, wake_count, u32::MAX);
    let mut moved = 0;
    if addr != addr2 {
        let mut rest = queues.remove(&addr).unwrap_or_default();
        let take = (requeue_count as usize).min(rest.len());
        let keep = rest.split_off(take);
        moved = rest.len() as u64;
        queues.entry(addr2).or_default().extend(rest);
        if !keep.is_empty() {
            queues.insert(addr, keep);
        }
    }
    Ok(u64::from(woken) + moved)
}

/// `FUTEX_WAKE_OP`: updates `*addr2` with `op`, wakes `count` on `addr`, and `count2` on
/// `addr2` if the old value of `*addr2` passes the comparison in `op`.
pub fn wake_op(
    task: &Task,
    addr: u64,
    count: u32,
    count2: u32,
    addr2: u64,
    op: u32,
) -> SysResult<u64> {
    let mut queues = lock(&table(&task.process).queues);
    let kind = (op >> 28) & 7;
    let shift = op & (8 << 28) != 0;
    let cmp = (op >> 24) & 15;
    let mut oparg = (op >> 12) & 0xfff;
    let cmparg = op & 0xfff;
    if shift {
        if oparg > 31 {
            return Err(Errno::EINVAL);
        }
        oparg = 1 << oparg;
    }
    // Sign-extend the 12-bit arguments as Linux does.
    let sext = |v: u32| ((v << 20) as i32 >> 20) as u32;
    let oparg = if shift { oparg } else { sext(oparg) };
    let cmparg = sext(cmparg);
    if kind > 4 || cmp > 5 {
        return Err(Errno::ENOSYS);
    }
    let old = task.memory.update_u32(addr2, |old| {
        Some(match kind {
            0 => oparg,
            1 => old.wrapping_add(oparg),
            2 => old | oparg,
            3 => old & !oparg,
            _ => old ^ oparg,
        })
    })?;
    let mut woken = u64::from(wake_locked(&mut queues, addr, count, u32::MAX));
    let (a, b) = (old as i32, cmparg as i32);
    let pass = match cmp {
        0 => a == b,
        1 => a != b,
        2 => a < b,
        3 => a <= b,
        4 => a > b,
        _ => a >= b,
    };
    if pass {
        woken += u64::from(wake_locked(&mut queues, addr2, count2, u32::MAX));
    }
    Ok(woken)
}

/// Whether a thread `tid` of this process is alive.
fn alive(process: &Process, tid: u32) -> bool {
    process.thread(tid as i32).is_some()
}

/// `FUTEX_LOCK_PI`: takes the lock word for the caller, sleeping while another thread owns
/// it. A dead owner's lock is taken over with `FUTEX_OWNER_DIED` set.
pub fn lock_pi(
    task: &Task,
    addr: u64,
    deadline: Option<Instant>,
    try_only: bool,
) -> SysResult<u64> {
    let me = task.tid as u32;
    loop {
        let word = task.memory.load_u32(addr)?;
        let owner = word & FUTEX_TID_MASK;
        if owner == me {
            return Err(Errno::EDEADLK);
        }
        if owner == 0 || !alive(&task.process, owner) {
            let died = if owner != 0 {
                FUTEX_OWNER_DIED
            } else {
                word & FUTEX_OWNER_DIED
            };
            let new = me | died | (word & FUTEX_WAITERS);
            let old = task
                .memory
                .update_u32(addr, |cur| (cur == word).then_some(new))?;
            if old == word {
                return Ok(0);
            }
            continue;
        }
        if try_only {
            return Err(Errno::EAGAIN);
        }
        // Mark waiters, then sleep until the owner hands the lock over or leaves.
        let marked = word | FUTEX_WAITERS;
        if task
            .memory
            .update_u32(addr, |cur| (cur == word).then_some(marked))?
            != word
        {
            continue;
        }
        match wait(task, addr, marked, u32::MAX, deadline) {
            Ok(_) | Err(Errno::EAGAIN) => {
                if task.memory.load_u32(addr)? & FUTEX_TID_MASK == me {
                    return Ok(0);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// `FUTEX_UNLOCK_PI`: hands the lock to the first waiter, or frees it.
pub fn unlock_pi(task: &Task, addr: u64) -> SysResult<u64> {
    let me = task.tid as u32;
    let mut queues = lock(&table(&task.process).queues);
    let word = task.memory.load_u32(addr)?;
    if word & FUTEX_TID_MASK != me {
        return Err(Errno::EPERM);
    }
    let next = queues
        .get(&addr)
        .and_then(|q| q.iter().find(|(w, _)| !w.woken.load(Ordering::SeqCst)))
        .map(|(w, _)| w.task.tid);
    let new = match next {
        Some(tid) => {
            let more = queues.get(&addr).map_or(0, |q| q.len()) > 1;
            tid as u32 | if more { FUTEX_WAITERS } else { 0 }
        }
        None => 0,
    };
    task.memory.update_u32(addr, |_| Some(new))?;
    if next.is_some() {
        wake_locked(&mut queues, addr, 1, u32::MAX);
    }
    Ok(0)
}

/// Walks a dead thread's robust list: every futex it still owns gets `FUTEX_OWNER_DIED`, and
/// one waiter is woken (`exit_robust_list` in Linux).
pub fn exit_robust_list(task: &Task) {
    let (head, len) = task.robust_list;
    if head == 0 || len != 24 {
        return;
    }
    let Ok(list) = task.memory.read_val::<[u64; 3]>(head) else {
        return;
    };
    let (mut entry, offset, pending) = (list[0], list[1] as i64, list[2]);
    let mut seen = 0;
    while entry != head && entry != 0 && seen < 2048 {
        handle_dead_owner(task, entry.wrapping_add_signed(offset));
        entry = match task.memory.read_val::<u64>(entry) {
            Ok(next) => next,
            Err(_) => return,
        };
        seen += 1;
    }
    if pending != 0 {
        handle_dead_owner(task, pending.wrapping_add_signed(offset));
    }
}

fn handle_dead_owner(task: &Task, addr: u64) {
    let me = task.tid as u32;
    let Ok(old) = task.memory.update_u32(addr, |word| {
        (word & FUTEX_TID_MASK == me).then_some((word & FUTEX_WAITERS) | FUTEX_OWNER_DIED)
    }) else {
        return;
    };
    if old & FUTEX_TID_MASK == me && old & FUTEX_WAITERS != 0 {
        wake(&task.process, &task.memory, addr, 1, u32::MAX);
    }
}
