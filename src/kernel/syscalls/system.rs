//! System information and resources: `uname(2)`, `sethostname(2)`, `sysinfo(2)`,
//! `getrandom(2)`, `getrlimit(2)`/`setrlimit(2)`/`prlimit64(2)`, `getrusage(2)`,
//! scheduling (`sched_*(2)`, `getpriority(2)`, `setpriority(2)`) and `getcpu(2)`.

use super::Ctx;
use crate::host;
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::rlimit as rl;
use crate::kernel::abi::structs::{Rlimit, Rusage, Sysinfo, Timeval, Utsname};
use crate::kernel::process::lock;

/// The Linux release `uname -r` reports: a recent long-term kernel.
pub const RELEASE: &str = "6.12.0-elfuse";
/// The version string `uname -v` reports.
pub const VERSION: &str = "#1 SMP PREEMPT elfuse";

fn field(text: &str) -> [u8; 65] {
    let mut out = [0u8; 65];
    let len = text.len().min(64);
    out[..len].copy_from_slice(&text.as_bytes()[..len]);
    out
}

/// `uname(2)`.
pub fn sys_uname(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let uts = Utsname {
        sysname: field("Linux"),
        nodename: field(&host::hostname()),
        release: field(RELEASE),
        version: field(VERSION),
        machine: field("aarch64"),
        domainname: field("(none)"),
    };
    ctx.mem().write_val(a[0], &uts)?;
    Ok(0)
}

/// `sethostname(2)`: the host name is the host's; changing it needs `CAP_SYS_ADMIN`.
///
/// elfuse never renames the host, so every caller is treated as lacking the capability
/// (as in a container without it): `EPERM` before any argument is looked at.
pub fn sys_sethostname(_ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    Err(Errno::EPERM)
}

/// `sysinfo(2)`.
pub fn sys_sysinfo(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let mem = host::memory_info();
    let uptime = host::clock_gettime(host::clock_to_host(7).unwrap_or(libc::CLOCK_MONOTONIC))
        .map(|(s, _)| s)
        .unwrap_or(0);
    let loads = host::load_average().map(|l| (l * 65536.0) as u64);
    let info = Sysinfo {
        uptime: uptime.max(1),
        loads,
        totalram: mem.total,
        freeram: mem.free,
        sharedram: mem.shared,
        bufferram: mem.buffers,
        totalswap: mem.swap_total,
        freeswap: mem.swap_free,
        procs: mem.procs.min(u64::from(u16::MAX)) as u16,
        mem_unit: 1,
        ..Sysinfo::default()
    };
    ctx.mem().write_val(a[0], &info)?;
    Ok(0)
}

/// `getrandom(2)`.
pub fn sys_getrandom(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    const GRND_NONBLOCK: u64 = 1;
    const GRND_RANDOM: u64 = 2;
    const GRND_INSECURE: u64 = 4;
    let flags = a[2] as u32 as u64;
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == GRND_RANDOM | GRND_INSECURE
    {
        return Err(Errno::EINVAL);
    }
    let len = a[1].min(0x01ff_ffff);
    ctx.mem().with_writable(a[0], len, |buf| {
        host::random_bytes(buf);
        buf.len() as u64
    })
}

/// Reads the limit for `resource`, checking the resource number.
fn limit_index(resource: u64) -> SysResult<usize> {
    let r = resource as u32;
    if r >= rl::RLIM_NLIMITS {
        Err(Errno::EINVAL)
    } else {
        Ok(r as usize)
    }
}

/// `getrlimit(2)`.
pub fn sys_getrlimit(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let index = limit_index(a[0])?;
    let value = lock(&ctx.process().limits)[index];
    ctx.mem().write_val(a[1], &value)?;
    Ok(0)
}

/// `setrlimit(2)`.
pub fn sys_setrlimit(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let index = limit_index(a[0])?;
    let new: Rlimit = ctx.mem().read_val(a[1])?;
    set_limit(ctx, index, new)?;
    Ok(0)
}

/// Linux's `fs.nr_open` default: the most descriptors a process may be allowed.
const NR_OPEN: u64 = 1 << 20;

fn set_limit(ctx: &Ctx<'_>, index: usize, new: Rlimit) -> SysResult<()> {
    if new.cur > new.max {
        return Err(Errno::EINVAL);
    }
    let privileged = lock(&ctx.process().creds).euid == 0;
    let mut limits = lock(&ctx.process().limits);
    if new.max > limits[index].max && !privileged {
        return Err(Errno::EPERM);
    }
    if index == rl::RLIMIT_NOFILE as usize && new.max > NR_OPEN && new.max != rl::RLIM_INFINITY {
        return Err(Errno::EPERM);
    }
    if index == rl::RLIMIT_NOFILE as usize && new.max == rl::RLIM_INFINITY {
        return Err(Errno::EPERM);
    }
    // Limits the host enforces on the process itself follow; the address-space limits do
    // not, since they would constrain elfuse's own reservation rather than the guest.
    host::apply_rlimit(index as u32, new.cur, new.max);
    limits[index] = new;
    Ok(())
}

/// `prlimit64(2)`: only the calling process (`pid` 0 or its own).
pub fn sys_prlimit64(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let pid = a[0] as u32 as i32;
    if pid != 0 && pid != ctx.process().pid {
        return Err(if pid < 0 { Errno::EINVAL } else { Errno::ESRCH });
    }
    let index = limit_index(a[1])?;
    let new = if a[2] != 0 {
        Some(ctx.mem().read_val::<Rlimit>(a[2])?)
    } else {
        None
    };
    let old = lock(&ctx.process().limits)[index];
    if let Some(new) = new {
        set_limit(ctx, index, new)?;
    }
    if a[3] != 0 {
        ctx.mem().write_val(a[3], &old)?;
    }
    Ok(0)
}

fn timeval(micros: i64) -> Timeval {
    Timeval {
        tv_sec: micros / 1_000_000,
        tv_usec: micros % 1_000_000,
    }
}

/// `getrusage(2)`.
pub fn sys_getrusage(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    const RUSAGE_SELF: i32 = 0;
    const RUSAGE_CHILDREN: i32 = -1;
    const RUSAGE_THREAD: i32 = 1;
    let who = a[0] as u32 as i32;
    let u = match who {
        RUSAGE_SELF | RUSAGE_THREAD => host::rusage(false),
        RUSAGE_CHILDREN => host::rusage(true),
        _ => return Err(Errno::EINVAL),
    };
    let usage = rusage(u);
    ctx.mem().write_val(a[1], &usage)?;
    Ok(0)
}

/// The guest's `struct rusage` for host usage `u`.
pub(super) fn rusage(u: host::Usage) -> Rusage {
    Rusage {
        ru_utime: timeval(u.user_us),
        ru_stime: timeval(u.system_us),
        ru_maxrss: u.maxrss_kib,
        ru_minflt: u.minflt,
        ru_majflt: u.majflt,
        ru_inblock: u.inblock,
        ru_oublock: u.oublock,
        ru_nvcsw: u.nvcsw,
        ru_nivcsw: u.nivcsw,
        ..Rusage::default()
    }
}

/// Checks that `pid` names the caller (0 or its own id) for scheduling calls.
fn own(ctx: &Ctx<'_>, pid: u64) -> SysResult<()> {
    let pid = pid as u32 as i32;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid != 0 && pid != ctx.process().pid && pid != ctx.task.tid {
        return Err(Errno::ESRCH);
    }
    Ok(())
}

/// Bytes of the CPU mask the kernel reports (`nr_cpu_ids` rounded up to longs).
fn mask_bytes() -> usize {
    host::cpu_count().div_ceil(64) * 8
}

/// `sched_getaffinity(2)`: returns the size of the mask written.
pub fn sys_sched_getaffinity(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    own(ctx, a[0])?;
    let len = a[1] as u32 as usize;
    let size = mask_bytes();
    if len < size || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let mask = lock(&ctx.process().affinity).clone();
    let bytes: Vec<u8> = mask
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .take(size)
        .collect();
    ctx.mem().write(a[2], &bytes)?;
    Ok(size as u64)
}

/// `sched_setaffinity(2)`: the mask is kept and reported back; host threads are not pinned
/// (macOS cannot pin threads), which only affects performance.
pub fn sys_sched_setaffinity(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    own(ctx, a[0])?;
    let len = (a[1] as u32 as usize).min(mask_bytes());
    let mut raw = vec![0u8; len];
    ctx.mem().read(a[2], &mut raw)?;
    let cpus = host::cpu_count();
    let mut mask = vec![0u64; cpus.div_ceil(64)];
    for cpu in 0..cpus {
        if raw.get(cpu / 8).is_some_and(|b| b & (1 << (cpu % 8)) != 0) {
            mask[cpu / 64] |= 1 << (cpu % 64);
        }
    }
    if mask.iter().all(|&w| w == 0) {
        return Err(Errno::EINVAL);
    }
    *lock(&ctx.process().affinity) = mask;
    Ok(0)
}

/// `sched_yield(2)`.
pub fn sys_sched_yield(_ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    std::thread::yield_now();
    Ok(0)
}

/// Scheduling policies.
const SCHED_OTHER: u64 = 0;
const SCHED_FIFO: u64 = 1;
const SCHED_RR: u64 = 2;
const SCHED_BATCH: u64 = 3;
const SCHED_IDLE: u64 = 5;
const SCHED_DEADLINE: u64 = 6;
const SCHED_RESET_ON_FORK: u64 = 0x4000_0000;

/// `sched_getscheduler(2)`.
pub fn sys_sched_getscheduler(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    own(ctx, a[0])?;
    Ok(lock(&ctx.process().prctl).sched_policy)
}

/// Reads a `struct sched_param` argument: a null pointer is `EINVAL`.
fn sched_priority(ctx: &Ctx<'_>, addr: u64) -> SysResult<i32> {
    if addr == 0 {
        return Err(Errno::EINVAL);
    }
    ctx.mem().read_val(addr)
}

/// `sched_getparam(2)`.
pub fn sys_sched_getparam(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    own(ctx, a[0])?;
    if a[1] == 0 {
        return Err(Errno::EINVAL);
    }
    ctx.mem().write_val(a[1], &0i32)?;
    Ok(0)
}

/// `sched_setscheduler(2)`: the normal policies at priority 0 are recorded and reported back
/// (the host scheduler is not changed); real-time ones need privilege elfuse does not pass
/// on.
pub fn sys_sched_setscheduler(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    own(ctx, a[0])?;
    let policy = a[1] as u32 as u64 & !SCHED_RESET_ON_FORK;
    let priority = sched_priority(ctx, a[2])?;
    match policy {
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE if priority == 0 => {
            lock(&ctx.process().prctl).sched_policy = policy;
            Ok(0)
        }
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => Err(Errno::EINVAL),
        SCHED_FIFO | SCHED_RR if (1..=99).contains(&priority) => Err(Errno::EPERM),
        _ => Err(Errno::EINVAL),
    }
}

/// `sched_setparam(2)`.
pub fn sys_sched_setparam(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    own(ctx, a[0])?;
    let priority = sched_priority(ctx, a[1])?;
    if priority != 0 {
        Err(Errno::EINVAL)
    } else {
        Ok(0)
    }
}

/// `sched_get_priority_max(2)`.
pub fn sys_sched_get_priority_max(_ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    match a[0] as u32 as u64 {
        SCHED_FIFO | SCHED_RR => Ok(99),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// `sched_get_priority_min(2)`.
pub fn sys_sched_get_priority_min(_ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    match a[0] as u32 as u64 {
        SCHED_FIFO | SCHED_RR => Ok(1),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// `getpriority(2)`: the raw syscall returns `20 - nice` (1..=40).
pub fn sys_getpriority(_ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let nice = host::get_priority(a[0] as u32 as i32, a[1] as u32)?;
    Ok((20 - nice) as u64)
}

/// `setpriority(2)`.
pub fn sys_setpriority(_ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let nice = (a[2] as u32 as i32).clamp(-20, 19);
    host::set_priority(a[0] as u32 as i32, a[1] as u32, nice)?;
    Ok(0)
}

/// `getcpu(2)`: CPU and NUMA node of the calling thread.
pub fn sys_getcpu(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let cpu = host::current_cpu();
    if a[0] != 0 {
        ctx.mem().write_val(a[0], &cpu)?;
    }
    if a[1] != 0 {
        ctx.mem().write_val(a[1], &0u32)?;
    }
    Ok(0)
}
