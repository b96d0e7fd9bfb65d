//! The guest address-space layout and the program break.
//!
//! The layout mirrors Linux arm64's, scaled to the guest span the host reserves: the stack at
//! the top, `mmap` allocations top-down below a gap under it, position-independent programs at
//! two thirds of the span, and `brk` growing up from the end of the program's data.
//! Addresses are not randomized, which keeps runs reproducible; `AT_RANDOM` still is.

use std::ops::Range;

use crate::kernel::abi::errno::{Errno, SysResult};
use crate::vm::memory::GuestMemory;
use crate::vm::vma::{PAGE_SIZE, Prot, Vma, page_align_up};

/// The lowest address a mapping may use (Linux's default `vm.mmap_min_addr`).
pub const MMAP_MIN_ADDR: u64 = 0x10000;

/// The stack size when `RLIMIT_STACK` is unlimited or huge.
pub const DEFAULT_STACK: u64 = 8 << 20;

/// Where things go in the guest address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Size of the guest address space.
    pub span: u64,
    /// One past the highest stack address.
    pub stack_top: u64,
    /// Bytes reserved for the main thread's stack.
    pub stack_size: u64,
    /// `mmap` allocates below this address, top-down.
    pub mmap_base: u64,
    /// Load address of position-independent programs (`ELF_ET_DYN_BASE`).
    pub dyn_base: u64,
}

impl Layout {
    /// The layout for a span of `span` bytes and a stack limit of `stack_limit`.
    pub fn new(span: u64, stack_limit: u64) -> Layout {
        let stack_size =
            page_align_up(stack_limit.clamp(128 << 10, 1 << 30)).unwrap_or(DEFAULT_STACK);
        let stack_top = span;
        // Like Linux: a gap of at least 128 MiB (and the stack limit) plus a guard gap.
        let gap = stack_size.max(128 << 20) + (1 << 20);
        let mmap_base = stack_top - gap;
        let dyn_base = (span / 3 * 2) & !((1 << 20) - 1);
        Layout {
            span,
            stack_top,
            stack_size,
            mmap_base,
            dyn_base,
        }
    }

    /// The stack's address range.
    pub fn stack(&self) -> Range<u64> {
        self.stack_top - self.stack_size..self.stack_top
    }
}

/// The program break.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Brk {
    /// Where the heap starts (the end of the program's data, page-aligned).
    pub start: u64,
    /// The current break (any byte address at or above `start`).
    pub current: u64,
}

impl Brk {
    /// A break starting at `start`.
    pub fn new(start: u64) -> Brk {
        Brk {
            start,
            current: start,
        }
    }

    /// `brk(2)`: moves the break to `addr` if possible and returns the break afterwards.
    ///
    /// As on Linux, a request below the start or one that would collide with another mapping
    /// leaves the break unchanged, and the (unchanged) break is returned instead of an error.
    pub fn set(&mut self, memory: &GuestMemory, layout: &Layout, addr: u64) -> u64 {
        if addr < self.start {
            return self.current;
        }
        let (Some(old_end), Some(new_end)) = (page_align_up(self.current), page_align_up(addr))
        else {
            return self.current;
        };
        if new_end > old_end {
            // Keep a guard page below the stack and stay inside the address space.
            let limit = layout.stack().start - PAGE_SIZE;
            if new_end > limit || !memory.vmas().is_free(old_end..new_end) {
                return self.current;
            }
            let mut vma = Vma::anonymous(old_end..new_end, Prot::READ | Prot::WRITE);
            vma.label = Some("[heap]");
            memory.map(vma);
        } else if new_end < old_end {
            memory.unmap(new_end..old_end);
        }
        self.current = addr;
        self.current
    }
}

/// Finds room for a new mapping of `len` bytes: at `hint` if that is free and usable,
/// otherwise the highest free range below the `mmap` base (then anywhere above the minimum).
pub fn find_free(memory: &GuestMemory, layout: &Layout, hint: u64, len: u64) -> SysResult<u64> {
    let vmas = memory.vmas();
    if hint != 0 {
        let hint = page_align_up(hint).ok_or(Errno::ENOMEM)?;
        if let Some(end) = hint.checked_add(len)
            && hint >= MMAP_MIN_ADDR
            && end <= layout.mmap_base
            && vmas.is_free(hint..end)
        {
            return Ok(hint);
        }
    }
    vmas.find_free_top_down(len, MMAP_MIN_ADDR, layout.mmap_base)
        .or_else(|| {
            vmas.find_free_top_down(len, layout.mmap_base, layout.stack().start - PAGE_SIZE)
        })
        .ok_or(Errno::ENOMEM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_keeps_linux_proportions() {
        let layout = Layout::new(1 << 40, 8 << 20);
        assert_eq!(layout.stack(), (1 << 40) - (8 << 20)..1 << 40);
        assert_eq!(layout.mmap_base, (1 << 40) - (129 << 20));
        assert!(layout.dyn_base < layout.mmap_base);
        assert_eq!(layout.dyn_base % (1 << 20), 0);
    }

    #[test]
    fn brk_grows_shrinks_and_refuses_collisions() {
        let memory = GuestMemory::new(1 << 32).unwrap();
        let layout = Layout::new(1 << 32, 8 << 20);
        let mut brk = Brk::new(0x50_0000);
        assert_eq!(
            brk.set(&memory, &layout, 0),
            0x50_0000,
            "brk(0) reports the break"
        );
        assert_eq!(brk.set(&memory, &layout, 0x50_2001), 0x50_2001);
        memory.write(0x50_2000, &[1]).unwrap();
        assert_eq!(brk.set(&memory, &layout, 0x50_1000), 0x50_1000);
        assert_eq!(
            memory.read_val::<u8>(0x50_1000),
            Err(Errno::EFAULT),
            "shrunk pages are gone"
        );
        memory.map(Vma::anonymous(0x60_0000..0x60_1000, Prot::READ));
        assert_eq!(
            brk.set(&memory, &layout, 0x60_0800),
            0x50_1000,
            "collision leaves the break"
        );
        assert_eq!(
            brk.set(&memory, &layout, 0x40_0000),
            0x50_1000,
            "below the start is refused"
        );
        let heap = memory.vmas().find(0x50_0000).map(|v| v.label);
        assert_eq!(heap, Some(Some("[heap]")));
    }

    #[test]
    fn mmap_placement_is_top_down_and_honours_free_hints() {
        let memory = GuestMemory::new(1 << 32).unwrap();
        let layout = Layout::new(1 << 32, 8 << 20);
        let first = find_free(&memory, &layout, 0, 0x3000).unwrap();
        assert_eq!(first, layout.mmap_base - 0x3000);
        memory.map(Vma::anonymous(first..first + 0x3000, Prot::READ));
        assert_eq!(
            find_free(&memory, &layout, 0, 0x1000).unwrap(),
            first - 0x1000
        );
        assert_eq!(
            find_free(&memory, &layout, 0x7000_0000, 0x1000).unwrap(),
            0x7000_0000
        );
        assert_eq!(
            find_free(&memory, &layout, first, 0x1000).unwrap(),
            first - 0x1000
        );
    }
}
