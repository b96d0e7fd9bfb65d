//! The guest's file descriptor table.
//!
//! Guest descriptor numbers are the guest's own: each slot holds a shared [`OpenFile`] (the
//! Linux "open file description", so `dup`ed descriptors share offset and status flags) and the
//! per-descriptor close-on-exec flag. Host descriptors behind the files are always
//! close-on-exec on the host and never visible to the guest by number.

use std::sync::Arc;

use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::file::OpenFile;

/// One guest descriptor.
#[derive(Clone)]
pub struct FdEntry {
    /// The open file description.
    pub file: Arc<OpenFile>,
    /// `FD_CLOEXEC`.
    pub cloexec: bool,
}

/// The descriptor table of a process.
#[derive(Clone, Default)]
pub struct FdTable {
    slots: Vec<Option<FdEntry>>,
}

impl FdTable {
    /// An empty table.
    pub fn new() -> FdTable {
        FdTable::default()
    }

    /// The file behind `fd`, or `EBADF`.
    pub fn get(&self, fd: i32) -> SysResult<Arc<OpenFile>> {
        self.entry(fd).map(|e| e.file.clone())
    }

    /// The whole entry for `fd`, or `EBADF`.
    pub fn entry(&self, fd: i32) -> SysResult<&FdEntry> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get(i))
            .and_then(Option::as_ref)
            .ok_or(Errno::EBADF)
    }

    /// Installs `file` at the lowest free number `>= min`, below `limit` (`EMFILE` otherwise).
    pub fn insert(
        &mut self,
        file: Arc<OpenFile>,
        cloexec: bool,
        min: usize,
        limit: usize,
    ) -> SysResult<i32> {
        let start = min.min(self.slots.len());
        let free = (start..self.slots.len()).find(|&i| i >= min && self.slots[i].is_none());
        let index = free.unwrap_or(self.slots.len().max(min));
        if index >= limit {
            return Err(Errno::EMFILE);
        }
        if index >= self.slots.len() {
            self.slots.resize(index + 1, None);
        }
        self.slots[index] = Some(FdEntry { file, cloexec });
        Ok(index as i32)
    }

    /// Installs `file` at exactly `fd`, returning what was there (which the caller drops
    /// outside any lock, since closing may block).
    pub fn insert_at(&mut self, fd: usize, file: Arc<OpenFile>, cloexec: bool) -> Option<FdEntry> {
        if fd >= self.slots.len() {
            self.slots.resize(fd + 1, None);
        }
        self.slots[fd].replace(FdEntry { file, cloexec })
    }

    /// Removes `fd`, or `EBADF`.
    pub fn remove(&mut self, fd: i32) -> SysResult<FdEntry> {
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .ok_or(Errno::EBADF)?;
        let entry = slot.take().ok_or(Errno::EBADF)?;
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        Ok(entry)
    }

    /// Sets or clears `FD_CLOEXEC` on `fd`.
    pub fn set_cloexec(&mut self, fd: i32, cloexec: bool) -> SysResult<()> {
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .ok_or(Errno::EBADF)?;
        slot.as_mut().ok_or(Errno::EBADF)?.cloexec = cloexec;
        Ok(())
    }

    /// Removes every descriptor in `first..=last` (for `close_range`), returning them.
    pub fn remove_range(&mut self, first: usize, last: usize) -> Vec<FdEntry> {
        let end = last.saturating_add(1).min(self.slots.len());
        let removed = (first.min(end)..end)
            .filter_map(|i| self.slots[i].take())
            .collect();
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        removed
    }

    /// Marks every descriptor in `first..=last` close-on-exec.
    pub fn cloexec_range(&mut self, first: usize, last: usize) {
        let end = last.saturating_add(1).min(self.slots.len());
        for entry in self.slots[first.min(end)..end].iter_mut().flatten() {
            entry.cloexec = true;
        }
    }

    /// Removes the close-on-exec descriptors (at `execve`), returning them.
    pub fn take_cloexec(&mut self) -> Vec<FdEntry> {
        let mut removed = Vec::new();
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|e| e.cloexec) {
                removed.extend(slot.take());
            }
        }
        removed
    }

    /// Every open descriptor number and entry, in order.
    pub fn iter(&self) -> impl Iterator<Item = (i32, &FdEntry)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i as i32, e)))
    }

    /// One more than the highest open descriptor.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no descriptor is open.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::file::{Device, OpenFile};

    fn null() -> Arc<OpenFile> {
        OpenFile::device(Device::Null, 0)
    }

    #[test]
    fn lowest_free_number_is_used() {
        let mut t = FdTable::new();
        assert_eq!(t.insert(null(), false, 0, 1024), Ok(0));
        assert_eq!(t.insert(null(), false, 0, 1024), Ok(1));
        assert_eq!(t.insert(null(), false, 0, 1024), Ok(2));
        t.remove(1).unwrap();
        assert_eq!(t.insert(null(), false, 0, 1024), Ok(1));
        assert_eq!(t.insert(null(), true, 10, 1024), Ok(10));
        assert_eq!(t.insert(null(), false, 4, 1024), Ok(4));
    }

    #[test]
    fn limits_and_bad_numbers_give_linux_errors() {
        let mut t = FdTable::new();
        t.insert(null(), false, 0, 2).unwrap();
        t.insert(null(), false, 0, 2).unwrap();
        assert_eq!(t.insert(null(), false, 0, 2), Err(Errno::EMFILE));
        assert!(matches!(t.get(-1), Err(Errno::EBADF)));
        assert!(matches!(t.get(7), Err(Errno::EBADF)));
        assert!(matches!(t.remove(7), Err(Errno::EBADF)));
    }

    #[test]
    fn exec_drops_only_cloexec_descriptors() {
        let mut t = FdTable::new();
        t.insert(null(), false, 0, 64).unwrap();
        t.insert(null(), true, 0, 64).unwrap();
        t.insert(null(), false, 0, 64).unwrap();
        assert_eq!(t.take_cloexec().len(), 1);
        let open: Vec<i32> = t.iter().map(|(fd, _)| fd).collect();
        assert_eq!(open, vec![0, 2]);
    }

    #[test]
    fn close_range_removes_inclusive_bounds() {
        let mut t = FdTable::new();
        for _ in 0..6 {
            t.insert(null(), false, 0, 64).unwrap();
        }
        assert_eq!(t.remove_range(2, 4).len(), 3);
        assert_eq!(t.remove_range(10, usize::MAX).len(), 0);
        let open: Vec<i32> = t.iter().map(|(fd, _)| fd).collect();
        assert_eq!(open, vec![0, 1, 5]);
    }
}
