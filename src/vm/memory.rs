//! Guest memory: one host reservation that holds every guest page, the VMA map that says which
//! of them the guest may touch, and the only safe way for the runtime to read and write them.
//!
//! Guest address `a` lives at host address `base + a`. The whole reservation is host-readable
//! and -writable (and backed by nothing until touched), so a runtime access racing with a guest
//! `munmap` on another thread reads stale zeroes instead of crashing the runtime; what the guest
//! itself may touch is enforced by the vCPU backend from the VMA map. Syscall handlers go through
//! [`GuestMemory::read`], [`GuestMemory::write`] and friends, which check the VMA map and return
//! `EFAULT` for any address the guest could not access itself.
//!
//! Backends learn of every change through a [`MemEvent`] log: each vCPU keeps a cursor into it
//! and replays what it has not seen before it runs guest code again.
//!
//! # Limitations
//! A `MAP_SHARED` file mapping whose file is truncated by someone else while mapped makes a
//! runtime access past the new end of file fault on the host, as it would for any process.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytemuck::{NoUninit, Pod};

use crate::host::{self, Reservation};
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::vm::vma::{PAGE_SIZE, Prot, Vma, VmaMap};

/// A change to the guest address space that every vCPU backend must mirror.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemEvent {
    /// `range` became mapped with `prot` (it was unmapped before).
    Map { range: Range<u64>, prot: Prot },
    /// `range` is no longer mapped.
    Unmap { range: Range<u64> },
    /// The protection of the (mapped) `range` changed to `prot`.
    Protect { range: Range<u64>, prot: Prot },
    /// The bytes of `range` changed behind the CPU's back: drop translated code for it.
    Invalidate { range: Range<u64> },
}

/// The event log, trimmed as the slowest reader advances.
#[derive(Default)]
struct EventLog {
    /// Sequence number of `events[0]`.
    first: u64,
    events: Vec<MemEvent>,
    /// The position of every live reader, by reader id.
    readers: BTreeMap<u64, u64>,
    /// The id the next reader gets.
    next_reader: u64,
    /// In a forked child: the readers registered before the fork are gone, all but the one of
    /// the thread that forked, which re-registers when it next reads. Until then no event past
    /// `floor` is dropped.
    fork_floor: Option<ForkFloor>,
}

/// What a forked child keeps of its parent's readers (see [`EventLog::fork_floor`]).
#[derive(Clone, Copy, Debug)]
struct ForkFloor {
    /// Readers with a smaller id were registered before the fork.
    first_new_reader: u64,
    /// The slowest position among them.
    floor: u64,
}

impl EventLog {
    /// The sequence number of the next event.
    fn head(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    /// A new reader positioned at the head.
    fn register(&mut self) -> MemCursor {
        let cursor = MemCursor {
            id: self.next_reader,
            next: self.head(),
        };
        self.next_reader += 1;
        self.readers.insert(cursor.id, cursor.next);
        cursor
    }

    /// Drops the events every reader has seen.
    fn trim(&mut self) {
        let mut keep_from = self.readers.values().copied().min().unwrap_or(self.head());
        if let Some(fork) = self.fork_floor {
            keep_from = keep_from.min(fork.floor);
        }
        let seen = keep_from.saturating_sub(self.first) as usize;
        if seen > 0 {
            self.events.drain(..seen.min(self.events.len()));
            self.first += seen as u64;
        }
    }
}

/// A reader's position in the event log. Each one keeps the events it has not seen alive, so
/// a reader that goes away must be given back ([`GuestMemory::release_cursor`]).
#[derive(Debug)]
pub struct MemCursor {
    id: u64,
    next: u64,
}

/// The guest's memory: host pages plus the VMA map.
pub struct GuestMemory {
    reservation: Reservation,
    vmas: RwLock<VmaMap>,
    log: Mutex<EventLog>,
    /// Sequence number of the next event; readers compare it with their cursor cheaply.
    head: AtomicU64,
}

impl GuestMemory {
    /// Reserves host address space for a guest of `span` bytes (addresses `0..span`).
    pub fn new(span: u64) -> Result<GuestMemory, std::io::Error> {
        let reservation = Reservation::new(span)?;
        Ok(GuestMemory {
            reservation,
            vmas: RwLock::new(VmaMap::new()),
            log: Mutex::new(EventLog::default()),
            head: AtomicU64::new(0),
        })
    }

    /// Guest memory on a host whose pages are `host_page` bytes (simulated; see
    /// [`Reservation::with_host_page`]).
    #[cfg(test)]
    pub fn with_host_page(span: u64, host_page: u64) -> Result<GuestMemory, std::io::Error> {
        Ok(GuestMemory {
            reservation: Reservation::with_host_page(span, host_page)?,
            vmas: RwLock::new(VmaMap::new()),
            log: Mutex::new(EventLog::default()),
            head: AtomicU64::new(0),
        })
    }

    /// The size of the guest address space.
    pub fn span(&self) -> u64 {
        self.reservation.len()
    }

    /// The host address of guest address 0; backends map `host_base() + a` at guest `a`.
    pub fn host_base(&self) -> *mut u8 {
        self.reservation.base()
    }

    /// Read access to the VMA map.
    pub fn vmas(&self) -> RwLockReadGuard<'_, VmaMap> {
        self.vmas
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn vmas_mut(&self) -> RwLockWriteGuard<'_, VmaMap> {
        self.vmas
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `range` is inside the guest address space.
    pub fn contains(&self, range: &Range<u64>) -> bool {
        range.start <= range.end && range.end <= self.span()
    }

    // ---- address-space changes -------------------------------------------------------------

    /// Maps `vma` over whatever was there, with fresh zero pages as its initial content.
    ///
    /// The caller fills file-backed content afterwards (see [`GuestMemory::host_range`]).
    pub fn map(&self, vma: Vma) {
        let range = vma.start..vma.end;
        let prot = vma.effective_prot();
        let mut vmas = self.vmas_mut();
        let replaced = vmas.remove(range.clone());
        self.reservation.discard(range.clone());
        vmas.insert(vma);

        // Events are logged under the VMA lock, so a new vCPU that copies the VMAs and takes a
        // cursor under the same lock sees each change exactly once.
        for piece in replaced {
            self.push(MemEvent::Unmap {
                range: piece.start..piece.end,
            });
        }
        self.push(MemEvent::Map { range, prot });
    }

    /// Unmaps `range`; its host pages are released and read back as zeroes.
    pub fn unmap(&self, range: Range<u64>) -> Vec<Vma> {
        let mut vmas = self.vmas_mut();
        let removed = vmas.remove(range);
        for piece in &removed {
            self.reservation.discard(piece.start..piece.end);
            self.push(MemEvent::Unmap {
                range: piece.start..piece.end,
            });
        }
        removed
    }

    /// Changes the protection of `range`, which the caller has checked is fully mapped.
    pub fn protect(&self, range: Range<u64>, prot: Prot) {
        let mut vmas = self.vmas_mut();
        vmas.protect(range.clone(), prot);
        let pieces: Vec<(Range<u64>, Prot)> = vmas
            .overlapping(range.clone())
            .map(|v| {
                (
                    v.start.max(range.start)..v.end.min(range.end),
                    v.effective_prot(),
                )
            })
            .collect();
        for (piece, prot) in pieces {
            self.push(MemEvent::Protect { range: piece, prot });
        }
    }

    /// Changes bookkeeping of mappings in `range` that the backends do not see (labels).
    pub fn update_vmas(&self, range: Range<u64>, f: impl FnMut(&mut Vma)) {
        self.vmas_mut().update(range, f);
    }

    /// Returns `range` to fresh zero pages without changing the mapping (`MADV_DONTNEED`).
    pub fn zero(&self, range: Range<u64>) {
        self.reservation.discard(range.clone());
        self.push(MemEvent::Invalidate { range });
    }

    /// Records that the bytes of `range` changed without the CPU writing them.
    pub fn invalidate(&self, range: Range<u64>) {
        self.push(MemEvent::Invalidate { range });
    }

    /// The host pages behind guest `range`, for the loader and the `mmap` file paths.
    ///
    /// The caller must only pass ranges it has mapped and must keep to them.
    pub fn host_range(&self, range: Range<u64>) -> host::HostRange<'_> {
        self.reservation.range(range)
    }

    // ---- the event log ---------------------------------------------------------------------

    fn push(&self, event: MemEvent) {
        let mut log = self.log();
        log.events.push(event);
        self.head.store(log.head(), Ordering::Release);
        if log.readers.is_empty() {
            // Nobody to tell (no vCPU yet): the event is dropped at once.
            log.trim();
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, EventLog> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A cursor that starts after every event so far.
    pub fn cursor(&self) -> MemCursor {
        let _vmas = self.vmas();
        self.log().register()
    }

    /// The current mappings and a cursor positioned just after them, taken together: a new
    /// vCPU maps the list, then replays events from the cursor.
    pub fn snapshot(&self) -> (Vec<(Range<u64>, Prot)>, MemCursor) {
        let vmas = self.vmas();
        let list = vmas
            .iter()
            .map(|vma| (vma.start..vma.end, vma.effective_prot()))
            .collect();
        (list, self.log().register())
    }

    /// Whether events have arrived since `cursor` (one atomic load).
    pub fn has_events(&self, cursor: &MemCursor) -> bool {
        self.head.load(Ordering::Acquire) != cursor.next
    }

    /// The events a reader at `cursor` has not seen; advances the cursor. Events every live
    /// reader has seen are dropped.
    pub fn take_events(&self, cursor: &mut MemCursor) -> Vec<MemEvent> {
        let mut log = self.log();
        let skip = cursor.next.saturating_sub(log.first) as usize;
        let events = log
            .events
            .get(skip..)
            .map(<[MemEvent]>::to_vec)
            .unwrap_or_default();
        cursor.next = log.head();
        log.readers.insert(cursor.id, cursor.next);
        if log
            .fork_floor
            .is_some_and(|fork| cursor.id < fork.first_new_reader)
        {
            // The forking thread's reader is back: the parent's others will never read.
            log.fork_floor = None;
        }
        log.trim();
        events
    }

    /// Forgets a reader that will read no more (its vCPU is gone).
    pub fn release_cursor(&self, cursor: MemCursor) {
        let mut log = self.log();
        log.readers.remove(&cursor.id);
        log.trim();
    }

    /// In a forked child: the readers of the parent's other threads will never read again.
    /// Only the forking thread's remains, and it has not read since the fork; it is known
    /// again when it next does.
    pub fn forget_readers_after_fork(&self) {
        let mut log = self.log();
        let mut floor = log.readers.values().copied().min().unwrap_or(log.head());
        if let Some(fork) = log.fork_floor {
            floor = floor.min(fork.floor);
        }
        log.fork_floor = Some(ForkFloor {
            first_new_reader: log.next_reader,
            floor,
        });
        log.readers.clear();
    }

    // ---- checked accessors -----------------------------------------------------------------

    /// How many bytes from `addr` (up to `len`) the guest could itself access with `need`.
    pub fn accessible(&self, addr: u64, len: u64, need: Prot) -> u64 {
        if len == 0 {
            return 0;
        }
        self.vmas().accessible_prefix(addr, len, need)
    }

    /// Checks that `len` bytes at `addr` are accessible with `need`.
    pub fn check(&self, addr: u64, len: u64, need: Prot) -> SysResult<()> {
        if len == 0 || self.accessible(addr, len, need) == len {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }

    /// Copies guest memory at `addr` into `buf`; `EFAULT` unless all of it is readable.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> SysResult<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.check(addr, buf.len() as u64, Prot::READ)?;
        self.reservation
            .range(addr..addr + buf.len() as u64)
            .read(buf);
        Ok(())
    }

    /// Copies `data` into guest memory at `addr`; `EFAULT` unless all of it is writable.
    pub fn write(&self, addr: u64, data: &[u8]) -> SysResult<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.check(addr, data.len() as u64, Prot::WRITE)?;
        self.reservation
            .range(addr..addr + data.len() as u64)
            .write(data);
        self.note_write(addr, data.len() as u64);
        Ok(())
    }

    /// Reads a plain value (an integer or an ABI struct) from guest memory.
    pub fn read_val<T: Pod>(&self, addr: u64) -> SysResult<T> {
        let mut value = T::zeroed();
        self.read(addr, bytemuck::bytes_of_mut(&mut value))?;
        Ok(value)
    }

    /// Writes a plain value (an integer or an ABI struct) to guest memory.
    pub fn write_val<T: NoUninit>(&self, addr: u64, value: &T) -> SysResult<()> {
        self.write(addr, bytemuck::bytes_of(value))
    }

    /// Reads `count` values of `T` from consecutive guest addresses.
    pub fn read_array<T: Pod>(&self, addr: u64, count: usize) -> SysResult<Vec<T>> {
        let size = std::mem::size_of::<T>()
            .checked_mul(count)
            .ok_or(Errno::EFAULT)?;
        let mut values = vec![T::zeroed(); count];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut values);
        debug_assert_eq!(bytes.len(), size);
        self.read(addr, bytes)?;
        Ok(values)
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
    ///
    /// `Ok(None)` means no NUL was found within `max` bytes; callers choose the errno
    /// (`ENAMETOOLONG` for paths, `E2BIG` for `execve` arguments).
    pub fn read_cstr(&self, addr: u64, max: usize) -> SysResult<Option<Vec<u8>>> {
        let mut out = Vec::new();
        let mut cursor = addr;
        loop {
            // Read up to the end of the current page, so a string that ends just before an
            // unmapped page is still readable.
            let page_left = PAGE_SIZE - (cursor % PAGE_SIZE);
            let want = page_left.min((max + 1 - out.len()) as u64);
            let readable = self.accessible(cursor, want, Prot::READ);
            if readable == 0 {
                return Err(Errno::EFAULT);
            }
            let mut chunk = vec![0u8; readable as usize];
            self.reservation
                .range(cursor..cursor + readable)
                .read(&mut chunk);
            if let Some(nul) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                return Ok(Some(out));
            }
            out.extend_from_slice(&chunk);
            if out.len() > max {
                return Ok(None);
            }
            cursor += readable;
        }
    }

    /// Runs `f` on the guest bytes at `addr`, up to `len` of them, that the guest could write:
    /// the zero-copy path for `read(2)` and friends. `EFAULT` if not even one byte is writable.
    ///
    /// Linux also stops a transfer at the first bad page and reports what it moved so far.
    pub fn with_writable<R>(
        &self,
        addr: u64,
        len: u64,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> SysResult<R> {
        if len == 0 {
            return Ok(f(&mut []));
        }
        let usable = self.accessible(addr, len, Prot::WRITE);
        if usable == 0 {
            return Err(Errno::EFAULT);
        }
        let result = self.reservation.range(addr..addr + usable).with_mut(f);
        self.note_write(addr, usable);
        Ok(result)
    }

    /// Runs `f` on the guest bytes at `addr`, up to `len` of them, that the guest could read:
    /// the zero-copy path for `write(2)` and friends. `EFAULT` if not even one byte is readable.
    pub fn with_readable<R>(
        &self,
        addr: u64,
        len: u64,
        f: impl FnOnce(&[u8]) -> R,
    ) -> SysResult<R> {
        if len == 0 {
            return Ok(f(&[]));
        }
        let usable = self.accessible(addr, len, Prot::READ);
        if usable == 0 {
            return Err(Errno::EFAULT);
        }
        Ok(self.reservation.range(addr..addr + usable).with(f))
    }

    /// Atomically replaces the aligned `u32` at `addr` with `f(old)` and returns `old` (for
    /// futexes). `EFAULT` unless the guest could read and write it; `EINVAL` if unaligned.
    pub fn update_u32(&self, addr: u64, mut f: impl FnMut(u32) -> Option<u32>) -> SysResult<u32> {
        if !addr.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        self.check(addr, 4, Prot::READ | Prot::WRITE)?;
        let word = self.reservation.range(addr..addr + 4).as_atomic_u32();
        let mut old = word.load(std::sync::atomic::Ordering::SeqCst);
        loop {
            let Some(new) = f(old) else {
                return Ok(old);
            };
            match word.compare_exchange(
                old,
                new,
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
            ) {
                Ok(_) => return Ok(old),
                Err(current) => old = current,
            }
        }
    }

    /// Reads the aligned `u32` at `addr` atomically.
    pub fn load_u32(&self, addr: u64) -> SysResult<u32> {
        if !addr.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        self.check(addr, 4, Prot::READ)?;
        Ok(self
            .reservation
            .range(addr..addr + 4)
            .as_atomic_u32()
            .load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Asks the backends to drop translated code if a runtime write landed on executable pages.
    fn note_write(&self, addr: u64, len: u64) {
        let executable = self
            .vmas()
            .overlapping(addr..addr + len)
            .any(|vma| vma.prot.contains(Prot::EXEC));
        if executable {
            self.invalidate(addr..addr + len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RW: Prot = Prot::READ.union(Prot::WRITE);

    fn memory() -> GuestMemory {
        GuestMemory::new(1 << 30).expect("reserve 1 GiB of host address space")
    }

    #[test]
    fn accessors_fault_outside_mappings_and_without_permission() {
        let mem = memory();
        mem.map(Vma::anonymous(0x10000..0x12000, RW));
        mem.map(Vma::anonymous(0x12000..0x13000, Prot::READ));

        mem.write_val(0x10008, &0x1122_3344_5566_7788u64).unwrap();
        assert_eq!(mem.read_val::<u64>(0x10008).unwrap(), 0x1122_3344_5566_7788);
        assert_eq!(mem.write_val(0x12000, &1u32), Err(Errno::EFAULT));
        assert_eq!(mem.read_val::<u32>(0x12ffc).unwrap(), 0);
        assert_eq!(mem.read_val::<u64>(0x12ffc), Err(Errno::EFAULT));
        assert_eq!(mem.read_val::<u8>(0xffff), Err(Errno::EFAULT));
        assert_eq!(mem.read_val::<u8>(u64::MAX), Err(Errno::EFAULT));
    }

    #[test]
    fn empty_copies_succeed_at_any_address() {
        // Linux copies nothing and reports success; no address is looked at.
        let mem = memory();
        let beyond = mem.span() + 0x1000;
        assert_eq!(mem.write(beyond, &[]), Ok(()));
        assert_eq!(mem.read(beyond, &mut []), Ok(()));
        assert_eq!(mem.write(u64::MAX, &[]), Ok(()));
        assert_eq!(mem.read_array::<u32>(beyond, 0), Ok(Vec::new()));
    }

    #[test]
    fn remapping_a_range_gives_zero_pages() {
        let mem = memory();
        mem.map(Vma::anonymous(0x10000..0x11000, RW));
        mem.write(0x10000, b"dirty").unwrap();
        mem.unmap(0x10000..0x11000);
        mem.map(Vma::anonymous(0x10000..0x11000, RW));
        assert_eq!(mem.read_val::<[u8; 5]>(0x10000).unwrap(), [0; 5]);
    }

    #[test]
    fn cstr_reads_stop_at_nul_and_at_unmapped_pages() {
        let mem = memory();
        mem.map(Vma::anonymous(0x10000..0x11000, RW));
        mem.write(0x10ffa, b"hello\0").unwrap();
        assert_eq!(mem.read_cstr(0x10ffa, 64).unwrap(), Some(b"hello".to_vec()));
        mem.write(0x10ffa, b"hellos").unwrap();
        assert_eq!(mem.read_cstr(0x10ffa, 64), Err(Errno::EFAULT));
        assert_eq!(mem.read_cstr(0x10ffa, 3).unwrap(), None);
    }

    #[test]
    fn zero_copy_transfers_stop_at_the_first_bad_page() {
        let mem = memory();
        mem.map(Vma::anonymous(0x10000..0x11000, RW));
        let n = mem.with_writable(0x10ff0, 64, |buf| buf.len()).unwrap();
        assert_eq!(n, 16);
        assert_eq!(
            mem.with_writable(0x20000, 64, |buf| buf.len()),
            Err(Errno::EFAULT)
        );
    }

    fn lock_log(mem: &GuestMemory) -> std::sync::MutexGuard<'_, EventLog> {
        mem.log()
    }

    #[test]
    fn event_log_replays_changes_in_order_and_trims() {
        let mem = memory();
        let mut cursor = mem.cursor();
        assert!(!mem.has_events(&cursor));
        mem.map(Vma::anonymous(0x10000..0x12000, RW));
        mem.protect(0x10000..0x11000, Prot::READ);
        assert!(mem.has_events(&cursor));
        let events = mem.take_events(&mut cursor);
        assert_eq!(
            events,
            vec![
                MemEvent::Map {
                    range: 0x10000..0x12000,
                    prot: RW
                },
                MemEvent::Protect {
                    range: 0x10000..0x11000,
                    prot: Prot::READ
                },
            ]
        );
        assert!(!mem.has_events(&cursor));
        assert!(mem.take_events(&mut cursor).is_empty());
    }

    /// Regression: every engine passed a reader count of one, so the first engine to replay
    /// the log emptied it and the others never mapped what another thread had mapped.
    #[test]
    fn each_reader_sees_every_event_whoever_reads_first() {
        let mem = memory();
        let mut first = mem.cursor();
        let mut second = mem.cursor();
        mem.map(Vma::anonymous(0x10000..0x12000, RW));
        assert_eq!(mem.take_events(&mut first).len(), 1);
        assert_eq!(mem.take_events(&mut second).len(), 1);
        // Seen by both: gone.
        assert!(lock_log(&mem).events.is_empty());

        // A released reader holds nothing back.
        mem.protect(0x10000..0x11000, Prot::READ);
        mem.release_cursor(second);
        assert_eq!(mem.take_events(&mut first).len(), 1);
        assert!(lock_log(&mem).events.is_empty());
    }

    #[test]
    fn a_forked_child_keeps_events_for_the_forking_reader_only() {
        let mem = memory();
        let mut forking = mem.cursor();
        let mut other = mem.cursor();
        mem.map(Vma::anonymous(0x10000..0x12000, RW));
        assert_eq!(mem.take_events(&mut other).len(), 1);

        mem.forget_readers_after_fork();
        // A reader created in the child does not let the forking one miss the map.
        let mut new = mem.cursor();
        mem.protect(0x10000..0x11000, Prot::READ);
        assert_eq!(mem.take_events(&mut new).len(), 1);
        assert_eq!(mem.take_events(&mut forking).len(), 2);
        // The parent's other reader is forgotten: nothing waits for it.
        assert_eq!(mem.take_events(&mut new).len(), 0);
        assert!(lock_log(&mem).events.is_empty());
    }

    #[test]
    fn runtime_writes_to_code_pages_invalidate_translations() {
        let mem = memory();
        let rwx = Prot::all();
        mem.map(Vma::anonymous(0x10000..0x11000, rwx));
        let mut cursor = mem.cursor();
        mem.write(0x10000, &[0xd5, 0x03, 0x20, 0x1f]).unwrap();
        assert_eq!(
            mem.take_events(&mut cursor),
            vec![MemEvent::Invalidate {
                range: 0x10000..0x10004
            }]
        );
    }
}
