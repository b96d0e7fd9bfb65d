//! Stage-1 translation tables for the hvf guest, built and edited by the host.
//!
//! The guest runs at EL0 under a 4 KiB granule with a 48-bit virtual address space (`T0SZ` =
//! 16, four levels of lookup, level 0 to level 3, walked from `TTBR0_EL1`). Guest addresses map
//! to intermediate physical addresses (IPAs) through one linear [`IpaWindow`]; the hvf backend
//! uses the identity (the guest span is chosen to fit the VM's IPA space).
//!
//! Leaves are 1 GiB blocks (level 1), 2 MiB blocks (level 2) or 4 KiB pages (level 3). A range
//! that covers a whole, aligned block with one protection gets a block; changing part of a block
//! splits it into a next-level table first, and a table whose 512 entries became one uniform,
//! contiguous run collapses back into a block. Every change reports the guest ranges whose old
//! translations may sit in a TLB ([`Flush`]); the shim invalidates them before the guest runs
//! again.
//!
//! Descriptors (Arm ARM, VMSAv8-64 stage 1): bits [1:0] say table/page (`0b11`) or block
//! (`0b01`); leaves use `AttrIndx` 0 (normal write-back memory in `MAIR_EL1`), inner shareable,
//! the access flag set, `AP[1]` = 1 (EL0 may access), `AP[2]` = 1 for read-only, `PXN` always
//! (EL1 never runs guest code) and `UXN` unless executable. `PROT_NONE` pages are invalid
//! descriptors, as on Linux; the runtime tells `SEGV_ACCERR` from `SEGV_MAPERR` by the VMA map.
//! The runtime area above the guest (the shim's code and data, see [`super::layout`]) is
//! mapped at its own IPA for EL1 alone ([`Stage1::map_runtime`]), since the shim runs with the
//! same tables.
//!
//! W^X: a page the VMA map makes both writable and executable is mapped either writable (the
//! initial state) or executable, never both. [`Stage1::resolve_wx_fault`] flips one page on the
//! permission fault that the missing half causes, so JIT compilers work.
//!
//! # Limitations
//! Architecture facts the hardware does not let us express: a writable page is readable and an
//! executable page is readable (Linux without `FEAT_EPAN` behaves the same way).

use std::collections::BTreeSet;
use std::ops::Range;

use thiserror::Error;

use crate::vm::Access;
use crate::vm::memory::MemEvent;
use crate::vm::vma::{PAGE_SIZE, Prot};

/// Entries in one translation table (4 KiB of 8-byte descriptors).
pub const ENTRIES: usize = 512;

/// One translation table.
pub type Table = [u64; ENTRIES];

/// Bits of virtual address translated (`T0SZ` = 64 - `VA_BITS`).
pub const VA_BITS: u32 = 48;

/// Descriptor bit positions (Arm ARM D8.3, stage 1, 4 KiB granule).
pub mod desc {
    /// Bit 0: the descriptor is valid.
    pub const VALID: u64 = 1 << 0;
    /// Bit 1: table (levels 0 to 2) or page (level 3) rather than block.
    pub const TABLE_OR_PAGE: u64 = 1 << 1;
    /// `AttrIndx[2:0]`, bits [4:2]: index 0 of `MAIR_EL1`, normal write-back memory.
    pub const ATTR_INDX_NORMAL: u64 = 0;
    /// `AP[1]`, bit 6: EL0 may access.
    pub const AP_EL0: u64 = 1 << 6;
    /// `AP[2]`, bit 7: read-only at every level.
    pub const AP_RO: u64 = 1 << 7;
    /// `SH[1:0]`, bits [9:8] = 0b11: inner shareable.
    pub const SH_INNER: u64 = 0b11 << 8;
    /// `AF`, bit 10: the access flag (set, so no access-flag faults).
    pub const AF: u64 = 1 << 10;
    /// `nG`, bit 11: not global.
    pub const NG: u64 = 1 << 11;
    /// `PXN`, bit 53: never executable at EL1.
    pub const PXN: u64 = 1 << 53;
    /// `UXN`, bit 54: never executable at EL0.
    pub const UXN: u64 = 1 << 54;
    /// The output address field, bits [47:12].
    pub const OA_MASK: u64 = 0x0000_ffff_ffff_f000;
}

/// The guest address span that covers level `level`'s entries (512 GiB, 1 GiB, 2 MiB, 4 KiB).
pub fn level_size(level: usize) -> u64 {
    1 << level_shift(level)
}

fn level_shift(level: usize) -> u32 {
    12 + 9 * (3 - level as u32)
}

/// How guest addresses become IPAs: `ipa = va + offset` for `va` in `guest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpaWindow {
    /// The guest addresses that can be mapped.
    pub guest: Range<u64>,
    /// Added to a guest address to get its IPA (0 for the identity).
    pub offset: u64,
}

impl IpaWindow {
    /// The identity mapping of guest addresses `0..span`.
    pub fn identity(span: u64) -> IpaWindow {
        IpaWindow {
            guest: 0..span,
            offset: 0,
        }
    }

    /// The IPA of guest address `va`, if the window covers it.
    pub fn ipa(&self, va: u64) -> Option<u64> {
        self.guest
            .contains(&va)
            .then(|| va.checked_add(self.offset))
            .flatten()
    }
}

/// Guest ranges whose old translations must leave the TLBs, and whether the instruction cache
/// must be invalidated too.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flush {
    /// Page-aligned guest ranges, ascending and disjoint.
    pub tlb: Vec<Range<u64>>,
    /// Pages became executable: instruction caches must be invalidated.
    pub icache: bool,
}

impl Flush {
    /// Whether nothing needs invalidating.
    pub fn is_empty(&self) -> bool {
        self.tlb.is_empty() && !self.icache
    }

    /// The number of 4 KiB pages to invalidate.
    pub fn pages(&self) -> u64 {
        self.tlb.iter().map(|r| (r.end - r.start) / PAGE_SIZE).sum()
    }

    /// Adds `other`'s ranges and cache request to these.
    pub fn merge(&mut self, other: Flush) {
        for range in other.tlb {
            self.add(range);
        }
        self.icache |= other.icache;
    }

    fn add(&mut self, range: Range<u64>) {
        let at = self.tlb.partition_point(|r| r.end < range.start);
        let mut merged = range;
        while at < self.tlb.len() && self.tlb[at].start <= merged.end {
            let r = self.tlb.remove(at);
            merged = merged.start.min(r.start)..merged.end.max(r.end);
        }
        self.tlb.insert(at, merged);
    }
}

/// A translation the tables produce for one guest address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The IPA the address translates to.
    pub ipa: u64,
    /// The level of the leaf descriptor (1: 1 GiB block, 2: 2 MiB block, 3: page).
    pub level: usize,
    /// What EL0 may do there.
    pub prot: Prot,
    /// The leaf descriptor with its output address and type bits cleared.
    pub attrs: u64,
}

/// A page-table change the builder refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PageTableError {
    /// The range is empty or not aligned to 4 KiB.
    #[error("guest range {0:#x}..{1:#x} is not a non-empty 4 KiB-aligned range")]
    Unaligned(u64, u64),
    /// The range reaches outside the guest addresses the IPA window covers.
    #[error("guest range {0:#x}..{1:#x} lies outside the mappable guest addresses")]
    OutsideWindow(u64, u64),
    /// A runtime-area range overlaps guest addresses or lies beyond the translated range.
    #[error("runtime range {0:#x}..{1:#x} is not outside the guest addresses")]
    InsideWindow(u64, u64),
    /// Every table page the arena may hold is in use.
    #[error("the page-table arena is full ({0} tables)")]
    ArenaFull(usize),
}

/// The guest's stage-1 tables and the W^X state of its writable-and-executable pages.
#[derive(Clone, Debug)]
pub struct Stage1 {
    window: IpaWindow,
    /// IPA of table 0 (the root); table `i` is at `tables_ipa + i * 4096`.
    tables_ipa: u64,
    max_tables: usize,
    tables: Vec<Box<Table>>,
    free: Vec<usize>,
    dirty: BTreeSet<usize>,
    /// Pages of writable-and-executable mappings currently mapped executable (not writable).
    exec_pages: BTreeSet<u64>,
}

/// What a descriptor at some level is.
enum Kind {
    /// Nothing mapped.
    Invalid,
    /// A next-level table, by arena index.
    Table(usize),
    /// A block or page.
    Leaf,
}

impl Stage1 {
    /// Empty tables translating through `window`, the table arena at IPA `tables_ipa` (4 KiB
    /// aligned) with room for `max_tables` tables.
    pub fn new(window: IpaWindow, tables_ipa: u64, max_tables: usize) -> Stage1 {
        Stage1 {
            window,
            tables_ipa,
            max_tables: max_tables.max(1),
            tables: vec![Box::new([0; ENTRIES])],
            free: Vec::new(),
            dirty: BTreeSet::from([0]),
            exec_pages: BTreeSet::new(),
        }
    }

    /// The value for `TTBR0_EL1`: the root table's IPA (ASID 0).
    pub fn ttbr0(&self) -> u64 {
        self.tables_ipa
    }

    /// The table at arena IPA `ipa`, if it is one of ours.
    pub fn table_at(&self, ipa: u64) -> Option<&Table> {
        let offset = ipa.checked_sub(self.tables_ipa)?;
        if !offset.is_multiple_of(PAGE_SIZE) {
            return None;
        }
        self.tables.get((offset / PAGE_SIZE) as usize).map(|t| &**t)
    }

    /// The tables changed since the last call, as (IPA, contents), for copying into the VM.
    pub fn take_dirty(&mut self) -> Vec<(u64, &Table)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|i| (self.tables_ipa + i as u64 * PAGE_SIZE, &*self.tables[i]))
            .collect()
    }

    /// The number of tables in use.
    pub fn tables_in_use(&self) -> usize {
        self.tables.len() - self.free.len()
    }

    /// Maps `range` with `prot`, replacing whatever was mapped there.
    pub fn map(&mut self, range: Range<u64>, prot: Prot) -> Result<Flush, PageTableError> {
        self.set(range, prot)
    }

    /// Removes every translation in `range`.
    pub fn unmap(&mut self, range: Range<u64>) -> Result<Flush, PageTableError> {
        self.set(range, Prot::empty())
    }

    /// Changes the protection of `range` to `prot`; writable-and-executable pages start writable.
    pub fn protect(&mut self, range: Range<u64>, prot: Prot) -> Result<Flush, PageTableError> {
        self.set(range, prot)
    }

    /// Mirrors one guest memory change from the [`MemEvent`] log. Bytes changed behind the
    /// CPU (`Invalidate`) need no table change, only an instruction-cache invalidation.
    pub fn apply_event(&mut self, event: &MemEvent) -> Result<Flush, PageTableError> {
        match event {
            MemEvent::Map { range, prot } => self.map(range.clone(), *prot),
            MemEvent::Unmap { range } => self.unmap(range.clone()),
            MemEvent::Protect { range, prot } => self.protect(range.clone(), *prot),
            MemEvent::Invalidate { .. } => Ok(Flush {
                tlb: Vec::new(),
                icache: true,
            }),
        }
    }

    /// Maps part of the runtime area (outside the guest window) at the same IPA, for the shim
    /// alone: its code if `code` (EL1 read-only and executable), else its data (EL1
    /// read-write). EL0 gets a permission fault there.
    pub fn map_runtime(&mut self, range: Range<u64>, code: bool) -> Result<Flush, PageTableError> {
        let aligned = range.start.is_multiple_of(PAGE_SIZE) && range.end.is_multiple_of(PAGE_SIZE);
        if range.start >= range.end || !aligned {
            return Err(PageTableError::Unaligned(range.start, range.end));
        }
        let guest = &self.window.guest;
        let outside = range.end <= guest.start || range.start >= guest.end;
        if !outside || range.end > 1 << VA_BITS {
            return Err(PageTableError::InsideWindow(range.start, range.end));
        }
        let mut flush = Flush::default();
        self.apply(0, 0, 0, range, Leaf::Runtime { code }, &mut flush)?;
        Ok(flush)
    }

    /// Resolves a permission fault at `va` caused by the W^X policy: an instruction fetch from
    /// a page mapped writable, or a store to a page mapped executable, where the VMA allows
    /// both (`vma_prot`). Flips that one page and returns what to invalidate; `None` if the
    /// fault is the guest's own (it gets a signal).
    pub fn resolve_wx_fault(
        &mut self,
        va: u64,
        access: Access,
        vma_prot: Prot,
    ) -> Result<Option<Flush>, PageTableError> {
        if !vma_prot.contains(Prot::WRITE | Prot::EXEC) {
            return Ok(None);
        }
        let page = va & !(PAGE_SIZE - 1);
        let to_exec = match access {
            Access::Execute if !self.exec_pages.contains(&page) => true,
            Access::Write if self.exec_pages.contains(&page) => false,
            _ => return Ok(None),
        };

        let mut flush = Flush::default();
        self.check(&(page..page + PAGE_SIZE))?;
        let leaf = Leaf::Guest {
            prot: vma_prot,
            exec: to_exec,
        };
        self.apply(0, 0, 0, page..page + PAGE_SIZE, leaf, &mut flush)?;
        if to_exec {
            self.exec_pages.insert(page);
            flush.icache = true;
        } else {
            self.exec_pages.remove(&page);
        }
        Ok(Some(flush))
    }

    /// Translates `va` as the MMU would, reading only the descriptors.
    pub fn walk(&self, va: u64) -> Option<Translation> {
        if va >> VA_BITS != 0 {
            return None;
        }
        let mut table = self.table_at(self.tables_ipa)?;
        for level in 0..4 {
            let index = ((va >> level_shift(level)) as usize) & (ENTRIES - 1);
            let d = table[index];
            if d & desc::VALID == 0 {
                return None;
            }
            let is_table = d & desc::TABLE_OR_PAGE != 0;
            if level < 3 && is_table {
                table = self.table_at(d & desc::OA_MASK)?;
                continue;
            }
            if (level == 3 && !is_table) || level == 0 {
                // Reserved encodings: a level-3 "block", a level-0 block.
                return None;
            }
            let size = level_size(level);
            let mut prot = Prot::READ;
            if d & desc::AP_EL0 == 0 {
                prot = Prot::empty();
            } else if d & desc::AP_RO == 0 {
                prot |= Prot::WRITE;
            }
            if d & desc::UXN == 0 {
                prot |= Prot::EXEC;
            }
            return Some(Translation {
                ipa: (d & desc::OA_MASK & !(size - 1)) + (va & (size - 1)),
                level,
                prot,
                attrs: d & !desc::OA_MASK & !(desc::VALID | desc::TABLE_OR_PAGE),
            });
        }
        None
    }

    // ---- the edit ------------------------------------------------------------------------

    fn check(&self, range: &Range<u64>) -> Result<(), PageTableError> {
        let aligned = range.start.is_multiple_of(PAGE_SIZE) && range.end.is_multiple_of(PAGE_SIZE);
        if range.start >= range.end || !aligned {
            return Err(PageTableError::Unaligned(range.start, range.end));
        }
        if range.start < self.window.guest.start || range.end > self.window.guest.end {
            return Err(PageTableError::OutsideWindow(range.start, range.end));
        }
        Ok(())
    }

    fn set(&mut self, range: Range<u64>, prot: Prot) -> Result<Flush, PageTableError> {
        self.check(&range)?;
        let stale: Vec<u64> = self.exec_pages.range(range.clone()).copied().collect();
        for page in stale {
            self.exec_pages.remove(&page);
        }
        let mut flush = Flush::default();
        let leaf = Leaf::Guest { prot, exec: false };
        self.apply(0, 0, 0, range, leaf, &mut flush)?;
        Ok(flush)
    }

    /// Maps every page of `range` (inside table `table` at `level`, which covers guest
    /// addresses from `base`) as `leaf` says.
    fn apply(
        &mut self,
        table: usize,
        level: usize,
        base: u64,
        range: Range<u64>,
        leaf: Leaf,
        flush: &mut Flush,
    ) -> Result<(), PageTableError> {
        let size = level_size(level);
        let first = ((range.start - base) / size) as usize;
        let last = ((range.end - 1 - base) / size) as usize;
        for index in first..=last {
            let entry_va = base + index as u64 * size;
            let part = range.start.max(entry_va)..range.end.min(entry_va + size);
            let whole = part == (entry_va..entry_va + size);
            let old = self.tables[table][index];

            // A leaf (or nothing) for the whole entry.
            if let Some(new) = self.leaf_for(level, entry_va, whole, leaf) {
                if new != old {
                    if let Kind::Table(child) = self.kind(old, level) {
                        self.free_subtree(child, level + 1);
                    }
                    self.write(table, index, new);
                    if old & desc::VALID != 0 {
                        flush.add(entry_va..entry_va + size);
                    }
                }
                continue;
            }

            // Otherwise descend, making the entry a table first.
            let child = match self.kind(old, level) {
                Kind::Table(child) => child,
                Kind::Invalid if leaf == Leaf::NONE => continue,
                Kind::Invalid => self.alloc()?,
                Kind::Leaf => {
                    // Splitting a block: its translations are unchanged, but the block entry
                    // must leave the TLBs before page entries for the same addresses arrive.
                    flush.add(entry_va..entry_va + size);
                    self.split(old, level)?
                }
            };
            self.write(table, index, self.table_desc(child));
            self.apply(child, level + 1, entry_va, part, leaf, flush)?;
            self.collapse(table, index, level, entry_va, flush);
        }
        Ok(())
    }

    /// The leaf descriptor (0 for none) that covers the whole entry at `va` on `level`, if one
    /// can: `None` means descend.
    fn leaf_for(&self, level: usize, va: u64, whole: bool, leaf: Leaf) -> Option<u64> {
        if !whole {
            return None;
        }
        if leaf == Leaf::NONE {
            return Some(0);
        }
        let size = level_size(level);
        let (ipa, attrs) = match leaf {
            Leaf::Guest { prot, exec } => {
                let wx = prot.contains(Prot::WRITE | Prot::EXEC);
                if wx && level != 3 && !self.no_exec_pages(va, size) {
                    return None;
                }
                (self.window.ipa(va)?, guest_attrs(prot, exec))
            }
            Leaf::Runtime { code } => (va, runtime_attrs(code)),
        };
        if level == 0 || !ipa.is_multiple_of(size) {
            return None;
        }
        let kind = if level == 3 {
            desc::VALID | desc::TABLE_OR_PAGE
        } else {
            desc::VALID
        };
        Some(kind | ipa | attrs)
    }

    fn no_exec_pages(&self, va: u64, size: u64) -> bool {
        self.exec_pages.range(va..va + size).next().is_none()
    }

    fn kind(&self, d: u64, level: usize) -> Kind {
        if d & desc::VALID == 0 {
            Kind::Invalid
        } else if level < 3 && d & desc::TABLE_OR_PAGE != 0 {
            Kind::Table(((d & desc::OA_MASK) - self.tables_ipa) as usize / PAGE_SIZE as usize)
        } else {
            Kind::Leaf
        }
    }

    fn table_desc(&self, index: usize) -> u64 {
        (self.tables_ipa + index as u64 * PAGE_SIZE) | desc::VALID | desc::TABLE_OR_PAGE
    }

    /// A new table holding the translations of block `block` (at `level`) one level down.
    fn split(&mut self, block: u64, level: usize) -> Result<usize, PageTableError> {
        let child = self.alloc()?;
        let attrs = block & !desc::OA_MASK & !(desc::VALID | desc::TABLE_OR_PAGE);
        let kind = if level + 1 == 3 {
            desc::VALID | desc::TABLE_OR_PAGE
        } else {
            desc::VALID
        };
        let oa = block & desc::OA_MASK & !(level_size(level) - 1);
        let step = level_size(level + 1);
        for i in 0..ENTRIES {
            self.tables[child][i] = kind | attrs | (oa + i as u64 * step);
        }
        Ok(child)
    }

    /// Replaces the table under entry `index` of `table` by nothing or by one block when its
    /// entries allow it.
    fn collapse(&mut self, table: usize, index: usize, level: usize, va: u64, flush: &mut Flush) {
        let Kind::Table(child) = self.kind(self.tables[table][index], level) else {
            return;
        };
        let entries = &self.tables[child];
        let replacement = if entries.iter().all(|&d| d & desc::VALID == 0) {
            0
        } else if level == 1 || level == 2 {
            let leaf_type = if level + 1 == 3 {
                desc::VALID | desc::TABLE_OR_PAGE
            } else {
                desc::VALID
            };
            let first = entries[0];
            let attrs = first & !desc::OA_MASK & !(desc::VALID | desc::TABLE_OR_PAGE);
            let oa = first & desc::OA_MASK;
            let step = level_size(level + 1);
            let uniform = first & (desc::VALID | desc::TABLE_OR_PAGE) == leaf_type
                && oa.is_multiple_of(level_size(level))
                && entries
                    .iter()
                    .enumerate()
                    .all(|(i, &d)| d == leaf_type | attrs | (oa + i as u64 * step));
            if !uniform {
                return;
            }
            desc::VALID | attrs | oa
        } else {
            return;
        };
        self.free_subtree(child, level + 1);
        self.write(table, index, replacement);
        flush.add(va..va + level_size(level));
    }

    fn alloc(&mut self) -> Result<usize, PageTableError> {
        let index = match self.free.pop() {
            Some(index) => index,
            None if self.tables.len() < self.max_tables => {
                self.tables.push(Box::new([0; ENTRIES]));
                self.tables.len() - 1
            }
            None => return Err(PageTableError::ArenaFull(self.max_tables)),
        };
        self.dirty.insert(index);
        Ok(index)
    }

    /// Returns table `index` (at `level`) and every table below it to the free list.
    fn free_subtree(&mut self, index: usize, level: usize) {
        if level < 3 {
            for i in 0..ENTRIES {
                if let Kind::Table(child) = self.kind(self.tables[index][i], level) {
                    self.free_subtree(child, level + 1);
                }
            }
        }
        *self.tables[index] = [0; ENTRIES];
        self.dirty.insert(index);
        self.free.push(index);
    }

    fn write(&mut self, table: usize, index: usize, value: u64) {
        self.tables[table][index] = value;
        self.dirty.insert(table);
    }
}

/// What one leaf descriptor maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaf {
    /// Guest memory EL0 may access with `prot`; with both write and execute, executable
    /// rather than writable if `exec`.
    Guest { prot: Prot, exec: bool },
    /// The runtime area at the same IPA, for the shim at EL1 only: its code (EL1 read-only
    /// and executable) or its data (EL1 read-write).
    Runtime { code: bool },
}

impl Leaf {
    /// Nothing mapped.
    const NONE: Leaf = Leaf::Guest {
        prot: Prot::empty(),
        exec: false,
    };
}

/// The leaf attribute bits for the runtime area: `AP[1]` = 0 keeps EL0 out.
fn runtime_attrs(code: bool) -> u64 {
    let common = desc::AF | desc::SH_INNER | desc::ATTR_INDX_NORMAL | desc::UXN;
    if code {
        common | desc::AP_RO
    } else {
        common | desc::PXN
    }
}

/// The leaf attribute bits (everything but the type and address bits) for EL0 access `prot`.
fn guest_attrs(prot: Prot, exec: bool) -> u64 {
    let mut attrs = desc::AF | desc::SH_INNER | desc::ATTR_INDX_NORMAL | desc::AP_EL0 | desc::PXN;
    let (write, run) = match (prot.contains(Prot::WRITE), prot.contains(Prot::EXEC)) {
        (true, true) => (!exec, exec),
        other => other,
    };
    if !write {
        attrs |= desc::AP_RO;
    }
    if !run {
        attrs |= desc::UXN;
    }
    attrs
}

#[cfg(test)]
// A flush of one range is a one-element list of ranges, not a mistaken range of elements.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use crate::vm::memory::GuestMemory;
    use crate::vm::vma::{Vma, VmaMap};

    const P: u64 = PAGE_SIZE;
    const MIB2: u64 = 2 << 20;
    const GIB: u64 = 1 << 30;
    const R: Prot = Prot::READ;
    const RW: Prot = Prot::READ.union(Prot::WRITE);
    const RX: Prot = Prot::READ.union(Prot::EXEC);
    const RWX: Prot = Prot::all();
    const TABLES: u64 = 0x40_0000_0000;

    fn stage1(span: u64) -> Stage1 {
        Stage1::new(IpaWindow::identity(span), TABLES, 4096)
    }

    /// What EL0 may do on a page the VMA map gives `prot`, before any W^X flip.
    fn hardware_prot(prot: Prot) -> Prot {
        if prot.is_empty() {
            Prot::empty()
        } else if prot.contains(Prot::WRITE | Prot::EXEC) {
            RW
        } else {
            prot | Prot::READ
        }
    }

    /// Walks every page of `span` and checks it against `map`: translation, protection and
    /// the fixed attributes.
    fn check_against(tables: &Stage1, map: &VmaMap, span: u64) {
        check_with_flips(tables, map, span, &BTreeSet::new());
    }

    /// As [`check_against`], with the pages in `flipped` switched to executable by W^X.
    fn check_with_flips(tables: &Stage1, map: &VmaMap, span: u64, flipped: &BTreeSet<u64>) {
        for va in (0..span).step_by(P as usize) {
            let mut want = map
                .find(va)
                .map(|v| hardware_prot(v.prot))
                .unwrap_or_default();
            if flipped.contains(&va) {
                want = RX;
            }
            match tables.walk(va + 0x123) {
                None => assert!(want.is_empty(), "{va:#x} untranslated, wants {want:?}"),
                Some(t) => {
                    assert_eq!(t.prot, want, "protection of {va:#x}");
                    assert_eq!(t.ipa, va + 0x123, "output address of {va:#x}");
                    let fixed = desc::AF | desc::SH_INNER | desc::AP_EL0 | desc::PXN;
                    assert_eq!(t.attrs & fixed, fixed, "fixed attributes of {va:#x}");
                    assert_eq!(t.attrs & (0b111 << 2), 0, "AttrIndx of {va:#x}");
                }
            }
        }
    }

    /// The tables reachable from the root; every table in use must be one of them.
    fn reachable_tables(tables: &Stage1) -> usize {
        fn count(tables: &Stage1, ipa: u64, level: usize) -> usize {
            let table = tables
                .table_at(ipa)
                .expect("table descriptors point into the arena");
            let below: usize = table
                .iter()
                .filter(|&&d| level < 3 && d & 0b11 == 0b11)
                .map(|&d| count(tables, d & desc::OA_MASK, level + 1))
                .sum();
            1 + below
        }
        count(tables, tables.ttbr0(), 0)
    }

    #[test]
    fn an_aligned_rw_range_becomes_2mib_blocks_with_architectural_descriptors() {
        let mut s = stage1(GIB);
        let flush = s.map(MIB2..3 * MIB2, RW).unwrap();
        assert!(
            flush.is_empty(),
            "nothing was mapped before: nothing to invalidate"
        );

        // Root entry 0 and level-1 entry 0 are table descriptors; level-2 entries 1 and 2 are
        // blocks: valid, block type, AP[1] = 1, inner shareable, AF, PXN, UXN.
        let root = s.table_at(s.ttbr0()).unwrap();
        assert_eq!(root[0] & 0b11, 0b11);
        let l1 = s.table_at(root[0] & desc::OA_MASK).unwrap();
        let l2 = s.table_at(l1[0] & desc::OA_MASK).unwrap();
        assert_eq!(l2[0], 0);
        assert_eq!(l2[1], 0x0060_0000_0020_0741);
        assert_eq!(l2[2], 0x0060_0000_0040_0741);
        assert_eq!(l2[3], 0);

        let t = s.walk(MIB2 + 0x1234).unwrap();
        assert_eq!((t.ipa, t.level, t.prot), (MIB2 + 0x1234, 2, RW));
    }

    #[test]
    fn read_only_and_executable_pages_set_ap2_and_clear_uxn() {
        let mut s = stage1(GIB);
        s.map(0x1000..0x2000, R).unwrap();
        s.map(0x2000..0x3000, RX).unwrap();
        let root = s.table_at(s.ttbr0()).unwrap();
        let l1 = s.table_at(root[0] & desc::OA_MASK).unwrap();
        let l2 = s.table_at(l1[0] & desc::OA_MASK).unwrap();
        let l3 = s.table_at(l2[0] & desc::OA_MASK).unwrap();
        // Page descriptors (type 0b11), AP = 0b11 (EL0 read-only).
        assert_eq!(l3[1], 0x0060_0000_0000_17c3);
        assert_eq!(l3[2], 0x0020_0000_0000_27c3);
        assert_eq!(s.walk(0x2000).unwrap().prot, RX);
        assert_eq!(s.walk(0x1000).unwrap().level, 3);
    }

    #[test]
    fn a_gib_aligned_range_uses_a_1gib_block_and_edges_use_smaller_leaves() {
        let mut s = stage1(4 * GIB);
        s.map(GIB - 3 * P..2 * GIB + MIB2 + P, RW).unwrap();
        assert_eq!(s.walk(GIB - 3 * P).unwrap().level, 3);
        assert_eq!(s.walk(GIB).unwrap().level, 1);
        assert_eq!(s.walk(2 * GIB - 1).unwrap().level, 1);
        assert_eq!(s.walk(2 * GIB).unwrap().level, 2);
        assert_eq!(s.walk(2 * GIB + MIB2).unwrap().level, 3);
        assert!(s.walk(2 * GIB + MIB2 + P).is_none());
        assert!(s.walk(GIB - 4 * P).is_none());
    }

    #[test]
    fn mprotect_of_one_page_splits_the_2mib_block_and_merges_it_back() {
        let mut map = VmaMap::new();
        let mut s = stage1(8 * MIB2);
        map.insert(Vma::anonymous(MIB2..2 * MIB2, RW));
        s.map(MIB2..2 * MIB2, RW).unwrap();
        assert_eq!(s.tables_in_use(), 3);

        let page = MIB2 + 37 * P;
        map.protect(page..page + P, R);
        let flush = s.protect(page..page + P, R).unwrap();
        // The old block may be cached for the whole 2 MiB.
        assert_eq!(flush.tlb, vec![MIB2..2 * MIB2]);
        assert_eq!(s.tables_in_use(), 4);
        assert_eq!(s.walk(page).unwrap().level, 3);
        assert_eq!(s.walk(page + P).unwrap().level, 3);
        check_against(&s, &map, 8 * MIB2);

        map.protect(page..page + P, RW);
        let flush = s.protect(page..page + P, RW).unwrap();
        assert_eq!(flush.tlb, vec![MIB2..2 * MIB2]);
        assert_eq!(s.walk(page).unwrap().level, 2, "uniform again: one block");
        assert_eq!(s.tables_in_use(), 3);
        check_against(&s, &map, 8 * MIB2);
    }

    #[test]
    fn munmap_inside_a_block_punches_a_hole_and_keeps_the_rest() {
        let mut map = VmaMap::new();
        let mut s = stage1(8 * MIB2);
        map.insert(Vma::anonymous(0..4 * MIB2, RX));
        s.map(0..4 * MIB2, RX).unwrap();
        let hole = MIB2 + 100 * P..MIB2 + 103 * P;
        map.remove(hole.clone());
        let flush = s.unmap(hole.clone()).unwrap();
        assert_eq!(flush.tlb, vec![MIB2..2 * MIB2]);
        assert!(s.walk(hole.start).is_none());
        assert!(s.walk(hole.end - 1).is_none());
        assert_eq!(s.walk(hole.end).unwrap().prot, RX);
        check_against(&s, &map, 8 * MIB2);

        // Unmapping everything gives every table back but the root.
        s.unmap(0..8 * MIB2).unwrap();
        assert_eq!(s.tables_in_use(), 1);
        assert!(s.table_at(s.ttbr0()).unwrap().iter().all(|&d| d == 0));
    }

    #[test]
    fn random_edits_always_match_the_vma_map() {
        let span = 8 * MIB2;
        let mut map = VmaMap::new();
        let mut s = stage1(span);
        let prots = [Prot::empty(), R, RW, RX, RWX];
        let mut flipped = BTreeSet::new();
        let mut flips = 0;
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for step in 0..200 {
            // Ranges of up to 3 MiB, often block-aligned.
            let start = if next(3) == 0 {
                next(span / MIB2) * MIB2
            } else {
                next(span / P) * P
            };
            let len = (next(768) + 1) * P;
            let range = start..(start + len).min(span);
            let prot = prots[next(5) as usize];
            let op = next(4);
            if op != 3 {
                flipped.retain(|page| !range.contains(page));
            }
            match op {
                3 => {
                    // The guest runs or writes a page of a writable-and-executable mapping.
                    let page = start;
                    let vma_prot = map.find(page).map(|v| v.prot).unwrap_or_default();
                    let access = if flipped.contains(&page) {
                        Access::Write
                    } else {
                        Access::Execute
                    };
                    let flip = s.resolve_wx_fault(page, access, vma_prot).unwrap();
                    assert_eq!(flip.is_some(), vma_prot == RWX, "a flip only for W|X pages");
                    if flip.is_some() {
                        flips += 1;
                        if !flipped.remove(&page) {
                            flipped.insert(page);
                        }
                    }
                }
                0 => {
                    map.remove(range.clone());
                    s.unmap(range.clone()).unwrap();
                }
                1 if map.is_fully_mapped(range.clone()) => {
                    map.protect(range.clone(), prot);
                    s.protect(range.clone(), prot).unwrap();
                }
                _ => {
                    map.insert(Vma::anonymous(range.clone(), prot));
                    s.map(range.clone(), prot).unwrap();
                }
            }
            if step % 10 == 9 {
                check_with_flips(&s, &map, span, &flipped);
                assert_eq!(reachable_tables(&s), s.tables_in_use(), "no table leaks");
            }
        }
        check_with_flips(&s, &map, span, &flipped);
        assert!(flips >= 5, "the sequence exercised W^X flips ({flips})");
        s.unmap(0..span).unwrap();
        assert_eq!(s.tables_in_use(), 1);
    }

    #[test]
    fn flushes_cover_exactly_the_pages_that_were_valid() {
        let mut s = stage1(GIB);
        s.map(0x10000..0x14000, RW).unwrap();
        let flush = s.unmap(0x12000..0x16000).unwrap();
        assert_eq!(flush.tlb, vec![0x12000..0x14000]);
        assert_eq!(flush.pages(), 2);
        assert!(!flush.icache);
    }

    #[test]
    fn a_wx_page_starts_writable_and_flips_on_the_faulting_access() {
        let mut s = stage1(GIB);
        s.map(MIB2..2 * MIB2, RWX).unwrap();
        let page = MIB2 + 5 * P;
        assert_eq!(s.walk(page).unwrap().prot, RW);

        // The guest jumps to code it wrote: that page alone becomes executable.
        let flush = s
            .resolve_wx_fault(page + 8, Access::Execute, RWX)
            .unwrap()
            .unwrap();
        assert!(flush.icache);
        assert_eq!(flush.tlb, vec![MIB2..2 * MIB2]);
        assert_eq!(s.walk(page).unwrap().prot, RX);
        assert_eq!(s.walk(page + P).unwrap().prot, RW);

        // It writes there again: writable, not executable.
        let flush = s
            .resolve_wx_fault(page, Access::Write, RWX)
            .unwrap()
            .unwrap();
        assert!(!flush.icache);
        assert_eq!(s.walk(page).unwrap().prot, RW);

        // Faults the policy did not cause are the guest's.
        assert_eq!(s.resolve_wx_fault(page, Access::Write, RWX), Ok(None));
        assert_eq!(s.resolve_wx_fault(page, Access::Execute, RW), Ok(None));
        assert_eq!(s.resolve_wx_fault(page, Access::Read, RWX), Ok(None));
    }

    #[test]
    fn mprotect_resets_flipped_pages_to_writable() {
        let mut s = stage1(GIB);
        s.map(0..4 * P, RWX).unwrap();
        s.resolve_wx_fault(P, Access::Execute, RWX).unwrap();
        assert_eq!(s.walk(P).unwrap().prot, RX);
        s.protect(0..4 * P, RWX).unwrap();
        assert_eq!(s.walk(P).unwrap().prot, RW);
    }

    #[test]
    fn an_offset_window_translates_and_blocks_only_where_the_ipa_is_aligned() {
        let window = IpaWindow {
            guest: 0..GIB,
            offset: 0x1000_0000 + P,
        };
        let mut s = Stage1::new(window, TABLES, 64);
        s.map(0..MIB2, RW).unwrap();
        let t = s.walk(MIB2 - 1).unwrap();
        assert_eq!(t.ipa, 0x1000_0000 + P + MIB2 - 1);
        assert_eq!(t.level, 3, "the IPA is not 2 MiB aligned");
    }

    #[test]
    fn bad_ranges_and_a_full_arena_are_refused() {
        let mut s = Stage1::new(IpaWindow::identity(GIB), TABLES, 3);
        assert_eq!(
            s.map(0x1000..0x1800, RW),
            Err(PageTableError::Unaligned(0x1000, 0x1800))
        );
        assert_eq!(
            s.map(0x1000..0x1000, RW),
            Err(PageTableError::Unaligned(0x1000, 0x1000))
        );
        assert_eq!(
            s.map(GIB - P..GIB + P, RW),
            Err(PageTableError::OutsideWindow(GIB - P, GIB + P))
        );
        // Root, level 1 and level 2 fit; a level-3 table does not.
        assert_eq!(s.map(0..MIB2, RW).map(|f| f.is_empty()), Ok(true));
        assert_eq!(s.map(MIB2..MIB2 + P, RW), Err(PageTableError::ArenaFull(3)));
    }

    #[test]
    fn the_runtime_area_is_mapped_for_el1_only_next_to_the_guest() {
        let layout = crate::vm::hvf::layout::IpaLayout::new(36).unwrap();
        let window = IpaWindow::identity(layout.guest.end);
        let mut s = Stage1::new(window, layout.tables.start, layout.max_tables());
        s.map(0x40_0000..0x40_1000, RX).unwrap();
        s.map_runtime(layout.shim.clone(), true).unwrap();
        s.map_runtime(layout.vcpu_slots.clone(), false).unwrap();

        // Shim code: AP = 0b10 (EL1 read-only, EL0 nothing), UXN, PXN clear.
        let code = s.walk(layout.shim.start + 0x800).unwrap();
        assert_eq!(code.ipa, layout.shim.start + 0x800);
        assert_eq!(code.prot, Prot::empty());
        assert_eq!(code.attrs & (desc::AP_EL0 | desc::AP_RO), desc::AP_RO);
        assert_eq!(code.attrs & (desc::UXN | desc::PXN), desc::UXN);
        // Mailboxes and stacks: AP = 0b00 (EL1 read-write), never executable.
        let data = s.walk(layout.mailbox(3)).unwrap();
        assert_eq!(data.prot, Prot::empty());
        assert_eq!(data.attrs & (desc::AP_EL0 | desc::AP_RO), 0);
        assert_eq!(data.attrs & (desc::UXN | desc::PXN), desc::UXN | desc::PXN);
        assert_eq!(s.walk(0x40_0000).unwrap().prot, RX);

        assert_eq!(
            s.map_runtime(layout.guest.end - P..layout.guest.end + P, false),
            Err(PageTableError::InsideWindow(
                layout.guest.end - P,
                layout.guest.end + P
            ))
        );
    }

    #[test]
    fn dirty_tables_are_reported_once_with_their_ipas() {
        let mut s = stage1(GIB);
        s.take_dirty();
        s.map(0..P, RW).unwrap();
        let dirty: Vec<u64> = s.take_dirty().into_iter().map(|(ipa, _)| ipa).collect();
        assert_eq!(
            dirty,
            vec![TABLES, TABLES + P, TABLES + 2 * P, TABLES + 3 * P]
        );
        assert!(s.take_dirty().is_empty());
    }

    /// Guest memory on a simulated 16 KiB host page: the events of a 4 KiB `mprotect` and
    /// `munmap` inside one host page drive the tables to per-4 KiB protections, and the host
    /// bytes of the neighbouring guest pages survive.
    #[test]
    fn four_k_guest_pages_inside_a_16k_host_page_keep_their_own_protection() {
        let host_page = 16 * 1024;
        let mem = GuestMemory::with_host_page(64 * MIB2, host_page).unwrap();
        let mut cursor = mem.cursor();
        let mut s = stage1(64 * MIB2);
        let base = 0x40_0000;
        mem.map(Vma::anonymous(base..base + 4 * host_page, RW));
        mem.write(base, &vec![7u8; (4 * host_page) as usize])
            .unwrap();

        // The second 4 KiB page of the first host page: read-only; the third: unmapped.
        mem.protect(base + P..base + 2 * P, R);
        mem.unmap(base + 2 * P..base + 3 * P);
        let mut flush = Flush::default();
        for event in mem.take_events(&mut cursor) {
            flush.merge(s.apply_event(&event).unwrap());
        }
        // Only the two changed 4 KiB pages leave the TLB, not their whole host page.
        assert_eq!(flush.tlb, vec![base + P..base + 3 * P]);
        assert!(!flush.icache);

        assert_eq!(s.walk(base).unwrap().prot, RW);
        assert_eq!(s.walk(base + P).unwrap().prot, R);
        assert!(s.walk(base + 2 * P).is_none());
        assert_eq!(s.walk(base + 3 * P).unwrap().prot, RW);
        check_against(&s, &mem.vmas(), 64 * MIB2);

        let mut bytes = [0u8; 2];
        mem.read(base + P - 1, &mut bytes).unwrap();
        assert_eq!(bytes, [7, 7]);
        assert_eq!(mem.read_val::<u8>(base + 3 * P).unwrap(), 7);
        assert!(mem.read_val::<u8>(base + 2 * P).is_err());
        mem.map(Vma::anonymous(base + 2 * P..base + 3 * P, RW));
        assert_eq!(
            mem.read_val::<u8>(base + 2 * P).unwrap(),
            0,
            "a fresh page is zero"
        );
    }
}
