//! `execve` and `execveat`: opening the program, copying its strings, following `#!` lines,
//! and handing the new image to [`crate::kernel::exec::commit`].

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::Ctx;
use super::fs_open;
use crate::host;
use crate::kernel::RuntimeError;
use crate::kernel::abi::at::{AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW};
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::mode;
use crate::kernel::abi::open as lo;
use crate::kernel::abi::rlimit::RLIMIT_STACK;
use crate::kernel::exec::{self, ArgStrings, BINPRM_BUF_SIZE, MAX_ARG_STRINGS, MAX_ARG_STRLEN};
use crate::kernel::file::{FileKind, OpenFile, retry};
use crate::kernel::image::{self, ImageSpec};
use crate::kernel::process::lock;
use crate::loader::elf::ElfFile;
use crate::vm::memory::GuestMemory;

/// `execve(2)`.
pub fn sys_execve(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    execveat(ctx, AT_FDCWD as u32 as u64, a[0], a[1], a[2], 0)
}

/// `execveat(2)`.
pub fn sys_execveat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    execveat(ctx, a[0], a[1], a[2], a[3], a[4])
}

/// A program file opened for `execve`.
struct Executable {
    fd: OwnedFd,
    /// The host path, for `/proc/self/exe` and `/proc/self/maps`.
    host_path: PathBuf,
}

fn execveat(
    ctx: &mut Ctx<'_>,
    dirfd: u64,
    path_addr: u64,
    argv_addr: u64,
    envp_addr: u64,
    flags: u64,
) -> SysResult {
    let path = ctx.path(path_addr)?;
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let mut file = open_exec(ctx, dirfd, &path, flags)?;
    let dirfd = dirfd as u32 as i32;
    // The name the program is known by: as given, or through /dev/fd for a descriptor.
    let filename = if dirfd == AT_FDCWD || path.starts_with(b"/") {
        path.clone()
    } else if path.is_empty() {
        format!("/dev/fd/{dirfd}").into_bytes()
    } else {
        let mut name = format!("/dev/fd/{dirfd}/").into_bytes();
        name.extend_from_slice(&path);
        name
    };

    let mem = ctx.mem();
    let argv = pointers(mem, argv_addr)?;
    let envp = pointers(mem, envp_addr)?;
    let stack_limit = lock(&ctx.process().limits)[RLIMIT_STACK as usize].cur;
    let mut strings = ArgStrings::new(exec::string_budget(stack_limit, argv.len(), envp.len())?);
    strings.charge(filename.len())?;
    // Linux copies the environment, then the arguments, each from the last string back.
    strings.env = copy_strings(mem, &envp, &mut strings)?;
    strings.argv = copy_strings(mem, &argv, &mut strings)?;
    if strings.argv.is_empty() {
        strings.charge(0)?;
        strings.argv.push(Vec::new());
    }

    // Follow `#!` lines to the ELF program.
    let mut script_name = filename.clone();
    let mut depth = 0;
    let elf = loop {
        let head = read_head(file.fd.as_fd())?;
        let Some(line) = exec::parse_shebang(&head) else {
            if host_program(&head) {
                return exec_host_program(ctx, &file, &strings);
            }
            break parse_elf(&file)?;
        };
        depth += 1;
        if depth > exec::MAX_INTERPRETER_DEPTH {
            return Err(Errno::ELOOP);
        }
        let line = line?;
        strings.splice_interpreter(&line, &script_name)?;
        // An empty name is looked up as Linux looks up "": the working directory.
        let interpreter: &[u8] = if line.interpreter.is_empty() {
            b"."
        } else {
            &line.interpreter
        };
        file = open_exec(ctx, AT_FDCWD as u32 as u64, interpreter, 0)?;
        script_name = line.interpreter;
    };

    let process = ctx.process().clone();
    let limits = *lock(&process.limits);
    let creds = lock(&process.creds).clone();
    let loaded = image::load(&ImageSpec {
        elf: &elf,
        host_path: &file.host_path,
        execfn: &filename,
        argv: &strings.argv,
        env: &strings.env,
        limits: &limits,
        creds: &creds,
        hwcaps: process.hwcaps,
        root: &process.root,
    })
    .map_err(|e| match e {
        RuntimeError::Memory(_)
        | RuntimeError::Vcpu(_)
        | RuntimeError::Handover(_)
        | RuntimeError::Debugger(_) => Errno::ENOMEM,
        RuntimeError::Loader(_) => Errno::ENOEXEC,
        RuntimeError::Interpreter(e) => {
            tracing::info!("execve: {}: {e}", file.host_path.display());
            e.errno()
        }
    })?;

    // Linux names the thread after the file: the path's last component, or for a
    // descriptor the file's own name.
    let comm = if path.is_empty() {
        file.host_path.as_os_str().as_bytes().to_vec()
    } else {
        filename
    };
    exec::commit(ctx.task, loaded, &comm);
    Ok(0)
}

/// Opens the file `execve` names and checks that it may be executed: a regular file with
/// execute permission for the caller (for root, for anyone).
fn open_exec(ctx: &Ctx<'_>, dirfd: u64, path: &[u8], flags: u64) -> SysResult<Executable> {
    let file = if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        ctx.file(dirfd)?
    } else {
        let mut open_flags = lo::O_RDONLY | lo::O_CLOEXEC;
        if flags & AT_SYMLINK_NOFOLLOW != 0 {
            open_flags |= lo::O_NOFOLLOW;
        }
        fs_open::open(ctx, dirfd, path, open_flags, 0, None)?
    };
    let fd = readable_fd(&file)?;
    let st = retry(|| host::fs::fstat(fd.as_fd()))?;
    if st.mode & mode::S_IFMT != mode::S_IFREG {
        return Err(Errno::EACCES);
    }
    let creds = lock(&ctx.process().creds).clone();
    let allowed = if creds.euid == 0 {
        st.mode & 0o111 != 0
    } else if creds.euid == st.uid {
        st.mode & 0o100 != 0
    } else if creds.egid == st.gid || creds.groups.contains(&st.gid) {
        st.mode & 0o010 != 0
    } else {
        st.mode & 0o001 != 0
    };
    if !allowed {
        return Err(Errno::EACCES);
    }
    let host_path = host::fd_path(fd.as_fd()).unwrap_or_default();
    Ok(Executable { fd, host_path })
}

/// A descriptor to read the program through, whatever kind of descriptor named it.
fn readable_fd(file: &OpenFile) -> SysResult<OwnedFd> {
    match file.kind() {
        FileKind::Host { fd, .. } if file.readable() => Ok(fd.try_clone()?),
        FileKind::Host { fd, .. } => {
            let path = host::fd_path(fd.as_fd()).ok_or(Errno::EACCES)?;
            let path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::ENOENT)?;
            open_read_only(&path)
        }
        FileKind::Path { host } => open_read_only(host),
        FileKind::Device(_) | FileKind::Event(_) => Err(Errno::EACCES),
    }
}

fn open_read_only(path: &CString) -> SysResult<OwnedFd> {
    retry(|| host::fs::openat(host::fs::CWD, path, libc::O_RDONLY | libc::O_CLOEXEC, 0))
}

/// Reads a NULL-terminated array of string pointers (none for a null array).
fn pointers(mem: &GuestMemory, mut addr: u64) -> SysResult<Vec<u64>> {
    let mut list = Vec::new();
    if addr == 0 {
        return Ok(list);
    }
    loop {
        let ptr: u64 = mem.read_val(addr)?;
        if ptr == 0 {
            return Ok(list);
        }
        if list.len() >= MAX_ARG_STRINGS {
            return Err(Errno::E2BIG);
        }
        list.push(ptr);
        addr = addr.checked_add(8).ok_or(Errno::EFAULT)?;
    }
}

/// Copies the strings at `ptrs`, last first as Linux does (which decides which error a
/// caller sees when several strings are bad), charging each against the budget.
fn copy_strings(
    mem: &GuestMemory,
    ptrs: &[u64],
    strings: &mut ArgStrings,
) -> SysResult<Vec<Vec<u8>>> {
    let mut copied = Vec::with_capacity(ptrs.len());
    for &ptr in ptrs.iter().rev() {
        let s = mem
            .read_cstr(ptr, MAX_ARG_STRLEN - 1)?
            .ok_or(Errno::E2BIG)?;
        strings.charge(s.len())?;
        copied.push(s);
    }
    copied.reverse();
    Ok(copied)
}

/// The start of the file, as much as a `#!` line may use.
fn read_head(fd: BorrowedFd<'_>) -> SysResult<Vec<u8>> {
    let mut head = vec![0u8; BINPRM_BUF_SIZE];
    let mut filled = 0;
    while filled < head.len() {
        let n = retry(|| host::io::pread(fd, &mut head[filled..], filled as i64))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    head.truncate(filled);
    Ok(head)
}

/// Whether a file starting with `head` is a program the host runs itself: an ELF for the host's
/// machine on Linux, a Mach-O file on macOS.
fn host_program(head: &[u8]) -> bool {
    #[cfg(target_os = "macos")]
    {
        const MACHO: [[u8; 4]; 3] = [
            [0xcf, 0xfa, 0xed, 0xfe],
            [0xce, 0xfa, 0xed, 0xfe],
            [0xca, 0xfe, 0xba, 0xbe],
        ];
        MACHO.iter().any(|magic| head.starts_with(magic))
    }
    #[cfg(not(target_os = "macos"))]
    {
        const EM_HOST: u16 = if cfg!(target_arch = "x86_64") {
            62
        } else if cfg!(target_arch = "aarch64") {
            0 // an aarch64 ELF is a guest program
        } else {
            0xffff
        };
        head.len() >= 20
            && head.starts_with(b"\x7fELF")
            && u16::from_le_bytes([head[18], head[19]]) == EM_HOST
    }
}

/// Runs a host program in place of the guest, if the user allows it (`ELFUSE_HOST_EXEC=1`):
/// the process becomes that program, with the guest's descriptors (all but close-on-exec
/// ones, at the same numbers), signal mask and ignored signals. Otherwise `ENOEXEC`, as for
/// any program that is not an aarch64 Linux one.
fn exec_host_program(ctx: &mut Ctx<'_>, file: &Executable, strings: &ArgStrings) -> SysResult {
    if !exec::host_exec_allowed() {
        tracing::info!(
            "execve: {} is a host program; set ELFUSE_HOST_EXEC=1 to let guests run it",
            file.host_path.display()
        );
        return Err(Errno::ENOEXEC);
    }
    let cstrings = |list: &[Vec<u8>]| -> Vec<CString> {
        list.iter()
            .map(|s| CString::new(s.clone()).unwrap_or_default())
            .collect()
    };
    let argv = cstrings(&strings.argv);
    let env = cstrings(&strings.env);
    let path = CString::new(file.host_path.as_os_str().as_bytes()).map_err(|_| Errno::ENOENT)?;

    let process = ctx.process().clone();
    let entries: Vec<(i32, std::sync::Arc<OpenFile>)> = lock(&process.fds)
        .iter()
        .filter(|(_, entry)| !entry.cloexec)
        .map(|(fd, entry)| (fd, entry.file.clone()))
        .collect();
    // Devices and O_PATH descriptors have no host descriptor of their own: open the host's.
    let mut opened = Vec::new();
    for (fd, file) in &entries {
        let path = match file.kind() {
            FileKind::Host { .. } => continue,
            // The runtime's event objects do not exist outside elfuse: a host program does
            // not get them.
            FileKind::Event(_) => continue,
            FileKind::Device(_) => CString::new(file.path.clone()).map_err(|_| Errno::EINVAL)?,
            FileKind::Path { host } => host.clone(),
        };
        let flags = if file.readable() {
            libc::O_RDWR
        } else {
            libc::O_WRONLY
        };
        let host = retry(|| host::fs::openat(host::fs::CWD, &path, flags | libc::O_CLOEXEC, 0))
            .or_else(|_| open_read_only(&path))?;
        opened.push((*fd, host));
    }
    let mut fds: Vec<(i32, BorrowedFd<'_>)> = entries
        .iter()
        .filter_map(|(fd, file)| file.host_fd().map(|h| (*fd, h)))
        .collect();
    fds.extend(opened.iter().map(|(fd, h)| (*fd, h.as_fd())));

    let mask = ctx.task.sigmask();
    let host_signals = |bits: u64| -> Vec<libc::c_int> {
        (1..=64u32)
            .filter(|sig| bits & (1 << (sig - 1)) != 0)
            .filter_map(host::signals::to_host)
            .collect()
    };
    let ignored_bits = lock(&process.sigactions)
        .iter()
        .enumerate()
        .filter(|(_, action)| action.handler == crate::kernel::abi::signal::SIG_IGN)
        .fold(0u64, |bits, (i, _)| bits | 1 << i);
    let (blocked, ignored) = (host_signals(mask), host_signals(ignored_bits));

    tracing::debug!(
        "execve: handing the process to host program {}",
        file.host_path.display()
    );
    let err = host::process::exec_host(&host::process::HostExec {
        path: &path,
        argv: &argv,
        env: &env,
        fds: &fds,
        blocked: &blocked,
        ignored: &ignored,
    });
    Err(Errno::from(err))
}

/// Reads and checks the whole program: anything but an aarch64 ELF executable is `ENOEXEC`.
fn parse_elf(file: &Executable) -> SysResult<ElfFile> {
    let size = retry(|| host::fs::fstat(file.fd.as_fd()))?.size.max(0) as usize;
    let mut bytes = vec![0u8; size];
    let mut filled = 0;
    while filled < size {
        let n = retry(|| host::io::pread(file.fd.as_fd(), &mut bytes[filled..], filled as i64))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    bytes.truncate(filled);
    let elf = crate::loader::elf::parse(bytes).map_err(|e| {
        tracing::debug!("execve: {}: {e}", file.host_path.display());
        Errno::ENOEXEC
    })?;
    Ok(elf)
}
