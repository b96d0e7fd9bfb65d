//! Socket calls on descriptors that are not sockets: `getsockname(2)` and `getpeername(2)`.
//!
//! Programs probe their standard descriptors with these (bash's `getpeername` on stdin decides
//! whether it runs under sshd and must read `~/.bashrc`), so a descriptor that is not a socket
//! must get Linux's `ENOTSOCK`, not `ENOSYS`.
//!
//! # Limitations
//! Sockets themselves are not implemented yet: on a socket descriptor (one inherited from the
//! host) both calls return `ENOSYS`.

use super::Ctx;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::mode;

/// `getsockname(2)`.
pub fn sys_getsockname(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    socket_address(ctx, a[0])
}

/// `getpeername(2)`.
pub fn sys_getpeername(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    socket_address(ctx, a[0])
}

/// The address calls' answer for descriptor `fd`: Linux looks the socket up before it reads
/// the address arguments, so a descriptor that is not a socket is `ENOTSOCK` whatever they are.
fn socket_address(ctx: &Ctx<'_>, fd: u64) -> SysResult {
    let file = ctx.file(fd)?;
    let is_socket = file.stat().is_ok_and(|st| st.kind() == mode::S_IFSOCK);
    if !is_socket {
        return Err(Errno::ENOTSOCK);
    }
    // Sockets themselves are not implemented yet (`socket` is ENOSYS), so a socket here was
    // inherited from the host; reading its address in Linux's layout is not done either.
    Err(Errno::ENOSYS)
}
