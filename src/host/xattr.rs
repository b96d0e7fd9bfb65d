//! Extended attributes on the host: one interface over Linux's `*xattr` family and macOS'
//! variants (which take a position and an options word instead of separate `l` calls).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::RawFd;

/// What an attribute call operates on.
pub enum Target {
    /// A path; `follow` decides whether a final symbolic link is followed.
    Path { path: CString, follow: bool },
    /// An open host descriptor.
    Fd(RawFd),
}

fn cname(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(rc: isize) -> io::Result<usize> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use super::*;

    pub fn set(t: &Target, name: &CStr, value: &[u8], flags: libc::c_int) -> io::Result<usize> {
        let (v, n) = (value.as_ptr().cast(), value.len());
        // SAFETY: strings are NUL-terminated and value is valid for n bytes.
        let rc = unsafe {
            match t {
                Target::Path { path, follow: true } => {
                    libc::setxattr(path.as_ptr(), name.as_ptr(), v, n, flags)
                }
                Target::Path {
                    path,
                    follow: false,
                } => libc::lsetxattr(path.as_ptr(), name.as_ptr(), v, n, flags),
                Target::Fd(fd) => libc::fsetxattr(*fd, name.as_ptr(), v, n, flags),
            }
        };
        check(rc as isize)
    }

    pub fn get(t: &Target, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
        let (b, n) = (buf.as_mut_ptr().cast(), buf.len());
        // SAFETY: strings are NUL-terminated and buf is valid for n bytes.
        let rc = unsafe {
            match t {
                Target::Path { path, follow: true } => {
                    libc::getxattr(path.as_ptr(), name.as_ptr(), b, n)
                }
                Target::Path {
                    path,
                    follow: false,
                } => libc::lgetxattr(path.as_ptr(), name.as_ptr(), b, n),
                Target::Fd(fd) => libc::fgetxattr(*fd, name.as_ptr(), b, n),
            }
        };
        check(rc)
    }

    pub fn list(t: &Target, buf: &mut [u8]) -> io::Result<usize> {
        let (b, n) = (buf.as_mut_ptr().cast(), buf.len());
        // SAFETY: the path is NUL-terminated and buf is valid for n bytes.
        let rc = unsafe {
            match t {
                Target::Path { path, follow: true } => libc::listxattr(path.as_ptr(), b, n),
                Target::Path {
                    path,
                    follow: false,
                } => libc::llistxattr(path.as_ptr(), b, n),
                Target::Fd(fd) => libc::flistxattr(*fd, b, n),
            }
        };
        check(rc)
    }

    pub fn remove(t: &Target, name: &CStr) -> io::Result<usize> {
        // SAFETY: strings are NUL-terminated.
        let rc = unsafe {
            match t {
                Target::Path { path, follow: true } => {
                    libc::removexattr(path.as_ptr(), name.as_ptr())
                }
                Target::Path {
                    path,
                    follow: false,
                } => libc::lremovexattr(path.as_ptr(), name.as_ptr()),
                Target::Fd(fd) => libc::fremovexattr(*fd, name.as_ptr()),
            }
        };
        check(rc as isize)
    }

    pub const CREATE: libc::c_int = libc::XATTR_CREATE;
    pub const REPLACE: libc::c_int = libc::XATTR_REPLACE;
}

#[cfg(target_os = "macos")]
mod sys {
    use super::*;

    fn options(t: &Target) -> libc::c_int {
        match t {
            Target::Path { follow: false, .. } => libc::XATTR_NOFOLLOW,
            _ => 0,
        }
    }

    pub fn set(t: &Target, name: &CStr, value: &[u8], flags: libc::c_int) -> io::Result<usize> {
        let (v, n, o) = (value.as_ptr().cast(), value.len(), options(t) | flags);
        // SAFETY: strings are NUL-terminated and value is valid for n bytes.
        let rc = unsafe {
            match t {
                Target::Path { path, .. } => {
                    libc::setxattr(path.as_ptr(), name.as_ptr(), v, n, 0, o)
                }
                Target::Fd(fd) => libc::fsetxattr(*fd, name.as_ptr(), v, n, 0, o),
            }
        };
        check(rc as isize)
    }

    pub fn get(t: &Target, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
        let (b, n, o) = (buf.as_mut_ptr().cast(), buf.len(), options(t));
        // SAFETY: strings are NUL-terminated and buf is valid for n bytes.
        let rc = unsafe {
            match t {
                Target::Path { path, .. } => {
                    libc::getxattr(path.as_ptr(), name.as_ptr(), b, n, 0, o)
                }
                Target::Fd(fd) => libc::fgetxattr(*fd, name.as_ptr(), b, n, 0, o),
            }
        };
        check(rc)
    }

    pub fn list(t: &Target, buf: &mut [u8]) -> io::Result<usize> {
        let (b, n, o) = (buf.as_mut_ptr().cast(), buf.len(), options(t));
        // SAFETY: the path is NUL-terminated and buf is valid for n bytes.
        let rc = unsafe {
            match t {
                Target::Path { path, .. } => libc::listxattr(path.as_ptr(), b, n, o),
                Target::Fd(fd) => libc::flistxattr(*fd, b, n, o),
            }
        };
        check(rc)
    }

    pub fn remove(t: &Target, name: &CStr) -> io::Result<usize> {
        let o = options(t);
        // SAFETY: strings are NUL-terminated.
        let rc = unsafe {
            match t {
                Target::Path { path, .. } => libc::removexattr(path.as_ptr(), name.as_ptr(), o),
                Target::Fd(fd) => libc::fremovexattr(*fd, name.as_ptr(), o),
            }
        };
        check(rc as isize)
    }

    pub const CREATE: libc::c_int = libc::XATTR_CREATE;
    pub const REPLACE: libc::c_int = libc::XATTR_REPLACE;
}

/// Sets attribute `name`; `create`/`replace` are Linux's `XATTR_CREATE`/`XATTR_REPLACE`.
pub fn set(t: &Target, name: &[u8], value: &[u8], create: bool, replace: bool) -> io::Result<()> {
    let mut flags = 0;
    if create {
        flags |= sys::CREATE;
    }
    if replace {
        flags |= sys::REPLACE;
    }
    sys::set(t, &cname(name)?, value, flags).map(|_| ())
}

/// Reads attribute `name` whole.
pub fn get(t: &Target, name: &[u8]) -> io::Result<Vec<u8>> {
    let name = cname(name)?;
    loop {
        let len = sys::get(t, &name, &mut [])?;
        let mut buf = vec![0u8; len];
        match sys::get(t, &name, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            // The value grew between the calls; ask again.
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Lists attribute names (NUL-separated, as Linux returns them).
pub fn list(t: &Target) -> io::Result<Vec<u8>> {
    loop {
        let len = sys::list(t, &mut [])?;
        let mut buf = vec![0u8; len];
        match sys::list(t, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Removes attribute `name`.
pub fn remove(t: &Target, name: &[u8]) -> io::Result<()> {
    sys::remove(t, &cname(name)?).map(|_| ())
}
