//! Signal numbers between Linux (the guest's) and the GDB remote protocol, which has its own
//! target-independent numbering (`SIGUSR1` is 10 on Linux and 30 to gdb).

use crate::kernel::abi::signal as sig;

/// The protocol's number for Linux signal `signo` (143, gdb's "unknown signal", for a
/// signal it has no name for).
pub fn to_gdb(signo: u32) -> u8 {
    match signo {
        sig::SIGHUP => 1,
        sig::SIGINT => 2,
        sig::SIGQUIT => 3,
        sig::SIGILL => 4,
        sig::SIGTRAP => 5,
        sig::SIGABRT => 6,
        sig::SIGBUS => 10,
        sig::SIGFPE => 8,
        sig::SIGKILL => 9,
        sig::SIGUSR1 => 30,
        sig::SIGSEGV => 11,
        sig::SIGUSR2 => 31,
        sig::SIGPIPE => 13,
        sig::SIGALRM => 14,
        sig::SIGTERM => 15,
        sig::SIGCHLD => 20,
        sig::SIGCONT => 19,
        sig::SIGSTOP => 17,
        sig::SIGTSTP => 18,
        sig::SIGTTIN => 21,
        sig::SIGTTOU => 22,
        sig::SIGURG => 16,
        sig::SIGXCPU => 24,
        sig::SIGXFSZ => 25,
        sig::SIGVTALRM => 26,
        sig::SIGPROF => 27,
        sig::SIGWINCH => 28,
        sig::SIGIO => 23,
        sig::SIGPWR => 32,
        sig::SIGSYS => 12,
        32 => 77,
        33..=63 => (signo - 33 + 45) as u8,
        64 => 78,
        _ => 143,
    }
}

/// The Linux signal for protocol number `gdb`, if Linux has it.
pub fn from_gdb(gdb: u8) -> Option<u32> {
    (1..=64).find(|&signo| to_gdb(signo) == gdb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_linux_signal_round_trips() {
        for signo in 1..=64 {
            if signo == sig::SIGSTKFLT {
                assert_eq!(to_gdb(signo), 143);
                continue;
            }
            assert_eq!(from_gdb(to_gdb(signo)), Some(signo), "signal {signo}");
        }
        assert_eq!(to_gdb(sig::SIGUSR1), 30);
        assert_eq!(to_gdb(sig::SIGSEGV), 11);
        assert_eq!(to_gdb(34), 46);
    }
}
