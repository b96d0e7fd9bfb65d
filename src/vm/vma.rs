//! The VMA map: which guest ranges are mapped, with what protection and backing.
//!
//! This is pure bookkeeping with no host or backend effects, so every split, merge and search
//! rule is unit-tested here. [`super::memory::GuestMemory`] pairs it with the host pages and
//! tells the vCPU backends about each change.
//!
//! Ranges are half-open `[start, end)` and page-aligned. Adjacent anonymous private mappings with
//! the same protection merge, as Linux merges them, so `/proc/self/maps` shows the same shape.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use bitflags::bitflags;

/// The guest page size. Linux on arm64 with 4 KiB pages is what glibc and musl expect.
pub const PAGE_SIZE: u64 = 4096;

bitflags! {
    /// Guest page protection, with the Linux `PROT_*` bit values.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct Prot: u32 {
        /// `PROT_READ`.
        const READ = 1;
        /// `PROT_WRITE`.
        const WRITE = 2;
        /// `PROT_EXEC`.
        const EXEC = 4;
    }
}

/// Where a mapping's pages come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Anonymous memory.
    Anonymous,
    /// A file, mapped from `offset` at the mapping's start.
    File(Arc<FileMapping>),
    /// `MAP_SHARED | MAP_ANONYMOUS` memory: a host shared-memory object, mapped from `offset`
    /// at the mapping's start, that a new process can map too.
    SharedAnonymous(Arc<SharedObject>),
}

/// A host shared-memory object behind shared anonymous guest memory.
#[derive(Debug)]
pub struct SharedObject(pub std::os::fd::OwnedFd);

impl PartialEq for SharedObject {
    fn eq(&self, other: &SharedObject) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for SharedObject {}

/// Where a file mapping's bytes can be read again (`MADV_DONTNEED` on a private mapping).
pub trait FileSource: Send + Sync {
    /// Reads file bytes at `offset` into `buf`, returning how many were read.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;

    /// The host descriptor of the file, if it has one (for a new process to map it too).
    fn host_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }
}

/// What `/proc/self/maps` and the mapping rules need to know of a mapped file.
pub struct FileMapping {
    /// The path as the guest names the file.
    pub path: String,
    /// Device number reported in `maps`.
    pub dev: u64,
    /// Inode number reported in `maps`.
    pub ino: u64,
    /// The open file, for reading pages again.
    pub source: Option<Arc<dyn FileSource>>,
}

impl FileMapping {
    /// A mapping label without a readable source (the loader's images).
    pub fn named(path: String, dev: u64, ino: u64) -> FileMapping {
        FileMapping {
            path,
            dev,
            ino,
            source: None,
        }
    }
}

impl std::fmt::Debug for FileMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileMapping")
            .field("path", &self.path)
            .field("dev", &self.dev)
            .field("ino", &self.ino)
            .finish_non_exhaustive()
    }
}

impl PartialEq for FileMapping {
    fn eq(&self, other: &FileMapping) -> bool {
        self.path == other.path && self.dev == other.dev && self.ino == other.ino
    }
}

impl Eq for FileMapping {}

/// One mapped guest range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vma {
    /// First address (page-aligned).
    pub start: u64,
    /// One past the last address (page-aligned).
    pub end: u64,
    /// Current protection.
    pub prot: Prot,
    /// The highest protection `mprotect` may grant (a read-only shared file cannot become
    /// writable).
    pub max_prot: Prot,
    /// `MAP_SHARED` rather than private.
    pub shared: bool,
    /// The page source.
    pub backing: Backing,
    /// File offset of `start` (0 for anonymous memory).
    pub offset: u64,
    /// A label such as `[heap]` or `[stack]` for `/proc/self/maps`.
    pub label: Option<&'static str>,
    /// Pages of a file mapping wholly past the end of the file: touching them is `SIGBUS`.
    pub past_eof: bool,
}

impl Vma {
    /// A private anonymous read-write mapping, the common case.
    pub fn anonymous(range: Range<u64>, prot: Prot) -> Vma {
        Vma {
            start: range.start,
            end: range.end,
            prot,
            max_prot: Prot::all(),
            shared: false,
            backing: Backing::Anonymous,
            offset: 0,
            label: None,
            past_eof: false,
        }
    }

    /// The protection the CPU enforces: none at all past the end of a mapped file.
    pub fn effective_prot(&self) -> Prot {
        if self.past_eof {
            Prot::empty()
        } else {
            self.prot
        }
    }

    /// The mapping's length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Never true: a mapping covers at least one page.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The part of this mapping that lies inside `range`, with its file offset adjusted.
    fn clip(&self, range: &Range<u64>) -> Vma {
        let start = self.start.max(range.start);
        let end = self.end.min(range.end);
        let mut piece = self.clone();
        piece.start = start;
        piece.end = end;
        if matches!(
            piece.backing,
            Backing::File(_) | Backing::SharedAnonymous(_)
        ) {
            piece.offset = self.offset + (start - self.start);
        }
        piece
    }

    /// Whether `next`, starting where `self` ends, can be merged into it.
    fn can_merge_with(&self, next: &Vma) -> bool {
        self.end == next.start
            && self.prot == next.prot
            && self.max_prot == next.max_prot
            && self.shared == next.shared
            && self.label == next.label
            && self.past_eof == next.past_eof
            && match (&self.backing, &next.backing) {
                (Backing::Anonymous, Backing::Anonymous) => !self.shared,
                (Backing::File(a), Backing::File(b)) => {
                    Arc::ptr_eq(a, b) && self.offset + self.len() == next.offset
                }
                (Backing::SharedAnonymous(a), Backing::SharedAnonymous(b)) => {
                    Arc::ptr_eq(a, b) && self.offset + self.len() == next.offset
                }
                _ => false,
            }
    }
}

/// The set of guest mappings, ordered by address.
#[derive(Clone, Debug, Default)]
pub struct VmaMap {
    vmas: BTreeMap<u64, Vma>,
}

/// Rounds `value` up to a page boundary, or `None` on overflow.
pub fn page_align_up(value: u64) -> Option<u64> {
    value
        .checked_add(PAGE_SIZE - 1)
        .map(|v| v & !(PAGE_SIZE - 1))
}

/// Rounds `value` down to a page boundary.
pub fn page_align_down(value: u64) -> u64 {
    value & !(PAGE_SIZE - 1)
}

/// Whether `value` is page-aligned.
pub fn is_page_aligned(value: u64) -> bool {
    value & (PAGE_SIZE - 1) == 0
}

impl VmaMap {
    /// An empty map.
    pub fn new() -> VmaMap {
        VmaMap::default()
    }

    /// Every mapping, in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Vma> {
        self.vmas.values()
    }

    /// The mapping containing `addr`.
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        let (_, vma) = self.vmas.range(..=addr).next_back()?;
        (addr < vma.end).then_some(vma)
    }

    /// Every mapping that overlaps `range`, in address order.
    pub fn overlapping(&self, range: Range<u64>) -> impl Iterator<Item = &Vma> {
        let first = self
            .vmas
            .range(..range.start)
            .next_back()
            .map(|(&start, _)| start);
        let from = first.unwrap_or(range.start);
        self.vmas
            .range(from..range.end)
            .map(|(_, vma)| vma)
            .filter(move |vma| vma.end > range.start)
    }

    /// Whether every page of `range` is mapped.
    pub fn is_fully_mapped(&self, range: Range<u64>) -> bool {
        let mut cursor = range.start;
        for vma in self.overlapping(range.clone()) {
            if vma.start > cursor {
                return false;
            }
            cursor = vma.end;
            if cursor >= range.end {
                return true;
            }
        }
        cursor >= range.end
    }

    /// Whether no page of `range` is mapped.
    pub fn is_free(&self, range: Range<u64>) -> bool {
        self.overlapping(range).next().is_none()
    }

    /// How many bytes from `addr` (up to `len`) are mapped contiguously with at least `need`.
    pub fn accessible_prefix(&self, addr: u64, len: u64, need: Prot) -> u64 {
        let Some(end) = addr.checked_add(len) else {
            return 0;
        };
        let mut cursor = addr;
        for vma in self.overlapping(addr..end) {
            if vma.start > cursor || !vma.effective_prot().contains(need) {
                break;
            }
            cursor = vma.end.min(end);
            if cursor == end {
                break;
            }
        }
        cursor - addr
    }

    /// Removes every mapping inside `range`, splitting those that straddle its ends, and
    /// returns the removed pieces.
    pub fn remove(&mut self, range: Range<u64>) -> Vec<Vma> {
        let hit: Vec<Vma> = self.overlapping(range.clone()).cloned().collect();
        let mut removed = Vec::with_capacity(hit.len());
        for vma in hit {
            self.vmas.remove(&vma.start);
            if vma.start < range.start {
                let head = vma.clip(&(vma.start..range.start));
                self.vmas.insert(head.start, head);
            }
            if vma.end > range.end {
                let tail = vma.clip(&(range.end..vma.end));
                self.vmas.insert(tail.start, tail);
            }
            removed.push(vma.clip(&range));
        }
        removed
    }

    /// Inserts `vma`, replacing whatever was mapped in its range, and merges it with equal
    /// neighbours.
    pub fn insert(&mut self, vma: Vma) {
        self.remove(vma.start..vma.end);
        let (start, end) = (vma.start, vma.end);
        self.vmas.insert(start, vma);
        self.merge_around(start..end);
    }

    /// Sets the protection of every mapping in `range` to `prot`.
    ///
    /// The caller has checked that the range is fully mapped and that `prot` is allowed.
    pub fn protect(&mut self, range: Range<u64>, prot: Prot) {
        for mut piece in self.remove(range.clone()) {
            piece.prot = prot;
            self.vmas.insert(piece.start, piece);
        }
        self.merge_around(range);
    }

    /// Applies `f` to every mapping piece in `range` (split at the range's ends).
    pub fn update(&mut self, range: Range<u64>, mut f: impl FnMut(&mut Vma)) {
        for mut piece in self.remove(range.clone()) {
            f(&mut piece);
            self.vmas.insert(piece.start, piece);
        }
        self.merge_around(range);
    }

    /// Merges mappings in and next to `range` with their equal neighbours.
    fn merge_around(&mut self, range: Range<u64>) {
        let from = self
            .vmas
            .range(..range.start)
            .next_back()
            .map(|(&s, _)| s)
            .unwrap_or(0);
        let starts: Vec<u64> = self.vmas.range(from..=range.end).map(|(&s, _)| s).collect();
        let mut current: Option<u64> = None;
        for start in starts {
            let Some(prev_start) = current else {
                current = Some(start);
                continue;
            };
            let mergeable = {
                let prev = &self.vmas[&prev_start];
                prev.can_merge_with(&self.vmas[&start])
            };
            if mergeable {
                let next = self.vmas.remove(&start).expect("start was just listed");
                self.vmas
                    .get_mut(&prev_start)
                    .expect("prev_start is present")
                    .end = next.end;
            } else {
                current = Some(start);
            }
        }
    }

    /// The highest free range of `len` bytes that ends at or below `limit` and starts at or
    /// above `floor` (Linux's top-down mmap allocation).
    pub fn find_free_top_down(&self, len: u64, floor: u64, limit: u64) -> Option<u64> {
        let mut gap_end = limit;
        for vma in self.vmas.range(..limit).rev().map(|(_, v)| v) {
            if vma.end <= gap_end && gap_end - vma.end >= len {
                let start = gap_end - len;
                return (start >= floor).then_some(start);
            }
            gap_end = gap_end.min(vma.start);
            if gap_end < floor.saturating_add(len) {
                return None;
            }
        }
        let start = gap_end.checked_sub(len)?;
        (start >= floor).then_some(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = PAGE_SIZE;
    const RW: Prot = Prot::READ.union(Prot::WRITE);

    fn shape(map: &VmaMap) -> Vec<(u64, u64, Prot)> {
        map.iter()
            .map(|v| (v.start / P, v.end / P, v.prot))
            .collect()
    }

    #[test]
    fn adjacent_anonymous_mappings_merge() {
        let mut map = VmaMap::new();
        map.insert(Vma::anonymous(0..4 * P, RW));
        map.insert(Vma::anonymous(4 * P..8 * P, RW));
        assert_eq!(shape(&map), vec![(0, 8, RW)]);
    }

    #[test]
    fn protect_in_the_middle_splits_in_three_and_remerges() {
        let mut map = VmaMap::new();
        map.insert(Vma::anonymous(0..8 * P, RW));
        map.protect(2 * P..3 * P, Prot::READ);
        assert_eq!(
            shape(&map),
            vec![(0, 2, RW), (2, 3, Prot::READ), (3, 8, RW)]
        );
        map.protect(2 * P..3 * P, RW);
        assert_eq!(shape(&map), vec![(0, 8, RW)]);
    }

    #[test]
    fn remove_punches_a_hole_and_reports_the_removed_piece() {
        let mut map = VmaMap::new();
        map.insert(Vma::anonymous(0..8 * P, RW));
        let removed = map.remove(3 * P..5 * P);
        assert_eq!(removed.len(), 1);
        assert_eq!((removed[0].start, removed[0].end), (3 * P, 5 * P));
        assert_eq!(shape(&map), vec![(0, 3, RW), (5, 8, RW)]);
        assert!(!map.is_fully_mapped(0..8 * P));
        assert!(map.is_fully_mapped(5 * P..8 * P));
        assert!(map.is_free(3 * P..5 * P));
    }

    #[test]
    fn file_pieces_keep_their_offsets_when_split() {
        let file = Arc::new(FileMapping::named("/lib/x.so".into(), 1, 2));
        let mut map = VmaMap::new();
        let mut vma = Vma::anonymous(10 * P..14 * P, Prot::READ);
        vma.backing = Backing::File(file);
        vma.offset = 0x1000;
        map.insert(vma);
        map.protect(12 * P..13 * P, RW);
        let offsets: Vec<u64> = map.iter().map(|v| v.offset).collect();
        assert_eq!(offsets, vec![0x1000, 0x1000 + 2 * P, 0x1000 + 3 * P]);
        map.protect(12 * P..13 * P, Prot::READ);
        assert_eq!(map.iter().count(), 1, "contiguous file pieces merge back");
    }

    #[test]
    fn accessible_prefix_stops_at_holes_and_missing_permission() {
        let mut map = VmaMap::new();
        map.insert(Vma::anonymous(0..2 * P, RW));
        map.insert(Vma::anonymous(2 * P..3 * P, Prot::READ));
        assert_eq!(map.accessible_prefix(P, 2 * P, Prot::READ), 2 * P);
        assert_eq!(map.accessible_prefix(P, 2 * P, Prot::WRITE), P);
        assert_eq!(map.accessible_prefix(3 * P, 1, Prot::READ), 0);
        assert_eq!(map.accessible_prefix(u64::MAX - 1, 4, Prot::READ), 0);
    }

    #[test]
    fn top_down_search_finds_the_highest_gap() {
        let mut map = VmaMap::new();
        map.insert(Vma::anonymous(90 * P..100 * P, RW));
        map.insert(Vma::anonymous(80 * P..85 * P, RW));
        assert_eq!(map.find_free_top_down(5 * P, 0, 100 * P), Some(85 * P));
        assert_eq!(map.find_free_top_down(6 * P, 0, 100 * P), Some(74 * P));
        assert_eq!(map.find_free_top_down(6 * P, 75 * P, 100 * P), None);
        assert_eq!(map.find_free_top_down(2 * P, 0, 120 * P), Some(118 * P));
    }

    #[test]
    fn find_returns_the_containing_mapping_only() {
        let mut map = VmaMap::new();
        map.insert(Vma::anonymous(2 * P..4 * P, RW));
        assert!(map.find(2 * P).is_some());
        assert!(map.find(4 * P - 1).is_some());
        assert!(map.find(4 * P).is_none());
        assert!(map.find(P).is_none());
    }
}
