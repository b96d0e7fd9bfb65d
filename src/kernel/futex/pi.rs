//! Priority-inheritance futexes: `FUTEX_LOCK_PI`, `FUTEX_LOCK_PI2`, `FUTEX_TRYLOCK_PI` and
//! `FUTEX_UNLOCK_PI` on a lock word holding the owner's thread id, `FUTEX_WAITERS` and
//! `FUTEX_OWNER_DIED` (futex(2), "Priority-inheritance futexes").
//!
//! The kernel owns the word whenever it has waiters: it sets `FUTEX_WAITERS` before a locker
//! sleeps, so the owner's user-space unlock fails and comes here, and an unlock hands the lock
//! straight to the first waiter by writing its id. While a futex has PI waiters its queue
//! records the owner they wait for, as Linux's `pi_state` does.

use std::time::Instant;

use super::{Entry, Key, Place, Queues, Waiter};
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::futex::{
    FUTEX_BITSET_MATCH_ANY, FUTEX_OWNER_DIED, FUTEX_TID_MASK, FUTEX_WAITERS,
};
use crate::kernel::process::Process;
use crate::kernel::signal::restart;
use crate::kernel::task::Task;
use crate::vm::memory::GuestMemory;

/// Takes the lock word for the caller, sleeping (unless `trylock`) while another thread owns
/// it: `EDEADLK` if the caller owns it, `ESRCH` if the owner named in the word does not exist,
/// `EAGAIN` for a `trylock` that would sleep, `ETIMEDOUT` at the deadline. A signal restarts the
/// call after its handler (`ERESTARTNOINTR`), as Linux does.
pub fn lock_pi(
    task: &Task,
    place: Place<'_>,
    deadline: Option<Instant>,
    trylock: bool,
) -> SysResult<u64> {
    let key = place.key();
    let me = task.tid as u32;
    let waiter = Waiter::new(&task.shared, FUTEX_BITSET_MATCH_ANY, true, vec![key]);
    {
        let mut queues = task.process.futexes.lock();
        let owner = loop {
            let word = task.memory.load_u32(key.addr)?;
            let owner = word & FUTEX_TID_MASK;
            if owner == me {
                return Err(Errno::EDEADLK);
            }

            // Others already wait: queue behind them, if the word agrees with their state.
            if let Some(queue) = queues.0.get(&key) {
                let first_is_pi = queue.entries.front().is_some_and(|e| e.waiter.pi);
                if !first_is_pi || (owner != 0 && owner != queue.pi_owner) {
                    return Err(Errno::EINVAL);
                }
                if trylock {
                    return Err(Errno::EAGAIN);
                }
                break queue.pi_owner;
            }

            // Free: take it. FUTEX_OWNER_DIED stays for the new owner to see; FUTEX_WAITERS
            // goes, since nobody waits.
            if owner == 0 {
                if exchange(&task.memory, key.addr, word, (word & FUTEX_OWNER_DIED) | me)? {
                    return Ok(0);
                }
                continue;
            }

            // Owned: announce a waiter first, so the owner's unlock comes to the kernel.
            let marked = word | FUTEX_WAITERS;
            if !exchange(&task.memory, key.addr, word, marked)? {
                continue;
            }
            if !alive(&task.process, owner) {
                if task.memory.load_u32(key.addr)? != marked {
                    continue;
                }
                return Err(Errno::ESRCH);
            }
            if trylock {
                return Err(Errno::EAGAIN);
            }
            break owner;
        };
        queues.enqueue(key, Entry::new(&waiter, 0));
        if let Some(queue) = queues.0.get_mut(&key) {
            queue.pi_owner = owner;
        }
    }

    let slept = task.shared.wait(deadline, || waiter.woken().is_some());
    task.process.futexes.lock().dequeue(&waiter);
    if waiter.woken().is_some() {
        return Ok(0);
    }
    match slept {
        Err(e) if e == restart::ERESTARTSYS => Err(restart::ERESTARTNOINTR),
        other => other.map(|()| 0),
    }
}

/// Releases the lock word the caller owns (`EPERM` if it does not): hands it to the first
/// waiter, or frees it (`EAGAIN` if the word changed under the call).
pub fn unlock_pi(task: &Task, place: Place<'_>) -> SysResult<u64> {
    let key = place.key();
    let me = task.tid as u32;
    let mut queues = task.process.futexes.lock();
    loop {
        let word = task.memory.load_u32(key.addr)?;
        if word & FUTEX_TID_MASK != me {
            return Err(Errno::EPERM);
        }
        let Some(first) = queues.first(key) else {
            // No waiter in the kernel: the word becomes 0, dropping both flag bits.
            return if exchange(&task.memory, key.addr, word, 0)? {
                Ok(0)
            } else {
                Err(Errno::EAGAIN)
            };
        };
        if !first.waiter.pi {
            return Err(Errno::EINVAL);
        }
        let next = first.waiter.task.tid as u32;
        // FUTEX_WAITERS stays while the kernel knows the lock; FUTEX_OWNER_DIED goes, since
        // the lock has a live owner again.
        if exchange(&task.memory, key.addr, word, FUTEX_WAITERS | next)? {
            hand_over(&mut queues, key);
            return Ok(0);
        }
    }
}

/// What a thread's end does to the PI futexes it owns while others wait for them (Linux's
/// `exit_pi_state_list`): the first waiter gets each, and writes its own id with
/// `FUTEX_WAITERS`, keeping the `FUTEX_OWNER_DIED` a robust list walk may have set.
pub(super) fn release_owned(queues: &mut Queues, memory: &GuestMemory, tid: u32) {
    let owned: Vec<Key> = queues
        .0
        .iter()
        .filter(|(_, q)| q.pi_owner == tid && q.entries.front().is_some_and(|e| e.waiter.pi))
        .map(|(&key, _)| key)
        .collect();
    for key in owned {
        let Some(next) = queues.first(key).map(|e| e.waiter.task.tid as u32) else {
            continue;
        };
        let update = memory.update_u32(key.addr, |word| {
            Some((word & FUTEX_OWNER_DIED) | FUTEX_WAITERS | next)
        });
        if update.is_ok() {
            hand_over(queues, key);
        }
    }
}

/// Gives the lock on `key` to its first waiter, which the word already names.
fn hand_over(queues: &mut Queues, key: Key) {
    let Some(queue) = queues.0.get_mut(&key) else {
        return;
    };
    let Some(entry) = queue.entries.pop_front() else {
        return;
    };
    queue.pi_owner = entry.waiter.task.tid as u32;
    entry.wake();
    queues.tidy(key);
}

/// Replaces the word at `addr` with `new` if it still holds `old`; whether it did.
fn exchange(memory: &GuestMemory, addr: u64, old: u32, new: u32) -> SysResult<bool> {
    let seen = memory.update_u32(addr, |current| (current == old).then_some(new))?;
    Ok(seen == old)
}

/// Whether thread `tid` of this process still exists for futex purposes: a thread that has
/// released its futexes on the way out no longer does. Called under the table lock, which
/// a thread's end holds while it releases them, so the answer cannot go stale before the
/// caller has queued.
fn alive(process: &Process, tid: u32) -> bool {
    i32::try_from(tid)
        .ok()
        .and_then(|tid| process.thread(tid))
        .is_some_and(|thread| !thread.futexes_released())
}
