//! Descriptor control: `dup(2)`, `dup3(2)`, `fcntl(2)`, `flock(2)`, `pipe2(2)` and `ioctl(2)`
//! (the terminal and generic requests; anything else is `ENOTTY`, as Linux answers for a file
//! that does not know the request).

use super::Ctx;
use crate::host;
use crate::host::io::{LockKind, RecordLock};
use crate::host::tty::SetWhen;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::fcntl as fc;
use crate::kernel::abi::ioctl as io;
use crate::kernel::abi::open as lo;
use crate::kernel::abi::structs::{Flock, Termios, Winsize};
use crate::kernel::file::{FileKind, OpenFile, retry};
use crate::kernel::process::lock;

/// `dup(2)`.
pub fn sys_dup(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let file = ctx.file(a[0])?;
    ctx.install(file, false)
}

/// `dup3(2)`.
pub fn sys_dup3(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (old, new, flags) = (a[0] as u32 as i32, a[1] as u32 as i32, a[2] as u32 as u64);
    if flags & !lo::O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    if old == new {
        return Err(Errno::EINVAL);
    }
    let limit = ctx.process().fd_limit();
    let mut fds = lock(&ctx.process().fds);
    let file = fds.get(old)?;
    if new < 0 || new as usize >= limit {
        return Err(Errno::EBADF);
    }
    let replaced = fds.insert_at(new as usize, file, flags & lo::O_CLOEXEC != 0);
    drop(fds);
    drop(replaced);
    Ok(new as u64)
}

/// `fcntl(2)`.
pub fn sys_fcntl(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let fd = a[0] as u32 as i32;
    let cmd = a[1] as u32 as u64;
    let arg = a[2];
    let file = ctx.file(a[0])?;
    match cmd {
        fc::F_DUPFD | fc::F_DUPFD_CLOEXEC => {
            let limit = ctx.process().fd_limit();
            let min = arg as u32 as usize;
            if min >= limit {
                return Err(Errno::EINVAL);
            }
            let cloexec = cmd == fc::F_DUPFD_CLOEXEC;
            lock(&ctx.process().fds)
                .insert(file, cloexec, min, limit)
                .map(|n| n as u64)
        }
        fc::F_GETFD => {
            let cloexec = lock(&ctx.process().fds).entry(fd)?.cloexec;
            Ok(if cloexec { fc::FD_CLOEXEC } else { 0 })
        }
        fc::F_SETFD => {
            lock(&ctx.process().fds).set_cloexec(fd, arg & fc::FD_CLOEXEC != 0)?;
            Ok(0)
        }
        fc::F_GETFL => Ok(file.status_flags()),
        fc::F_SETFL => {
            if matches!(file.kind(), FileKind::Path { .. }) {
                return Err(Errno::EBADF);
            }
            file.set_status_flags(arg)?;
            Ok(0)
        }
        fc::F_GETLK | fc::F_SETLK | fc::F_SETLKW => record_lock(ctx, &file, cmd, arg, false),
        fc::F_OFD_GETLK | fc::F_OFD_SETLK | fc::F_OFD_SETLKW => {
            record_lock(ctx, &file, cmd, arg, true)
        }
        fc::F_GETOWN => Ok(file.owner() as i64 as u64),
        fc::F_SETOWN => {
            file.set_owner(arg as u32 as i32);
            Ok(0)
        }
        fc::F_GETSIG => Ok(u64::from(file.io_signal())),
        fc::F_SETSIG => {
            if arg > 64 {
                return Err(Errno::EINVAL);
            }
            file.set_io_signal(arg as u32);
            Ok(0)
        }
        fc::F_GETPIPE_SZ | fc::F_SETPIPE_SZ => {
            let fdh = file.host_fd().ok_or(Errno::EBADF)?;
            if file.stat()?.kind() != crate::kernel::abi::mode::S_IFIFO {
                return Err(Errno::EBADF);
            }
            if cmd == fc::F_GETPIPE_SZ {
                retry(|| host::pipe_size(fdh)).map(|n| n as u64)
            } else {
                retry(|| host::set_pipe_size(fdh, arg as u32 as usize)).map(|n| n as u64)
            }
        }
        fc::F_GETLEASE => {
            file.host_fd().ok_or(Errno::EBADF)?;
            Ok(fc::F_UNLCK as u64)
        }
        fc::F_ADD_SEALS | fc::F_GET_SEALS | fc::F_NOTIFY | fc::F_SETLEASE => Err(Errno::EINVAL),
        _ => Err(Errno::EINVAL),
    }
}

/// `F_GETLK`/`F_SETLK`/`F_SETLKW` and their open-file-description forms.
fn record_lock(ctx: &Ctx<'_>, file: &OpenFile, cmd: u64, addr: u64, ofd: bool) -> SysResult {
    let fdh = file.host_fd().ok_or(Errno::EBADF)?;
    let mut lk: Flock = ctx.mem().read_val(addr)?;
    let kind = match lk.l_type {
        fc::F_RDLCK => LockKind::Read,
        fc::F_WRLCK => LockKind::Write,
        fc::F_UNLCK => LockKind::Unlock,
        _ => return Err(Errno::EINVAL),
    };
    if !(0..=2).contains(&lk.l_whence) {
        return Err(Errno::EINVAL);
    }
    if ofd && lk.l_pid != 0 {
        return Err(Errno::EINVAL);
    }
    let setting = !matches!(cmd, fc::F_GETLK | fc::F_OFD_GETLK);
    let access = file.status_flags() & lo::O_ACCMODE;
    if setting && kind == LockKind::Read && access == lo::O_WRONLY {
        return Err(Errno::EBADF);
    }
    if setting && kind == LockKind::Write && access == lo::O_RDONLY {
        return Err(Errno::EBADF);
    }
    let mut request = RecordLock {
        kind,
        whence: i32::from(lk.l_whence),
        start: lk.l_start,
        len: lk.l_len,
        pid: 0,
    };
    let host_cmd = host::lock_command(cmd, ofd).ok_or(Errno::EINVAL)?;
    retry(|| host::io::record_lock(fdh, host_cmd, &mut request))?;
    if !setting {
        lk.l_type = match request.kind {
            LockKind::Read => fc::F_RDLCK,
            LockKind::Write => fc::F_WRLCK,
            LockKind::Unlock => fc::F_UNLCK,
        };
        lk.l_whence = 0;
        lk.l_start = request.start;
        lk.l_len = request.len;
        lk.l_pid = if ofd { -1 } else { request.pid };
        ctx.mem().write_val(addr, &lk)?;
    }
    Ok(0)
}

/// `flock(2)`.
pub fn sys_flock(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let op = a[1] as u32 as u64;
    let file = ctx.file(a[0])?;
    let base = op & !fc::LOCK_NB;
    let mut host_op = match base {
        fc::LOCK_SH => libc::LOCK_SH,
        fc::LOCK_EX => libc::LOCK_EX,
        fc::LOCK_UN => libc::LOCK_UN,
        _ => return Err(Errno::EINVAL),
    };
    if op & fc::LOCK_NB != 0 {
        host_op |= libc::LOCK_NB;
    }
    let fd = file.host_fd().ok_or(Errno::EBADF)?;
    retry(|| host::io::flock(fd, host_op))?;
    Ok(0)
}

/// `pipe2(2)`.
pub fn sys_pipe2(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    const O_NOTIFICATION_PIPE: u64 = lo::O_EXCL;
    let flags = a[1] as u32 as u64;
    if flags & !(lo::O_CLOEXEC | lo::O_NONBLOCK | lo::O_DIRECT | O_NOTIFICATION_PIPE) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & (lo::O_DIRECT | O_NOTIFICATION_PIPE) != 0 {
        // Packet-mode and notification pipes need kernel pipe internals the host lacks;
        // EINVAL is what a kernel without them answers.
        return Err(Errno::EINVAL);
    }
    ctx.mem().check(a[0], 8, crate::vm::vma::Prot::WRITE)?;
    let nonblock = flags & lo::O_NONBLOCK;
    let (r, w) = retry(|| host::io::pipe(nonblock != 0))?;
    let read_end = OpenFile::host(r, lo::O_RDONLY | nonblock, b"pipe".to_vec());
    let write_end = OpenFile::host(w, lo::O_WRONLY | nonblock, b"pipe".to_vec());
    let cloexec = flags & lo::O_CLOEXEC != 0;
    let limit = ctx.process().fd_limit();
    let mut fds = lock(&ctx.process().fds);
    let rfd = fds.insert(read_end, cloexec, 0, limit)?;
    let wfd = match fds.insert(write_end, cloexec, 0, limit) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = fds.remove(rfd);
            return Err(e);
        }
    };
    drop(fds);
    ctx.mem().write_val(a[0], &[rfd, wfd])?;
    Ok(0)
}

/// `ioctl(2)`.
pub fn sys_ioctl(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let fd = a[0] as u32 as i32;
    let request = a[1] as u32 as u64;
    let arg = a[2];
    let file = ctx.file(a[0])?;
    if matches!(file.kind(), FileKind::Path { .. }) {
        return Err(Errno::EBADF);
    }
    match request {
        io::FIOCLEX | io::FIONCLEX => {
            lock(&ctx.process().fds).set_cloexec(fd, request == io::FIOCLEX)?;
            return Ok(0);
        }
        io::FIONBIO | io::FIOASYNC => {
            let on: i32 = ctx.mem().read_val(arg)?;
            let bit = if request == io::FIONBIO {
                lo::O_NONBLOCK
            } else {
                lo::O_ASYNC
            };
            let flags = file.status_flags();
            file.set_status_flags(if on != 0 { flags | bit } else { flags & !bit })?;
            return Ok(0);
        }
        _ => {}
    }
    let Some(fdh) = file.host_fd() else {
        return Err(Errno::ENOTTY);
    };
    match request {
        io::FIONREAD => {
            let n = retry(|| host::io::bytes_available(fdh))?;
            ctx.mem().write_val(arg, &n)?;
            Ok(0)
        }
        _ if !host::io::isatty(fdh) => Err(Errno::ENOTTY),
        io::TCGETS => {
            let t = retry(|| host::tty::get_attr(fdh))?;
            ctx.mem().write_val(arg, &t)?;
            Ok(0)
        }
        io::TCSETS | io::TCSETSW | io::TCSETSF => {
            let t: Termios = ctx.mem().read_val(arg)?;
            let when = match request {
                io::TCSETS => SetWhen::Now,
                io::TCSETSW => SetWhen::Drain,
                _ => SetWhen::Flush,
            };
            retry(|| host::tty::set_attr(fdh, &t, when))?;
            Ok(0)
        }
        io::TIOCGWINSZ => {
            let ws = retry(|| host::tty::get_winsize(fdh))?;
            ctx.mem().write_val(arg, &ws)?;
            Ok(0)
        }
        io::TIOCSWINSZ => {
            let ws: Winsize = ctx.mem().read_val(arg)?;
            retry(|| host::tty::set_winsize(fdh, &ws))?;
            Ok(0)
        }
        io::TIOCGPGRP => {
            let pgrp = retry(|| host::tty::foreground_group(fdh))?;
            ctx.mem().write_val(arg, &pgrp)?;
            Ok(0)
        }
        io::TIOCSPGRP => {
            let pgrp: i32 = ctx.mem().read_val(arg)?;
            retry(|| host::tty::set_foreground_group(fdh, pgrp))?;
            Ok(0)
        }
        io::TIOCGSID => {
            let sid = retry(|| host::tty::session(fdh))?;
            ctx.mem().write_val(arg, &sid)?;
            Ok(0)
        }
        io::TCFLSH => {
            let queue = match arg {
                0 => libc::TCIFLUSH,
                1 => libc::TCOFLUSH,
                2 => libc::TCIOFLUSH,
                _ => return Err(Errno::EINVAL),
            };
            retry(|| host::tty::flush(fdh, queue))?;
            Ok(0)
        }
        io::TCSBRK => {
            retry(|| host::tty::drain(fdh))?;
            Ok(0)
        }
        _ => Err(Errno::ENOTTY),
    }
}
