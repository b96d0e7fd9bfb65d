//! What a thread's end does to the futexes it holds: the walk of its robust list (Linux's
//! `exit_robust_list` and `handle_futex_death`; get_robust_list(2)) and the hand-over of the
//! PI locks others wait for.
//!
//! A robust list is the C library's: a circular list of the robust mutexes a thread holds,
//! linked through `next` pointers whose bit 0 marks a PI mutex, with the lock word at a fixed
//! offset from each entry, and `list_op_pending` naming a lock being taken or released.

use super::{pi, wake_shared_word_in};
use crate::kernel::abi::errno::{Errno, SysResult};
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
///
/// All of it happens under the futex table lock, and the thread is marked as having
/// released its futexes before the lock is dropped: a `FUTEX_LOCK_PI` either finds the owner
/// alive and queues before the hand-over, or finds its locks released (Linux makes such a
/// locker wait for the exit to finish, with the same outcome).
pub fn exit_thread(process: &Process, memory: &GuestMemory, thread: &TaskShared) {
    release(process, memory, thread, true);
}

/// What `execve` does to the futexes of the thread that goes on in the new image (Linux's
/// `futex_exec_release`): they are released as at a thread's end, and its robust list is
/// gone, but the thread still counts as alive for PI lockers.
pub fn exec_thread(process: &Process, memory: &GuestMemory, thread: &TaskShared) {
    release(process, memory, thread, false);
}

/// [`exit_thread`] and [`exec_thread`]; `ending` marks the thread as gone for PI lockers.
fn release(process: &Process, memory: &GuestMemory, thread: &TaskShared, ending: bool) {
    let tid = thread.tid as u32;
    let mut queues = process.futexes.lock();
    let (head, _) = thread.take_robust_list();
    if head != 0 {
        walk(memory, head, tid, |addr| {
            wake_shared_word_in(&mut queues, memory, addr);
        });
    }
    pi::release_owned(&mut queues, memory, tid);
    if ending {
        thread.mark_futexes_released();
    }
}

/// A robust list pointer: the entry's address and whether it is a PI mutex.
fn entry(raw: u64) -> (u64, bool) {
    (raw & !1, raw & 1 != 0)
}

/// Walks the robust list at `head` of thread `tid`, at most `ROBUST_LIST_LIMIT` entries,
/// stopping where the list cannot be read; `wake` is called with each lock word one of whose
/// waiters must be woken.
fn walk(memory: &GuestMemory, head: u64, tid: u32, mut wake: impl FnMut(u64)) {
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
        if current != pending {
            let died = handle_death(memory, lock_word(current), tid, pi, false, &mut wake);
            if died.is_err() {
                return;
            }
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
        let _ = handle_death(memory, lock_word(pending), tid, pending_pi, true, &mut wake);
    }
}

/// One lock of a dead thread: if `tid` still owns the word, its id gives way to
/// `FUTEX_OWNER_DIED` (keeping `FUTEX_WAITERS`) and, for a plain robust mutex with waiters,
/// one is woken. A PI mutex's waiters are woken when its lock is handed over. An error for a
/// word that is unaligned or cannot be read and written, which ends the walk.
fn handle_death(
    memory: &GuestMemory,
    addr: u64,
    tid: u32,
    pi: bool,
    pending: bool,
    wake: &mut impl FnMut(u64),
) -> SysResult<()> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    loop {
        let word = memory.load_u32(addr)?;
        let owner = word & FUTEX_TID_MASK;

        // The thread died between releasing a plain mutex in user space and waking its
        // waiters (or after being woken to take it): wake one in its place, leaving the word
        // alone.
        if pending && !pi && owner == 0 {
            wake(addr);
            return Ok(());
        }
        if owner != tid {
            return Ok(());
        }

        let died = (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        let seen = memory.update_u32(addr, |current| (current == word).then_some(died))?;
        if seen != word {
            continue;
        }
        if !pi && word & FUTEX_WAITERS != 0 {
            wake(addr);
        }
        return Ok(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::vma::{Prot, Vma};

    const TID: u32 = 1234;
    const HEAD: u64 = 0x10000;
    /// The lock word's offset from its list entry.
    const OFFSET: u64 = 8;

    fn memory() -> GuestMemory {
        let memory = GuestMemory::new(1 << 24).expect("reserve guest memory");
        memory.map(Vma::anonymous(0x10000..0x12000, Prot::READ | Prot::WRITE));
        memory
    }

    /// Writes a list head whose entries are `entries` (address and PI mark) in order.
    fn build(memory: &GuestMemory, entries: &[(u64, bool)], pending: u64) {
        let raw = |(at, pi): (u64, bool)| at | u64::from(pi);
        let first = entries.first().map_or(HEAD, |&e| raw(e));
        let head = RobustListHead {
            list: first,
            futex_offset: OFFSET as i64,
            list_op_pending: pending,
        };
        memory.write_val(HEAD, &head).unwrap();
        for (i, &(at, _)) in entries.iter().enumerate() {
            let next = entries.get(i + 1).map_or(HEAD, |&e| raw(e));
            memory.write_val(at, &next).unwrap();
        }
    }

    fn word(memory: &GuestMemory, entry: u64) -> u32 {
        memory.load_u32(entry + OFFSET).unwrap()
    }

    fn set_word(memory: &GuestMemory, entry: u64, value: u32) {
        memory.write_val(entry + OFFSET, &value).unwrap();
    }

    fn walk_and_wake(memory: &GuestMemory) -> Vec<u64> {
        let mut woken = Vec::new();
        walk(memory, HEAD, TID, |addr| woken.push(addr));
        woken
    }

    #[test]
    fn held_locks_get_owner_died_and_plain_ones_with_waiters_a_wake() {
        let memory = memory();
        let (a, b, c) = (0x10100, 0x10200, 0x10300);
        build(&memory, &[(a, false), (b, true), (c, false)], 0);
        set_word(&memory, a, TID | FUTEX_WAITERS);
        set_word(&memory, b, TID | FUTEX_WAITERS);
        set_word(&memory, c, TID);

        assert_eq!(walk_and_wake(&memory), vec![a + OFFSET]);
        assert_eq!(word(&memory, a), FUTEX_OWNER_DIED | FUTEX_WAITERS);
        assert_eq!(word(&memory, b), FUTEX_OWNER_DIED | FUTEX_WAITERS);
        assert_eq!(word(&memory, c), FUTEX_OWNER_DIED);
    }

    #[test]
    fn locks_of_other_owners_are_left_alone() {
        let memory = memory();
        build(&memory, &[(0x10100, false)], 0);
        set_word(&memory, 0x10100, 99 | FUTEX_WAITERS);
        assert!(walk_and_wake(&memory).is_empty());
        assert_eq!(word(&memory, 0x10100), 99 | FUTEX_WAITERS);
    }

    #[test]
    fn a_pending_plain_lock_without_owner_wakes_a_waiter_and_keeps_its_word() {
        let memory = memory();
        build(&memory, &[], 0x10100);
        set_word(&memory, 0x10100, FUTEX_OWNER_DIED);
        assert_eq!(walk_and_wake(&memory), vec![0x10100 + OFFSET]);
        assert_eq!(word(&memory, 0x10100), FUTEX_OWNER_DIED);

        // A pending PI lock without owner is the hand-over's business.
        build(&memory, &[], 0x10100 | 1);
        assert!(walk_and_wake(&memory).is_empty());
    }

    #[test]
    fn a_pending_lock_on_the_list_is_handled_once() {
        let memory = memory();
        build(&memory, &[(0x10100, false)], 0x10100);
        set_word(&memory, 0x10100, TID | FUTEX_WAITERS);
        assert_eq!(walk_and_wake(&memory), vec![0x10100 + OFFSET]);
        assert_eq!(word(&memory, 0x10100), FUTEX_OWNER_DIED | FUTEX_WAITERS);
    }

    #[test]
    fn an_unreadable_next_pointer_ends_the_walk_before_the_pending_lock() {
        let memory = memory();
        let a = 0x10100;
        build(&memory, &[(a, false)], 0x10200);
        memory.write_val(a, &0x9_0000u64).unwrap();
        set_word(&memory, a, TID);
        set_word(&memory, 0x10200, TID | FUTEX_WAITERS);
        assert!(walk_and_wake(&memory).is_empty());
        assert_eq!(word(&memory, a), FUTEX_OWNER_DIED);
        assert_eq!(word(&memory, 0x10200), TID | FUTEX_WAITERS);
    }

    #[test]
    fn a_list_that_never_returns_to_its_head_is_cut_off() {
        let memory = memory();
        let a = 0x10100;
        build(&memory, &[(a, false)], 0);
        memory.write_val(a, &a).unwrap(); // a loop on itself
        set_word(&memory, a, TID | FUTEX_WAITERS);
        assert_eq!(walk_and_wake(&memory), vec![a + OFFSET]);
    }

    #[test]
    fn an_unreadable_head_walks_nothing() {
        let memory = memory();
        let mut woken = 0;
        walk(&memory, 0x9_0000, TID, |_| woken += 1);
        assert_eq!(woken, 0);
    }
}
