//! Registering elfuse with Linux's `binfmt_misc`, and starting the way `binfmt_misc` starts
//! it.
//!
//! Once registered, the kernel runs every aarch64 Linux program it is asked to `execve` through
//! elfuse, whoever asks: a shell, `make`, a C program. The entry matches the first 20 bytes of
//! an ELF header: 64-bit, little-endian, ELF version 1, any OS ABI and ABI version, type
//! `ET_EXEC` or `ET_DYN` (the mask clears the bit that tells 2 from 3), machine `EM_AARCH64`.
//!
//! The flags, each chosen on purpose:
//! - `P` (preserve argv[0]): the program sees the `argv[0]` it was started with, which
//!   multi-call programs such as BusyBox need. elfuse then gets
//!   `elfuse FILENAME ARGV0 ARGS...`.
//! - `O` (open binary): the kernel opens the program and hands elfuse the descriptor as
//!   `AT_EXECFD`, so programs the user may execute but not read still run, and elfuse can tell
//!   that `binfmt_misc` started it (its own auxiliary vector has `AT_EXECFD`).
//! - `F` (fix binary): the kernel opens elfuse when the entry is registered, so the entry
//!   works inside containers and chroots where that path does not exist. Replacing the elfuse
//!   binary therefore needs a new `install-hooks --binfmt`.
//! - not `C` (credentials): `C` would run set-user-ID aarch64 programs with their owner's
//!   rights inside elfuse, which is not written to be a set-user-ID program.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// The name of elfuse's entry under `/proc/sys/fs/binfmt_misc`.
pub const NAME: &str = "elfuse-aarch64";

/// Where `binfmt_misc` is mounted.
pub const MOUNT: &str = "/proc/sys/fs/binfmt_misc";

/// The ELF header bytes the entry matches, after masking.
pub const MAGIC: [u8; 20] = [
    0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0xb7, 0,
];

/// Which bits of each header byte count: EI_OSABI and EI_ABIVERSION do not; of `e_type` only
/// the bits that 2 (`ET_EXEC`) and 3 (`ET_DYN`) share.
pub const MASK: [u8; 20] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xff, 0xff, 0xff,
];

/// The flags (see the module documentation).
pub const FLAGS: &str = "POF";

/// Why registering or unregistering failed.
#[derive(Debug, Error)]
pub enum BinfmtError {
    /// Not a Linux host.
    #[error("binfmt_misc exists only on Linux; use the shell hooks or shims here")]
    NotLinux,
    /// `binfmt_misc` is not mounted and could not be mounted.
    #[error("{MOUNT} is not mounted and mounting it failed: {}{}", .0, hint(.0))]
    NotMounted(std::io::Error),
    /// The kernel refused (usually: not root).
    #[error("{}: {source}{}", path.display(), hint(source))]
    Io {
        /// The control file.
        path: PathBuf,
        /// The host error.
        source: std::io::Error,
    },
    /// A name the kernel would not accept.
    #[error("invalid binfmt_misc entry name {0:?}: use letters, digits, '.', '_' and '-'")]
    BadName(String),
}

fn hint(source: &std::io::Error) -> &'static str {
    if source.kind() == std::io::ErrorKind::PermissionDenied {
        " (binfmt_misc needs root: run it with sudo)"
    } else {
        ""
    }
}

/// One `binfmt_misc` entry for elfuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The entry's name.
    pub name: String,
    /// The elfuse binary.
    pub interpreter: PathBuf,
}

impl Registration {
    /// The usual entry for the elfuse binary at `elfuse`.
    pub fn for_elfuse(elfuse: &Path) -> Registration {
        Registration {
            name: NAME.to_string(),
            interpreter: elfuse.to_path_buf(),
        }
    }

    /// The line written to `register`: `:name:M::magic:mask:interpreter:flags`.
    pub fn register_line(&self) -> String {
        let hex = |bytes: &[u8]| {
            bytes
                .iter()
                .map(|b| format!("\\x{b:02x}"))
                .collect::<String>()
        };
        format!(
            ":{}:M::{}:{}:{}:{FLAGS}",
            self.name,
            hex(&MAGIC),
            hex(&MASK),
            self.interpreter.display()
        )
    }
}

fn check_name(name: &str) -> Result<(), BinfmtError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(BinfmtError::BadName(name.to_string()))
    }
}

/// Whether an entry called `name` is registered.
pub fn is_registered(name: &str) -> bool {
    Path::new(MOUNT).join(name).exists()
}

/// The entry's status file as the kernel shows it, if registered.
pub fn status(name: &str) -> Option<String> {
    std::fs::read_to_string(Path::new(MOUNT).join(name)).ok()
}

/// Registers `registration`, replacing an entry of the same name.
pub fn register(registration: &Registration) -> Result<(), BinfmtError> {
    check_name(&registration.name)?;
    if !cfg!(target_os = "linux") {
        return Err(BinfmtError::NotLinux);
    }
    mount()?;
    unregister(&registration.name)?;
    let register = Path::new(MOUNT).join("register");
    std::fs::write(&register, registration.register_line()).map_err(|source| BinfmtError::Io {
        path: register,
        source,
    })
}

/// Removes the entry called `name`; tells whether there was one.
pub fn unregister(name: &str) -> Result<bool, BinfmtError> {
    check_name(name)?;
    if !cfg!(target_os = "linux") {
        return Err(BinfmtError::NotLinux);
    }
    let entry = Path::new(MOUNT).join(name);
    if !entry.exists() {
        return Ok(false);
    }
    std::fs::write(&entry, "-1").map_err(|source| BinfmtError::Io {
        path: entry,
        source,
    })?;
    Ok(true)
}

/// Mounts `binfmt_misc` if it is not mounted yet.
#[cfg(target_os = "linux")]
pub fn mount() -> Result<(), BinfmtError> {
    if Path::new(MOUNT).join("register").exists() {
        return Ok(());
    }
    nix::mount::mount(
        Some("binfmt_misc"),
        MOUNT,
        Some("binfmt_misc"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| BinfmtError::NotMounted(e.into()))
}

/// Mounts `binfmt_misc` if it is not mounted yet.
#[cfg(not(target_os = "linux"))]
pub fn mount() -> Result<(), BinfmtError> {
    Err(BinfmtError::NotLinux)
}

/// When `binfmt_misc` started this process (its auxiliary vector has `AT_EXECFD`): the
/// program's descriptor, moved to a close-on-exec number of 10 or more so that the guest does
/// not inherit it.
#[cfg(target_os = "linux")]
pub fn take_exec_fd() -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;

    nix::errno::Errno::clear();
    // SAFETY: getauxval reads the process's auxiliary vector and has no preconditions.
    let value = unsafe { libc::getauxval(libc::AT_EXECFD) };
    if value == 0 && nix::errno::Errno::last() == nix::errno::Errno::ENOENT {
        return None;
    }
    let fd = i32::try_from(value).ok()?;
    // SAFETY: fcntl on a descriptor number has no memory-safety preconditions; failure is
    // reported through the return value.
    let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    if moved < 0 {
        return None;
    }
    // SAFETY: the kernel gave this descriptor to the process for elfuse alone; nothing else
    // refers to it, so closing it here cannot close a descriptor in use.
    unsafe { libc::close(fd) };
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(moved) })
}

/// When `binfmt_misc` started this process: never, off Linux.
#[cfg(not(target_os = "linux"))]
pub fn take_exec_fd() -> Option<std::os::fd::OwnedFd> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_matches_aarch64_executables_and_pies_only() {
        let matches = |header: &[u8; 20]| {
            header
                .iter()
                .zip(MASK.iter())
                .zip(MAGIC.iter())
                .all(|((h, m), want)| h & m == *want)
        };
        let mut header = MAGIC;
        assert!(matches(&header));
        header[16] = 3;
        assert!(matches(&header), "ET_DYN");
        header[7] = 3;
        assert!(matches(&header), "ELFOSABI_GNU");
        header[16] = 1;
        assert!(!matches(&header), "ET_REL");
        header[16] = 2;
        header[18] = 0x3e;
        assert!(!matches(&header), "x86-64");
        header[18] = 0xb7;
        header[4] = 1;
        assert!(!matches(&header), "32-bit");
        header[4] = 2;
        header[5] = 2;
        assert!(!matches(&header), "big-endian");
    }

    #[test]
    fn the_register_line_has_every_field() {
        let line = Registration::for_elfuse(Path::new("/usr/local/bin/elfuse")).register_line();
        assert_eq!(
            line,
            ":elfuse-aarch64:M::\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\
             \\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\
             \\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:/usr/local/bin/elfuse:POF"
        );
    }

    #[test]
    fn permission_errors_say_that_root_is_needed() {
        let denied = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(
            BinfmtError::NotMounted(denied()).to_string(),
            "/proc/sys/fs/binfmt_misc is not mounted and mounting it failed: permission denied \
             (binfmt_misc needs root: run it with sudo)"
        );
        let io = BinfmtError::Io {
            path: PathBuf::from("/proc/sys/fs/binfmt_misc/register"),
            source: denied(),
        };
        assert!(
            io.to_string()
                .ends_with("(binfmt_misc needs root: run it with sudo)")
        );
    }

    #[test]
    fn names_with_separators_are_refused() {
        assert!(check_name("elfuse-test.1").is_ok());
        assert!(check_name("a:b").is_err());
        assert!(check_name("../register").is_err());
        assert!(check_name("").is_err());
    }
}
