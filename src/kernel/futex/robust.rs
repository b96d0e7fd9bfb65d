//! What a thread's end does to the futexes it holds: the walk of its robust list (Linux's
//! `exit_robust_list` and `handle_futex_death`; get_robust_list(2)) and the hand-over of the
//! PI locks others wait for.
//!
//! A robust list is the C library's: a circular list of the robust mutexes a thread holds,
//! linked through `next` pointers whose bit 0 marks a PI mutex, with the lock word at a fixed
//! offset from each entry, and `list_op_pending` naming a lock being taken or released.

use super::{pi, wake_shared_word};
use crate::kernel::abi::futex::{
    FUTEX_OWNER_DIED, FUTEX_TID_MASK, FUTEX_WAITERS, ROBUST_LIST_LIMIT,
};
use crate::kernel::abi::structs::RobustListHead;
use crate::kernel::process::Process;
use crate::kernel::task::TaskShared;
use crate::vm::memory::GuestMemory;

/// Releases the futexes of a thread that is ending: marks the robust locks it still holds
/// with `FUTEX_OWNER_DIED` (waking a waiter of each), then hands its PI locks to their
/// waiters. Its robust list is taken, so a second call does nothing.
pub fn exit_thread(process: &Process, memory: &GuestMemory, thread: &TaskShared) {
    let tid = thread.tid as u32;
    let (head, _) = thread.take_robust_list();
    if head != 0 {
        exit_robust_list(process, memory, tid, head);
    }
    pi::release_owned(process, memory, tid);
}

/// A robust list pointer: the entry's address and whether it is a PI mutex.
fn entry(raw: u64) -> (u64, bool) {
    (raw & !1, raw & 1 != 0)
}

/// Walks the robust list at `head` of thread `tid`, at most `ROBUST_LIST_LIMIT` entries,
/// stopping where the list cannot be read.
fn exit_robust_list(process: &Process, memory: &GuestMemory, tid: u32, head: u64) {
    let Ok(list) = memory.read_val::<RobustListHead>(head) else {
        return;
    };
    let (mut current, mut pi) = entry(list.list);
    let (pending, pending_pi) = entry(list.list_op_pending);
    let lock_word = |at: u64| at.wrapping_add_signed(list.futex_offset);

    let mut limit = ROBUST_LIST_LIMIT;
    while current != head {
        // The next pointer is read before the lock is released, as the owner may unlink it.
        let next = memory.read_val::<u64>(current);
        // A pending lock may be on the list too: it is handled once, below.
        if current != pending
            && handle_death(process, memory, lock_word(current), tid, pi, false).is_err()
        {
            return;
        }
        let Ok(next) = next else {
            return;
        };
        (current, pi) = entry(next);
        limit -= 1;
        if limit == 0 {
            break;
        }
    }
    if pending != 0 {
        let _ = handle_death(process, memory, lock_word(pending), tid, pending_pi, true);
    }
}

/// One lock of a dead thread: if `tid` still owns the word, its id gives way to
/// `FUTEX_OWNER_DIED` (keeping `FUTEX_WAITERS`) and, for a plain robust mutex with waiters,
/// one is woken. A PI mutex's waiters are woken when its lock is handed over. `Err` for a word
/// that is unaligned or cannot be read and written, which ends the walk.
fn handle_death(
    process: &Process,
    memory: &GuestMemory,
    addr: u64,
    tid: u32,
    pi: bool,
    pending: bool,
) -> Result<(), ()> {
    if !addr.is_multiple_of(4) {
        return Err(());
    }
    loop {
        let word = memory.load_u32(addr).map_err(drop)?;

        // The thread died between releasing a plain mutex in user space and waking its
        // waiters (or after being woken to take it): wake one in its place.
        if pending && !pi && word == 0 {
            wake_shared_word(process, memory, addr);
            return Ok(());
        }
        if word & FUTEX_TID_MASK != tid {
            return Ok(());
        }

        let died = (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        let seen = memory
            .update_u32(addr, |current| (current == word).then_some(died))
            .map_err(drop)?;
        if seen != word {
            continue;
        }
        if !pi && word & FUTEX_WAITERS != 0 {
            wake_shared_word(process, memory, addr);
        }
        return Ok(());
    }
}
