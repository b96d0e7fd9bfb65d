//! Waiting for host descriptors: `poll(2)` with Linux event bits translated to the host's, and
//! the wake-up pipe that lets the runtime's own objects end such a wait.
//!
//! Linux and macOS agree on `POLLIN`, `POLLPRI`, `POLLOUT`, `POLLERR`, `POLLHUP`, `POLLNVAL`,
//! `POLLRDNORM` and `POLLRDBAND`; they number `POLLWRNORM` and `POLLWRBAND` differently, and
//! only Linux has `POLLRDHUP`, so every word is converted bit by bit.
//!
//! # Limitations
//! macOS `poll(2)` does not support character devices other than terminals and some
//! pseudo-devices: such descriptors come back with `POLLNVAL` there, which the guest sees as
//! an invalid descriptor. macOS has no `POLLRDHUP`: a guest that asks for it on a host
//! descriptor never sees it there.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

/// Linux `poll` event bits (the same numbers as the `EPOLL*` ones they share).
pub mod linux_bits {
    pub const POLLIN: u32 = 0x1;
    pub const POLLPRI: u32 = 0x2;
    pub const POLLOUT: u32 = 0x4;
    pub const POLLERR: u32 = 0x8;
    pub const POLLHUP: u32 = 0x10;
    pub const POLLNVAL: u32 = 0x20;
    pub const POLLRDNORM: u32 = 0x40;
    pub const POLLRDBAND: u32 = 0x80;
    pub const POLLWRNORM: u32 = 0x100;
    pub const POLLWRBAND: u32 = 0x200;
    pub const POLLMSG: u32 = 0x400;
    pub const POLLRDHUP: u32 = 0x2000;
}

/// Each Linux bit with its host counterpart.
const BITS: &[(u32, libc::c_short)] = &[
    (linux_bits::POLLIN, libc::POLLIN),
    (linux_bits::POLLPRI, libc::POLLPRI),
    (linux_bits::POLLOUT, libc::POLLOUT),
    (linux_bits::POLLERR, libc::POLLERR),
    (linux_bits::POLLHUP, libc::POLLHUP),
    (linux_bits::POLLNVAL, libc::POLLNVAL),
    (linux_bits::POLLRDNORM, libc::POLLRDNORM),
    (linux_bits::POLLRDBAND, libc::POLLRDBAND),
    (linux_bits::POLLWRNORM, libc::POLLWRNORM),
    (linux_bits::POLLWRBAND, libc::POLLWRBAND),
    #[cfg(target_os = "linux")]
    (linux_bits::POLLRDHUP, libc::POLLRDHUP),
];

/// The host event word for Linux `events` (bits the host lacks are dropped).
pub fn to_host(events: u32) -> libc::c_short {
    BITS.iter()
        .filter(|(linux, _)| events & linux != 0)
        .fold(0, |acc, (_, host)| acc | host)
}

/// The Linux event word for host `revents`. On macOS `POLLWRNORM` is `POLLOUT`, so both Linux
/// bits come back for it; the caller masks the result with what was asked for.
pub fn from_host(revents: libc::c_short) -> u32 {
    BITS.iter()
        .filter(|(_, host)| revents & host != 0)
        .fold(0, |acc, (linux, _)| acc | linux)
}

/// One descriptor to poll, with host event words.
pub type PollFd = libc::pollfd;

/// A [`PollFd`] for `fd` asking for the Linux `events`.
pub fn poll_fd(fd: BorrowedFd<'_>, events: u32) -> PollFd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events: to_host(events),
        revents: 0,
    }
}

/// `poll(2)`: waits until one of `fds` is ready or `timeout` passes (`None`: no limit).
/// Returns the number of ready entries; a host signal gives `EINTR`.
pub fn poll(fds: &mut [PollFd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = match timeout {
        None => -1,
        // Round up, so a wait never ends before its deadline.
        Some(t) => i32::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX),
    };
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd records.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

/// The readiness of one descriptor right now (Linux bits).
pub fn poll_now(fd: BorrowedFd<'_>, events: u32) -> io::Result<u32> {
    let mut fds = [poll_fd(fd, events)];
    poll(&mut fds, Some(Duration::ZERO))?;
    Ok(from_host(fds[0].revents))
}

/// A non-blocking pipe that wakes a thread polling its read end.
pub struct WakePipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl WakePipe {
    /// A new pipe (both ends close-on-exec and non-blocking).
    pub fn new() -> io::Result<WakePipe> {
        let (read, write) = super::io::pipe(true)?;
        Ok(WakePipe { read, write })
    }

    /// The end to poll for `POLLIN`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// The raw number of the end to poll.
    pub fn raw_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Makes the read end readable (a full pipe is readable already).
    pub fn wake(&self) {
        let _ = super::io::write(self.write.as_fd(), &[1]);
    }

    /// Empties the pipe, so the next poll blocks until the next wake-up.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!(super::io::read(self.read.as_fd(), &mut buf), Ok(n) if n == buf.len()) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_words_round_trip() {
        use linux_bits::*;
        let common = POLLIN | POLLPRI | POLLOUT | POLLERR | POLLHUP | POLLNVAL | POLLRDNORM;
        assert_eq!(from_host(to_host(common)) & common, common);
        assert_eq!(from_host(to_host(POLLWRBAND)) & POLLWRBAND, POLLWRBAND);
        assert_eq!(to_host(POLLMSG), 0);
    }

    #[test]
    fn wake_pipe_wakes_once_until_drained() {
        let pipe = WakePipe::new().unwrap();
        assert_eq!(poll_now(pipe.fd(), linux_bits::POLLIN).unwrap(), 0);
        pipe.wake();
        pipe.wake();
        assert_ne!(poll_now(pipe.fd(), linux_bits::POLLIN).unwrap(), 0);
        pipe.drain();
        assert_eq!(poll_now(pipe.fd(), linux_bits::POLLIN).unwrap(), 0);
    }
}
