//! Host processes: `fork` and waiting for children.

use std::io;

/// Which side of a `fork` the caller is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forked {
    /// The new process.
    Child,
    /// The original process, with the child's pid.
    Parent(i32),
}

/// Forks this host process.
///
/// Only the calling thread continues in the child. The runtime rebuilds its per-process
/// threads there and touches nothing another thread may have locked at the moment of the fork
/// (the C library makes its own allocator fork-safe).
pub fn fork() -> io::Result<Forked> {
    // SAFETY: see above; the child only uses state owned by the calling thread and fresh
    // structures it creates itself.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}
