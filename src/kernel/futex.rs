//! Futexes: wait queues matched the way Linux matches them, the priority-inheritance lock
//! protocol ([`pi`]), robust lists and what a thread's end releases ([`robust`]), and the
//! `FUTEX_WAKE_OP` encoding ([`wake_op`]). `kernel::syscalls::futex` decodes the calls.
//!
//! A futex is found by its [`Key`]: the word's address and whether the operation was shared.
//! Linux keys a private operation by address space and address, and a shared one on private
//! memory by the same plus a mark, so the two flavours on one word never meet; each process
//! has its own [`FutexTable`], which stands for its address space. A shared operation on
//! shared memory (`MAP_SHARED`) is keyed by the memory object, so it reaches other processes:
//! where the host has such futexes ([`host::futex::CROSS_PROCESS`]), those waits sleep in the
//! host kernel on the host's view of the word ([`Place::Host`]), and the rare waits that cannot
//! (a `futex_waitv` mixing them with other words) sleep in the table, where wakes look too.
//!
//! Waiters in the table sleep on their thread's wake condition, so a signal interrupts them
//! through the same path as any other wait. The value check and the enqueueing of a wait, and
//! every wake and requeue, happen under the table lock, so a wake between the check and the
//! sleep cannot be lost. Queues are first in, first out: Linux orders waiters by priority
//! first, and elfuse threads all have the same.
//!
//! # Limitations
//! - On macOS hosts every futex is per process: a futex in memory shared with another process
//!   (a process-shared mutex, condition variable or semaphore in a `MAP_SHARED` mapping, used
//!   by a parent and its forked child) only wakes waiters of the same process.
//! - Priority-inheritance futexes are per process on every host, and keep the lock protocol
//!   but not the priority boost.
//! - A requeue from a word in shared memory to one that is not wakes the waiters it would move
//!   (they sleep in the host kernel, which cannot move them into the table); futex users must
//!   expect such early wake-ups anyway.
//! - A `futex_waitv` that mixes words in shared memory with other words is not woken by
//!   another process.
//! - `FUTEX_WAIT_REQUEUE_PI` and `FUTEX_CMP_REQUEUE_PI` return `ENOSYS` (glibc has not used
//!   them since 2.25), and `futex_waitv` refuses `FUTEX2_NUMA` with `EINVAL`, as kernels before
//!   6.16 do.

pub mod pi;
pub mod robust;
pub mod wake_op;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::host;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::futex::FUTEX_BITSET_MATCH_ANY;
use crate::kernel::process::{Process, lock};
use crate::kernel::task::{self, Task, TaskShared};
use crate::vm::memory::GuestMemory;
use crate::vm::vma::Prot;

pub use self::pi::{lock_pi, unlock_pi};
pub use self::robust::{exec_thread, exit_thread};
pub use self::wake_op::wake_op;

/// One past the last user address of arm64 Linux with 48-bit virtual addresses (`TASK_SIZE`):
/// a private futex operation checks no more than that its word lies below it.
const USER_END: u64 = 1 << 48;

/// What a futex is matched by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// The word's guest address.
    pub addr: u64,
    /// A shared operation (no `FUTEX_PRIVATE_FLAG`).
    pub shared: bool,
}

/// Where the waiters of a futex word sleep.
#[derive(Clone, Copy)]
pub enum Place<'m> {
    /// In the process's table.
    Table(Key),
    /// In the host kernel, on the host's view of a word in shared memory; waits that cannot
    /// sleep there are in the table under the key.
    Host(&'m AtomicU32, Key),
}

impl Place<'_> {
    /// The key in the process's table.
    pub fn key(&self) -> Key {
        match *self {
            Place::Table(key) | Place::Host(_, key) => key,
        }
    }
}

/// Finds where the futex word at `addr` lives, as Linux's `get_futex_key` does: `EINVAL` for
/// an unaligned word, `EFAULT` for one outside the user address space or, for a shared
/// operation, for one the caller could not read (or write, with `write`, or when a read-only
/// private page could never change).
pub fn locate(memory: &GuestMemory, addr: u64, shared: bool, write: bool) -> SysResult<Place<'_>> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    if addr > USER_END - 4 {
        return Err(Errno::EFAULT);
    }
    let key = Key { addr, shared };
    if !shared {
        return Ok(Place::Table(key));
    }

    let in_shared_memory = {
        let vmas = memory.vmas();
        let vma = vmas.find(addr).ok_or(Errno::EFAULT)?;
        let prot = vma.effective_prot();
        let need_write = write || !vma.shared;
        if !prot.contains(Prot::READ) || (need_write && !prot.contains(Prot::WRITE)) {
            return Err(Errno::EFAULT);
        }
        vma.shared
    };
    if in_shared_memory && host::futex::CROSS_PROCESS {
        let word = memory.host_range(addr..addr + 4).as_atomic_u32();
        return Ok(Place::Host(word, key));
    }
    Ok(Place::Table(key))
}

/// A process's futex wait queues.
#[derive(Default)]
pub struct FutexTable {
    queues: Mutex<Queues>,
}

impl FutexTable {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        lock(&self.queues)
    }
}

/// `FUTEX_WAIT`, `FUTEX_WAIT_BITSET` and `futex_waitv`: sleeps while every word holds its
/// value until a wake reaches one of them (returns its index, the highest if wakes reached
/// several, as Linux's `futex_unqueue_multiple` reports), the deadline passes (`ETIMEDOUT`) or
/// a signal comes (`ERESTARTSYS`). `EAGAIN` if a word differs to begin with, `EFAULT` if one
/// cannot be read.
pub fn wait(
    task: &Task,
    words: &[(Place<'_>, u32)],
    bitset: u32,
    deadline: Option<Instant>,
) -> SysResult<usize> {
    let host_words: Vec<(&AtomicU32, u32)> = words
        .iter()
        .filter_map(|&(place, val)| match place {
            Place::Host(word, _) => Some((word, val)),
            Place::Table(_) => None,
        })
        .collect();
    if host_words.len() == words.len() {
        match wait_in_host(&host_words, bitset, deadline) {
            Err(Errno::ENOSYS) => {}
            result => return result,
        }
    }
    wait_in_table(task, words, bitset, deadline)
}

/// Sleeps in the host kernel, interruptible like any blocking host call.
fn wait_in_host(
    words: &[(&AtomicU32, u32)],
    bitset: u32,
    deadline: Option<Instant>,
) -> SysResult<usize> {
    match words {
        [(word, val)] => {
            task::interruptible(|| host::futex::wait(word, *val, bitset, deadline)).map(|()| 0)
        }
        _ => task::interruptible(|| host::futex::wait_any(words, deadline)),
    }
}

fn wait_in_table(
    task: &Task,
    words: &[(Place<'_>, u32)],
    bitset: u32,
    deadline: Option<Instant>,
) -> SysResult<usize> {
    let keys: Vec<Key> = words.iter().map(|(place, _)| place.key()).collect();
    let waiter = Waiter::new(&task.shared, bitset, false, keys);
    {
        let mut queues = task.process.futexes.lock();
        for (index, &(place, val)) in words.iter().enumerate() {
            let current = task.memory.load_u32(place.key().addr);
            if current != Ok(val) {
                queues.dequeue(&waiter);
                return Err(current.err().unwrap_or(Errno::EAGAIN));
            }
            queues.enqueue(place.key(), Entry::new(&waiter, index));
        }
    }

    let slept = task.shared.wait(deadline, || waiter.woken().is_some());
    task.process.futexes.lock().dequeue(&waiter);
    match waiter.woken() {
        Some(index) => Ok(index),
        None => slept.map(|()| 0),
    }
}

/// `FUTEX_WAKE` and `FUTEX_WAKE_BITSET`: wakes up to `nr_wake` waiters whose bitset meets
/// `bitset` and returns how many. A count below one still wakes one (Linux checks the count
/// after each wake); a PI waiter met on the way is `EINVAL`.
pub fn wake(process: &Process, place: Place<'_>, nr_wake: i32, bitset: u32) -> SysResult<u32> {
    wake_in(&mut process.futexes.lock(), place, nr_wake, bitset)
}

/// [`wake`] with the process's table already locked.
fn wake_in(queues: &mut Queues, place: Place<'_>, nr_wake: i32, bitset: u32) -> SysResult<u32> {
    let wanted = nr_wake.max(1);
    let mut woken = 0;
    if let Place::Host(word, _) = place {
        woken = host::futex::wake(word, nr_wake, bitset).map_err(Errno::from)?;
        if woken >= wanted as u32 {
            return Ok(woken);
        }
    }
    let left = wanted - woken as i32;
    Ok(woken + queues.wake(place.key(), left, bitset)?)
}

/// Wakes one waiter of a shared futex at `addr`, as the kernel itself does for a thread's
/// `clear_child_tid` word; a word that cannot be a futex is skipped.
pub fn wake_shared_word(process: &Process, memory: &GuestMemory, addr: u64) {
    wake_shared_word_in(&mut process.futexes.lock(), memory, addr);
}

/// [`wake_shared_word`] with the process's table already locked (robust locks).
fn wake_shared_word_in(queues: &mut Queues, memory: &GuestMemory, addr: u64) {
    if let Ok(place) = locate(memory, addr, true, false) {
        let _ = wake_in(queues, place, 1, FUTEX_BITSET_MATCH_ANY);
    }
}

/// `FUTEX_REQUEUE` and `FUTEX_CMP_REQUEUE`: wakes `nr_wake` waiters on `from` and moves up to
/// `nr_requeue` more to `to`; returns how many were woken or moved. With `expected`, `EAGAIN`
/// unless the word at `from` holds it.
pub fn requeue(
    task: &Task,
    from: Place<'_>,
    to: Place<'_>,
    nr_wake: i32,
    nr_requeue: i32,
    expected: Option<u32>,
) -> SysResult<u32> {
    let mut expected = expected;
    let mut done = 0u32;
    if let Place::Host(word, _) = from {
        done = match to {
            Place::Host(word2, _) => {
                host::futex::requeue(word, word2, nr_wake, nr_requeue, expected)
                    .map_err(Errno::from)?
            }
            Place::Table(_) => {
                // Sleepers in the host kernel cannot move into the table: wake them instead.
                if let Some(expected) = expected
                    && task.memory.load_u32(from.key().addr)? != expected
                {
                    return Err(Errno::EAGAIN);
                }
                let all = nr_wake.saturating_add(nr_requeue);
                host::futex::wake(word, all, FUTEX_BITSET_MATCH_ANY).map_err(Errno::from)?
            }
        };
        expected = None;
    }

    let mut queues = task.process.futexes.lock();
    if let Some(expected) = expected
        && task.memory.load_u32(from.key().addr)? != expected
    {
        return Err(Errno::EAGAIN);
    }
    let done_i = i64::from(done);
    let wake_left = (i64::from(nr_wake) - done_i).max(0) as i32;
    let requeue_left = (i64::from(nr_requeue) - (done_i - i64::from(nr_wake)).max(0)).max(0) as i32;
    Ok(done + queues.requeue(from.key(), to.key(), wake_left, requeue_left)?)
}

/// One sleeping thread, queued on one or more futexes.
struct Waiter {
    task: Arc<TaskShared>,
    /// Which `FUTEX_WAKE_BITSET` wakes reach it.
    bitset: u32,
    /// A `FUTEX_LOCK_PI` waiter: the wake that takes it off its queue hands it the lock.
    pi: bool,
    /// The key each of its entries is queued under now (a requeue moves entries).
    keys: Mutex<Vec<Key>>,
    /// One more than the highest index a waker took off its queue; 0 while none did.
    woken: AtomicUsize,
}

impl Waiter {
    fn new(task: &Arc<TaskShared>, bitset: u32, pi: bool, keys: Vec<Key>) -> Arc<Waiter> {
        Arc::new(Waiter {
            task: task.clone(),
            bitset,
            pi,
            keys: Mutex::new(keys),
            woken: AtomicUsize::new(0),
        })
    }

    /// The highest index of the futexes whose wake reached it.
    fn woken(&self) -> Option<usize> {
        self.woken.load(Ordering::SeqCst).checked_sub(1)
    }

    /// Records that its entry for futex `index` was taken off its queue, and wakes it.
    fn wake(&self, index: usize) {
        self.woken.fetch_max(index + 1, Ordering::SeqCst);
        self.task.notify();
    }
}

/// One waiter's place in one queue.
struct Entry {
    waiter: Arc<Waiter>,
    /// Which of the waiter's futexes this is.
    index: usize,
}

impl Entry {
    fn new(waiter: &Arc<Waiter>, index: usize) -> Entry {
        Entry {
            waiter: waiter.clone(),
            index,
        }
    }

    /// Takes the entry off its queue as a wake: the waiter learns which futex it was.
    fn wake(self) {
        self.waiter.wake(self.index);
    }
}

/// The waiters of one futex.
#[derive(Default)]
struct Queue {
    entries: VecDeque<Entry>,
    /// The thread PI waiters wait for (Linux's `pi_state->owner`), while there are any.
    pi_owner: u32,
}

/// Every queue of a process, by key. Empty queues are removed.
#[derive(Default)]
struct Queues(HashMap<Key, Queue>);

impl Queues {
    fn enqueue(&mut self, key: Key, entry: Entry) {
        self.0.entry(key).or_default().entries.push_back(entry);
    }

    /// The first waiter on `key`.
    fn first(&self, key: Key) -> Option<&Entry> {
        self.0.get(&key).and_then(|q| q.entries.front())
    }

    /// Removes every entry of `waiter`, wherever requeues moved them.
    fn dequeue(&mut self, waiter: &Arc<Waiter>) {
        let keys = lock(&waiter.keys).clone();
        for key in keys {
            if let Some(queue) = self.0.get_mut(&key) {
                queue.entries.retain(|e| !Arc::ptr_eq(&e.waiter, waiter));
            }
            self.tidy(key);
        }
    }

    fn tidy(&mut self, key: Key) {
        if self.0.get(&key).is_some_and(|q| q.entries.is_empty()) {
            self.0.remove(&key);
        }
    }

    /// The loop of Linux's `futex_wake`: wakes matching waiters until `nr_wake` are woken
    /// (at least one), stopping with `EINVAL` at a PI waiter.
    fn wake(&mut self, key: Key, nr_wake: i32, bitset: u32) -> SysResult<u32> {
        let Some(queue) = self.0.get_mut(&key) else {
            return Ok(0);
        };
        let mut woken = 0u32;
        let mut result = Ok(());
        let mut at = 0;
        while at < queue.entries.len() {
            let waiter = &queue.entries[at].waiter;
            if waiter.pi {
                result = Err(Errno::EINVAL);
                break;
            }
            if waiter.bitset & bitset == 0 {
                at += 1;
                continue;
            }
            if let Some(entry) = queue.entries.remove(at) {
                entry.wake();
            }
            woken += 1;
            if i64::from(woken) >= i64::from(nr_wake) {
                break;
            }
        }
        self.tidy(key);
        result.map(|()| woken)
    }

    /// The loop of Linux's `futex_requeue`: wakes the first `nr_wake` waiters on `from` and
    /// moves up to `nr_requeue` more to the end of `to`'s queue, stopping with `EINVAL` at a PI
    /// waiter. Returns how many were woken or moved.
    fn requeue(&mut self, from: Key, to: Key, nr_wake: i32, nr_requeue: i32) -> SysResult<u32> {
        let Some(mut source) = self.0.remove(&from) else {
            return Ok(0);
        };
        let (nr_wake, nr_requeue) = (i64::from(nr_wake), i64::from(nr_requeue));
        let mut count = 0i64;
        let mut moved = Vec::new();
        let mut result = Ok(());
        while count - nr_wake < nr_requeue {
            let Some(entry) = source.entries.front() else {
                break;
            };
            if entry.waiter.pi {
                result = Err(Errno::EINVAL);
                break;
            }
            let Some(entry) = source.entries.pop_front() else {
                break;
            };
            count += 1;
            if count <= nr_wake {
                entry.wake();
            } else {
                moved.push(entry);
            }
        }
        if !source.entries.is_empty() {
            self.0.insert(from, source);
        }
        for entry in moved {
            if let Some(slot) = lock(&entry.waiter.keys).get_mut(entry.index) {
                *slot = to;
            }
            self.enqueue(to, entry);
        }
        result.map(|()| count as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    use crate::kernel::signal::SigQueue;

    fn thread(tid: i32) -> Arc<TaskShared> {
        TaskShared::new(
            tid,
            0,
            Arc::new(Mutex::new(SigQueue::default())),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        )
    }

    fn key(addr: u64) -> Key {
        Key {
            addr,
            shared: false,
        }
    }

    /// Queues a plain waiter with `bitset` on each of `keys`.
    fn waiter(queues: &mut Queues, bitset: u32, keys: &[Key]) -> Arc<Waiter> {
        let waiter = Waiter::new(&thread(1), bitset, false, keys.to_vec());
        for (index, &k) in keys.iter().enumerate() {
            queues.enqueue(k, Entry::new(&waiter, index));
        }
        waiter
    }

    fn queued(queues: &Queues, k: Key) -> usize {
        queues.0.get(&k).map_or(0, |q| q.entries.len())
    }

    #[test]
    fn a_wake_count_of_zero_or_less_still_wakes_one() {
        let mut queues = Queues::default();
        let ws: Vec<_> = (0..3)
            .map(|_| waiter(&mut queues, u32::MAX, &[key(8)]))
            .collect();
        assert_eq!(queues.wake(key(8), 0, u32::MAX), Ok(1));
        assert_eq!(queues.wake(key(8), -5, u32::MAX), Ok(1));
        assert_eq!(ws.iter().filter(|w| w.woken().is_some()).count(), 2);
        assert_eq!(queues.wake(key(8), i32::MAX, u32::MAX), Ok(1));
        assert!(queues.0.is_empty());
    }

    #[test]
    fn wakes_skip_waiters_whose_bitset_does_not_match() {
        let mut queues = Queues::default();
        let low = waiter(&mut queues, 0x1, &[key(8)]);
        let high = waiter(&mut queues, 0x6, &[key(8)]);
        assert_eq!(queues.wake(key(8), i32::MAX, 0x8), Ok(0));
        assert_eq!(queues.wake(key(8), i32::MAX, 0x2), Ok(1));
        assert_eq!((low.woken(), high.woken()), (None, Some(0)));
    }

    #[test]
    fn private_and_shared_operations_on_one_word_never_meet() {
        let mut queues = Queues::default();
        let private = waiter(&mut queues, u32::MAX, &[key(8)]);
        let shared = Key {
            addr: 8,
            shared: true,
        };
        assert_eq!(queues.wake(shared, 1, u32::MAX), Ok(0));
        assert_eq!(private.woken(), None);
    }

    #[test]
    fn a_wake_that_meets_a_pi_waiter_fails_with_einval() {
        let mut queues = Queues::default();
        let pi = Waiter::new(&thread(2), u32::MAX, true, vec![key(8)]);
        queues.enqueue(key(8), Entry::new(&pi, 0));
        assert_eq!(queues.wake(key(8), 1, u32::MAX), Err(Errno::EINVAL));
        assert_eq!(queues.requeue(key(8), key(16), 0, 1), Err(Errno::EINVAL));
        assert_eq!(queued(&queues, key(8)), 1);
    }

    #[test]
    fn requeue_counts_woken_and_moved_waiters() {
        let mut queues = Queues::default();
        let ws: Vec<_> = (0..4)
            .map(|_| waiter(&mut queues, u32::MAX, &[key(8)]))
            .collect();
        assert_eq!(queues.requeue(key(8), key(16), 1, 2), Ok(3));
        assert_eq!(ws[0].woken(), Some(0));
        assert_eq!((queued(&queues, key(8)), queued(&queues, key(16))), (1, 2));

        // Nothing to wake and nothing to move: the loop stops at once.
        assert_eq!(queues.requeue(key(8), key(16), 0, 0), Ok(0));
        // Waking none, moving one.
        assert_eq!(queues.requeue(key(16), key(8), 0, 1), Ok(1));
        assert_eq!((queued(&queues, key(8)), queued(&queues, key(16))), (2, 1));
    }

    #[test]
    fn a_requeued_waiter_is_dequeued_from_its_new_queue() {
        let mut queues = Queues::default();
        let w = waiter(&mut queues, u32::MAX, &[key(8)]);
        assert_eq!(queues.requeue(key(8), key(16), 0, 1), Ok(1));
        queues.dequeue(&w);
        assert!(queues.0.is_empty());
    }

    #[test]
    fn a_waitv_waiter_reports_the_highest_woken_index() {
        let mut queues = Queues::default();
        let w = waiter(&mut queues, u32::MAX, &[key(8), key(16), key(24)]);
        assert_eq!(queues.wake(key(16), 1, u32::MAX), Ok(1));
        assert_eq!(w.woken(), Some(1));
        // Its other entries are still queued, as in Linux, until it dequeues itself.
        assert_eq!(queues.wake(key(24), 1, u32::MAX), Ok(1));
        assert_eq!(w.woken(), Some(2));
        assert_eq!(queues.wake(key(8), 1, u32::MAX), Ok(1));
        assert_eq!(w.woken(), Some(2));
        queues.dequeue(&w);
        assert!(queues.0.is_empty());
    }
}
