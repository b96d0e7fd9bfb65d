/*
 * sys_misc: the remaining process, scheduling, signal and system calls.
 * Man pages: listxattr(2), removexattr(2), chroot(2), stat(2), _exit(2) (the thread exit
 * system call), sched_setparam(2), sched_getparam(2), sched_setscheduler(2),
 * sched_getscheduler(2), sched_get_priority_max(2), kill(2), tkill(2)/tgkill(2),
 * sigaltstack(2), sigpending(2), sigreturn(2), sigaction(2), getpriority(2), setgid(2),
 * setreuid(2)/setregid(2), setresuid(2), setfsuid(2), setfsgid(2), setpgid(2), getsid(2),
 * setsid(2), gethostname(2), getrlimit(2), getcpu(2), gettimeofday(2), posix_fadvise(2),
 * mlock(2), getsockname(2), getpeername(2), credentials(7), signal(7).
 *
 * Covers: llistxattr/lremovexattr (and that they do not follow symlinks); chroot's lookup
 * errors; the raw fstat system call (glibc's fstat uses newfstatat); the scheduling policy and
 * priority calls with SCHED_OTHER/SCHED_BATCH and their argument errors; the nice value;
 * no-change credential calls (setgid, setregid, setreuid, setresgid, setfsuid, setfsgid);
 * kill/tkill/tgkill delivery with the siginfo the kernel fills in, and their errors; pending
 * signals (standard signals coalesce, real-time signals queue, ignoring discards); the
 * alternate signal stack (SS_ONSTACK inside the handler, EPERM for changing it there,
 * SS_AUTODISARM, ENOMEM/EINVAL); rt_sigreturn restoring the signal mask (including a mask
 * edited through the handler's ucontext) and every register the handler clobbered; process
 * groups and sessions; the old getrlimit/setrlimit calls; getcpu; posix_fadvise;
 * mlock/munlock/mlockall/munlockall; getsockname/getpeername on descriptors that are not
 * sockets (bash probes stdin so). main() ends with the raw exit system call.
 *
 * Nothing here changes the host: sethostname, settimeofday and chroot are only called in
 * ways that fail, and the credential calls change nothing. The test passes as root and as an
 * ordinary user; where Linux checks privilege before the argument (sethostname), the
 * expected error is worked out from a failing probe call, so a root without CAP_SYS_ADMIN
 * (a container) is handled too. Whether the program starts as a process-group leader (a
 * job-control shell) or a session leader decides which setpgid/setsid results are expected;
 * every case is handled.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <ucontext.h>
#include <unistd.h>

#include "check.h"
#include "scratch.h"

/* Surely not a pid: pid_max is at most 2^22. */
#define NO_PID 0x7ffffff0

#define SI_TKILL_CODE (-6) /* SI_TKILL */

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31) /* linux/signal.h; glibc does not define it */
#endif

static volatile uintptr_t bad_addr = 1;
#define BADP ((void *)bad_addr)

/* ---- extended attributes without following symlinks ---- */

/* 1 if name is in the NUL-separated list of n bytes. */
static int in_list(const char *list, long n, const char *name)
{
    for (long i = 0; i < n; i += (long)strlen(list + i) + 1)
        if (strcmp(list + i, name) == 0)
            return 1;
    return 0;
}

static void test_lxattr(void)
{
    CHECK_OK(scratch_write_file(sp("x"), "data"));
    CHECK_OK(symlink("x", sp("xl")));
    if (setxattr(sp("x"), "user.elfuse", "v1", 2, 0) != 0) {
        /* No user xattrs on this filesystem: nothing to list or remove. */
        CHECK(errno == ENOTSUP || errno == EOPNOTSUPP);
        unlink(sp("xl"));
        unlink(sp("x"));
        return;
    }
    char list[1024];
    long n = llistxattr(sp("x"), list, sizeof list);
    CHECK(n >= (long)sizeof "user.elfuse");
    CHECK(n > 0 && in_list(list, n, "user.elfuse"));
    CHECK_EQ(llistxattr(sp("x"), NULL, 0), n); /* size query */
    CHECK_ERR(llistxattr(sp("x"), list, 1), ERANGE);
    /* The symlink itself has no user attributes (it cannot have any); listxattr follows. */
    n = llistxattr(sp("xl"), list, sizeof list);
    CHECK(n >= 0);
    CHECK_EQ(n >= 0 && in_list(list, n, "user.elfuse"), 0);
    n = listxattr(sp("xl"), list, sizeof list);
    CHECK(n > 0 && in_list(list, n, "user.elfuse"));
    /* user.* on a symlink is not permitted: lremovexattr does not reach the file. */
    CHECK_ERR(lremovexattr(sp("xl"), "user.elfuse"), EPERM);
    char v[8];
    CHECK_EQ(getxattr(sp("x"), "user.elfuse", v, sizeof v), 2);

    CHECK_OK(lremovexattr(sp("x"), "user.elfuse"));
    CHECK_ERR(getxattr(sp("x"), "user.elfuse", v, sizeof v), ENODATA);
    n = llistxattr(sp("x"), list, sizeof list);
    CHECK(n >= 0);
    CHECK_EQ(n >= 0 && in_list(list, n, "user.elfuse"), 0);
    CHECK_ERR(lremovexattr(sp("x"), "user.elfuse"), ENODATA);
    CHECK_ERR(lremovexattr(sp("missing"), "user.elfuse"), ENOENT);
    CHECK_ERR(llistxattr(sp("missing"), list, sizeof list), ENOENT);
    CHECK_ERR(llistxattr(BADP, list, sizeof list), EFAULT);
    unlink(sp("xl"));
    unlink(sp("x"));
}

/* ---- chroot, sethostname, settimeofday: error paths only ---- */

static void test_privileged_errors(void)
{
    CHECK_OK(scratch_write_file(sp("reg"), "x"));
    /* The path is looked up before privilege is checked. */
    CHECK_ERR(chroot("/nonexistent/elfuse"), ENOENT);
    CHECK_ERR(chroot(sp("reg")), ENOTDIR);
    CHECK_ERR(chroot(""), ENOENT);
    CHECK_ERR(chroot(BADP), EFAULT);
    if (geteuid() != 0) /* an ordinary user lacks CAP_SYS_CHROOT */
        CHECK_ERR(chroot(scratch_dir), EPERM);
    unlink(sp("reg"));

    /* sethostname checks CAP_SYS_ADMIN first, then the length, then copies the name. A bad
       name pointer tells which: EFAULT if privileged, EPERM if not (nothing is set). */
    errno = 0;
    long rc = syscall(SYS_sethostname, BADP, 5);
    int probe = errno;
    CHECK_EQ(rc, -1);
    CHECK(probe == EFAULT || probe == EPERM);
    int want = probe == EPERM ? EPERM : EINVAL;
    char name[80];
    memset(name, 'h', sizeof name);
    CHECK_ERR(syscall(SYS_sethostname, name, 65), want); /* longer than __NEW_UTS_LEN (64) */
    CHECK_ERR(syscall(SYS_sethostname, name, -1), want);

    /* settimeofday validates the time before checking privilege. (glibc's settimeofday
       calls clock_settime, so use the system call.) */
    struct timeval tv = {1, 1000000};
    CHECK_ERR(syscall(SYS_settimeofday, &tv, NULL), EINVAL);
    tv.tv_usec = -1;
    CHECK_ERR(syscall(SYS_settimeofday, &tv, NULL), EINVAL);
    tv.tv_sec = -1;
    tv.tv_usec = 0;
    CHECK_ERR(syscall(SYS_settimeofday, &tv, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_settimeofday, BADP, NULL), EFAULT);
}

/* ---- the raw fstat system call ---- */

static mode_t ref_umask(void)
{
    mode_t m = umask(0);
    umask(m);
    return m;
}

static void test_fstat(void)
{
    int fd = open(sp("f"), O_RDWR | O_CREAT | O_TRUNC, 0640);
    CHECK(fd >= 0);
    char buf[1234];
    memset(buf, 'z', sizeof buf);
    CHECK_EQ(write(fd, buf, sizeof buf), 1234);
    struct stat st, ref;
    memset(&st, 0xff, sizeof st);
    CHECK_EQ(syscall(SYS_fstat, fd, &st), 0);
    CHECK_EQ(st.st_size, 1234);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0640 & ~ref_umask());
    CHECK_EQ(st.st_nlink, 1);
    CHECK_EQ(st.st_uid, geteuid());
    CHECK_OK(stat(sp("f"), &ref));
    CHECK_EQ(st.st_ino, ref.st_ino);
    CHECK_EQ(st.st_dev, ref.st_dev);
    CHECK_EQ(st.st_blksize, ref.st_blksize);

    int p[2];
    CHECK_OK(pipe(p));
    CHECK_EQ(syscall(SYS_fstat, p[0], &st), 0);
    CHECK(S_ISFIFO(st.st_mode));
    close(p[0]);
    close(p[1]);

    CHECK_ERR(syscall(SYS_fstat, -1, &st), EBADF);
    CHECK_ERR(syscall(SYS_fstat, 9999, &st), EBADF);
    CHECK_ERR(syscall(SYS_fstat, fd, BADP), EFAULT);
    close(fd);
    CHECK_ERR(syscall(SYS_fstat, fd, &st), EBADF);
    unlink(sp("f"));
}

/* ---- scheduling policy and priority ---- */

static void test_sched(void)
{
    struct sched_param p0 = {.sched_priority = 0}, p5 = {.sched_priority = 5}, p;

    CHECK_EQ(sched_getscheduler(0), SCHED_OTHER);
    CHECK_EQ(sched_getscheduler(getpid()), SCHED_OTHER);
    p.sched_priority = 7;
    CHECK_OK(sched_getparam(0, &p));
    CHECK_EQ(p.sched_priority, 0);

    /* Setting SCHED_OTHER with priority 0 is allowed for anyone. */
    CHECK_EQ(sched_setscheduler(0, SCHED_OTHER, &p0), 0);
    CHECK_EQ(sched_setparam(0, &p0), 0);
    CHECK_EQ(sched_setparam(getpid(), &p0), 0);
    /* SCHED_BATCH is another normal policy: also allowed, and back. */
    CHECK_EQ(sched_setscheduler(0, SCHED_BATCH, &p0), 0);
    CHECK_EQ(sched_getscheduler(0), SCHED_BATCH);
    CHECK_EQ(sched_setscheduler(0, SCHED_OTHER, &p0), 0);
    CHECK_EQ(sched_getscheduler(0), SCHED_OTHER);

    /* Errors: a nonzero priority for a normal policy, unknown policies, NULL, bad pids. */
    CHECK_ERR(sched_setscheduler(0, SCHED_OTHER, &p5), EINVAL);
    CHECK_ERR(sched_setparam(0, &p5), EINVAL);
    CHECK_ERR(sched_setscheduler(0, 99, &p0), EINVAL);
    CHECK_ERR(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_sched_setparam, 0, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_sched_getparam, 0, NULL), EINVAL);
    CHECK_ERR(sched_setscheduler(-1, SCHED_OTHER, &p0), EINVAL);
    CHECK_ERR(sched_getscheduler(-1), EINVAL);
    CHECK_ERR(sched_getparam(-1, &p), EINVAL);
    CHECK_ERR(sched_getscheduler(NO_PID), ESRCH);
    CHECK_ERR(sched_getparam(NO_PID, &p), ESRCH);
    CHECK_ERR(sched_setparam(NO_PID, &p0), ESRCH);
    CHECK_ERR(sched_setscheduler(NO_PID, SCHED_OTHER, &p0), ESRCH);
    CHECK_ERR(syscall(SYS_sched_getparam, 0, BADP), EFAULT);
    CHECK_EQ(sched_getscheduler(0), SCHED_OTHER);

    CHECK_EQ(sched_get_priority_max(SCHED_FIFO), 99);
    CHECK_EQ(sched_get_priority_min(SCHED_FIFO), 1);
    CHECK_EQ(sched_get_priority_max(SCHED_RR), 99);
    CHECK_EQ(sched_get_priority_min(SCHED_RR), 1);
    CHECK_EQ(sched_get_priority_max(SCHED_OTHER), 0);
    CHECK_EQ(sched_get_priority_min(SCHED_OTHER), 0);
    CHECK_EQ(sched_get_priority_max(SCHED_BATCH), 0);
    CHECK_EQ(sched_get_priority_min(SCHED_IDLE), 0);
    CHECK_ERR(sched_get_priority_max(99), EINVAL);
    CHECK_ERR(sched_get_priority_min(99), EINVAL);
    CHECK_ERR(sched_get_priority_max(-1), EINVAL);
}

static void test_priority(void)
{
    errno = 0;
    int nice0 = getpriority(PRIO_PROCESS, 0);
    CHECK_EQ(errno, 0);
    CHECK(nice0 >= -20 && nice0 <= 19);
    errno = 0;
    CHECK_EQ(getpriority(PRIO_PROCESS, getpid()), nice0);
    CHECK_EQ(errno, 0);
    /* The system call returns 20 - nice, so that it is never negative. */
    CHECK_EQ(syscall(SYS_getpriority, PRIO_PROCESS, 0), 20 - nice0);

    /* Setting the same value, or a higher (nicer) one, is allowed for anyone. */
    CHECK_OK(setpriority(PRIO_PROCESS, 0, nice0));
    errno = 0;
    CHECK_EQ(getpriority(PRIO_PROCESS, 0), nice0);
    if (nice0 < 19) {
        CHECK_OK(setpriority(PRIO_PROCESS, getpid(), nice0 + 1));
        errno = 0;
        CHECK_EQ(getpriority(PRIO_PROCESS, 0), nice0 + 1);
        CHECK_EQ(errno, 0);
        CHECK_EQ(syscall(SYS_getpriority, PRIO_PROCESS, 0), 20 - (nice0 + 1));
    }

    /* The process group's value is the best (lowest) in the group: no more than ours. */
    errno = 0;
    int g = getpriority(PRIO_PGRP, 0);
    CHECK_EQ(errno, 0);
    CHECK(g <= getpriority(PRIO_PROCESS, 0));

    CHECK_ERR(getpriority(99, 0), EINVAL);
    CHECK_ERR(setpriority(99, 0, 0), EINVAL);
    CHECK_ERR(getpriority(PRIO_PROCESS, NO_PID), ESRCH);
    CHECK_ERR(setpriority(PRIO_PROCESS, NO_PID, 0), ESRCH);
}

/* ---- credentials: calls that change nothing ---- */

static void test_creds(void)
{
    uid_t uid = getuid(), euid = geteuid();
    gid_t gid = getgid(), egid = getegid();

    CHECK_OK(setgid(gid));
    CHECK_ERR(setgid((gid_t)-1), EINVAL);
    CHECK_OK(setregid(-1, -1));
    CHECK_OK(setregid(gid, egid));
    CHECK_OK(setreuid(-1, -1));
    CHECK_OK(setreuid(uid, euid));
    CHECK_OK(setresgid(-1, -1, -1));
    gid_t r, e, s;
    CHECK_OK(getresgid(&r, &e, &s));
    CHECK_OK(setresgid(r, e, s));

    /* setfsuid/setfsgid return the previous value and never fail visibly: -1 is a pure
       query. Asking for 0 is a no-op for root and silently refused for a user with no id 0
       (only tried in those two cases, so it never changes anything). */
    uid_t ru, eu, su;
    CHECK_OK(getresuid(&ru, &eu, &su));
    int uid_zero_noop = euid == 0 || (ru != 0 && eu != 0 && su != 0);
    int gid_zero_noop = (euid == 0 && egid == 0) || (euid != 0 && r != 0 && e != 0 && s != 0);
    CHECK_EQ(syscall(SYS_setfsuid, -1), euid);
    CHECK_EQ(syscall(SYS_setfsuid, euid), euid);
    if (uid_zero_noop)
        CHECK_EQ(syscall(SYS_setfsuid, 0), euid);
    CHECK_EQ(syscall(SYS_setfsuid, -1), euid);
    CHECK_EQ(syscall(SYS_setfsgid, -1), egid);
    CHECK_EQ(syscall(SYS_setfsgid, egid), egid);
    if (gid_zero_noop)
        CHECK_EQ(syscall(SYS_setfsgid, 0), egid);
    CHECK_EQ(syscall(SYS_setfsgid, -1), egid);

    CHECK_EQ(getuid(), uid);
    CHECK_EQ(geteuid(), euid);
    CHECK_EQ(getgid(), gid);
    CHECK_EQ(getegid(), egid);
}

/* ---- signals ---- */

static volatile sig_atomic_t hits, hits2;
static volatile int got_signo, got_code, got_pid, got_uid;

static void info_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    hits++;
    got_signo = sig == si->si_signo ? sig : -1;
    got_code = si->si_code;
    got_pid = si->si_pid;
    got_uid = si->si_uid;
}

static void count_handler(int sig)
{
    (void)sig;
    hits2++;
}

static void set_handler(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void set_simple(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void test_kill(void)
{
    pid_t pid = getpid(), tid = gettid();
    set_handler(SIGUSR1, info_handler, 0);
    set_handler(SIGUSR2, info_handler, 0);

    /* A signal sent to ourselves is delivered before the call returns. */
    hits = 0;
    CHECK_EQ(kill(pid, SIGUSR1), 0);
    CHECK_EQ(hits, 1);
    CHECK_EQ(got_signo, SIGUSR1);
    CHECK_EQ(got_code, SI_USER);
    CHECK_EQ(got_pid, pid);
    CHECK_EQ(got_uid, getuid());

    hits = 0;
    CHECK_EQ(syscall(SYS_tgkill, pid, tid, SIGUSR2), 0);
    CHECK_EQ(hits, 1);
    CHECK_EQ(got_signo, SIGUSR2);
    CHECK_EQ(got_code, SI_TKILL_CODE);
    CHECK_EQ(got_pid, pid);
    CHECK_EQ(got_uid, getuid());

    hits = 0;
    CHECK_EQ(syscall(SYS_tkill, tid, SIGUSR1), 0);
    CHECK_EQ(hits, 1);
    CHECK_EQ(got_signo, SIGUSR1);
    CHECK_EQ(got_code, SI_TKILL_CODE);
    CHECK_EQ(got_pid, pid);

    /* Signal 0 only checks that the target exists. */
    hits = 0;
    CHECK_EQ(kill(pid, 0), 0);
    CHECK_EQ(kill(0, 0), 0); /* our process group */
    CHECK_EQ(syscall(SYS_tkill, tid, 0), 0);
    CHECK_EQ(syscall(SYS_tgkill, pid, tid, 0), 0);
    CHECK_EQ(hits, 0);
    CHECK_ERR(kill(NO_PID, 0), ESRCH);
    CHECK_ERR(kill(NO_PID, SIGUSR1), ESRCH);
    CHECK_ERR(kill(-NO_PID, 0), ESRCH); /* no such process group */
    CHECK_ERR(syscall(SYS_tkill, NO_PID, 0), ESRCH);
    CHECK_ERR(syscall(SYS_tgkill, pid, NO_PID, 0), ESRCH);
    /* A real thread, but the wrong thread group. */
    CHECK_ERR(syscall(SYS_tgkill, NO_PID, tid, SIGUSR1), ESRCH);
    if (getppid() > 0)
        CHECK_ERR(syscall(SYS_tgkill, getppid(), tid, 0), ESRCH);

    /* Invalid ids and signal numbers. */
    CHECK_ERR(syscall(SYS_tgkill, pid, 0, SIGUSR1), EINVAL);
    CHECK_ERR(syscall(SYS_tgkill, 0, tid, SIGUSR1), EINVAL);
    CHECK_ERR(syscall(SYS_tgkill, pid, -1, SIGUSR1), EINVAL);
    CHECK_ERR(syscall(SYS_tkill, 0, SIGUSR1), EINVAL);
    CHECK_ERR(syscall(SYS_tkill, -1, SIGUSR1), EINVAL);
    CHECK_ERR(kill(pid, 65), EINVAL);
    CHECK_ERR(kill(pid, -1), EINVAL);
    CHECK_ERR(syscall(SYS_tkill, tid, 65), EINVAL);
    CHECK_ERR(syscall(SYS_tgkill, pid, tid, 65), EINVAL);
    CHECK_EQ(hits, 0);

    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
}

static int pending(int sig)
{
    sigset_t set;
    sigemptyset(&set);
    if (sigpending(&set) != 0)
        return -1;
    return sigismember(&set, sig);
}

static void test_sigpending(void)
{
    sigset_t block, orig;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigaddset(&block, SIGRTMIN);
    CHECK_OK(sigprocmask(SIG_BLOCK, &block, &orig));
    set_simple(SIGUSR1, count_handler);
    set_simple(SIGRTMIN, count_handler);

    CHECK_EQ(pending(SIGUSR1), 0);
    hits2 = 0;
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_OK(kill(getpid(), SIGUSR1)); /* a standard signal is pending at most once */
    CHECK_EQ(hits2, 0);
    CHECK_EQ(pending(SIGUSR1), 1);
    CHECK_EQ(pending(SIGUSR2), 0);
    unsigned long long m = 0;
    CHECK_EQ(syscall(SYS_rt_sigpending, &m, 8), 0);
    CHECK_EQ(m, 1ULL << (SIGUSR1 - 1));
    CHECK_ERR(syscall(SYS_rt_sigpending, &m, 16), EINVAL); /* larger than the kernel's set */
    CHECK_ERR(syscall(SYS_rt_sigpending, BADP, 8), EFAULT);

    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR1);
    CHECK_OK(sigprocmask(SIG_UNBLOCK, &one, NULL));
    CHECK_EQ(hits2, 1);
    CHECK_EQ(pending(SIGUSR1), 0);

    /* Real-time signals queue: three sent, three delivered. */
    hits2 = 0;
    for (int i = 0; i < 3; i++)
        CHECK_OK(kill(getpid(), SIGRTMIN));
    CHECK_EQ(pending(SIGRTMIN), 1);
    CHECK_EQ(hits2, 0);
    sigemptyset(&one);
    sigaddset(&one, SIGRTMIN);
    CHECK_OK(sigprocmask(SIG_UNBLOCK, &one, NULL));
    CHECK_EQ(hits2, 3);
    CHECK_EQ(pending(SIGRTMIN), 0);

    /* A blocked signal stays pending even when ignored; setting SIG_IGN discards it. */
    signal(SIGUSR2, SIG_IGN);
    CHECK_OK(kill(getpid(), SIGUSR2));
    CHECK_EQ(pending(SIGUSR2), 1);
    signal(SIGUSR2, SIG_IGN);
    CHECK_EQ(pending(SIGUSR2), 0);

    CHECK_OK(sigprocmask(SIG_SETMASK, &orig, NULL));
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
    signal(SIGRTMIN, SIG_DFL);
}

/* -- sigaltstack -- */

static char *alt_base;
static size_t alt_size;
static volatile int on_alt, alt_flags_inside, alt_change_errno, alt_hits, alt_try_set = 1;

static void alt_handler(int sig)
{
    (void)sig;
    volatile char local = 0;
    uintptr_t here = (uintptr_t)&local;
    alt_hits++;
    on_alt = here >= (uintptr_t)alt_base && here < (uintptr_t)alt_base + alt_size;
    stack_t cur;
    memset(&cur, 0, sizeof cur);
    alt_flags_inside = sigaltstack(NULL, &cur) == 0 ? cur.ss_flags : -1;
    /* The stack in use cannot be changed. */
    stack_t ss = {.ss_sp = alt_base, .ss_size = alt_size, .ss_flags = 0};
    errno = 0;
    alt_change_errno = !alt_try_set ? -1 : sigaltstack(&ss, NULL) == 0 ? 0 : errno;
}

static void test_sigaltstack(void)
{
    stack_t ss, old;
    memset(&old, 0, sizeof old);
    CHECK_OK(sigaltstack(NULL, &old));
    CHECK_EQ(old.ss_flags, SS_DISABLE); /* none installed yet */

    alt_size = 2 * SIGSTKSZ;
    alt_base = malloc(alt_size);
    ss.ss_sp = alt_base;
    ss.ss_size = alt_size;
    ss.ss_flags = 0;
    CHECK_OK(sigaltstack(&ss, &old));
    CHECK_EQ(old.ss_flags, SS_DISABLE);
    memset(&old, 0, sizeof old);
    CHECK_OK(sigaltstack(NULL, &old));
    CHECK(old.ss_sp == alt_base);
    CHECK_EQ(old.ss_size, alt_size);
    CHECK_EQ(old.ss_flags, 0);

    /* SA_ONSTACK runs the handler there, and it sees SS_ONSTACK. */
    set_simple(SIGUSR1, alt_handler);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = alt_handler;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(SIGUSR2, &sa, NULL));
    alt_hits = 0;
    on_alt = -1;
    CHECK_OK(raise(SIGUSR2));
    CHECK_EQ(alt_hits, 1);
    CHECK_EQ(on_alt, 1);
    CHECK_EQ(alt_flags_inside, SS_ONSTACK);
    CHECK_EQ(alt_change_errno, EPERM);
    /* Without SA_ONSTACK the handler runs on the normal stack. */
    on_alt = -1;
    CHECK_OK(raise(SIGUSR1));
    CHECK_EQ(alt_hits, 2);
    CHECK_EQ(on_alt, 0);
    CHECK_EQ(alt_flags_inside, 0);
    CHECK_EQ(alt_change_errno, 0);
    memset(&old, 0, sizeof old);
    CHECK_OK(sigaltstack(NULL, &old));
    CHECK_EQ(old.ss_flags, 0);

    /* SS_AUTODISARM: the stack is disarmed while the handler runs and re-armed by
       rt_sigreturn from the saved context. (The handler leaves it alone: what a change
       made there while on the stack turns into on return differs between architectures.) */
    ss.ss_flags = SS_AUTODISARM;
    CHECK_OK(sigaltstack(&ss, NULL));
    CHECK_OK(sigaltstack(NULL, &old));
    CHECK_EQ((unsigned)old.ss_flags, SS_AUTODISARM);
    on_alt = -1;
    alt_try_set = 0;
    CHECK_OK(raise(SIGUSR2));
    alt_try_set = 1;
    CHECK_EQ(on_alt, 1);
    CHECK_EQ(alt_flags_inside, SS_DISABLE);
    memset(&old, 0, sizeof old);
    CHECK_OK(sigaltstack(NULL, &old));
    CHECK(old.ss_sp == alt_base);
    CHECK_EQ((unsigned)old.ss_flags, SS_AUTODISARM);

    /* Errors. */
    ss.ss_flags = 0;
    ss.ss_size = 1024; /* below MINSIGSTKSZ on every architecture */
    CHECK_ERR(sigaltstack(&ss, NULL), ENOMEM);
    ss.ss_size = alt_size;
    ss.ss_flags = 0x1234;
    CHECK_ERR(sigaltstack(&ss, NULL), EINVAL);
    CHECK_ERR(sigaltstack(BADP, NULL), EFAULT);
    CHECK_ERR(sigaltstack(NULL, BADP), EFAULT);

    /* SS_DISABLE turns it off (the size is then ignored). */
    ss.ss_flags = SS_DISABLE;
    ss.ss_size = 0;
    CHECK_OK(sigaltstack(&ss, NULL));
    memset(&old, 0, sizeof old);
    CHECK_OK(sigaltstack(NULL, &old));
    CHECK_EQ(old.ss_flags, SS_DISABLE);
    on_alt = -1;
    CHECK_OK(raise(SIGUSR2)); /* SA_ONSTACK with no alternate stack: the normal stack */
    CHECK_EQ(on_alt, 0);
    CHECK_EQ(alt_flags_inside, SS_DISABLE);
    CHECK_EQ(alt_change_errno, 0);
    /* The handler installed a stack, but rt_sigreturn restored the saved (disabled) one. */
    memset(&old, 0, sizeof old);
    CHECK_OK(sigaltstack(NULL, &old));
    CHECK_EQ(old.ss_flags, SS_DISABLE);
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);

    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
    free(alt_base);
}

/* -- rt_sigreturn: the mask and the registers come back -- */

static volatile int mask_inside_ok;

static void mask_handler(int sig, siginfo_t *si, void *ucv)
{
    (void)si;
    ucontext_t *uc = ucv;
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    /* Inside: the signal itself and sa_mask are blocked. */
    mask_inside_ok = sigismember(&cur, sig) == 1 && sigismember(&cur, SIGTERM) == 1;
    /* The mask restored on return comes from the ucontext, so editing it sticks. */
    sigaddset(&uc->uc_sigmask, SIGWINCH);
}

static volatile int clobber_hits;

/* Overwrite the caller-saved registers the register test fills (a handler may use them). */
static void clobber_handler(int sig)
{
    (void)sig;
    clobber_hits++;
#if defined(__aarch64__)
    __asm__ volatile("mov x9, #0\n\tmov x10, #0\n\tmov x11, #0\n\tmov x12, #0\n\t"
                     "mov x13, #0\n\tmov x14, #0\n\tmov x15, #0\n\t"
                     "movi v16.16b, #0\n\tmovi v17.16b, #0\n\t"
                     "movi v18.16b, #0\n\tmovi v19.16b, #0\n\tmsr nzcv, xzr\n\t" ::
                         : "x9", "x10", "x11", "x12", "x13", "x14", "x15", "v16", "v17",
                           "v18", "v19", "cc");
#elif defined(__x86_64__)
    __asm__ volatile("xor %%r8d, %%r8d\n\txor %%r9d, %%r9d\n\txor %%r10d, %%r10d\n\t"
                     "xor %%edx, %%edx\n\tpxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\t"
                     "pxor %%xmm8, %%xmm8\n\tpxor %%xmm15, %%xmm15\n\t" ::
                         : "r8", "r9", "r10", "rdx", "xmm0", "xmm1", "xmm8", "xmm15", "cc");
#endif
}

#define NREGS 16
static const unsigned long long reg_in[NREGS] = {
    0xa5a5000000001009ULL, 0xa5a500000000100aULL, 0xa5a500000000100bULL,
    0xa5a500000000100cULL, 0xa5a500000000100dULL, 0xa5a500000000100eULL,
    0xa5a500000000100fULL, 0,
    0x3ff8000000000000ULL, 0x1111222233334444ULL, 0x4004000000000000ULL,
    0x5555666677778888ULL, 0xc00c000000000000ULL, 0x99990000aaaabbbbULL,
    0x7ff0000000000000ULL, 0x0123456789abcdefULL,
};

/* Loads registers from reg_in, sends the signal with tkill straight from assembly, and
   stores the registers (and a flag) after the handler has run and returned. */
static long regs_across_signal(unsigned long long *out, long tid, long sig)
{
#if defined(__aarch64__)
    register long x0 __asm__("x0") = tid;
    register long x1 __asm__("x1") = sig;
    register long x8 __asm__("x8") = SYS_tkill;
    __asm__ volatile("ldp x9, x10, [%[in], #0]\n\t"
                     "ldp x11, x12, [%[in], #16]\n\t"
                     "ldp x13, x14, [%[in], #32]\n\t"
                     "ldr x15, [%[in], #48]\n\t"
                     "ldp q16, q17, [%[in], #64]\n\t"
                     "ldp q18, q19, [%[in], #96]\n\t"
                     "mov x2, #0xa0000000\n\t" /* N and C set */
                     "msr nzcv, x2\n\t"
                     "svc #0\n\t"
                     "mrs x2, nzcv\n\t"
                     "stp x9, x10, [%[out], #0]\n\t"
                     "stp x11, x12, [%[out], #16]\n\t"
                     "stp x13, x14, [%[out], #32]\n\t"
                     "stp x15, x2, [%[out], #48]\n\t"
                     "stp q16, q17, [%[out], #64]\n\t"
                     "stp q18, q19, [%[out], #96]\n\t"
                     : "+r"(x0)
                     : [in] "r"(reg_in), [out] "r"(out), "r"(x1), "r"(x8)
                     : "x2", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "v16", "v17",
                       "v18", "v19", "cc", "memory");
    return x0;
#elif defined(__x86_64__)
    long ret = SYS_tkill;
    __asm__ volatile("mov 0(%[in]), %%r8\n\t"
                     "mov 8(%[in]), %%r9\n\t"
                     "mov 16(%[in]), %%r10\n\t"
                     "mov 24(%[in]), %%rdx\n\t"
                     "movdqu 64(%[in]), %%xmm0\n\t"
                     "movdqu 80(%[in]), %%xmm1\n\t"
                     "movdqu 96(%[in]), %%xmm8\n\t"
                     "movdqu 112(%[in]), %%xmm15\n\t"
                     "stc\n\t"
                     "syscall\n\t"
                     "setc %%cl\n\t"
                     "movzbl %%cl, %%ecx\n\t"
                     "mov %%r8, 0(%[out])\n\t"
                     "mov %%r9, 8(%[out])\n\t"
                     "mov %%r10, 16(%[out])\n\t"
                     "mov %%rdx, 24(%[out])\n\t"
                     "mov %%rcx, 56(%[out])\n\t"
                     "movdqu %%xmm0, 64(%[out])\n\t"
                     "movdqu %%xmm1, 80(%[out])\n\t"
                     "movdqu %%xmm8, 96(%[out])\n\t"
                     "movdqu %%xmm15, 112(%[out])\n\t"
                     : "+a"(ret)
                     : [in] "r"(reg_in), [out] "r"(out), "D"(tid), "S"(sig)
                     : "rcx", "r11", "r8", "r9", "r10", "rdx", "xmm0", "xmm1", "xmm8",
                       "xmm15", "cc", "memory");
    return ret;
#else
    (void)out;
    return syscall(SYS_tkill, tid, sig);
#endif
}

static void test_sigreturn(void)
{
    sigset_t orig, cur;
    CHECK_OK(sigprocmask(SIG_SETMASK, NULL, &orig));

    /* The mask: blocked during the handler, restored after, from the ucontext. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = mask_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGTERM);
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    mask_inside_ok = -1;
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_EQ(mask_inside_ok, 1);
    CHECK_OK(sigprocmask(SIG_SETMASK, NULL, &cur));
    CHECK_EQ(sigismember(&cur, SIGUSR1), 0);
    CHECK_EQ(sigismember(&cur, SIGTERM), 0);
    CHECK_EQ(sigismember(&cur, SIGWINCH), 1);
    CHECK_OK(sigprocmask(SIG_SETMASK, &orig, NULL));

    /* Values live across a handler in callee-saved and FP registers. */
    set_simple(SIGUSR2, clobber_handler);
    volatile double vd = 1.25;
    volatile long vl = 0x123456789abcdefL;
    double d = vd * 3.5;
    long l = vl ^ 0x5555;
    clobber_hits = 0;
    CHECK_OK(raise(SIGUSR2));
    CHECK_EQ(clobber_hits, 1);
    CHECK(d == 4.375);
    CHECK_EQ(l, 0x123456789abcdefL ^ 0x5555);

    /* Every register, including caller-saved ones and the flags, as at the system call. */
    unsigned long long out[NREGS];
    memset(out, 0, sizeof out);
    CHECK_EQ(regs_across_signal(out, gettid(), SIGUSR2), 0);
    CHECK_EQ(clobber_hits, 2);
#if defined(__aarch64__)
    for (int i = 0; i < 7; i++)
        CHECK_EQ(out[i], reg_in[i]);
    CHECK_EQ(out[7], 0xa0000000ULL); /* NZCV */
    for (int i = 8; i < 16; i++)
        CHECK_EQ(out[i], reg_in[i]);
#elif defined(__x86_64__)
    for (int i = 0; i < 4; i++)
        CHECK_EQ(out[i], reg_in[i]);
    CHECK_EQ(out[7], 1); /* CF */
    for (int i = 8; i < 16; i++)
        CHECK_EQ(out[i], reg_in[i]);
#endif
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
}

/* ---- the old getrlimit/setrlimit system calls (glibc uses prlimit64) ---- */

static void test_rlimit(void)
{
    struct rlimit raw, lib, cur;
    CHECK_EQ(syscall(SYS_getrlimit, RLIMIT_NOFILE, &raw), 0);
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &lib));
    CHECK_EQ(raw.rlim_cur, lib.rlim_cur);
    CHECK_EQ(raw.rlim_max, lib.rlim_max);
    CHECK(raw.rlim_cur >= 64);
    CHECK_EQ(syscall(SYS_getrlimit, RLIMIT_STACK, &cur), 0);
    CHECK_OK(getrlimit(RLIMIT_STACK, &lib));
    CHECK_EQ(cur.rlim_cur, lib.rlim_cur);

    /* Lower the soft limit: both interfaces see it, and it is enforced. */
    cur = raw;
    cur.rlim_cur = 32;
    CHECK_EQ(syscall(SYS_setrlimit, RLIMIT_NOFILE, &cur), 0);
    memset(&lib, 0, sizeof lib);
    CHECK_EQ(syscall(SYS_getrlimit, RLIMIT_NOFILE, &lib), 0);
    CHECK_EQ(lib.rlim_cur, 32);
    CHECK_EQ(lib.rlim_max, raw.rlim_max);
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &lib));
    CHECK_EQ(lib.rlim_cur, 32);
    CHECK_ERR(dup2(0, 40), EBADF);
    /* Raising the soft limit back (up to the hard limit) is allowed for anyone. */
    CHECK_EQ(syscall(SYS_setrlimit, RLIMIT_NOFILE, &raw), 0);
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &lib));
    CHECK_EQ(lib.rlim_cur, raw.rlim_cur);

    /* Errors. */
    CHECK_ERR(syscall(SYS_getrlimit, 99, &cur), EINVAL);
    CHECK_ERR(syscall(SYS_setrlimit, 99, &raw), EINVAL);
    cur.rlim_cur = 100;
    cur.rlim_max = 50;
    CHECK_ERR(syscall(SYS_setrlimit, RLIMIT_NOFILE, &cur), EINVAL);
    CHECK_ERR(syscall(SYS_getrlimit, RLIMIT_NOFILE, BADP), EFAULT);
    CHECK_ERR(syscall(SYS_setrlimit, RLIMIT_NOFILE, BADP), EFAULT);
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &lib));
    CHECK_EQ(lib.rlim_cur, raw.rlim_cur);
}

/* ---- getcpu ---- */

static void test_getcpu(void)
{
    unsigned cpu = 12345, node = 12345;
    CHECK_EQ(syscall(SYS_getcpu, &cpu, &node, NULL), 0);
    CHECK(cpu < (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    cpu_set_t set;
    CPU_ZERO(&set);
    CHECK_OK(sched_getaffinity(0, sizeof set, &set));
    CHECK(cpu < CPU_SETSIZE && CPU_ISSET(cpu, &set)); /* only where we may run */
    /* Single-node (non-NUMA) machines, which is every machine this runs on. */
    CHECK_EQ(node, 0);
    /* Either pointer may be NULL; the third argument is unused. */
    CHECK_EQ(syscall(SYS_getcpu, NULL, NULL, NULL), 0);
    cpu = 12345;
    CHECK_EQ(syscall(SYS_getcpu, &cpu, NULL, NULL), 0);
    CHECK(cpu < (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    node = 12345;
    CHECK_EQ(syscall(SYS_getcpu, NULL, &node, NULL), 0);
    CHECK_EQ(node, 0);
    CHECK_ERR(syscall(SYS_getcpu, BADP, NULL, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_getcpu, NULL, BADP, NULL), EFAULT);
}

/* ---- posix_fadvise (which returns the error number instead of setting errno) ---- */

static void test_fadvise(void)
{
    CHECK_OK(scratch_write_file(sp("adv"), "some data to advise about"));
    int fd = open(sp("adv"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL), 0);
    CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL), 0);
    CHECK_EQ(posix_fadvise(fd, 0, 4096, POSIX_FADV_RANDOM), 0);
    CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED), 0);
    CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_NOREUSE), 0);
    CHECK_EQ(posix_fadvise(fd, 1 << 20, 100, POSIX_FADV_WILLNEED), 0); /* past EOF is fine */
    CHECK_EQ(posix_fadvise(fd, 0, 0, 99), EINVAL);
    CHECK_EQ(posix_fadvise(fd, 0, -1, POSIX_FADV_NORMAL), EINVAL);
    CHECK_EQ(posix_fadvise(-1, 0, 0, POSIX_FADV_NORMAL), EBADF);
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_EQ(posix_fadvise(p[0], 0, 0, POSIX_FADV_SEQUENTIAL), ESPIPE);
    close(p[0]);
    close(p[1]);
    close(fd);
    CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL), EBADF);
    unlink(sp("adv"));
}

/* ---- memory locking ---- */

static void test_mlock(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    struct rlimit ml;
    CHECK_OK(getrlimit(RLIMIT_MEMLOCK, &ml));
    /* Root (CAP_IPC_LOCK) is not limited; others may lock up to RLIMIT_MEMLOCK, which is
       far more than the few pages used here unless someone set it to (nearly) zero. */
    int can_lock = geteuid() == 0 || ml.rlim_cur == RLIM_INFINITY ||
                   ml.rlim_cur >= (rlim_t)(8 * pg);

    char *m = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    if (can_lock) {
        CHECK_EQ(mlock(m, pg), 0);
        CHECK_EQ(munlock(m, pg), 0);
        CHECK_EQ(mlock(m + 10, 100), 0); /* rounded out to the page */
        CHECK_EQ(munlock(m + 10, 100), 0);
        CHECK_EQ(mlock(m, 3 * pg), 0);
        CHECK_EQ(m[pg], 0); /* still ordinary memory */
        m[pg] = 1;
        CHECK_EQ(munlock(m, 3 * pg), 0);
        char *h = malloc(100);
        CHECK_EQ(mlock(h, 100), 0);
        CHECK_EQ(munlock(h, 100), 0);
        free(h);
    }
    /* With RLIMIT_MEMLOCK 0 an unprivileged mlock fails with EPERM before anything else. */
    int may_mlock = geteuid() == 0 || ml.rlim_cur != 0;
    if (may_mlock)
        CHECK_EQ(mlock(m, 0), 0);
    else
        CHECK_ERR(mlock(m, pg), EPERM);
    CHECK_EQ(munlock(m, 0), 0);
    /* A hole in the range. */
    CHECK_OK(munmap(m + pg, pg));
    if (may_mlock) {
        CHECK_ERR(mlock(m, 3 * pg), ENOMEM);
        CHECK_ERR(mlock(m + pg, pg), ENOMEM);
    }
    CHECK_ERR(munlock(m, 3 * pg), ENOMEM);
    munmap(m, 3 * pg);

    /* mlockall(MCL_CURRENT) needs the whole address space to fit under RLIMIT_MEMLOCK
       unless privileged, so an ordinary user may see ENOMEM (or EPERM with a zero limit). */
    errno = 0;
    int rc = mlockall(MCL_CURRENT);
    if (geteuid() == 0)
        CHECK_EQ(rc, 0);
    else
        CHECK(rc == 0 || errno == ENOMEM || errno == EPERM);
    CHECK_EQ(munlockall(), 0);
    CHECK_EQ(munlockall(), 0); /* nothing locked: still fine */
    CHECK_ERR(mlockall(0), EINVAL);
    CHECK_ERR(mlockall(MCL_ONFAULT), EINVAL); /* only together with another flag */
    CHECK_ERR(mlockall(0x100), EINVAL);
}

/* ---- process groups and sessions (last: setsid changes them) ---- */

static void test_pgrp_session(void)
{
    pid_t pid = getpid();
    pid_t pgrp = getpgrp();
    pid_t sid = getsid(0);

    CHECK(pgrp > 0);
    CHECK_EQ(getpgid(0), pgrp);
    CHECK_EQ(getpgid(pid), pgrp);
    /* getsid reports 0 when the session leader lives in an ancestor PID namespace, as it
     * does for a test started inside a container. */
    CHECK(sid >= 0);
    CHECK_EQ(getsid(pid), sid);
    CHECK_ERR(getpgid(NO_PID), ESRCH);
    CHECK_ERR(getsid(NO_PID), ESRCH);
    CHECK_ERR(getpgid(-1), ESRCH);
    CHECK_ERR(setpgid(NO_PID, 0), ESRCH);
    CHECK_ERR(setpgid(0, -1), EINVAL);
    if (getppid() > 0) /* neither ourselves nor our child */
        CHECK_ERR(setpgid(getppid(), getppid()), ESRCH);
    /* No such process group in our session. */
    CHECK_ERR(setpgid(0, NO_PID), EPERM);

    if (sid == pid) {
        /* A session leader cannot change its process group, nor start a session. */
        CHECK_ERR(setpgid(0, 0), EPERM);
        CHECK_ERR(setsid(), EPERM);
    } else if (pgrp == pid) {
        /* A group leader: setpgid(0, 0) keeps it where it is; setsid refuses. */
        CHECK_EQ(setpgid(0, 0), 0);
        CHECK_EQ(getpgrp(), pid);
        CHECK_ERR(setsid(), EPERM);
        CHECK_EQ(getsid(0), sid);
    } else {
        /* Moving into the group we are in changes nothing; then a new session. */
        CHECK_EQ(setpgid(0, pgrp), 0);
        CHECK_EQ(getpgrp(), pgrp);
        CHECK_EQ(setsid(), pid);
        CHECK_EQ(getsid(0), pid);
        CHECK_EQ(getpgrp(), pid);
        CHECK_EQ(getpgid(0), pid);
        CHECK_ERR(setsid(), EPERM);
        CHECK_ERR(setpgid(0, 0), EPERM);
    }
}

/* The socket address calls on descriptors that are not sockets: ENOTSOCK, checked before the
   address arguments are (bash's getpeername(0) decides whether it runs under sshd). */
static void test_socket_probes(void)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_ERR(getpeername(p[0], (struct sockaddr *)&sa, &len), ENOTSOCK);
    CHECK_ERR(getsockname(p[1], (struct sockaddr *)&sa, &len), ENOTSOCK);
    CHECK_ERR(syscall(SYS_getpeername, p[0], BADP, BADP), ENOTSOCK);
    int fd = open("/", O_RDONLY | O_DIRECTORY);
    CHECK_ERR(getsockname(fd, (struct sockaddr *)&sa, &len), ENOTSOCK);
    close(fd);
    close(p[0]);
    close(p[1]);
    CHECK_ERR(getpeername(p[0], (struct sockaddr *)&sa, &len), EBADF);
    CHECK_ERR(getsockname(-1, (struct sockaddr *)&sa, &len), EBADF);
}

int main(void)
{
    scratch_init();
    test_lxattr();
    test_privileged_errors();
    test_fstat();
    test_sched();
    test_creds();
    test_kill();
    test_sigpending();
    test_sigaltstack();
    test_sigreturn();
    test_rlimit();
    test_getcpu();
    test_fadvise();
    test_mlock();
    test_priority();
    test_pgrp_session();
    test_socket_probes();
    scratch_cleanup();
    check_done();
    /* The thread exit system call: the last thread leaving ends the process with its code. */
    syscall(SYS_exit, check_failures ? 1 : 0);
    return 2; /* not reached */
}
