//! Scheduling of guest threads: the run lock that serializes guest execution on backends whose
//! CPUs are not coherent with each other (the emulator), blocking sections that release it,
//! and the housekeeping thread that time-slices and re-sends wake-ups.
//!
//! On the emulator every guest thread has its own engine, and engines do not make each
//! other's exclusive loads/stores or LSE atomics atomic. So exactly one thread runs guest code
//! or kernel code at a time: it holds the run lock, a fair ticket lock. A thread releases it
//! while it waits (a blocking host call, a futex, a sleep) and when the time slice ends: the
//! housekeeping thread kicks the holder's vCPU if others have waited a whole slice, and the
//! holder then yields to the next ticket. Kernel code therefore runs serialized, like a
//! kernel with a big lock; nothing may be held across a blocking section except the calling
//! thread's own state.
//!
//! Backends with coherent CPUs (hvf) do not use the lock: [`RunLock::disabled`] makes every
//! operation a no-op.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::kernel::process::lock;
use crate::vm::VcpuHandle;

/// How long a thread may run while others wait.
pub const TIME_SLICE: Duration = Duration::from_millis(10);
/// How often a wake-up that may have raced with a blocking call is sent again.
const REKICK: Duration = Duration::from_millis(2);

#[derive(Default)]
struct Tickets {
    /// The next ticket to hand out.
    next: u64,
    /// The ticket allowed to run.
    serving: u64,
}

/// A fair lock over guest execution.
pub struct RunLock {
    enabled: bool,
    tickets: Mutex<Tickets>,
    turn: Condvar,
    /// The vCPU of the current holder, for time slicing.
    holder: Mutex<Option<VcpuHandle>>,
    /// Counts hand-overs, so the time slicer can tell whether the holder changed.
    handovers: AtomicU64,
}

impl RunLock {
    /// A lock that serializes guest execution.
    pub fn new() -> Arc<RunLock> {
        Arc::new(RunLock::with(true))
    }

    /// A lock that does nothing (coherent CPUs).
    pub fn disabled() -> Arc<RunLock> {
        Arc::new(RunLock::with(false))
    }

    fn with(enabled: bool) -> RunLock {
        RunLock {
            enabled,
            tickets: Mutex::new(Tickets::default()),
            turn: Condvar::new(),
            holder: Mutex::new(None),
            handovers: AtomicU64::new(0),
        }
    }

    /// Whether threads wait for the lock.
    fn contended(&self) -> bool {
        let t = lock(&self.tickets);
        t.next > t.serving + 1
    }

    fn acquire(&self, vcpu: Option<&VcpuHandle>) {
        if !self.enabled {
            return;
        }
        let mut t = lock(&self.tickets);
        let ticket = t.next;
        t.next += 1;
        while t.serving != ticket {
            t = self.turn.wait(t).unwrap_or_else(|p| p.into_inner());
        }
        drop(t);
        *lock(&self.holder) = vcpu.cloned();
        self.handovers.fetch_add(1, Ordering::Relaxed);
    }

    fn release(&self) {
        if !self.enabled {
            return;
        }
        *lock(&self.holder) = None;
        let mut t = lock(&self.tickets);
        t.serving += 1;
        drop(t);
        self.turn.notify_all();
    }
}

/// What the current host thread knows about its place in the scheduler.
struct Current {
    run: Arc<RunLock>,
    vcpu: Option<VcpuHandle>,
    held: bool,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Makes the calling host thread a guest thread that takes part in `run`, holding the lock.
pub fn enter(run: Arc<RunLock>, vcpu: Option<VcpuHandle>) {
    run.acquire(vcpu.as_ref());
    CURRENT.with(|c| {
        *c.borrow_mut() = Some(Current {
            run,
            vcpu,
            held: true,
        })
    });
}

/// Records the vCPU of the calling thread (once it exists) for time slicing.
pub fn set_vcpu(vcpu: VcpuHandle) {
    CURRENT.with(|c| {
        if let Some(current) = c.borrow_mut().as_mut() {
            if current.held {
                *lock(&current.run.holder) = Some(vcpu.clone());
            }
            current.vcpu = Some(vcpu);
        }
    });
}

/// In a forked child: the calling thread holds `run`, a fresh lock of the new process (the old
/// one's waiters do not exist here).
pub fn reset_after_fork(run: Arc<RunLock>) {
    let vcpu = CURRENT.with(|c| c.borrow_mut().take().and_then(|cur| cur.vcpu));
    enter(run, vcpu);
}

/// Ends the calling thread's participation, releasing the lock.
pub fn leave() {
    CURRENT.with(|c| {
        if let Some(current) = c.borrow_mut().take()
            && current.held
        {
            current.run.release();
        }
    });
}

/// Runs `f` without the run lock: other guest threads run meanwhile. `f` must not touch
/// kernel state other threads own.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    let run = CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        let current = c.as_mut()?;
        if !current.held || !current.run.enabled {
            return None;
        }
        current.held = false;
        Some(current.run.clone())
    });
    if let Some(run) = &run {
        run.release();
    }
    let result = f();
    if let Some(run) = run {
        let vcpu = CURRENT.with(|c| c.borrow().as_ref().and_then(|cur| cur.vcpu.clone()));
        run.acquire(vcpu.as_ref());
        CURRENT.with(|c| {
            if let Some(current) = c.borrow_mut().as_mut() {
                current.held = true;
            }
        });
    }
    result
}

/// Lets waiting threads run if any have waited for the lock: called when a time slice ends.
pub fn yield_now() {
    let contended = CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|cur| cur.held && cur.run.enabled && cur.run.contended())
    });
    if contended {
        blocking(|| {});
    }
}

/// A thread that housekeeps for one process: ends time slices, and re-sends wake-ups that may
/// have reached a thread just before it blocked.
pub struct Housekeeper {
    state: Mutex<HouseState>,
    changed: Condvar,
    started: AtomicBool,
}

#[derive(Default)]
struct HouseState {
    run: Option<Weak<RunLock>>,
    /// Wake-ups to repeat until their target leaves its blocking call.
    rekicks: Vec<Box<dyn Fn() -> bool + Send>>,
}

impl Housekeeper {
    /// A housekeeper; its thread starts on first use.
    pub fn new() -> Arc<Housekeeper> {
        Arc::new(Housekeeper {
            state: Mutex::new(HouseState::default()),
            changed: Condvar::new(),
            started: AtomicBool::new(false),
        })
    }

    fn start(self: &Arc<Housekeeper>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = Arc::downgrade(self);
        let _ = std::thread::Builder::new()
            .name("elfuse-housekeeper".into())
            .spawn(move || {
                let mut last = (0, Instant::now());
                while let Some(house) = me.upgrade() {
                    house.tick(&mut last);
                    drop(house);
                    std::thread::sleep(REKICK);
                }
            });
    }

    fn tick(&self, last: &mut (u64, Instant)) {
        let mut state = lock(&self.state);
        state.rekicks.retain(|kick| kick());
        let run = state.run.as_ref().and_then(Weak::upgrade);
        drop(state);
        let Some(run) = run else {
            return;
        };
        let handovers = run.handovers.load(Ordering::Relaxed);
        if handovers != last.0 {
            *last = (handovers, Instant::now());
        } else if last.1.elapsed() >= TIME_SLICE && run.contended() {
            if let Some(holder) = lock(&run.holder).clone() {
                holder.kick();
            }
            last.1 = Instant::now();
        }
    }

    /// Starts time slicing `run` (once a process has a second thread).
    pub fn time_slice(self: &Arc<Housekeeper>, run: &Arc<RunLock>) {
        if !run.enabled {
            return;
        }
        lock(&self.state).run = Some(Arc::downgrade(run));
        self.start();
    }

    /// Repeats `kick` every few milliseconds while it returns true.
    pub fn rekick(self: &Arc<Housekeeper>, kick: Box<dyn Fn() -> bool + Send>) {
        lock(&self.state).rekicks.push(kick);
        self.changed.notify_all();
        self.start();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn the_lock_admits_one_thread_at_a_time_in_ticket_order() {
        let run = RunLock::new();
        let inside = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (run, inside, max) = (run.clone(), inside.clone(), max.clone());
                std::thread::spawn(move || {
                    enter(run, None);
                    for _ in 0..200 {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(now, Ordering::SeqCst);
                        inside.fetch_sub(1, Ordering::SeqCst);
                        blocking(std::thread::yield_now);
                    }
                    leave();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(max.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_disabled_lock_never_blocks() {
        let run = RunLock::disabled();
        enter(run.clone(), None);
        let other = std::thread::spawn(move || {
            enter(run, None);
            leave();
        });
        other.join().unwrap();
        leave();
    }
}
