//! Terminal attributes: Linux `struct termios` and window sizes, translated to and from the
//! host's terminal calls.
//!
//! Linux and macOS agree on the meaning of most termios flags but not on their bit values or
//! on the `c_cc` indices, so each flag and control character is mapped by name.
//!
//! # Limitations
//! Flags only Linux has (`IUCLC`, `OLCUC`, `XCASE`) read back as clear on hosts without them.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::kernel::abi::structs::{Termios, Winsize};

/// Linux termios bit values (`asm-generic/termbits.h`).
mod linux {
    pub const IGNBRK: u32 = 0o1;
    pub const BRKINT: u32 = 0o2;
    pub const IGNPAR: u32 = 0o4;
    pub const PARMRK: u32 = 0o10;
    pub const INPCK: u32 = 0o20;
    pub const ISTRIP: u32 = 0o40;
    pub const INLCR: u32 = 0o100;
    pub const IGNCR: u32 = 0o200;
    pub const ICRNL: u32 = 0o400;
    pub const IXON: u32 = 0o2000;
    pub const IXANY: u32 = 0o4000;
    pub const IXOFF: u32 = 0o10000;
    pub const IMAXBEL: u32 = 0o20000;
    pub const IUTF8: u32 = 0o40000;

    pub const OPOST: u32 = 0o1;
    pub const ONLCR: u32 = 0o4;
    pub const OCRNL: u32 = 0o10;
    pub const ONOCR: u32 = 0o20;
    pub const ONLRET: u32 = 0o40;
    pub const OFILL: u32 = 0o100;
    pub const OFDEL: u32 = 0o200;

    pub const CSIZE: u32 = 0o60;
    pub const CS5: u32 = 0o0;
    pub const CS6: u32 = 0o20;
    pub const CS7: u32 = 0o40;
    pub const CS8: u32 = 0o60;
    pub const CSTOPB: u32 = 0o100;
    pub const CREAD: u32 = 0o200;
    pub const PARENB: u32 = 0o400;
    pub const PARODD: u32 = 0o1000;
    pub const HUPCL: u32 = 0o2000;
    pub const CLOCAL: u32 = 0o4000;
    pub const CBAUD: u32 = 0o10017;
    pub const CRTSCTS: u32 = 0o20000000000;

    pub const ISIG: u32 = 0o1;
    pub const ICANON: u32 = 0o2;
    pub const ECHO: u32 = 0o10;
    pub const ECHOE: u32 = 0o20;
    pub const ECHOK: u32 = 0o40;
    pub const ECHONL: u32 = 0o100;
    pub const NOFLSH: u32 = 0o200;
    pub const TOSTOP: u32 = 0o400;
    pub const ECHOCTL: u32 = 0o1000;
    pub const ECHOPRT: u32 = 0o2000;
    pub const ECHOKE: u32 = 0o4000;
    pub const FLUSHO: u32 = 0o10000;
    pub const PENDIN: u32 = 0o40000;
    pub const IEXTEN: u32 = 0o100000;
    pub const EXTPROC: u32 = 0o200000;

    pub const VINTR: usize = 0;
    pub const VQUIT: usize = 1;
    pub const VERASE: usize = 2;
    pub const VKILL: usize = 3;
    pub const VEOF: usize = 4;
    pub const VTIME: usize = 5;
    pub const VMIN: usize = 6;
    pub const VSTART: usize = 8;
    pub const VSTOP: usize = 9;
    pub const VSUSP: usize = 10;
    pub const VEOL: usize = 11;
    pub const VREPRINT: usize = 12;
    pub const VDISCARD: usize = 13;
    pub const VWERASE: usize = 14;
    pub const VLNEXT: usize = 15;
    pub const VEOL2: usize = 16;

    pub const CBAUD_B38400: u32 = 0o17;
}

type Tcflag = libc::tcflag_t;

/// `(host speed constant, Linux Bxxx code)`: glibc's speed_t holds the code, macOS' the rate.
const SPEEDS: &[(libc::speed_t, u32)] = &[
    (libc::B0, 0o0),
    (libc::B50, 0o1),
    (libc::B75, 0o2),
    (libc::B110, 0o3),
    (libc::B134, 0o4),
    (libc::B150, 0o5),
    (libc::B200, 0o6),
    (libc::B300, 0o7),
    (libc::B600, 0o10),
    (libc::B1200, 0o11),
    (libc::B1800, 0o12),
    (libc::B2400, 0o13),
    (libc::B4800, 0o14),
    (libc::B9600, 0o15),
    (libc::B19200, 0o16),
    (libc::B38400, 0o17),
    (libc::B57600, 0o10001),
    (libc::B115200, 0o10002),
    (libc::B230400, 0o10003),
];

const IFLAGS: [(u32, Tcflag); 14] = [
    (linux::IGNBRK, libc::IGNBRK),
    (linux::BRKINT, libc::BRKINT),
    (linux::IGNPAR, libc::IGNPAR),
    (linux::PARMRK, libc::PARMRK),
    (linux::INPCK, libc::INPCK),
    (linux::ISTRIP, libc::ISTRIP),
    (linux::INLCR, libc::INLCR),
    (linux::IGNCR, libc::IGNCR),
    (linux::ICRNL, libc::ICRNL),
    (linux::IXON, libc::IXON),
    (linux::IXANY, libc::IXANY),
    (linux::IXOFF, libc::IXOFF),
    (linux::IMAXBEL, libc::IMAXBEL),
    (linux::IUTF8, libc::IUTF8),
];

const OFLAGS: [(u32, Tcflag); 7] = [
    (linux::OPOST, libc::OPOST),
    (linux::ONLCR, libc::ONLCR),
    (linux::OCRNL, libc::OCRNL),
    (linux::ONOCR, libc::ONOCR),
    (linux::ONLRET, libc::ONLRET),
    (linux::OFILL, libc::OFILL),
    (linux::OFDEL, libc::OFDEL),
];

const CFLAGS: [(u32, Tcflag); 7] = [
    (linux::CSTOPB, libc::CSTOPB),
    (linux::CREAD, libc::CREAD),
    (linux::PARENB, libc::PARENB),
    (linux::PARODD, libc::PARODD),
    (linux::HUPCL, libc::HUPCL),
    (linux::CLOCAL, libc::CLOCAL),
    (linux::CRTSCTS, libc::CRTSCTS),
];

const CSIZES: [(u32, Tcflag); 4] = [
    (linux::CS5, libc::CS5),
    (linux::CS6, libc::CS6),
    (linux::CS7, libc::CS7),
    (linux::CS8, libc::CS8),
];

const LFLAGS: [(u32, Tcflag); 15] = [
    (linux::ISIG, libc::ISIG),
    (linux::ICANON, libc::ICANON),
    (linux::ECHO, libc::ECHO),
    (linux::ECHOE, libc::ECHOE),
    (linux::ECHOK, libc::ECHOK),
    (linux::ECHONL, libc::ECHONL),
    (linux::NOFLSH, libc::NOFLSH),
    (linux::TOSTOP, libc::TOSTOP),
    (linux::ECHOCTL, libc::ECHOCTL),
    (linux::ECHOPRT, libc::ECHOPRT),
    (linux::ECHOKE, libc::ECHOKE),
    (linux::FLUSHO, libc::FLUSHO),
    (linux::PENDIN, libc::PENDIN),
    (linux::IEXTEN, libc::IEXTEN),
    (linux::EXTPROC, libc::EXTPROC),
];

const CC: [(usize, usize); 16] = [
    (linux::VINTR, libc::VINTR),
    (linux::VQUIT, libc::VQUIT),
    (linux::VERASE, libc::VERASE),
    (linux::VKILL, libc::VKILL),
    (linux::VEOF, libc::VEOF),
    (linux::VTIME, libc::VTIME),
    (linux::VMIN, libc::VMIN),
    (linux::VSTART, libc::VSTART),
    (linux::VSTOP, libc::VSTOP),
    (linux::VSUSP, libc::VSUSP),
    (linux::VEOL, libc::VEOL),
    (linux::VREPRINT, libc::VREPRINT),
    (linux::VDISCARD, libc::VDISCARD),
    (linux::VWERASE, libc::VWERASE),
    (linux::VLNEXT, libc::VLNEXT),
    (linux::VEOL2, libc::VEOL2),
];

fn to_linux(host: Tcflag, table: &[(u32, Tcflag)]) -> u32 {
    table
        .iter()
        .filter(|&&(_, h)| host & h == h && h != 0)
        .fold(0, |acc, &(l, _)| acc | l)
}

fn to_host(flags: u32, table: &[(u32, Tcflag)]) -> Tcflag {
    table
        .iter()
        .filter(|&&(l, _)| flags & l == l && l != 0)
        .fold(0, |acc, &(_, h)| acc | h)
}

/// Converts host attributes to the Linux kernel's `struct termios`.
pub fn termios_to_linux(host: &libc::termios) -> Termios {
    let mut t = Termios {
        c_iflag: to_linux(host.c_iflag, &IFLAGS),
        c_oflag: to_linux(host.c_oflag, &OFLAGS),
        c_cflag: to_linux(host.c_cflag, &CFLAGS),
        c_lflag: to_linux(host.c_lflag, &LFLAGS),
        c_line: 0,
        c_cc: [0; 19],
    };
    let size = host.c_cflag & libc::CSIZE;
    t.c_cflag |= CSIZES
        .iter()
        .find(|&&(_, h)| h == size)
        .map_or(linux::CS8, |&(l, _)| l);
    // SAFETY: cfgetospeed only reads the struct.
    let speed = unsafe { libc::cfgetospeed(host) };
    let code = SPEEDS
        .iter()
        .find(|&&(s, _)| s == speed)
        .map_or(linux::CBAUD_B38400, |&(_, c)| c);
    t.c_cflag |= code;
    for (l, h) in CC {
        t.c_cc[l] = host.c_cc[h];
    }
    t
}

/// Applies Linux attributes `t` onto `host` (which holds the current host attributes, so
/// host-only fields keep their values).
pub fn termios_to_host(t: &Termios, host: &mut libc::termios) {
    host.c_iflag = to_host(t.c_iflag, &IFLAGS);
    host.c_oflag = to_host(t.c_oflag, &OFLAGS);
    host.c_cflag = to_host(t.c_cflag & !linux::CSIZE & !linux::CBAUD, &CFLAGS);
    host.c_cflag |= CSIZES
        .iter()
        .find(|&&(l, _)| l == t.c_cflag & linux::CSIZE)
        .map_or(libc::CS8, |&(_, h)| h);
    host.c_lflag = to_host(t.c_lflag, &LFLAGS);
    for (l, h) in CC {
        host.c_cc[h] = t.c_cc[l];
    }
    let code = t.c_cflag & linux::CBAUD;
    if let Some(&(speed, _)) = SPEEDS.iter().find(|&&(_, c)| c == code) {
        // SAFETY: cfset*speed only write the struct.
        unsafe {
            libc::cfsetispeed(host, speed);
            libc::cfsetospeed(host, speed);
        }
    }
}

/// `tcgetattr` on `fd`, in Linux form.
pub fn get_attr(fd: BorrowedFd<'_>) -> io::Result<Termios> {
    let host = host_attr(fd)?;
    Ok(termios_to_linux(&host))
}

fn host_attr(fd: BorrowedFd<'_>) -> io::Result<libc::termios> {
    let mut host = std::mem::MaybeUninit::<libc::termios>::zeroed();
    // SAFETY: host is valid for one termios.
    if unsafe { libc::tcgetattr(fd.as_raw_fd(), host.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: tcgetattr filled it in.
    Ok(unsafe { host.assume_init() })
}

/// When a `TCSETS*` takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetWhen {
    /// `TCSETS`: now.
    Now,
    /// `TCSETSW`: after output drains.
    Drain,
    /// `TCSETSF`: after output drains, discarding pending input.
    Flush,
}

/// `tcsetattr` on `fd` from Linux attributes.
pub fn set_attr(fd: BorrowedFd<'_>, t: &Termios, when: SetWhen) -> io::Result<()> {
    let mut host = host_attr(fd)?;
    termios_to_host(t, &mut host);
    let action = match when {
        SetWhen::Now => libc::TCSANOW,
        SetWhen::Drain => libc::TCSADRAIN,
        SetWhen::Flush => libc::TCSAFLUSH,
    };
    // SAFETY: host is a valid termios.
    if unsafe { libc::tcsetattr(fd.as_raw_fd(), action, &host) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `TIOCGWINSZ`.
pub fn get_winsize(fd: BorrowedFd<'_>) -> io::Result<Winsize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize to a valid pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Winsize {
        ws_row: ws.ws_row,
        ws_col: ws.ws_col,
        ws_xpixel: ws.ws_xpixel,
        ws_ypixel: ws.ws_ypixel,
    })
}

/// `TIOCSWINSZ`.
pub fn set_winsize(fd: BorrowedFd<'_>, w: &Winsize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: w.ws_row,
        ws_col: w.ws_col,
        ws_xpixel: w.ws_xpixel,
        ws_ypixel: w.ws_ypixel,
    };
    // SAFETY: TIOCSWINSZ reads one struct winsize from a valid pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `TIOCGPGRP`: the terminal's foreground process group.
pub fn foreground_group(fd: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: plain descriptor call.
    let pgrp = unsafe { libc::tcgetpgrp(fd.as_raw_fd()) };
    if pgrp < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(pgrp)
    }
}

/// `TIOCSPGRP`.
pub fn set_foreground_group(fd: BorrowedFd<'_>, pgrp: i32) -> io::Result<()> {
    // SAFETY: plain descriptor call.
    if unsafe { libc::tcsetpgrp(fd.as_raw_fd(), pgrp) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `TIOCGSID`: the terminal's session.
pub fn session(fd: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: plain descriptor call.
    let sid = unsafe { libc::tcgetsid(fd.as_raw_fd()) };
    if sid < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sid)
    }
}

/// `TCFLSH` with a host queue selector.
pub fn flush(fd: BorrowedFd<'_>, queue: libc::c_int) -> io::Result<()> {
    // SAFETY: plain descriptor call.
    if unsafe { libc::tcflush(fd.as_raw_fd(), queue) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `TCSBRK` with a non-zero argument: wait for output to drain.
pub fn drain(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain descriptor call.
    if unsafe { libc::tcdrain(fd.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_through_the_host_form() {
        let mut t = Termios {
            c_iflag: linux::ICRNL | linux::IXON | linux::IUTF8,
            c_oflag: linux::OPOST | linux::ONLCR,
            c_cflag: linux::CS8 | linux::CREAD | 0o15,
            c_lflag: linux::ISIG | linux::ICANON | linux::ECHO | linux::IEXTEN,
            c_line: 0,
            c_cc: [0; 19],
        };
        t.c_cc[linux::VINTR] = 3;
        t.c_cc[linux::VMIN] = 1;
        // SAFETY: an all-zero termios is a valid value of the plain C struct.
        let mut host: libc::termios = unsafe { std::mem::zeroed() };
        termios_to_host(&t, &mut host);
        assert_ne!(host.c_lflag & libc::ICANON, 0);
        assert_eq!(host.c_cc[libc::VINTR], 3);
        assert_eq!(termios_to_linux(&host), t);
    }
}
