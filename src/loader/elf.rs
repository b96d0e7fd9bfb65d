//! Reading and validating an aarch64 Linux ELF executable.
//!
//! Only what the Linux kernel itself reads is parsed: the ELF header and the program headers
//! (through `goblin`). Section headers are ignored, as the kernel ignores them. Everything a
//! corrupt or hostile file could get wrong is checked here, before any guest memory exists, so
//! the loader never maps nonsense and every rejection names what is wrong.

use std::io::Read;
use std::path::{Path, PathBuf};

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{self, Header};
use goblin::elf::program_header::{self, ProgramHeader};
use thiserror::Error;

use crate::vm::vma::{PAGE_SIZE, Prot, page_align_down};

/// Size of the ELF64 file header.
pub const EHDR_SIZE: usize = 64;
/// Size of one ELF64 program header.
pub const PHDR_SIZE: usize = 56;
/// The largest program image elfuse agrees to load (Linux has no fixed limit; this only stops
/// absurd sizes from corrupt headers).
pub const MAX_IMAGE_SPAN: u64 = 64 << 30;
/// The longest `PT_INTERP` string accepted (Linux's limit is `PATH_MAX`).
const MAX_INTERP_LEN: u64 = 4096;

/// Why a file cannot be loaded.
#[derive(Debug, Error)]
pub enum LoaderError {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The host error.
        source: std::io::Error,
    },
    /// The file does not start with the ELF magic.
    #[error("not an ELF executable")]
    NotElf,
    /// A 32-bit ELF.
    #[error("32-bit ELF executables are not supported (elfuse runs 64-bit aarch64 programs)")]
    Not64Bit,
    /// A big-endian ELF.
    #[error("big-endian ELF executables are not supported")]
    BigEndian,
    /// An ELF for another machine.
    #[error("this is an ELF executable for {0}, not aarch64")]
    WrongMachine(String),
    /// Not an executable or shared object (a relocatable object or core dump).
    #[error("ELF type {0} is not executable")]
    NotExecutable(&'static str),
    /// The file ends before the data its headers describe.
    #[error("truncated ELF file: {0}")]
    Truncated(String),
    /// The headers contradict themselves or ask for impossible memory.
    #[error("corrupt ELF file: {0}")]
    Corrupt(String),
}

impl LoaderError {
    fn io(path: &Path, source: std::io::Error) -> LoaderError {
        LoaderError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One `PT_LOAD` segment, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Virtual address before relocation.
    pub vaddr: u64,
    /// Bytes in memory.
    pub memsz: u64,
    /// File offset of the first byte.
    pub offset: u64,
    /// Bytes taken from the file.
    pub filesz: u64,
    /// Protection from `p_flags`.
    pub prot: Prot,
}

/// A validated ELF executable, with its file contents.
#[derive(Debug)]
pub struct ElfFile {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// `ET_DYN` (position independent) rather than `ET_EXEC`.
    pub position_independent: bool,
    /// `e_entry`, before relocation.
    pub entry: u64,
    /// Loadable segments in address order.
    pub segments: Vec<Segment>,
    /// Virtual address of the program headers in memory, before relocation, if mapped.
    pub phdr_vaddr: Option<u64>,
    /// `e_phnum`.
    pub phnum: u16,
    /// The `PT_INTERP` path, for dynamically linked programs.
    pub interpreter: Option<Vec<u8>>,
    /// The largest `p_align` of the loadable segments (at least a page).
    pub max_align: u64,
}

/// Reads the first bytes of `path` and tells whether it is an aarch64 Linux ELF executable,
/// without reading the rest (for the launcher and `execve`).
pub fn probe(path: &Path) -> Result<(), LoaderError> {
    let mut file = std::fs::File::open(path).map_err(|e| LoaderError::io(path, e))?;
    let mut head = Vec::with_capacity(EHDR_SIZE);
    file.by_ref()
        .take(EHDR_SIZE as u64)
        .read_to_end(&mut head)
        .map_err(|e| LoaderError::io(path, e))?;
    check_header(&head).map(|_| ())
}

/// The `PT_INTERP` of the aarch64 ELF executable at `path` (`None` for a static program),
/// reading only the headers and the interpreter's name (for the launcher, which chooses a
/// sysroot before the program is loaded).
pub fn interpreter(path: &Path) -> Result<Option<Vec<u8>>, LoaderError> {
    use std::os::unix::fs::FileExt;

    let file = std::fs::File::open(path).map_err(|e| LoaderError::io(path, e))?;
    let read_at = |len: usize, offset: u64, what: &str| {
        let mut buf = vec![0; len];
        match file.read_exact_at(&mut buf, offset) {
            Ok(()) => Ok(buf),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(LoaderError::Truncated(
                format!("{what} lies past the end of the file"),
            )),
            Err(e) => Err(LoaderError::io(path, e)),
        }
    };

    let mut head = Vec::with_capacity(EHDR_SIZE);
    (&file)
        .take(EHDR_SIZE as u64)
        .read_to_end(&mut head)
        .map_err(|e| LoaderError::io(path, e))?;
    let header = check_header(&head)?;
    if usize::from(header.e_phentsize) != PHDR_SIZE {
        return Err(LoaderError::Corrupt(format!(
            "program header entries are {} bytes, not {PHDR_SIZE}",
            header.e_phentsize
        )));
    }
    let count = usize::from(header.e_phnum);
    let table = read_at(
        count * PHDR_SIZE,
        header.e_phoff,
        "the program header table",
    )?;
    let ctx = Ctx::new(Container::Big, Endian::Little);
    let phdrs = ProgramHeader::parse(&table, 0, count, ctx)
        .map_err(|e| LoaderError::Corrupt(format!("unreadable program headers: {e}")))?;

    let Some(ph) = phdrs
        .iter()
        .find(|ph| ph.p_type == program_header::PT_INTERP)
    else {
        return Ok(None);
    };
    if ph.p_filesz < 2 || ph.p_filesz > MAX_INTERP_LEN {
        return Err(LoaderError::Corrupt(format!(
            "PT_INTERP has a bad length {}",
            ph.p_filesz
        )));
    }
    let raw = read_at(ph.p_filesz as usize, ph.p_offset, "PT_INTERP")?;
    let local = ProgramHeader {
        p_offset: 0,
        ..ph.clone()
    };
    read_interp(&local, &raw).map(Some)
}

/// Reads and validates the ELF executable at `path`.
pub fn read(path: &Path) -> Result<ElfFile, LoaderError> {
    let bytes = std::fs::read(path).map_err(|e| LoaderError::io(path, e))?;
    parse(bytes)
}

/// Checks the identification and the fields elfuse depends on.
fn check_header(bytes: &[u8]) -> Result<Header, LoaderError> {
    if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
        return Err(LoaderError::NotElf);
    }
    if bytes.len() < 6 {
        return Err(LoaderError::Truncated(
            "the ELF header is incomplete".into(),
        ));
    }
    match bytes[header::EI_CLASS] {
        header::ELFCLASS64 => {}
        header::ELFCLASS32 => return Err(LoaderError::Not64Bit),
        other => return Err(LoaderError::Corrupt(format!("unknown ELF class {other}"))),
    }
    match bytes[header::EI_DATA] {
        header::ELFDATA2LSB => {}
        header::ELFDATA2MSB => return Err(LoaderError::BigEndian),
        other => {
            return Err(LoaderError::Corrupt(format!(
                "unknown ELF data encoding {other}"
            )));
        }
    }
    if bytes.len() < EHDR_SIZE {
        return Err(LoaderError::Truncated(format!(
            "the ELF header needs {EHDR_SIZE} bytes, the file has {}",
            bytes.len()
        )));
    }
    let header = goblin::elf::Elf::parse_header(bytes)
        .map_err(|e| LoaderError::Corrupt(format!("unreadable ELF header: {e}")))?;
    if header.e_machine != header::EM_AARCH64 {
        return Err(LoaderError::WrongMachine(machine_name(header.e_machine)));
    }
    match header.e_type {
        header::ET_EXEC | header::ET_DYN => {}
        header::ET_REL => return Err(LoaderError::NotExecutable("REL (relocatable object)")),
        header::ET_CORE => return Err(LoaderError::NotExecutable("CORE (core dump)")),
        _ => return Err(LoaderError::NotExecutable("unknown")),
    }
    Ok(header)
}

/// A readable name for `e_machine`.
fn machine_name(machine: u16) -> String {
    match machine {
        header::EM_X86_64 => "x86-64".into(),
        header::EM_386 => "i386".into(),
        header::EM_ARM => "32-bit ARM".into(),
        header::EM_RISCV => "RISC-V".into(),
        header::EM_PPC64 => "PowerPC 64".into(),
        header::EM_S390 => "s390".into(),
        header::EM_MIPS => "MIPS".into(),
        other => format!("machine {other}"),
    }
}

/// Validates `bytes` as an aarch64 executable.
pub fn parse(bytes: Vec<u8>) -> Result<ElfFile, LoaderError> {
    let header = check_header(&bytes)?;
    let file_len = bytes.len() as u64;

    if usize::from(header.e_phentsize) != PHDR_SIZE {
        return Err(LoaderError::Corrupt(format!(
            "program header entries are {} bytes, not {PHDR_SIZE}",
            header.e_phentsize
        )));
    }
    if header.e_phnum == 0 {
        return Err(LoaderError::Corrupt("no program headers".into()));
    }
    let table_len = u64::from(header.e_phnum) * PHDR_SIZE as u64;
    let table_end = header
        .e_phoff
        .checked_add(table_len)
        .ok_or_else(|| LoaderError::Corrupt("the program header table offset overflows".into()))?;
    if table_end > file_len {
        return Err(LoaderError::Truncated(format!(
            "the program header table ends at byte {table_end}, the file has {file_len}"
        )));
    }
    let ctx = Ctx::new(Container::Big, Endian::Little);
    let phdrs = ProgramHeader::parse(
        &bytes,
        header.e_phoff as usize,
        usize::from(header.e_phnum),
        ctx,
    )
    .map_err(|e| LoaderError::Corrupt(format!("unreadable program headers: {e}")))?;

    let mut segments = Vec::new();
    let mut interpreter = None;
    let mut phdr_vaddr = None;
    let mut max_align = PAGE_SIZE;
    for ph in &phdrs {
        match ph.p_type {
            program_header::PT_LOAD => {
                segments.push(check_segment(ph, file_len)?);
                if ph.p_align.is_power_of_two() {
                    max_align = max_align.max(ph.p_align);
                }
            }
            program_header::PT_INTERP => {
                if interpreter.is_some() {
                    return Err(LoaderError::Corrupt("more than one PT_INTERP".into()));
                }
                interpreter = Some(read_interp(ph, &bytes)?);
            }
            program_header::PT_PHDR => phdr_vaddr = Some(ph.p_vaddr),
            _ => {}
        }
    }
    if segments.is_empty() {
        return Err(LoaderError::Corrupt("no loadable segments".into()));
    }
    segments.sort_by_key(|s| s.vaddr);
    // Segments may share a page (Linux maps them page by page), but not bytes.
    for pair in segments.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.vaddr + a.memsz > b.vaddr {
            return Err(LoaderError::Corrupt(format!(
                "segments at {:#x} and {:#x} overlap",
                a.vaddr, b.vaddr
            )));
        }
    }
    let first = page_align_down(segments[0].vaddr);
    let last = segments
        .iter()
        .map(|s| s.vaddr + s.memsz)
        .max()
        .unwrap_or(first);
    if last - first > MAX_IMAGE_SPAN {
        return Err(LoaderError::Corrupt(format!(
            "the segments span {:#x} bytes, more than any real program",
            last - first
        )));
    }

    // Without PT_PHDR, the headers are visible if a loadable segment covers them.
    let phdr_vaddr = phdr_vaddr.or_else(|| {
        segments
            .iter()
            .find(|s| s.offset <= header.e_phoff && table_end <= s.offset + s.filesz)
            .map(|s| s.vaddr + (header.e_phoff - s.offset))
    });

    Ok(ElfFile {
        position_independent: header.e_type == header::ET_DYN,
        entry: header.e_entry,
        segments,
        phdr_vaddr,
        phnum: header.e_phnum,
        interpreter,
        max_align,
        bytes,
    })
}

fn check_segment(ph: &ProgramHeader, file_len: u64) -> Result<Segment, LoaderError> {
    let end_in_file = ph.p_offset.checked_add(ph.p_filesz);
    match end_in_file {
        Some(end) if end <= file_len => {}
        _ => {
            return Err(LoaderError::Truncated(format!(
                "segment at {:#x} needs file bytes {:#x}..{:#x}, the file has {file_len}",
                ph.p_vaddr,
                ph.p_offset,
                ph.p_offset.saturating_add(ph.p_filesz)
            )));
        }
    }
    if ph.p_filesz > ph.p_memsz {
        return Err(LoaderError::Corrupt(format!(
            "segment at {:#x} has more file bytes ({:#x}) than memory bytes ({:#x})",
            ph.p_vaddr, ph.p_filesz, ph.p_memsz
        )));
    }
    if ph.p_memsz > MAX_IMAGE_SPAN || ph.p_vaddr.checked_add(ph.p_memsz).is_none() {
        return Err(LoaderError::Corrupt(format!(
            "segment at {:#x} has an absurd size {:#x}",
            ph.p_vaddr, ph.p_memsz
        )));
    }
    if ph.p_vaddr % PAGE_SIZE != ph.p_offset % PAGE_SIZE {
        return Err(LoaderError::Corrupt(format!(
            "segment at {:#x} is not page-congruent with its file offset {:#x}",
            ph.p_vaddr, ph.p_offset
        )));
    }
    let mut prot = Prot::empty();
    if ph.p_flags & program_header::PF_R != 0 {
        prot |= Prot::READ;
    }
    if ph.p_flags & program_header::PF_W != 0 {
        prot |= Prot::WRITE;
    }
    if ph.p_flags & program_header::PF_X != 0 {
        prot |= Prot::EXEC;
    }
    Ok(Segment {
        vaddr: ph.p_vaddr,
        memsz: ph.p_memsz,
        offset: ph.p_offset,
        filesz: ph.p_filesz,
        prot,
    })
}

fn read_interp(ph: &ProgramHeader, bytes: &[u8]) -> Result<Vec<u8>, LoaderError> {
    if ph.p_filesz < 2 || ph.p_filesz > MAX_INTERP_LEN {
        return Err(LoaderError::Corrupt(format!(
            "PT_INTERP has a bad length {}",
            ph.p_filesz
        )));
    }
    let start = ph.p_offset as usize;
    let end = start
        .checked_add(ph.p_filesz as usize)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| LoaderError::Truncated("PT_INTERP lies past the end of the file".into()))?;
    let raw = &bytes[start..end];
    let Some((&0, path)) = raw.split_last() else {
        return Err(LoaderError::Corrupt(
            "PT_INTERP is not NUL-terminated".into(),
        ));
    };
    if path.contains(&0) {
        return Err(LoaderError::Corrupt("PT_INTERP contains a NUL byte".into()));
    }
    Ok(path.to_vec())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal valid aarch64 ET_EXEC: one R+X segment holding the headers and 8 bytes of code.
    pub(crate) fn tiny_elf() -> Vec<u8> {
        let mut b = vec![0u8; 0x80];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // 64-bit
        b[5] = 1; // little endian
        b[6] = 1; // version
        b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        b[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[24..32].copy_from_slice(&0x400078u64.to_le_bytes()); // entry
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        b[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        b[56..58].copy_from_slice(&1u16.to_le_bytes()); // phnum
        let ph = 64;
        b[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        b[ph + 4..ph + 8].copy_from_slice(&5u32.to_le_bytes()); // R+X
        b[ph + 16..ph + 24].copy_from_slice(&0x400000u64.to_le_bytes()); // vaddr
        b[ph + 32..ph + 40].copy_from_slice(&0x80u64.to_le_bytes()); // filesz
        b[ph + 40..ph + 48].copy_from_slice(&0x80u64.to_le_bytes()); // memsz
        b[ph + 48..ph + 56].copy_from_slice(&0x1000u64.to_le_bytes()); // align
        b
    }

    fn set_u64(b: &mut [u8], at: usize, v: u64) {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn a_minimal_executable_parses() {
        let elf = parse(tiny_elf()).unwrap();
        assert!(!elf.position_independent);
        assert_eq!(elf.entry, 0x400078);
        assert_eq!(elf.segments.len(), 1);
        assert_eq!(elf.segments[0].prot, Prot::READ | Prot::EXEC);
        assert_eq!(elf.phdr_vaddr, Some(0x400040));
        assert!(elf.interpreter.is_none());
    }

    #[test]
    fn non_elf_and_foreign_files_are_named() {
        assert!(matches!(
            parse(b"#!/bin/sh\n".to_vec()),
            Err(LoaderError::NotElf)
        ));
        let mut b = tiny_elf();
        b[4] = 1;
        assert!(matches!(parse(b), Err(LoaderError::Not64Bit)));
        let mut b = tiny_elf();
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        let err = parse(b).unwrap_err();
        assert_eq!(
            err.to_string(),
            "this is an ELF executable for x86-64, not aarch64"
        );
        let mut b = tiny_elf();
        b[16..18].copy_from_slice(&1u16.to_le_bytes());
        assert!(matches!(parse(b), Err(LoaderError::NotExecutable(_))));
    }

    #[test]
    fn truncation_and_corruption_are_rejected() {
        let b = tiny_elf();
        assert!(matches!(
            parse(b[..40].to_vec()),
            Err(LoaderError::Truncated(_))
        ));
        assert!(matches!(
            parse(b[..100].to_vec()),
            Err(LoaderError::Truncated(_))
        ));

        let mut past_end = tiny_elf();
        set_u64(&mut past_end, 64 + 32, 0x10_0000); // filesz past the end of file
        set_u64(&mut past_end, 64 + 40, 0x10_0000);
        assert!(matches!(parse(past_end), Err(LoaderError::Truncated(_))));

        let mut absurd = tiny_elf();
        set_u64(&mut absurd, 64 + 40, u64::MAX - 5); // memsz
        assert!(matches!(parse(absurd), Err(LoaderError::Corrupt(_))));

        let mut file_bigger_than_mem = tiny_elf();
        set_u64(&mut file_bigger_than_mem, 64 + 40, 0x10);
        assert!(matches!(
            parse(file_bigger_than_mem),
            Err(LoaderError::Corrupt(_))
        ));

        let mut no_phdrs = tiny_elf();
        no_phdrs[56..58].copy_from_slice(&0u16.to_le_bytes());
        assert!(matches!(parse(no_phdrs), Err(LoaderError::Corrupt(_))));
    }

    #[test]
    fn overlapping_segments_are_rejected() {
        let mut b = tiny_elf();
        b.resize(0x100, 0);
        b[56..58].copy_from_slice(&2u16.to_le_bytes());
        let second = 64 + 56;
        b.copy_within(64..120, second);
        set_u64(&mut b, second + 16, 0x400040); // vaddr inside the first segment
        set_u64(&mut b, second + 8, 0x40); // offset congruent with it
        b[24..32].copy_from_slice(&0x400078u64.to_le_bytes());
        assert!(matches!(parse(b), Err(LoaderError::Corrupt(msg)) if msg.contains("overlap")));
    }

    #[test]
    fn the_interpreter_is_read_from_the_headers_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prog");
        std::fs::write(&file, tiny_elf()).unwrap();
        assert_eq!(interpreter(&file).unwrap(), None);

        // A second program header: PT_INTERP naming a string at the end of the file.
        let mut b = tiny_elf();
        let name = b"/lib/ld-linux-aarch64.so.1\0";
        b[56..58].copy_from_slice(&2u16.to_le_bytes());
        let second = 64 + 56;
        b.resize(second + 56, 0);
        let at = b.len() as u64;
        b[second..second + 4].copy_from_slice(&3u32.to_le_bytes()); // PT_INTERP
        set_u64(&mut b, second + 8, at);
        set_u64(&mut b, second + 32, name.len() as u64);
        b.extend_from_slice(name);
        std::fs::write(&file, &b).unwrap();
        assert_eq!(
            interpreter(&file).unwrap().as_deref(),
            Some(&b"/lib/ld-linux-aarch64.so.1"[..])
        );
        assert_eq!(
            parse(b.clone()).unwrap().interpreter,
            interpreter(&file).unwrap()
        );

        // Cut inside the name: truncated, as the full parse says.
        b.truncate(b.len() - 4);
        std::fs::write(&file, &b).unwrap();
        assert!(matches!(interpreter(&file), Err(LoaderError::Truncated(_))));
        std::fs::write(&file, b"#!/bin/sh\n").unwrap();
        assert!(matches!(interpreter(&file), Err(LoaderError::NotElf)));
    }
}
