//! The ELF loader: places a validated executable (and, for dynamically linked programs, its
//! interpreter) in guest memory the way Linux's `binfmt_elf` does, and builds the initial stack.
//!
//! Segments are copied from the file into fresh private pages, page-aligned as `mmap` would
//! place them: the bytes around a segment in its first and last page come from the file, the
//! rest of its last file page is zeroed, and anonymous pages cover the remainder of `p_memsz`.

pub mod elf;
pub mod stack;

use std::sync::Arc;

use crate::vm::memory::GuestMemory;
use crate::vm::vma::{Backing, FileMapping, PAGE_SIZE, Vma, page_align_down, page_align_up};

pub use self::elf::{ElfFile, LoaderError};

/// Where an image ended up in guest memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedImage {
    /// Added to every virtual address in the file (0 for `ET_EXEC`).
    pub bias: u64,
    /// The relocated entry point.
    pub entry: u64,
    /// Guest address of the program headers (`AT_PHDR`), 0 if not mapped.
    pub phdr: u64,
    /// Number of program headers (`AT_PHNUM`).
    pub phnum: u16,
    /// First mapped address.
    pub start: u64,
    /// One past the last mapped address (page-aligned): where `brk` starts for a program.
    pub end: u64,
}

/// The relocated span of `elf`'s segments: `(lowest page, end)` before adding a bias.
pub fn image_span(elf: &ElfFile) -> (u64, u64) {
    let low = page_align_down(elf.segments[0].vaddr);
    let high = elf
        .segments
        .iter()
        .map(|s| s.vaddr + s.memsz)
        .max()
        .unwrap_or(low);
    (low, page_align_up(high).unwrap_or(u64::MAX))
}

/// Maps `elf` into `memory` with load bias `bias`. `path` and the file identity label the
/// mappings (`/proc/self/maps`).
pub fn map_image(
    memory: &GuestMemory,
    elf: &ElfFile,
    bias: u64,
    file: Arc<FileMapping>,
) -> Result<LoadedImage, LoaderError> {
    let (low, high) = image_span(elf);
    let (start, end) = match (low.checked_add(bias), high.checked_add(bias)) {
        (Some(start), Some(end)) if memory.contains(&(start..end)) && start >= PAGE_SIZE => {
            (start, end)
        }
        _ => {
            return Err(LoaderError::Corrupt(format!(
                "the program wants addresses {:#x}..{:#x}, outside the guest address space",
                low.wrapping_add(bias),
                high.wrapping_add(bias)
            )));
        }
    };

    for seg in &elf.segments {
        let vaddr = seg.vaddr + bias;
        let map_start = page_align_down(vaddr);
        let file_end = vaddr + seg.filesz;
        let mem_end = page_align_up(vaddr + seg.memsz).unwrap_or(end);
        let file_pages_end = page_align_up(file_end).unwrap_or(end).max(map_start);

        // The file-backed pages, then anonymous pages for the rest of the bss.
        if file_pages_end > map_start {
            let mut vma = Vma::anonymous(map_start..file_pages_end, seg.prot);
            vma.backing = Backing::File(file.clone());
            vma.offset = page_align_down(seg.offset);
            memory.map(vma);
            let lead = vaddr - map_start;
            let from = (seg.offset - lead) as usize;
            let to = (seg.offset + seg.filesz) as usize;
            memory
                .host_range(map_start..map_start + (to - from) as u64)
                .write(&elf.bytes[from..to]);
        }
        if mem_end > file_pages_end {
            memory.map(Vma::anonymous(file_pages_end..mem_end, seg.prot));
        }
    }

    let phdr = elf.phdr_vaddr.map(|v| v + bias).unwrap_or(0);
    Ok(LoadedImage {
        bias,
        entry: elf.entry + bias,
        phdr,
        phnum: elf.phnum,
        start,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::vma::Prot;

    #[test]
    fn segments_land_at_their_addresses_with_bss_zeroed() {
        let memory = GuestMemory::new(1 << 32).unwrap();
        let mut bytes = elf::tests::tiny_elf();
        bytes.resize(0x2100, 0xaa);
        // Grow the first segment over the (now longer) program header table.
        bytes[64 + 32..64 + 40].copy_from_slice(&0x100u64.to_le_bytes());
        bytes[64 + 40..64 + 48].copy_from_slice(&0x100u64.to_le_bytes());
        // Second segment: RW, file bytes 0x2000..0x2100 at 0x402000, memsz 0x3000.
        let phnum = 2u16;
        bytes[56..58].copy_from_slice(&phnum.to_le_bytes());
        let ph = 64 + 56;
        bytes[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
        bytes[ph + 4..ph + 8].copy_from_slice(&6u32.to_le_bytes());
        bytes[ph + 8..ph + 16].copy_from_slice(&0x2000u64.to_le_bytes());
        bytes[ph + 16..ph + 24].copy_from_slice(&0x402000u64.to_le_bytes());
        bytes[ph + 32..ph + 40].copy_from_slice(&0x100u64.to_le_bytes());
        bytes[ph + 40..ph + 48].copy_from_slice(&0x3000u64.to_le_bytes());
        let elf = elf::parse(bytes).unwrap();

        let file = Arc::new(FileMapping::named("/t".into(), 0, 0));
        let image = map_image(&memory, &elf, 0, file).unwrap();
        assert_eq!((image.start, image.end), (0x400000, 0x405000));
        assert_eq!(image.phdr, 0x400040);
        assert_eq!(memory.read_val::<[u8; 4]>(0x400000).unwrap(), *b"\x7fELF");
        assert_eq!(memory.read_val::<u8>(0x4020ff).unwrap(), 0xaa);
        assert_eq!(
            memory.read_val::<u8>(0x402100).unwrap(),
            0,
            "rest of the page is zero"
        );
        assert_eq!(memory.read_val::<u8>(0x404fff).unwrap(), 0, "bss is zero");
        let vmas = memory.vmas();
        let shape: Vec<(u64, u64, Prot, bool)> = vmas
            .iter()
            .map(|v| {
                (
                    v.start,
                    v.end,
                    v.prot,
                    matches!(v.backing, Backing::File(_)),
                )
            })
            .collect();
        let rw = Prot::READ | Prot::WRITE;
        assert_eq!(
            shape,
            vec![
                (0x400000, 0x401000, Prot::READ | Prot::EXEC, true),
                (0x402000, 0x403000, rw, true),
                (0x403000, 0x405000, rw, false),
            ]
        );
    }
}
