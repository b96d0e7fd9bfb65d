//! Timers and sleeping: the interval timers (`ITIMER_REAL`, `ITIMER_VIRTUAL`, `ITIMER_PROF`),
//! the POSIX per-process timers, the clocks they count on, and interruptible sleeps.
//!
//! `clock` reads the clocks and does Linux's time arithmetic, `itimer` and `posix` hold
//! the state of each kind of timer, and this module owns a process's [`Timers`], the thread
//! that fires them, and [`sleep_until`].
//!
//! Each process has one timer thread, started when a timer is first armed. It sleeps until the
//! next expiry of a timer on a wall clock and, while a timer on a CPU-time clock is armed,
//! wakes every tick to sample CPU time, as Linux checks CPU timers at its tick. It raises
//! signals with [`Process::send_signal`] and [`Process::send_thread_signal`], which reach the
//! target thread wherever it is: asleep, in a blocking call, or running guest code.
//!
//! The rules are Linux's (`kernel/time/itimer.c`, `posix-timers.c`, `posix-cpu-timers.c`):
//! - A periodic timer is re-armed not when it fires but when its signal is taken
//!   ([`Timers::on_dequeue`]): it moves forward by whole periods past the current time, and
//!   the periods it skipped are the overrun (`si_overrun`, `timer_getoverrun`). `ITIMER_REAL`
//!   is re-armed that way whenever a `SIGALRM` is taken.
//! - A POSIX timer has one signal at most. If it fires while its signal is still queued, the
//!   queued one stands for the new expiry; a signal queued before `timer_settime` or
//!   `timer_delete` is dropped when taken.
//! - `ITIMER_VIRTUAL` and `ITIMER_PROF` run one tick longer than asked, and re-arm at expiry.
//! - Relative `CLOCK_REALTIME` timers and sleeps count on `CLOCK_MONOTONIC`.
//!
//! A sleep waits on the sleeping thread's own wake-ups ([`TaskShared::wait`]) with the run lock
//! released, so other guest threads run meanwhile, and any signal the thread does not block
//! ends it at once; the caller decides between `EINTR` and a restart.
//!
//! # Limitations
//! - CPU time is the host's: the elfuse process's (its own helper threads included) for the
//!   process, the host thread's for a guest thread. `ITIMER_VIRTUAL` counts host user time,
//!   `ITIMER_PROF` user and system time; timers and sleeps on another process's or a thread's
//!   CPU clock count scheduler time whatever kind the clock id names.
//! - Those other-process and per-thread CPU clocks need host clock ids for them, which macOS
//!   does not have: there they fail with `ENOSYS`.
//! - A periodic timer whose signal is ignored, or discarded before it is taken, when it fires
//!   stays pending until the next `timer_settime`; Linux queues its signal again once the signal
//!   is no longer ignored.
//! - `CLOCK_REALTIME_ALARM` and `CLOCK_BOOTTIME_ALARM` timers and sleeps fail with `EPERM`, as
//!   for a process without `CAP_WAKE_ALARM`.
//! - Absolute `CLOCK_REALTIME` timers and sleeps notice a change of the host's clock within a
//!   second, not at once.
//! - A signal queued with `rt_sigqueueinfo` that claims to come from a timer (`SI_TIMER` with a
//!   non-zero word at offset 32) is treated as that timer's signal.

mod clock;
mod itimer;
mod posix;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::signal::{self as sig, code};
use crate::kernel::process::{Process, lock};
use crate::kernel::signal::{SigInfo, restart};
use crate::kernel::task::TaskShared;

pub use clock::{
    Clock, ClockName, KTIME_MAX, NSEC_PER_SEC, TICK_NSEC, cpu_clock, forward, monotonic,
    name_clock, ns_from_timespec, ns_from_timeval, timespec_from_ns, timeval_from_ns, wall_clock,
};
pub use itimer::Itimer;
use itimer::{CpuItimer, RealItimer};
pub use posix::Notify;
use posix::{PosixTimer, Status, is_signal_of, timer_siginfo};

/// A timer's setting or reading: the time to the next expiry and the period, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Setting {
    /// Time to the next expiry (or its absolute time when arming with `TIMER_ABSTIME`).
    pub value: u64,
    /// The period; 0 for a one-shot timer.
    pub interval: u64,
}

/// All the timers of a process.
#[derive(Debug, Default)]
struct TimerState {
    real: RealItimer,
    virt: CpuItimer,
    prof: CpuItimer,
    posix: BTreeMap<i32, PosixTimer>,
    /// Where the search for a free POSIX timer id starts.
    next_id: i32,
    /// The timer thread is running.
    running: bool,
}

/// What the timer thread shares with the syscalls.
#[derive(Default)]
struct Shared {
    state: Mutex<TimerState>,
    /// Notified whenever a timer is armed, so the timer thread plans again.
    changed: Condvar,
}

/// The interval timers and POSIX timers of a process, and the thread that fires them.
///
/// A new process (including a forked child) starts with none; `execve` keeps the interval
/// timers and deletes the POSIX timers ([`Timers::on_exec`]).
#[derive(Default)]
pub struct Timers {
    shared: Arc<Shared>,
}

/// Keeps the timer thread from raising signals while it lives ([`Timers::pause`]).
pub struct TimersPaused<'a> {
    _state: MutexGuard<'a, TimerState>,
}

impl Timers {
    /// No timers.
    pub fn new() -> Timers {
        Timers::default()
    }

    /// `getitimer`.
    pub fn get_itimer(&self, which: Itimer) -> Setting {
        let state = self.lock();
        match which {
            Itimer::Real => state.real.get(now_or_zero(monotonic())),
            Itimer::Virtual => state.virt.get(|| now_or_zero(Clock::ProcessUser)),
            Itimer::Prof => state.prof.get(|| now_or_zero(Clock::ProcessUserSystem)),
        }
    }

    /// `setitimer` for the process `owner`: the old setting.
    pub fn set_itimer(&self, owner: &Arc<Process>, which: Itimer, new: Setting) -> Setting {
        let mut state = self.lock();
        let old = match which {
            Itimer::Real => state.real.set(new, now_or_zero(monotonic())),
            Itimer::Virtual => state.virt.set(new, || now_or_zero(Clock::ProcessUser)),
            Itimer::Prof => state
                .prof
                .set(new, || now_or_zero(Clock::ProcessUserSystem)),
        };
        if new.value != 0 {
            self.start(&mut state, owner);
        }
        old
    }

    /// The number of POSIX timers.
    pub fn count(&self) -> usize {
        self.lock().posix.len()
    }

    /// Takes the next free POSIX timer id, as `timer_create` does before it checks the rest of
    /// its arguments (an id taken by a call that then fails is not handed out again soon).
    pub fn reserve_id(&self) -> i32 {
        let mut state = self.lock();
        loop {
            let id = state.next_id;
            state.next_id = id.wrapping_add(1) & i32::MAX;
            if !state.posix.contains_key(&id) {
                return id;
            }
        }
    }

    /// Creates POSIX timer `id` (from [`Timers::reserve_id`]), disarmed. `clock` counts absolute
    /// arming, `relative_clock` relative arming.
    pub fn create(&self, id: i32, clock: Clock, relative_clock: Clock, notify: Notify) {
        let timer = PosixTimer::new(clock, relative_clock, notify);
        self.lock().posix.insert(id, timer);
        debug!(id, ?clock, ?notify, "timer created");
    }

    /// `timer_settime` for the process `owner`: the old setting. `EINVAL` for no such timer,
    /// `ESRCH` when the thread whose CPU clock it counts on has ended.
    pub fn settime(
        &self,
        owner: &Arc<Process>,
        id: i32,
        new: Setting,
        absolute: bool,
    ) -> SysResult<Setting> {
        let mut state = self.lock();
        let timer = state.posix.get_mut(&id).ok_or(Errno::EINVAL)?;
        let old = timer.reading(timer.base.now());
        timer.arm(new, absolute, Clock::now)?;
        if timer.status == Status::Armed {
            self.start(&mut state, owner);
        }
        Ok(old)
    }

    /// `timer_gettime`.
    pub fn gettime(&self, id: i32) -> SysResult<Setting> {
        let mut state = self.lock();
        let timer = state.posix.get_mut(&id).ok_or(Errno::EINVAL)?;
        Ok(timer.reading(timer.base.now()))
    }

    /// `timer_getoverrun`.
    pub fn getoverrun(&self, id: i32) -> SysResult<i32> {
        let state = self.lock();
        let timer = state.posix.get(&id).ok_or(Errno::EINVAL)?;
        Ok(timer.overrun_to_int())
    }

    /// `timer_delete`. A signal the timer queued is dropped when taken.
    pub fn delete(&self, id: i32) -> SysResult<()> {
        self.lock().posix.remove(&id).ok_or(Errno::EINVAL)?;
        debug!(id, "timer deleted");
        Ok(())
    }

    /// `execve`: the POSIX timers are deleted; the interval timers go on (`execve(2)`).
    pub fn on_exec(&self) {
        self.lock().posix.clear();
    }

    /// A signal was taken from a pending queue: re-arms the timer it came from and fills in
    /// its overrun. Returns false for the stale signal of a timer re-armed or deleted since it
    /// was queued, which must be dropped. Call with no signal queue locked.
    pub fn on_dequeue(&self, info: &mut SigInfo) -> bool {
        let mut state = self.lock();
        let mut rearmed = false;
        if info.signo == sig::SIGALRM {
            let before = state.real;
            state.real.rearm(now_or_zero(monotonic()));
            rearmed = state.real != before;
        }
        let seq = info.fields[2] as u32;
        let keep = if info.code != code::SI_TIMER || seq == 0 {
            true
        } else {
            info.fields[2] = 0;
            let id = info.fields[0] as u32 as i32;
            match state.posix.get_mut(&id) {
                Some(timer) if timer.signal_seq == seq => {
                    if let Some(overrun) = timer.signal_taken(timer.base.now()) {
                        info.fields[0] = u64::from(id as u32) | (u64::from(overrun as u32) << 32);
                        rearmed = true;
                    }
                    true
                }
                _ => false,
            }
        };
        drop(state);
        if rearmed {
            self.shared.changed.notify_all();
        }
        keep
    }

    /// Holds the timer thread still (it raises no signal) until the guard is dropped: `fork`
    /// copies the process while no timer signal is half sent, so the child finds every lock of
    /// the parent's state free.
    pub fn pause(&self) -> TimersPaused<'_> {
        TimersPaused {
            _state: self.lock(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TimerState> {
        lock(&self.shared.state)
    }

    /// Starts the timer thread if needed, and makes it plan again.
    fn start(&self, state: &mut TimerState, owner: &Arc<Process>) {
        if !state.running {
            let shared = self.shared.clone();
            let owner = Arc::downgrade(owner);
            let spawned = std::thread::Builder::new()
                .name("elfuse-timers".into())
                .spawn(move || run_timers(&shared, &owner));
            match spawned {
                Ok(_) => state.running = true,
                Err(e) => warn!("cannot start the timer thread: {e}"),
            }
        }
        self.shared.changed.notify_all();
    }
}

/// A clock's reading, 0 if it cannot be read (the wall and process clocks always can).
fn now_or_zero(clock: Clock) -> u64 {
    clock.now().unwrap_or(0)
}

/// The timer thread: fires what is due, then sleeps until the next expiry, a tick if CPU
/// timers are armed, or a change. Ends with the process.
fn run_timers(shared: &Shared, owner: &Weak<Process>) {
    let mut state = lock(&shared.state);
    loop {
        let Some(process) = owner.upgrade() else {
            return;
        };
        if process.dying.load(Ordering::SeqCst) {
            return;
        }
        let nap = fire_due(&mut state, &process);
        drop(process);
        state = match nap {
            None => shared
                .changed
                .wait(state)
                .unwrap_or_else(|p| p.into_inner()),
            Some(nap) => {
                shared
                    .changed
                    .wait_timeout(state, Duration::from_nanos(nap))
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
    }
}

/// Fires every timer that is due and returns how long until one may be (`None`: no timer is
/// armed).
fn fire_due(state: &mut TimerState, process: &Process) -> Option<u64> {
    let mut nap: Option<u64> = None;
    let mut wake_in = |ns: u64| nap = Some(nap.map_or(ns, |n| n.min(ns)));

    if state.real.queued {
        let clock = monotonic();
        let now = now_or_zero(clock);
        if now >= state.real.expires {
            state.real.queued = false;
            process.send_signal(SigInfo::kernel(sig::SIGALRM));
        } else {
            wake_in(clock.nap(state.real.expires - now));
        }
    }

    let cpu_itimers = [
        (&mut state.virt, Clock::ProcessUser, sig::SIGVTALRM),
        (&mut state.prof, Clock::ProcessUserSystem, sig::SIGPROF),
    ];
    for (timer, clock, signo) in cpu_itimers {
        if timer.expires == 0 {
            continue;
        }
        if timer.expire(now_or_zero(clock)) {
            process.send_signal(SigInfo::kernel(signo));
        }
        if timer.expires != 0 {
            wake_in(TICK_NSEC);
        }
    }

    for (&id, timer) in &mut state.posix {
        if timer.status != Status::Armed {
            continue;
        }
        let Some(now) = timer.base.now() else {
            // Its thread ended: the timer stops, as Linux's does.
            timer.status = Status::Disarmed;
            continue;
        };
        if now >= timer.expires {
            timer.status = match timer.interval {
                0 => Status::Disarmed,
                _ => Status::RequeuePending,
            };
            queue_signal(process, id, timer);
        } else {
            wake_in(timer.base.nap(timer.expires - now));
        }
    }
    nap
}

/// Queues the signal of POSIX timer `id`, unless its previous one is still queued: that one
/// then stands for this expiry (and is no longer stale).
fn queue_signal(process: &Process, id: i32, timer: &PosixTimer) {
    let (target, signo, value) = match timer.notify {
        Notify::Nothing => return,
        Notify::Process { signo, value } => (None, signo, value),
        Notify::Thread { tid, signo, value } => (Some(tid), signo, value),
    };
    let info = timer_siginfo(signo, id, value, timer.signal_seq);
    let refresh = |queue: &Mutex<crate::kernel::signal::SigQueue>| {
        let mut queue = lock(queue);
        match queue.find_mut(|queued| is_signal_of(queued, id)) {
            Some(queued) => {
                *queued = info;
                true
            }
            None => false,
        }
    };
    match target {
        None => {
            if !refresh(&process.pending) {
                process.send_signal(info);
            }
        }
        Some(tid) => {
            let Some(thread) = process.thread(tid) else {
                return;
            };
            if !refresh(&thread.pending) {
                process.send_thread_signal(tid, info);
            }
        }
    }
}

/// How an interruptible sleep ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woken {
    /// The clock reached the deadline (or stopped existing).
    Elapsed,
    /// A signal, or the end of the process, interrupted it with `remaining` nanoseconds to go
    /// (possibly 0).
    Interrupted { remaining: u64 },
}

/// Sleeps until `clock` reads `deadline`, unless a signal for `task` or the end of its process
/// comes first. The run lock is released meanwhile.
pub fn sleep_until(task: &TaskShared, clock: Clock, deadline: u64) -> Woken {
    loop {
        let Some(now) = clock.now() else {
            return Woken::Elapsed;
        };
        if now >= deadline {
            return Woken::Elapsed;
        }
        let nap = Duration::from_nanos(clock.nap(deadline - now));
        match task.wait(Instant::now().checked_add(nap), || false) {
            Err(e) if e == restart::ERESTARTSYS => {
                let now = clock.now().unwrap_or(deadline);
                return Woken::Interrupted {
                    remaining: deadline.saturating_sub(now),
                };
            }
            _ => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use posix::next_seq;

    #[test]
    fn stale_and_orphan_timer_signals_are_dropped_when_taken() {
        let timers = Timers::new();
        let id = timers.reserve_id();
        assert_eq!(id, 0);
        let clock = Clock::Steady(libc::CLOCK_MONOTONIC);
        let notify = Notify::Process {
            signo: 34,
            value: 5,
        };
        timers.create(id, clock, clock, notify);
        let seq = timers.lock().posix[&id].signal_seq;
        let mut current = timer_siginfo(34, id, 5, seq);
        assert!(timers.on_dequeue(&mut current));
        assert_eq!(current.fields[2], 0, "si_sys_private is not shown");
        let mut stale = timer_siginfo(34, id, 5, next_seq(seq));
        assert!(!timers.on_dequeue(&mut stale));
        // Signals a process queued itself (no sequence) pass untouched.
        let mut queued = timer_siginfo(34, id, 5, 0);
        assert!(timers.on_dequeue(&mut queued));
        timers.delete(id).unwrap();
        let mut orphan = timer_siginfo(34, id, 5, seq);
        assert!(!timers.on_dequeue(&mut orphan));
        assert_eq!(timers.delete(id), Err(Errno::EINVAL));
        assert_eq!(timers.reserve_id(), 1, "ids are not reused at once");
    }
}
