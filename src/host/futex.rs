//! Futex words that other processes see: the host kernel's own shared futexes, on guest memory
//! the host maps shared, so a guest futex in a `MAP_SHARED` mapping works between guest
//! processes (which are host processes) as it does on Linux.
//!
//! Every function takes the word as the host sees it and returns the host kernel's answer;
//! interrupting a wait is the caller's business (the host call returns `EINTR` on the kick
//! signal).
//!
//! # Limitations
//! macOS has no futex with counted wake-ups, bitsets or requeueing: there [`CROSS_PROCESS`] is
//! false, every function fails with `ENOSYS`, and callers keep such futexes within one
//! process.

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

/// Whether this host has futexes shared between processes.
pub const CROSS_PROCESS: bool = cfg!(target_os = "linux");

/// Sleeps while `*word == val` until a wake whose bitset meets `bitset` or the deadline
/// (`FUTEX_WAIT_BITSET` without `FUTEX_PRIVATE_FLAG`).
pub fn wait(word: &AtomicU32, val: u32, bitset: u32, deadline: Option<Instant>) -> io::Result<()> {
    imp::wait(word, val, bitset, deadline)
}

/// Wakes up to `count` waiters on `word` whose bitset meets `bitset`; returns how many.
pub fn wake(word: &AtomicU32, count: i32, bitset: u32) -> io::Result<u32> {
    imp::wake(word, count, bitset)
}

/// `FUTEX_REQUEUE` (or `FUTEX_CMP_REQUEUE` with `expected`): wakes `nr_wake` waiters on `from`
/// and moves up to `nr_requeue` more to `to`; returns how many were woken or moved.
pub fn requeue(
    from: &AtomicU32,
    to: &AtomicU32,
    nr_wake: i32,
    nr_requeue: i32,
    expected: Option<u32>,
) -> io::Result<u32> {
    imp::requeue(from, to, nr_wake, nr_requeue, expected)
}

/// `futex_waitv`: sleeps while every word holds its value; returns the index of the one woken.
pub fn wait_any(words: &[(&AtomicU32, u32)], deadline: Option<Instant>) -> io::Result<usize> {
    imp::wait_any(words, deadline)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::sync::atomic::AtomicU32;
    use std::time::Instant;

    const FUTEX_REQUEUE: libc::c_int = 3;
    const FUTEX_CMP_REQUEUE: libc::c_int = 4;
    const FUTEX_WAIT_BITSET: libc::c_int = 9;
    const FUTEX_WAKE_BITSET: libc::c_int = 10;
    const FUTEX2_SIZE_U32: u32 = 2;

    /// `struct futex_waitv` of the host kernel.
    #[repr(C)]
    struct FutexWaitv {
        val: u64,
        uaddr: u64,
        flags: u32,
        reserved: u32,
    }

    /// The host `CLOCK_MONOTONIC` time at `deadline` (`Instant` counts on that clock here).
    fn monotonic_at(deadline: Instant) -> libc::timespec {
        let left = deadline.saturating_duration_since(Instant::now());
        let (now_sec, now_nsec) =
            crate::host::clock_gettime(libc::CLOCK_MONOTONIC).unwrap_or((0, 0));
        let nsec = now_nsec + i64::from(left.subsec_nanos());
        let sec = now_sec
            .saturating_add(i64::try_from(left.as_secs()).unwrap_or(i64::MAX / 2))
            .saturating_add(nsec / 1_000_000_000);
        libc::timespec {
            tv_sec: sec as libc::time_t,
            tv_nsec: (nsec % 1_000_000_000) as libc::c_long,
        }
    }

    /// One `futex` call; `arg4` is the timeout pointer or `val2`.
    fn futex(
        word: &AtomicU32,
        op: libc::c_int,
        val: u32,
        arg4: usize,
        word2: Option<&AtomicU32>,
        val3: u32,
    ) -> io::Result<libc::c_long> {
        let word2 = word2.map_or(std::ptr::null(), |w| w.as_ptr().cast_const());
        // SAFETY: the words are live atomics the host kernel may read, compare and sleep on;
        // `arg4` is either a number or a pointer to a timespec the caller keeps alive for
        // the call. Nothing else in memory is touched.
        let rc =
            unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, val, arg4, word2, val3) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc)
    }

    pub fn wait(
        word: &AtomicU32,
        val: u32,
        bitset: u32,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        let at = deadline.map(monotonic_at);
        let timeout = at.as_ref().map_or(0, |ts| std::ptr::from_ref(ts) as usize);
        futex(word, FUTEX_WAIT_BITSET, val, timeout, None, bitset).map(drop)
    }

    pub fn wake(word: &AtomicU32, count: i32, bitset: u32) -> io::Result<u32> {
        futex(word, FUTEX_WAKE_BITSET, count as u32, 0, None, bitset).map(|n| n as u32)
    }

    pub fn requeue(
        from: &AtomicU32,
        to: &AtomicU32,
        nr_wake: i32,
        nr_requeue: i32,
        expected: Option<u32>,
    ) -> io::Result<u32> {
        let op = if expected.is_some() {
            FUTEX_CMP_REQUEUE
        } else {
            FUTEX_REQUEUE
        };
        let val2 = nr_requeue as u32 as usize;
        futex(
            from,
            op,
            nr_wake as u32,
            val2,
            Some(to),
            expected.unwrap_or(0),
        )
        .map(|n| n as u32)
    }

    pub fn wait_any(words: &[(&AtomicU32, u32)], deadline: Option<Instant>) -> io::Result<usize> {
        let list: Vec<FutexWaitv> = words
            .iter()
            .map(|(word, val)| FutexWaitv {
                val: u64::from(*val),
                uaddr: word.as_ptr() as u64,
                flags: FUTEX2_SIZE_U32,
                reserved: 0,
            })
            .collect();
        let at = deadline.map(monotonic_at);
        let timeout = at.as_ref().map_or(std::ptr::null(), std::ptr::from_ref);
        // SAFETY: `list` holds `words.len()` valid entries naming live atomics; the timeout,
        // when given, points at a local timespec that outlives the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_futex_waitv,
                list.as_ptr(),
                list.len() as libc::c_uint,
                0 as libc::c_uint,
                timeout,
                libc::CLOCK_MONOTONIC,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc as usize)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;
    use std::sync::atomic::AtomicU32;
    use std::time::Instant;

    fn unsupported<T>() -> io::Result<T> {
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }

    pub fn wait(_: &AtomicU32, _: u32, _: u32, _: Option<Instant>) -> io::Result<()> {
        unsupported()
    }

    pub fn wake(_: &AtomicU32, _: i32, _: u32) -> io::Result<u32> {
        unsupported()
    }

    pub fn requeue(
        _: &AtomicU32,
        _: &AtomicU32,
        _: i32,
        _: i32,
        _: Option<u32>,
    ) -> io::Result<u32> {
        unsupported()
    }

    pub fn wait_any(_: &[(&AtomicU32, u32)], _: Option<Instant>) -> io::Result<usize> {
        unsupported()
    }
}
