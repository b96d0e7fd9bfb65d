//! The host side of handing a forked guest process to a new elfuse process: a socket that
//! carries messages with descriptors attached, starting elfuse again with that socket, and the
//! file that carries guest memory.
//!
//! A message is a 12-byte header (payload length, descriptor count), the descriptors in
//! batches of at most [`FDS_PER_BATCH`] (each batch rides on one byte), then the payload.
//!
//! The memory file is sparse and as large as the guest address space: guest address `a` is at
//! file offset `a`. On Linux it is a `memfd` and the new process maps it privately, so its
//! pages are shared copy-on-write with the file and only the sender copies. Elsewhere it is an
//! unlinked temporary file that the new process reads.
//!
//! # Limitations
//! The macOS memory transport is this same file path: it compiles there but has not run. A
//! transport that shares pages without the sender's copy (Mach `mach_vm_remap` into the new
//! task, or file clones) would make the hand-over cheaper there.

use std::io;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};

/// The most descriptors sent with one byte (Linux accepts 253 per message).
pub const FDS_PER_BATCH: usize = 200;

/// The largest payload and descriptor count a message may announce; anything larger is not
/// a message from elfuse.
const MAX_PAYLOAD: u64 = 1 << 30;
const MAX_FDS: usize = 1 << 20;

/// The descriptor number the new elfuse process finds its end of the channel at.
pub const CHILD_CHANNEL_FD: RawFd = 3;

#[cfg(target_os = "linux")]
const SOCK_FLAGS: SockFlag = SockFlag::SOCK_CLOEXEC;
#[cfg(not(target_os = "linux"))]
const SOCK_FLAGS: SockFlag = SockFlag::empty();

/// One end of a hand-over channel (a Unix stream socket).
pub struct Channel {
    sock: OwnedFd,
}

impl Channel {
    /// A connected pair, close-on-exec.
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = socketpair(AddressFamily::Unix, SockType::Stream, None, SOCK_FLAGS)?;
        // Where SOCK_CLOEXEC is missing, both ends are marked right away; callers serialize
        // hand-overs, so no other `spawn` can inherit them in between.
        set_cloexec(a.as_fd())?;
        set_cloexec(b.as_fd())?;
        Ok((Channel { sock: a }, Channel { sock: b }))
    }

    /// The channel a new elfuse process was started with.
    pub fn inherited() -> io::Result<Channel> {
        // SAFETY: fcntl on a descriptor number only queries it.
        if unsafe { libc::fcntl(CHILD_CHANNEL_FD, libc::F_GETFD) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the parent put the channel at this number for this process to own.
        let sock = unsafe { OwnedFd::from_raw_fd(CHILD_CHANNEL_FD) };
        set_cloexec(sock.as_fd())?;
        Ok(Channel { sock })
    }

    /// Sends `payload` with `fds` attached.
    pub fn send(&self, payload: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        let mut header = [0u8; 12];
        header[..8].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        header[8..].copy_from_slice(&(fds.len() as u32).to_le_bytes());
        self.write_all(&header)?;
        for batch in fds.chunks(FDS_PER_BATCH) {
            let raw: Vec<RawFd> = batch.iter().map(AsRawFd::as_raw_fd).collect();
            let rights = [ControlMessage::ScmRights(&raw)];
            let byte = [0u8];
            let iov = [IoSlice::new(&byte)];
            loop {
                match sendmsg::<()>(
                    self.sock.as_raw_fd(),
                    &iov,
                    &rights,
                    MsgFlags::empty(),
                    None,
                ) {
                    Ok(1) => break,
                    Ok(_) => return Err(io::Error::from_raw_os_error(libc::EIO)),
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.write_all(payload)
    }

    /// Receives one message: its payload and descriptors.
    pub fn recv(&self) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
        let mut header = [0u8; 12];
        self.read_exact(&mut header)?;
        let len = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
        let count = u32::from_le_bytes(header[8..].try_into().expect("4 bytes")) as usize;
        if len > MAX_PAYLOAD || count > MAX_FDS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a hand-over message",
            ));
        }
        let len = len as usize;

        let mut fds = Vec::with_capacity(count);
        while fds.len() < count {
            let mut byte = [0u8];
            let mut iov = [IoSliceMut::new(&mut byte)];
            let mut space = nix::cmsg_space!([RawFd; FDS_PER_BATCH]);
            let msg = loop {
                match recvmsg::<()>(
                    self.sock.as_raw_fd(),
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::empty(),
                ) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other?,
                }
            };
            if msg.bytes != 1 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            for cmsg in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(raw) = cmsg {
                    for fd in raw {
                        // SAFETY: the kernel just installed this descriptor for us.
                        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                        set_cloexec(fd.as_fd())?;
                        fds.push(fd);
                    }
                }
            }
        }
        let mut payload = vec![0u8; len];
        self.read_exact(&mut payload)?;
        Ok((payload, fds))
    }

    /// Ends both directions: a peer's receive sees the end, and so does this side's.
    pub fn shut_down(&self) {
        let _ = nix::sys::socket::shutdown(self.sock.as_raw_fd(), nix::sys::socket::Shutdown::Both);
    }

    fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            match nix::unistd::write(&self.sock, data) {
                Ok(n) => data = &data[n..],
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn read_exact(&self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match nix::unistd::read(&self.sock, buf) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                Ok(n) => buf = &mut buf[n..],
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain descriptor call.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Starts `exe` with `args`, its end of the channel at [`CHILD_CHANNEL_FD`], `stderr` as its
/// standard error and nothing else open. Returns the new process's id: a child of this one.
pub fn spawn(
    exe: &Path,
    args: &[String],
    channel: &Channel,
    stderr: Option<BorrowedFd<'_>>,
) -> io::Result<i32> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    let sock = channel.sock.as_raw_fd();
    let mut command = Command::new(exe);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(match stderr {
            Some(fd) => Stdio::from(fd.try_clone_to_owned()?),
            None => Stdio::null(),
        });
    // SAFETY: the closure runs between fork and exec and only calls dup2, which is
    // async-signal-safe; dup2 leaves the new number without close-on-exec.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(sock, CHILD_CHANNEL_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    Ok(child.id() as i32)
}

/// A new, empty (all-zero) file of `len` bytes to carry guest memory.
#[cfg(target_os = "linux")]
pub fn memory_file(len: u64) -> io::Result<OwnedFd> {
    super::memory::shared_object(len)
}

/// A new, empty (all-zero) file of `len` bytes to carry guest memory: an unlinked temporary
/// file, sparse where the file system allows.
#[cfg(not(target_os = "linux"))]
pub fn memory_file(len: u64) -> io::Result<OwnedFd> {
    let dir = std::env::temp_dir();
    let mut template = dir
        .join("elfuse-fork.XXXXXX")
        .into_os_string()
        .into_encoded_bytes();
    template.push(0);
    // SAFETY: template is a writable NUL-terminated buffer ending in XXXXXX.
    let fd = unsafe { libc::mkstemp(template.as_mut_ptr().cast()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: mkstemp filled in the name; removing it leaves the file open.
    unsafe {
        libc::unlink(template.as_ptr().cast());
    }
    set_cloexec(fd.as_fd())?;
    let size =
        libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::ENOMEM))?;
    // SAFETY: plain descriptor call.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), size) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Whether memory files can be mapped at every guest page (the host page is 4 KiB), so the
/// receiver maps instead of reading.
pub fn can_map_guest_pages() -> bool {
    super::memory::page_size() == 4096
}
