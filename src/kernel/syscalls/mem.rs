//! Memory management: `brk(2)`, `mmap(2)`, `munmap(2)`, `mprotect(2)`, `mremap(2)`,
//! `madvise(2)`, `msync(2)`, `mincore(2)` and the `mlock(2)` family.
//!
//! Private file mappings are copied from the file when mapped (the host may not share the
//! guest's page size); pages wholly past the end of the file are mapped inaccessible, so
//! touching them raises `SIGBUS` as on Linux. Shared file mappings are host file mappings, so
//! writes reach the file and other processes.
//!
//! # Limitations
//! A private file mapping is a snapshot: changes another process makes to the file after the
//! `mmap` are not seen in pages the guest has not written (Linux leaves this unspecified too).
//! On hosts whose page is larger than 4 KiB, a shared file mapping must be aligned to the host
//! page (`EINVAL` otherwise).

use std::ops::Range;
use std::sync::Arc;

use super::Ctx;
use crate::host;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::mman as mm;
use crate::kernel::abi::open as lo;
use crate::kernel::file::{Device, FileKind, OpenFile, retry};
use crate::kernel::mm::{MMAP_MIN_ADDR, find_free};
use crate::kernel::process::lock;
use crate::vm::memory::GuestMemory;
use crate::vm::vma::{
    Backing, FileMapping, FileSource, PAGE_SIZE, Prot, SharedObject, Vma, is_page_aligned,
    page_align_up,
};

impl FileSource for OpenFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        match OpenFile::host_fd(self) {
            Some(fd) => host::io::pread(fd, buf, offset as i64),
            None => Ok(0),
        }
    }

    fn host_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        OpenFile::host_fd(self)
    }
}

/// `brk(2)`.
pub fn sys_brk(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let process = ctx.process().clone();
    let mut mm_state = lock(&process.mm);
    let layout = mm_state.layout;
    Ok(mm_state.brk.set(&ctx.task.memory, &layout, a[0]))
}

fn prot_of(bits: u64) -> Prot {
    Prot::from_bits_truncate((bits & 7) as u32)
}

/// What the guest asked to map.
enum Source {
    Anonymous,
    File {
        file: Arc<OpenFile>,
        size: u64,
        dev: u64,
        ino: u64,
    },
}

/// `mmap(2)`.
pub fn sys_mmap(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (hint, len, prot_bits, flags, offset) =
        (a[0], a[1], a[2] as u32 as u64, a[3] as u32 as u64, a[5]);
    let memory = ctx.mem();

    let map_type = flags & mm::MAP_TYPE;
    match map_type {
        mm::MAP_SHARED | mm::MAP_PRIVATE => {}
        mm::MAP_SHARED_VALIDATE => {
            if flags & !mm::SHARED_VALIDATE_KNOWN & !mm::MAP_TYPE != 0 {
                return Err(Errno::EOPNOTSUPP);
            }
        }
        _ => return Err(Errno::EINVAL),
    }
    if len == 0 || !is_page_aligned(offset) {
        return Err(Errno::EINVAL);
    }
    let len = page_align_up(len).ok_or(Errno::ENOMEM)?;
    if offset
        .checked_add(len)
        .is_none_or(|end| end > i64::MAX as u64)
    {
        return Err(Errno::EOVERFLOW);
    }
    if flags & mm::MAP_HUGETLB != 0 {
        // No huge pages are reserved, which Linux reports as ENOMEM.
        return Err(Errno::ENOMEM);
    }
    let shared = map_type != mm::MAP_PRIVATE;
    let mut prot = prot_of(prot_bits);

    // The source, with Linux's access rules.
    let mut max_prot = Prot::all();
    let source = if flags & mm::MAP_ANONYMOUS != 0 {
        Source::Anonymous
    } else {
        let file = ctx.file(a[4])?;
        match file.kind() {
            FileKind::Path { .. } => return Err(Errno::EBADF),
            FileKind::Device(Device::Zero) => Source::Anonymous,
            FileKind::Device(_) | FileKind::Event(_) => return Err(Errno::ENODEV),
            FileKind::Host { .. } => {
                let st = file.stat()?;
                if st.kind() != crate::kernel::abi::mode::S_IFREG {
                    return Err(Errno::ENODEV);
                }
                let access = file.status_flags() & lo::O_ACCMODE;
                if access == lo::O_WRONLY {
                    return Err(Errno::EACCES);
                }
                if shared && access != lo::O_RDWR {
                    if prot.contains(Prot::WRITE) {
                        return Err(Errno::EACCES);
                    }
                    max_prot = Prot::READ | Prot::EXEC;
                }
                Source::File {
                    file,
                    size: st.size.max(0) as u64,
                    dev: st.dev,
                    ino: st.ino,
                }
            }
        }
    };
    if prot.contains(Prot::EXEC) && !prot.contains(Prot::READ) {
        // arm64 cannot make a page executable without making it readable.
        prot |= Prot::READ;
    }

    // Placement.
    let layout = lock(&ctx.process().mm).layout;
    let start = if flags & (mm::MAP_FIXED | mm::MAP_FIXED_NOREPLACE) != 0 {
        if !is_page_aligned(hint) {
            return Err(Errno::EINVAL);
        }
        let end = hint.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end > memory.span() {
            return Err(Errno::ENOMEM);
        }
        if hint < MMAP_MIN_ADDR {
            return Err(Errno::EPERM);
        }
        if flags & mm::MAP_FIXED == 0 && !memory.vmas().is_free(hint..end) {
            return Err(Errno::EEXIST);
        }
        hint
    } else {
        find_free(memory, &layout, hint, len)?
    };
    let range = start..start + len;

    match source {
        Source::Anonymous => {
            let vma = Vma::anonymous(range.clone(), prot);
            if shared {
                map_shared_anonymous(memory, vma)?;
            } else {
                memory.map(vma);
            }
        }
        Source::File {
            file,
            size,
            dev,
            ino,
        } => {
            let mapping = Arc::new(FileMapping {
                path: String::from_utf8_lossy(&file.path).into_owned(),
                dev,
                ino,
                source: Some(file.clone() as Arc<dyn FileSource>),
            });
            map_file(
                memory, range, prot, max_prot, shared, &file, mapping, offset, size,
            )?;
        }
    }
    if lock(&ctx.process().mm).lock_future {
        let _ = host::mlock(memory.host_range(start..start + len).as_ptr(), len as usize);
    }
    Ok(start)
}

/// Maps `file` from `offset` at `range`: the part within the file, then the pages past its end.
#[allow(clippy::too_many_arguments)]
fn map_file(
    memory: &GuestMemory,
    range: Range<u64>,
    prot: Prot,
    max_prot: Prot,
    shared: bool,
    file: &OpenFile,
    mapping: Arc<FileMapping>,
    offset: u64,
    size: u64,
) -> SysResult<()> {
    let available = size.saturating_sub(offset);
    let file_end = range.start + page_align_up(available.min(range.end - range.start)).unwrap_or(0);

    let vma = |r: Range<u64>, past_eof: bool| Vma {
        start: r.start,
        end: r.end,
        prot,
        max_prot,
        shared,
        backing: Backing::File(mapping.clone()),
        offset: offset + (r.start - range.start),
        label: None,
        past_eof,
    };
    if file_end > range.start {
        memory.map(vma(range.start..file_end, false));
        let host_range = memory.host_range(range.start..file_end);
        if shared {
            let fd = file.host_fd().ok_or(Errno::EBADF)?;
            let host_page = host::memory::page_size();
            if !range.start.is_multiple_of(host_page) || !offset.is_multiple_of(host_page) {
                memory.unmap(range.start..file_end);
                return Err(Errno::EINVAL);
            }
            let writable = max_prot.contains(Prot::WRITE);
            if let Err(e) = host_range.map_file(fd, offset, true, writable) {
                memory.unmap(range.start..file_end);
                return Err(Errno::from(e));
            }
        } else {
            fill_from_file(memory, range.start..file_end, file, offset)?;
        }
    }
    if range.end > file_end {
        memory.map(vma(file_end..range.end, true));
    }
    Ok(())
}

/// Copies file bytes at `offset` into the (fresh, zeroed) guest pages of `range`.
fn fill_from_file(
    memory: &GuestMemory,
    range: Range<u64>,
    file: &dyn FileSource,
    offset: u64,
) -> SysResult<()> {
    let host_range = memory.host_range(range);
    host_range.with_mut(|buf| {
        let mut done = 0;
        while done < buf.len() {
            match file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(Errno::from(e)),
            }
        }
        Ok(())
    })
}

/// Checks an `(addr, len)` argument pair: `addr` page-aligned, the range inside the guest.
fn checked_range(
    memory: &GuestMemory,
    addr: u64,
    len: u64,
    overflow: Errno,
) -> SysResult<Range<u64>> {
    if !is_page_aligned(addr) {
        return Err(Errno::EINVAL);
    }
    let len = page_align_up(len).ok_or(overflow)?;
    let end = addr.checked_add(len).ok_or(overflow)?;
    if end > memory.span() {
        return Err(overflow);
    }
    Ok(addr..end)
}

/// `munmap(2)`.
pub fn sys_munmap(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[1] == 0 {
        return Err(Errno::EINVAL);
    }
    let range = checked_range(ctx.mem(), a[0], a[1], Errno::EINVAL)?;
    ctx.mem().unmap(range);
    Ok(0)
}

/// `mprotect(2)`.
pub fn sys_mprotect(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let bits = a[2] as u32 as u64;
    let known = mm::PROT_READ
        | mm::PROT_WRITE
        | mm::PROT_EXEC
        | mm::PROT_SEM
        | mm::PROT_GROWSDOWN
        | mm::PROT_GROWSUP;
    if bits & !known != 0
        || bits & (mm::PROT_GROWSDOWN | mm::PROT_GROWSUP) == mm::PROT_GROWSDOWN | mm::PROT_GROWSUP
    {
        return Err(Errno::EINVAL);
    }
    if !is_page_aligned(a[0]) {
        return Err(Errno::EINVAL);
    }
    if a[1] == 0 {
        return Ok(0);
    }
    let memory = ctx.mem();
    let range = checked_range(memory, a[0], a[1], Errno::ENOMEM)?;
    let mut prot = prot_of(bits);
    if prot.contains(Prot::EXEC) {
        prot |= Prot::READ;
    }
    {
        let vmas = memory.vmas();
        if !vmas.is_fully_mapped(range.clone()) {
            return Err(Errno::ENOMEM);
        }
        if vmas
            .overlapping(range.clone())
            .any(|v| !v.max_prot.contains(prot))
        {
            return Err(Errno::EACCES);
        }
    }
    memory.protect(range, prot);
    Ok(0)
}

/// `mremap(2)`.
pub fn sys_mremap(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (old, old_len, new_len, flags, new_addr) = (a[0], a[1], a[2], a[3] as u32 as u64, a[4]);
    let known = mm::MREMAP_MAYMOVE | mm::MREMAP_FIXED | mm::MREMAP_DONTUNMAP;
    if flags & !known != 0 || !is_page_aligned(old) {
        return Err(Errno::EINVAL);
    }
    let may_move = flags & mm::MREMAP_MAYMOVE != 0;
    if flags & (mm::MREMAP_FIXED | mm::MREMAP_DONTUNMAP) != 0 && !may_move {
        return Err(Errno::EINVAL);
    }
    let old_len = page_align_up(old_len).ok_or(Errno::EINVAL)?;
    let new_len = page_align_up(new_len).ok_or(Errno::EINVAL)?;
    if new_len == 0 || (flags & mm::MREMAP_DONTUNMAP != 0 && old_len != new_len) {
        return Err(Errno::EINVAL);
    }
    let memory = ctx.mem();
    let old_end = old.checked_add(old_len).ok_or(Errno::EINVAL)?;

    // The old range must lie in one mapping.
    let (vma, old_len) = {
        let vmas = memory.vmas();
        let vma = vmas.find(old).cloned().ok_or(Errno::EFAULT)?;
        if old_len == 0 {
            // Duplicating a mapping needs a shared one.
            if !vma.shared {
                return Err(Errno::EINVAL);
            }
            return Err(Errno::EINVAL);
        }
        if old_end > vma.end {
            return Err(Errno::EFAULT);
        }
        (vma, old_len)
    };

    if flags & mm::MREMAP_FIXED != 0 {
        if !is_page_aligned(new_addr) {
            return Err(Errno::EINVAL);
        }
        let new_end = new_addr
            .checked_add(new_len)
            .filter(|&e| e <= memory.span())
            .ok_or(Errno::EINVAL)?;
        if new_addr < old_end && old < new_end {
            return Err(Errno::EINVAL);
        }
        if new_addr < MMAP_MIN_ADDR {
            return Err(Errno::EPERM);
        }
        move_mapping(
            memory,
            &vma,
            old..old_end,
            new_addr,
            new_len,
            flags & mm::MREMAP_DONTUNMAP != 0,
        )?;
        return Ok(new_addr);
    }

    if new_len <= old_len {
        if new_len < old_len {
            memory.unmap(old + new_len..old_end);
        }
        return Ok(old);
    }

    // Grow in place when the pages after the mapping are free.
    let grown_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
    let stack_floor = lock(&ctx.process().mm).layout.stack().start;
    if old_end == vma.end
        && grown_end <= memory.span()
        && grown_end <= stack_floor
        && memory.vmas().is_free(old_end..grown_end)
    {
        extend(memory, &vma, old_end..grown_end)?;
        return Ok(old);
    }
    if !may_move {
        return Err(Errno::ENOMEM);
    }
    let layout = lock(&ctx.process().mm).layout;
    let target = find_free(memory, &layout, 0, new_len)?;
    move_mapping(
        memory,
        &vma,
        old..old_end,
        target,
        new_len,
        flags & mm::MREMAP_DONTUNMAP != 0,
    )?;
    Ok(target)
}

/// Maps `vma` as shared anonymous memory: a new host shared-memory object over its range.
fn map_shared_anonymous(memory: &GuestMemory, mut vma: Vma) -> SysResult<()> {
    let range = vma.start..vma.end;
    let object = host::memory::shared_object(vma.len())?;
    vma.shared = true;
    vma.offset = 0;
    let object = Arc::new(SharedObject(object));
    vma.backing = Backing::SharedAnonymous(object.clone());
    memory.map(vma);
    memory
        .host_range(range)
        .map_file(std::os::fd::AsFd::as_fd(&object.0), 0, true, true)
        .map_err(Errno::from)
}

/// Extends `vma` over the free range `more`.
fn extend(memory: &GuestMemory, vma: &Vma, more: Range<u64>) -> SysResult<()> {
    let mut piece = vma.clone();
    piece.start = more.start;
    piece.end = more.end;
    piece.offset = vma.offset + (more.start - vma.start);
    match &vma.backing {
        Backing::Anonymous => memory.map(piece),
        // The new pages are a shared object of their own, as after Linux's mremap.
        Backing::SharedAnonymous(_) => map_shared_anonymous(memory, piece)?,
        Backing::File(mapping) => {
            let Some(source) = mapping.source.clone() else {
                memory.map(piece);
                return Ok(());
            };
            if vma.shared {
                // Growing a shared file mapping in place needs the host file descriptor.
                return Err(Errno::ENOMEM);
            }
            let offset = piece.offset;
            memory.map(piece);
            fill_from_file(memory, more, source.as_ref(), offset)?;
        }
    }
    Ok(())
}

/// Moves `old` (part of `vma`) to `new_start`, resized to `new_len`.
fn move_mapping(
    memory: &GuestMemory,
    vma: &Vma,
    old: Range<u64>,
    new_start: u64,
    new_len: u64,
    keep_old: bool,
) -> SysResult<()> {
    let old_len = old.end - old.start;
    let keep = old_len.min(new_len);
    let mut piece = vma.clone();
    piece.start = new_start;
    piece.end = new_start + keep;
    piece.offset = vma.offset + (old.start - vma.start);
    let label_moves = piece.label;
    memory.map(piece.clone());

    // Move the bytes: the host can move pages where it has mremap, else copy.
    let from = memory.host_range(old.start..old.start + keep);
    let to = memory.host_range(new_start..new_start + keep);
    if !host::move_pages(from.as_ptr(), to.as_ptr(), keep as usize, vma.shared) {
        let mut bytes = vec![0u8; keep as usize];
        from.read(&mut bytes);
        to.write(&bytes);
    }
    memory.invalidate(new_start..new_start + keep);

    if new_len > keep {
        extend(memory, &piece, new_start + keep..new_start + new_len)?;
    }
    if keep_old {
        memory.zero(old.clone());
    } else {
        memory.unmap(old);
    }
    let _ = label_moves;
    Ok(())
}

/// `madvise(2)`.
pub fn sys_madvise(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let advice = a[2] as u32 as u64;
    if !is_page_aligned(a[0]) {
        return Err(Errno::EINVAL);
    }
    let memory = ctx.mem();
    let known = matches!(
        advice,
        mm::MADV_NORMAL
            | mm::MADV_RANDOM
            | mm::MADV_SEQUENTIAL
            | mm::MADV_WILLNEED
            | mm::MADV_DONTNEED
            | mm::MADV_FREE
            | mm::MADV_REMOVE
            | mm::MADV_DONTFORK
            | mm::MADV_DOFORK
            | mm::MADV_MERGEABLE
            | mm::MADV_UNMERGEABLE
            | mm::MADV_HUGEPAGE
            | mm::MADV_NOHUGEPAGE
            | mm::MADV_DONTDUMP
            | mm::MADV_DODUMP
            | mm::MADV_WIPEONFORK
            | mm::MADV_KEEPONFORK
            | mm::MADV_COLD
            | mm::MADV_PAGEOUT
            | mm::MADV_POPULATE_READ
            | mm::MADV_POPULATE_WRITE
            | mm::MADV_DONTNEED_LOCKED
            | mm::MADV_COLLAPSE
            | mm::MADV_HWPOISON
            | mm::MADV_SOFT_OFFLINE
    );
    if !known {
        return Err(Errno::EINVAL);
    }
    if matches!(advice, mm::MADV_HWPOISON | mm::MADV_SOFT_OFFLINE) {
        return Err(Errno::EPERM);
    }
    if a[1] == 0 {
        return Ok(0);
    }
    let range = checked_range(memory, a[0], a[1], Errno::EINVAL)?;
    let pieces: Vec<Vma> = memory.vmas().overlapping(range.clone()).cloned().collect();
    let fully_mapped = memory.vmas().is_fully_mapped(range.clone());

    for vma in &pieces {
        let r = vma.start.max(range.start)..vma.end.min(range.end);
        match advice {
            mm::MADV_DONTNEED | mm::MADV_DONTNEED_LOCKED if !vma.shared => {
                memory.zero(r.clone());
                // A private file mapping shows the file's bytes again.
                if let (Backing::File(mapping), false) = (&vma.backing, vma.past_eof)
                    && let Some(source) = &mapping.source
                {
                    fill_from_file(
                        memory,
                        r.clone(),
                        source.as_ref(),
                        vma.offset + (r.start - vma.start),
                    )?;
                }
            }
            mm::MADV_REMOVE => {
                return Err(if vma.shared {
                    Errno::EOPNOTSUPP
                } else {
                    Errno::EINVAL
                });
            }
            mm::MADV_WIPEONFORK | mm::MADV_KEEPONFORK
                if (vma.shared || !matches!(vma.backing, Backing::Anonymous)) =>
            {
                return Err(Errno::EINVAL);
            }
            mm::MADV_POPULATE_READ | mm::MADV_POPULATE_WRITE => {
                let need = if advice == mm::MADV_POPULATE_WRITE {
                    Prot::WRITE
                } else {
                    Prot::READ
                };
                if !vma.effective_prot().contains(need) {
                    return Err(if vma.past_eof {
                        Errno::EFAULT
                    } else {
                        Errno::ENOMEM
                    });
                }
            }
            _ => {}
        }
    }
    if !fully_mapped {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}

/// `msync(2)`.
pub fn sys_msync(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let flags = a[2] as u32 as u64;
    if flags & !(mm::MS_ASYNC | mm::MS_INVALIDATE | mm::MS_SYNC) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & (mm::MS_ASYNC | mm::MS_SYNC) == mm::MS_ASYNC | mm::MS_SYNC {
        return Err(Errno::EINVAL);
    }
    let memory = ctx.mem();
    let range = checked_range(memory, a[0], a[1], Errno::ENOMEM)?;
    if range.is_empty() {
        return Ok(0);
    }
    let pieces: Vec<Vma> = memory.vmas().overlapping(range.clone()).cloned().collect();
    for vma in pieces
        .iter()
        .filter(|v| v.shared && matches!(v.backing, Backing::File(_)) && !v.past_eof)
    {
        let r = vma.start.max(range.start)..vma.end.min(range.end);
        let wait = flags & mm::MS_SYNC != 0;
        retry(|| {
            memory
                .host_range(r.clone())
                .sync(wait, flags & mm::MS_INVALIDATE != 0)
        })?;
    }
    if !memory.vmas().is_fully_mapped(range) {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}

/// `mincore(2)`: one byte per page, bit 0 set when the page is resident.
pub fn sys_mincore(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let memory = ctx.mem();
    if !is_page_aligned(a[0]) {
        return Err(Errno::EINVAL);
    }
    let range = checked_range(memory, a[0], a[1], Errno::ENOMEM)?;
    if range.is_empty() {
        return Ok(0);
    }
    if !memory.vmas().is_fully_mapped(range.clone()) {
        return Err(Errno::ENOMEM);
    }
    let pages = ((range.end - range.start) / PAGE_SIZE) as usize;
    memory.check(a[2], pages as u64, Prot::WRITE)?;
    let host_page = host::memory::page_size();
    let host_start = range.start - range.start % host_page;
    let host_end = range.end.div_ceil(host_page) * host_page;
    let resident = memory
        .host_range(host_start..host_end.min(memory.span()))
        .residency(host_page)
        .map_err(Errno::from)?;
    let mut out = vec![0u8; pages];
    for (i, flag) in out.iter_mut().enumerate() {
        let addr = range.start + i as u64 * PAGE_SIZE;
        let index = ((addr - host_start) / host_page) as usize;
        let past_eof = memory.vmas().find(addr).is_some_and(|v| v.past_eof);
        *flag = u8::from(!past_eof && resident.get(index).copied().unwrap_or(false));
    }
    memory.write(a[2], &out)?;
    Ok(0)
}

/// `mlock(2)`.
pub fn sys_mlock(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let memory = ctx.mem();
    let start = a[0] - a[0] % PAGE_SIZE;
    let range = checked_range(memory, start, a[1] + (a[0] - start), Errno::ENOMEM)?;
    if !memory.vmas().is_fully_mapped(range.clone()) {
        return Err(Errno::ENOMEM);
    }
    let host_range = memory.host_range(range);
    retry(|| host::mlock(host_range.as_ptr(), host_range.len()))?;
    Ok(0)
}

/// `munlock(2)`.
pub fn sys_munlock(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let memory = ctx.mem();
    let start = a[0] - a[0] % PAGE_SIZE;
    let range = checked_range(memory, start, a[1] + (a[0] - start), Errno::ENOMEM)?;
    if !memory.vmas().is_fully_mapped(range.clone()) {
        return Err(Errno::ENOMEM);
    }
    let host_range = memory.host_range(range);
    retry(|| host::munlock(host_range.as_ptr(), host_range.len()))?;
    Ok(0)
}

/// `mlockall(2)`: locks every current guest mapping (`MCL_CURRENT`) and/or every future one
/// (`MCL_FUTURE`). The host's own reservation is never locked wholesale.
pub fn sys_mlockall(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    const MCL_CURRENT: u64 = 1;
    const MCL_FUTURE: u64 = 2;
    const MCL_ONFAULT: u64 = 4;
    let flags = a[0] as u32 as u64;
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT
    {
        return Err(Errno::EINVAL);
    }
    let memory = ctx.mem();
    if flags & MCL_CURRENT != 0 {
        let ranges: Vec<Range<u64>> = memory.vmas().iter().map(|v| v.start..v.end).collect();
        for r in ranges {
            let host_range = memory.host_range(r);
            retry(|| host::mlock(host_range.as_ptr(), host_range.len()))?;
        }
    }
    lock(&ctx.process().mm).lock_future = flags & MCL_FUTURE != 0;
    Ok(0)
}

/// `munlockall(2)`.
pub fn sys_munlockall(ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    let memory = ctx.mem();
    let ranges: Vec<Range<u64>> = memory.vmas().iter().map(|v| v.start..v.end).collect();
    for r in ranges {
        let host_range = memory.host_range(r);
        let _ = host::munlock(host_range.as_ptr(), host_range.len());
    }
    lock(&ctx.process().mm).lock_future = false;
    Ok(0)
}
