//! Linux errno values, as the aarch64 guest sees them.
//!
//! Every error a syscall handler returns is an [`Errno`]. Host errors are converted explicitly by
//! [`Errno::from_host`], so a host whose numbering differs (macOS) never leaks its own values to
//! the guest. Names and messages are the ones glibc's `strerror` prints, which is also what
//! `--trace` shows.

use std::fmt;

/// A Linux error number, returned to the guest as `-errno` in `x0`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(u16);

/// The result type of every syscall handler.
pub type SysResult<T = u64> = Result<T, Errno>;

macro_rules! errnos {
    ($($name:ident = $value:literal, $message:literal;)*) => {
        impl Errno {
            $(
                #[doc = $message]
                pub const $name: Errno = Errno($value);
            )*

            /// The symbolic name (`"ENOENT"`), or `None` for a number Linux does not define.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// The message glibc's `strerror` gives for this number.
            pub fn message(self) -> &'static str {
                match self.0 {
                    $($value => $message,)*
                    _ => "Unknown error",
                }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted";
    ENOENT = 2, "No such file or directory";
    ESRCH = 3, "No such process";
    EINTR = 4, "Interrupted system call";
    EIO = 5, "Input/output error";
    ENXIO = 6, "No such device or address";
    E2BIG = 7, "Argument list too long";
    ENOEXEC = 8, "Exec format error";
    EBADF = 9, "Bad file descriptor";
    ECHILD = 10, "No child processes";
    EAGAIN = 11, "Resource temporarily unavailable";
    ENOMEM = 12, "Cannot allocate memory";
    EACCES = 13, "Permission denied";
    EFAULT = 14, "Bad address";
    ENOTBLK = 15, "Block device required";
    EBUSY = 16, "Device or resource busy";
    EEXIST = 17, "File exists";
    EXDEV = 18, "Invalid cross-device link";
    ENODEV = 19, "No such device";
    ENOTDIR = 20, "Not a directory";
    EISDIR = 21, "Is a directory";
    EINVAL = 22, "Invalid argument";
    ENFILE = 23, "Too many open files in system";
    EMFILE = 24, "Too many open files";
    ENOTTY = 25, "Inappropriate ioctl for device";
    ETXTBSY = 26, "Text file busy";
    EFBIG = 27, "File too large";
    ENOSPC = 28, "No space left on device";
    ESPIPE = 29, "Illegal seek";
    EROFS = 30, "Read-only file system";
    EMLINK = 31, "Too many links";
    EPIPE = 32, "Broken pipe";
    EDOM = 33, "Numerical argument out of domain";
    ERANGE = 34, "Numerical result out of range";
    EDEADLK = 35, "Resource deadlock avoided";
    ENAMETOOLONG = 36, "File name too long";
    ENOLCK = 37, "No locks available";
    ENOSYS = 38, "Function not implemented";
    ENOTEMPTY = 39, "Directory not empty";
    ELOOP = 40, "Too many levels of symbolic links";
    ENOMSG = 42, "No message of desired type";
    EIDRM = 43, "Identifier removed";
    ECHRNG = 44, "Channel number out of range";
    EL2NSYNC = 45, "Level 2 not synchronized";
    EL3HLT = 46, "Level 3 halted";
    EL3RST = 47, "Level 3 reset";
    ELNRNG = 48, "Link number out of range";
    EUNATCH = 49, "Protocol driver not attached";
    ENOCSI = 50, "No CSI structure available";
    EL2HLT = 51, "Level 2 halted";
    EBADE = 52, "Invalid exchange";
    EBADR = 53, "Invalid request descriptor";
    EXFULL = 54, "Exchange full";
    ENOANO = 55, "No anode";
    EBADRQC = 56, "Invalid request code";
    EBADSLT = 57, "Invalid slot";
    EBFONT = 59, "Bad font file format";
    ENOSTR = 60, "Device not a stream";
    ENODATA = 61, "No data available";
    ETIME = 62, "Timer expired";
    ENOSR = 63, "Out of streams resources";
    ENONET = 64, "Machine is not on the network";
    ENOPKG = 65, "Package not installed";
    EREMOTE = 66, "Object is remote";
    ENOLINK = 67, "Link has been severed";
    EADV = 68, "Advertise error";
    ESRMNT = 69, "Srmount error";
    ECOMM = 70, "Communication error on send";
    EPROTO = 71, "Protocol error";
    EMULTIHOP = 72, "Multihop attempted";
    EDOTDOT = 73, "RFS specific error";
    EBADMSG = 74, "Bad message";
    EOVERFLOW = 75, "Value too large for defined data type";
    ENOTUNIQ = 76, "Name not unique on network";
    EBADFD = 77, "File descriptor in bad state";
    EREMCHG = 78, "Remote address changed";
    ELIBACC = 79, "Can not access a needed shared library";
    ELIBBAD = 80, "Accessing a corrupted shared library";
    ELIBSCN = 81, ".lib section in a.out corrupted";
    ELIBMAX = 82, "Attempting to link in too many shared libraries";
    ELIBEXEC = 83, "Cannot exec a shared library directly";
    EILSEQ = 84, "Invalid or incomplete multibyte or wide character";
    ERESTART = 85, "Interrupted system call should be restarted";
    ESTRPIPE = 86, "Streams pipe error";
    EUSERS = 87, "Too many users";
    ENOTSOCK = 88, "Socket operation on non-socket";
    EDESTADDRREQ = 89, "Destination address required";
    EMSGSIZE = 90, "Message too long";
    EPROTOTYPE = 91, "Protocol wrong type for socket";
    ENOPROTOOPT = 92, "Protocol not available";
    EPROTONOSUPPORT = 93, "Protocol not supported";
    ESOCKTNOSUPPORT = 94, "Socket type not supported";
    EOPNOTSUPP = 95, "Operation not supported";
    EPFNOSUPPORT = 96, "Protocol family not supported";
    EAFNOSUPPORT = 97, "Address family not supported by protocol";
    EADDRINUSE = 98, "Address already in use";
    EADDRNOTAVAIL = 99, "Cannot assign requested address";
    ENETDOWN = 100, "Network is down";
    ENETUNREACH = 101, "Network is unreachable";
    ENETRESET = 102, "Network dropped connection on reset";
    ECONNABORTED = 103, "Software caused connection abort";
    ECONNRESET = 104, "Connection reset by peer";
    ENOBUFS = 105, "No buffer space available";
    EISCONN = 106, "Transport endpoint is already connected";
    ENOTCONN = 107, "Transport endpoint is not connected";
    ESHUTDOWN = 108, "Cannot send after transport endpoint shutdown";
    ETOOMANYREFS = 109, "Too many references: cannot splice";
    ETIMEDOUT = 110, "Connection timed out";
    ECONNREFUSED = 111, "Connection refused";
    EHOSTDOWN = 112, "Host is down";
    EHOSTUNREACH = 113, "No route to host";
    EALREADY = 114, "Operation already in progress";
    EINPROGRESS = 115, "Operation now in progress";
    ESTALE = 116, "Stale file handle";
    EUCLEAN = 117, "Structure needs cleaning";
    ENOTNAM = 118, "Not a XENIX named type file";
    ENAVAIL = 119, "No XENIX semaphores available";
    EISNAM = 120, "Is a named type file";
    EREMOTEIO = 121, "Remote I/O error";
    EDQUOT = 122, "Disk quota exceeded";
    ENOMEDIUM = 123, "No medium found";
    EMEDIUMTYPE = 124, "Wrong medium type";
    ECANCELED = 125, "Operation canceled";
    ENOKEY = 126, "Required key not available";
    EKEYEXPIRED = 127, "Key has expired";
    EKEYREVOKED = 128, "Key has been revoked";
    EKEYREJECTED = 129, "Key was rejected by service";
    EOWNERDEAD = 130, "Owner died";
    ENOTRECOVERABLE = 131, "State not recoverable";
    ERFKILL = 132, "Operation not possible due to RF-kill";
    EHWPOISON = 133, "Memory page has hardware error";
}

impl Errno {
    /// `EWOULDBLOCK` is the same number as `EAGAIN` on Linux.
    pub const EWOULDBLOCK: Errno = Errno::EAGAIN;
    /// `ENOTSUP` is the same number as `EOPNOTSUPP` on Linux.
    pub const ENOTSUP: Errno = Errno::EOPNOTSUPP;
    /// `EDEADLOCK` is the same number as `EDEADLK` on Linux.
    pub const EDEADLOCK: Errno = Errno::EDEADLK;

    /// The positive Linux number.
    pub const fn raw(self) -> i32 {
        self.0 as i32
    }

    /// An errno from its Linux number; numbers outside `1..=4095` give `None`.
    pub const fn from_raw(value: i32) -> Option<Errno> {
        if value >= 1 && value <= 4095 {
            Some(Errno(value as u16))
        } else {
            None
        }
    }

    /// The value a failing syscall leaves in `x0`: `-errno` as a 64-bit word.
    pub const fn as_return(self) -> u64 {
        (-(self.0 as i64)) as u64
    }

    /// Decodes a syscall return value: `Some(errno)` for `-4095..=-1`, as the C library does.
    pub const fn from_return(value: u64) -> Option<Errno> {
        let signed = value as i64;
        if signed < 0 && signed >= -4095 {
            Some(Errno((-signed) as u16))
        } else {
            None
        }
    }

    /// Converts a host `errno` value to the Linux number with the same meaning.
    ///
    /// The match is written out for every value so that a host whose numbering differs from
    /// Linux (macOS numbers everything above `ERANGE` differently) is translated, never
    /// passed through. Host-only values map to the nearest Linux meaning.
    pub fn from_host(host: i32) -> Errno {
        match host {
            libc::EPERM => Errno::EPERM,
            libc::ENOENT => Errno::ENOENT,
            libc::ESRCH => Errno::ESRCH,
            libc::EINTR => Errno::EINTR,
            libc::EIO => Errno::EIO,
            libc::ENXIO => Errno::ENXIO,
            libc::E2BIG => Errno::E2BIG,
            libc::ENOEXEC => Errno::ENOEXEC,
            libc::EBADF => Errno::EBADF,
            libc::ECHILD => Errno::ECHILD,
            libc::EDEADLK => Errno::EDEADLK,
            libc::ENOMEM => Errno::ENOMEM,
            libc::EACCES => Errno::EACCES,
            libc::EFAULT => Errno::EFAULT,
            libc::ENOTBLK => Errno::ENOTBLK,
            libc::EBUSY => Errno::EBUSY,
            libc::EEXIST => Errno::EEXIST,
            libc::EXDEV => Errno::EXDEV,
            libc::ENODEV => Errno::ENODEV,
            libc::ENOTDIR => Errno::ENOTDIR,
            libc::EISDIR => Errno::EISDIR,
            libc::EINVAL => Errno::EINVAL,
            libc::ENFILE => Errno::ENFILE,
            libc::EMFILE => Errno::EMFILE,
            libc::ENOTTY => Errno::ENOTTY,
            libc::ETXTBSY => Errno::ETXTBSY,
            libc::EFBIG => Errno::EFBIG,
            libc::ENOSPC => Errno::ENOSPC,
            libc::ESPIPE => Errno::ESPIPE,
            libc::EROFS => Errno::EROFS,
            libc::EMLINK => Errno::EMLINK,
            libc::EPIPE => Errno::EPIPE,
            libc::EDOM => Errno::EDOM,
            libc::ERANGE => Errno::ERANGE,
            libc::EAGAIN => Errno::EAGAIN,
            libc::EINPROGRESS => Errno::EINPROGRESS,
            libc::EALREADY => Errno::EALREADY,
            libc::ENOTSOCK => Errno::ENOTSOCK,
            libc::EDESTADDRREQ => Errno::EDESTADDRREQ,
            libc::EMSGSIZE => Errno::EMSGSIZE,
            libc::EPROTOTYPE => Errno::EPROTOTYPE,
            libc::ENOPROTOOPT => Errno::ENOPROTOOPT,
            libc::EPROTONOSUPPORT => Errno::EPROTONOSUPPORT,
            libc::ESOCKTNOSUPPORT => Errno::ESOCKTNOSUPPORT,
            libc::EOPNOTSUPP => Errno::EOPNOTSUPP,
            libc::EPFNOSUPPORT => Errno::EPFNOSUPPORT,
            libc::EAFNOSUPPORT => Errno::EAFNOSUPPORT,
            libc::EADDRINUSE => Errno::EADDRINUSE,
            libc::EADDRNOTAVAIL => Errno::EADDRNOTAVAIL,
            libc::ENETDOWN => Errno::ENETDOWN,
            libc::ENETUNREACH => Errno::ENETUNREACH,
            libc::ENETRESET => Errno::ENETRESET,
            libc::ECONNABORTED => Errno::ECONNABORTED,
            libc::ECONNRESET => Errno::ECONNRESET,
            libc::ENOBUFS => Errno::ENOBUFS,
            libc::EISCONN => Errno::EISCONN,
            libc::ENOTCONN => Errno::ENOTCONN,
            libc::ESHUTDOWN => Errno::ESHUTDOWN,
            libc::ETOOMANYREFS => Errno::ETOOMANYREFS,
            libc::ETIMEDOUT => Errno::ETIMEDOUT,
            libc::ECONNREFUSED => Errno::ECONNREFUSED,
            libc::ELOOP => Errno::ELOOP,
            libc::ENAMETOOLONG => Errno::ENAMETOOLONG,
            libc::EHOSTDOWN => Errno::EHOSTDOWN,
            libc::EHOSTUNREACH => Errno::EHOSTUNREACH,
            libc::ENOTEMPTY => Errno::ENOTEMPTY,
            libc::EUSERS => Errno::EUSERS,
            libc::EDQUOT => Errno::EDQUOT,
            libc::ESTALE => Errno::ESTALE,
            libc::EREMOTE => Errno::EREMOTE,
            libc::ENOLCK => Errno::ENOLCK,
            libc::ENOSYS => Errno::ENOSYS,
            libc::EOVERFLOW => Errno::EOVERFLOW,
            libc::ECANCELED => Errno::ECANCELED,
            libc::EIDRM => Errno::EIDRM,
            libc::ENOMSG => Errno::ENOMSG,
            libc::EILSEQ => Errno::EILSEQ,
            libc::EBADMSG => Errno::EBADMSG,
            libc::EMULTIHOP => Errno::EMULTIHOP,
            libc::ENODATA => Errno::ENODATA,
            libc::ENOLINK => Errno::ENOLINK,
            libc::ENOSR => Errno::ENOSR,
            libc::ENOSTR => Errno::ENOSTR,
            libc::EPROTO => Errno::EPROTO,
            libc::ETIME => Errno::ETIME,
            libc::ENOTRECOVERABLE => Errno::ENOTRECOVERABLE,
            libc::EOWNERDEAD => Errno::EOWNERDEAD,
            #[cfg(target_os = "linux")]
            other => Errno::from_raw(other).unwrap_or(Errno::EIO),
            #[cfg(target_os = "macos")]
            other => Errno::from_macos_only(other),
        }
    }

    /// The Linux meaning of the errno values only macOS has.
    #[cfg(target_os = "macos")]
    fn from_macos_only(host: i32) -> Errno {
        match host {
            libc::ENOTSUP => Errno::EOPNOTSUPP,
            libc::ENOATTR => Errno::ENODATA,
            libc::EPROCLIM => Errno::EAGAIN,
            libc::EAUTH | libc::ENEEDAUTH => Errno::EACCES,
            libc::ENOPOLICY => Errno::EPERM,
            libc::EQFULL => Errno::ENOBUFS,
            libc::EBADEXEC | libc::EBADARCH | libc::ESHLIBVERS | libc::EBADMACHO => Errno::ENOEXEC,
            libc::EFTYPE => Errno::EINVAL,
            _ => Errno::EIO,
        }
    }

    /// The errno of the last failed host call on this thread, translated.
    pub fn last_host() -> Errno {
        Errno::from_host(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    }
}

impl From<nix::errno::Errno> for Errno {
    fn from(e: nix::errno::Errno) -> Errno {
        Errno::from_host(e as i32)
    }
}

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Errno {
        match e.raw_os_error() {
            Some(code) => Errno::from_host(code),
            None => Errno::EIO,
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.message()),
            None => write!(f, "{} (Unknown error {})", self.0, self.0),
        }
    }
}

impl std::error::Error for Errno {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_round_trip_through_x0() {
        assert_eq!(Errno::ENOENT.as_return(), (-2i64) as u64);
        assert_eq!(Errno::from_return((-2i64) as u64), Some(Errno::ENOENT));
        assert_eq!(Errno::from_return(0), None);
        assert_eq!(Errno::from_return((-4096i64) as u64), None);
    }

    #[test]
    fn names_and_messages_match_glibc() {
        assert_eq!(Errno::ENOENT.name(), Some("ENOENT"));
        assert_eq!(Errno::ENOENT.message(), "No such file or directory");
        assert_eq!(Errno::EOPNOTSUPP.raw(), 95);
        assert_eq!(Errno::ENOSYS.raw(), 38);
        assert_eq!(Errno::EHWPOISON.raw(), 133);
        assert_eq!(Errno::from_raw(41).and_then(Errno::name), None);
    }

    #[test]
    fn host_errno_translates_to_linux_numbers() {
        assert_eq!(Errno::from_host(libc::ENOENT), Errno::ENOENT);
        assert_eq!(Errno::from_host(libc::ENOSYS).raw(), 38);
        assert_eq!(Errno::from_host(libc::ELOOP).raw(), 40);
        assert_eq!(Errno::from_host(libc::EAGAIN).raw(), 11);
        assert_eq!(Errno::from_host(libc::ETIMEDOUT).raw(), 110);
    }
}
