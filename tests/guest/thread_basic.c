/*
 * thread_basic: threads and the clone family.
 * Man pages: clone(2) (clone3), pthread_create(3), pthread_join(3), pthread_exit(3),
 * pthread_kill(3), pthread_sigmask(3), pthread_barrier_wait(3p), gettid(2),
 * set_tid_address(2), futex(2), exit_group(2), sigsuspend(2), sigpending(2), signal(7),
 * nptl(7).
 *
 * Covers: 8 threads x 100000 increments reach the exact sum through a mutex, __atomic
 * builtins, and on aarch64 explicit LL/SC (ldaxr/stlxr), LSE ldadd and LSE casal loops;
 * 2000 short-lived threads; per-thread TLS (initialised and zero) and errno; a caller-
 * provided thread stack; barriers over 1000 rounds; pthread_kill reaching exactly the
 * target thread 1000 times (while it spins without syscalls and while it sleeps);
 * process-directed signals go to the one thread that does not block them, and stay
 * pending for the process when all block them, while thread-directed ones stay with their
 * thread; clone's EINVAL flag combinations and clone3's argument checks (EINVAL, E2BIG) plus
 * a plain clone3 fork; a raw CLONE_THREAD clone with CLONE_PARENT_SETTID/CHILD_SETTID/
 * CHILD_CLEARTID (tids written, set_tid_address's return value, the tid word cleared and a
 * futex waiter woken at exit); pthread_exit in main while a worker runs on (the worker can
 * join main; the process lives on; the status is the worker's exit()); the status when the
 * last thread leaves by a thread exit (its own code, since Linux 6.0); exit_group from a
 * worker ends siblings blocked in read(), in pthread_cond_wait and spinning.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

#define NTHREADS 8
#define NINC 100000

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int reap(pid_t pid)
{
    int st = -1;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    return st;
}

/* ---- counters ---- */

static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static long mutex_count;
static int atomic_count, llsc_count, ldadd_count, cas_count;

static void add_llsc(int *p)
{
#ifdef __aarch64__
    int tmp;
    unsigned fail;
    __asm__ volatile("1: ldaxr %w[t], %[m]\n"
                     "   add %w[t], %w[t], #1\n"
                     "   stlxr %w[f], %w[t], %[m]\n"
                     "   cbnz %w[f], 1b\n"
                     : [t] "=&r"(tmp), [f] "=&r"(fail), [m] "+Q"(*p)
                     :
                     : "memory");
#else
    __atomic_fetch_add(p, 1, __ATOMIC_SEQ_CST);
#endif
}

static void add_ldadd(int *p)
{
#ifdef __aarch64__
    int one = 1, old;
    __asm__ volatile(".arch_extension lse\n"
                     "ldaddal %w[one], %w[old], %[m]\n"
                     : [old] "=r"(old), [m] "+Q"(*p)
                     : [one] "r"(one)
                     : "memory");
#else
    __atomic_fetch_add(p, 1, __ATOMIC_SEQ_CST);
#endif
}

static void add_cas(int *p)
{
#ifdef __aarch64__
    int expected = __atomic_load_n(p, __ATOMIC_RELAXED);
    for (;;) {
        int seen = expected, desired = expected + 1;
        __asm__ volatile(".arch_extension lse\n"
                         "casal %w[seen], %w[desired], %[m]\n"
                         : [seen] "+r"(seen), [m] "+Q"(*p)
                         : [desired] "r"(desired)
                         : "memory");
        if (seen == expected)
            break;
        expected = seen;
    }
#else
    int expected = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(p, &expected, expected + 1, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {
    }
#endif
}

static pthread_barrier_t start_line;

static void *counter_thread(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start_line);
    for (int i = 0; i < NINC; i++) {
        pthread_mutex_lock(&count_lock);
        mutex_count++;
        pthread_mutex_unlock(&count_lock);
        __atomic_fetch_add(&atomic_count, 1, __ATOMIC_RELAXED);
        add_llsc(&llsc_count);
        add_ldadd(&ldadd_count);
        add_cas(&cas_count);
    }
    return NULL;
}

static void test_counters(void)
{
    pthread_t t[NTHREADS];
    pthread_barrier_init(&start_line, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, counter_thread, NULL), 0);
    for (int i = 0; i < NTHREADS; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    pthread_barrier_destroy(&start_line);
    CHECK_EQ(mutex_count, NTHREADS * NINC);
    CHECK_EQ(atomic_count, NTHREADS * NINC);
    CHECK_EQ(llsc_count, NTHREADS * NINC);
    CHECK_EQ(ldadd_count, NTHREADS * NINC);
    CHECK_EQ(cas_count, NTHREADS * NINC);
}

/* ---- many threads ---- */

static void *return_index(void *arg)
{
    return arg;
}

static void test_many_threads(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    long long sum = 0;
    int created = 0, joined = 0;
    for (int base = 0; base < 2000; base += 16) {
        pthread_t t[16];
        for (int i = 0; i < 16; i++)
            if (pthread_create(&t[i], &attr, return_index, (void *)(intptr_t)(base + i)) == 0)
                created++;
        for (int i = 0; i < 16; i++) {
            void *ret = NULL;
            if (pthread_join(t[i], &ret) == 0) {
                joined++;
                sum += (intptr_t)ret;
            }
        }
    }
    pthread_attr_destroy(&attr);
    CHECK_EQ(created, 2000);
    CHECK_EQ(joined, 2000);
    CHECK_EQ(sum, 1999000); /* 0 + 1 + ... + 1999 */
}

/* ---- TLS, errno, stacks, barriers ---- */

static __thread int tls_init = 7;
static __thread long tls_zero;
static pthread_barrier_t tls_barrier;
static uintptr_t tls_addr[NTHREADS];

static void *tls_thread(void *arg)
{
    int idx = (int)(intptr_t)arg, bad = 0;
    if (tls_init != 7 || tls_zero != 0)
        bad++;
    tls_init = 100 + idx;
    tls_zero = 200 + idx;
    errno = 300 + idx;
    tls_addr[idx] = (uintptr_t)&tls_init;
    pthread_barrier_wait(&tls_barrier);
    sched_yield();
    pthread_barrier_wait(&tls_barrier);
    if (tls_init != 100 + idx || tls_zero != 200 + idx || errno != 300 + idx)
        bad++;
    return (void *)(intptr_t)bad;
}

static void test_tls(void)
{
    pthread_t t[NTHREADS];
    pthread_barrier_init(&tls_barrier, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, tls_thread, (void *)(intptr_t)i), 0);
    for (int i = 0; i < NTHREADS; i++) {
        void *ret = (void *)1;
        CHECK_EQ(pthread_join(t[i], &ret), 0);
        CHECK_EQ((intptr_t)ret, 0);
    }
    pthread_barrier_destroy(&tls_barrier);
    for (int i = 0; i < NTHREADS; i++)
        for (int j = i + 1; j < NTHREADS; j++)
            CHECK(tls_addr[i] != tls_addr[j]);
    CHECK_EQ(tls_init, 7); /* the main thread's copy is untouched */
    CHECK_EQ(tls_zero, 0);
}

static void *where_am_i(void *arg)
{
    volatile int local = 0;
    *(uintptr_t *)arg = (uintptr_t)&local;
    return NULL;
}

static void test_own_stack(void)
{
    size_t size = 256 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(stack != MAP_FAILED);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    CHECK_EQ(pthread_attr_setstack(&attr, stack, size), 0);
    pthread_t t;
    uintptr_t local = 0;
    CHECK_EQ(pthread_create(&t, &attr, where_am_i, &local), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(local > (uintptr_t)stack && local < (uintptr_t)stack + size);
    pthread_attr_destroy(&attr);
    munmap(stack, size);
}

#define ROUNDS 1000
static pthread_barrier_t round_barrier;
static int round_count;

static void *round_thread(void *arg)
{
    (void)arg;
    long bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        __atomic_fetch_add(&round_count, 1, __ATOMIC_SEQ_CST);
        pthread_barrier_wait(&round_barrier);
        if (__atomic_load_n(&round_count, __ATOMIC_SEQ_CST) != 4 * (r + 1))
            bad++;
        pthread_barrier_wait(&round_barrier);
    }
    return (void *)bad;
}

static void test_barrier(void)
{
    pthread_t t[4];
    pthread_barrier_init(&round_barrier, NULL, 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, round_thread, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *ret = (void *)1;
        CHECK_EQ(pthread_join(t[i], &ret), 0);
        CHECK_EQ((intptr_t)ret, 0);
    }
    pthread_barrier_destroy(&round_barrier);
    CHECK_EQ(round_count, 4 * ROUNDS);
}

/* ---- signals to threads ---- */

static sem_t handled;
static volatile pid_t handled_tid;
static volatile int handled_count;

static void record_tid(int sig)
{
    (void)sig;
    handled_tid = gettid();
    handled_count++;
    sem_post(&handled);
}

static void wait_handled(void)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    int rc;
    while ((rc = sem_timedwait(&handled, &dl)) == -1 && errno == EINTR) {
    }
    CHECK_EQ(rc, 0);
}

static volatile int target_phase, target_stop;
static volatile pid_t target_tid;

static void *target_thread(void *arg)
{
    (void)arg;
    target_tid = gettid();
    while (target_phase == 0) {
        /* spinning, no syscalls */
    }
    sigset_t usr1, none;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigemptyset(&none);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    while (!target_stop)
        sigsuspend(&none);
    return NULL;
}

static void test_pthread_kill(void)
{
    sem_init(&handled, 0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = record_tid;
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    pthread_t t;
    target_phase = 0;
    target_stop = 0;
    target_tid = 0;
    CHECK_EQ(pthread_create(&t, NULL, target_thread, NULL), 0);
    while (target_tid == 0)
        sched_yield();
    CHECK(target_tid != gettid());
    int wrong = 0;
    handled_count = 0;
    for (int i = 0; i < 1000; i++) {
        if (i == 500)
            target_phase = 1; /* from now on it sleeps in sigsuspend */
        CHECK_EQ(pthread_kill(t, SIGUSR1), 0);
        wait_handled();
        if (handled_tid != target_tid)
            wrong++;
    }
    CHECK_EQ(wrong, 0);
    CHECK_EQ(handled_count, 1000);
    target_stop = 1;
    CHECK_EQ(pthread_kill(t, SIGUSR1), 0); /* handled, or dropped if it leaves first */
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(pthread_kill(pthread_self(), 0), 0);
    signal(SIGUSR1, SIG_DFL);
    sem_destroy(&handled);
}

/* Thread A blocks SIGUSR2 and SIGRTMIN+4; thread B waits for SIGUSR2 in sigsuspend. */
static sem_t a_step, a_done;
static volatile int a_cmd, b_stop;
static volatile pid_t a_tid, b_tid;
static volatile int a_pending_usr2, a_pending_rt;

static void *thread_a(void *arg)
{
    (void)arg;
    a_tid = gettid();
    sigset_t set;
    for (;;) {
        while (sem_wait(&a_step) == -1 && errno == EINTR) {
        }
        if (a_cmd == 1) {
            sigpending(&set);
            a_pending_usr2 = sigismember(&set, SIGUSR2);
            a_pending_rt = sigismember(&set, SIGRTMIN + 4);
        } else if (a_cmd == 2) {
            sigemptyset(&set);
            pthread_sigmask(SIG_SETMASK, &set, NULL); /* both arrive here, now */
            sigaddset(&set, SIGUSR2);
            sigaddset(&set, SIGRTMIN + 4);
            pthread_sigmask(SIG_SETMASK, &set, NULL);
        } else {
            sem_post(&a_done);
            return NULL;
        }
        sem_post(&a_done);
    }
}

static void *thread_b(void *arg)
{
    (void)arg;
    b_tid = gettid();
    sigset_t none;
    sigemptyset(&none);
    while (!b_stop)
        sigsuspend(&none);
    return NULL;
}

static void a_do(int cmd)
{
    a_cmd = cmd;
    sem_post(&a_step);
    while (sem_wait(&a_done) == -1 && errno == EINTR) {
    }
}

static void test_thread_masks(void)
{
    sem_init(&handled, 0, 0);
    sem_init(&a_step, 0, 0);
    sem_init(&a_done, 0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = record_tid;
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(SIGUSR2, &sa, NULL));
    CHECK_OK(sigaction(SIGRTMIN + 4, &sa, NULL));
    sigset_t both, old;
    sigemptyset(&both);
    sigaddset(&both, SIGUSR2);
    sigaddset(&both, SIGRTMIN + 4);
    CHECK_OK(pthread_sigmask(SIG_BLOCK, &both, &old)); /* inherited by A and B */

    pthread_t a, b;
    a_tid = b_tid = 0;
    b_stop = 0;
    CHECK_EQ(pthread_create(&a, NULL, thread_a, NULL), 0);
    CHECK_EQ(pthread_create(&b, NULL, thread_b, NULL), 0);
    while (a_tid == 0 || b_tid == 0)
        sched_yield();

    /* Only B (in sigsuspend with an empty mask) can take a process-directed SIGUSR2. */
    int wrong = 0;
    for (int i = 0; i < 100; i++) {
        CHECK_OK(kill(getpid(), SIGUSR2));
        wait_handled();
        if (handled_tid != b_tid)
            wrong++;
    }
    CHECK_EQ(wrong, 0);
    b_stop = 1;
    CHECK_EQ(pthread_kill(b, SIGUSR2), 0); /* handled, or dropped with B if it leaves first */
    CHECK_EQ(pthread_join(b, NULL), 0);
    while (sem_trywait(&handled) == 0) {
    }

    /* Nobody takes it now: it is pending for the whole process. */
    CHECK_OK(kill(getpid(), SIGUSR2));
    CHECK_EQ(pthread_kill(a, SIGRTMIN + 4), 0); /* pending for A only */
    sigset_t pend;
    CHECK_OK(sigpending(&pend));
    CHECK_EQ(sigismember(&pend, SIGUSR2), 1);
    CHECK_EQ(sigismember(&pend, SIGRTMIN + 4), 0);
    a_do(1);
    CHECK_EQ(a_pending_usr2, 1);
    CHECK_EQ(a_pending_rt, 1);
    handled_tid = 0;
    a_do(2); /* A unblocks: both handlers run in A */
    wait_handled();
    wait_handled();
    CHECK_EQ(handled_tid, a_tid);
    CHECK_OK(sigpending(&pend));
    CHECK_EQ(sigismember(&pend, SIGUSR2), 0);
    a_do(3);
    CHECK_EQ(pthread_join(a, NULL), 0);

    CHECK_OK(pthread_sigmask(SIG_SETMASK, &old, NULL));
    signal(SIGUSR2, SIG_DFL);
    signal(SIGRTMIN + 4, SIG_DFL);
    sem_destroy(&handled);
    sem_destroy(&a_step);
    sem_destroy(&a_done);
}

/* ---- clone flags ---- */

/* A clone that must fail; if it wrongly succeeds the child leaves at once. */
static long bad_clone(unsigned long flags)
{
    long r = syscall(SYS_clone, flags, 0, 0, 0, 0);
    if (r == 0)
        syscall(SYS_exit, 0);
    if (r > 0)
        waitpid(r, NULL, __WALL);
    return r;
}

struct clone_args_v2 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
    uint64_t set_tid, set_tid_size, cgroup;
};

static long bad_clone3(const void *args, size_t size)
{
    long r = syscall(SYS_clone3, args, size);
    if (r == 0)
        syscall(SYS_exit, 0);
    if (r > 0)
        waitpid(r, NULL, __WALL);
    return r;
}

static void test_clone_flags(void)
{
    CHECK_ERR(bad_clone(CLONE_THREAD | CLONE_VM), EINVAL);   /* THREAD needs SIGHAND */
    CHECK_ERR(bad_clone(CLONE_SIGHAND), EINVAL);             /* SIGHAND needs VM */
    CHECK_ERR(bad_clone(CLONE_NEWNS | CLONE_FS | SIGCHLD), EINVAL);
    CHECK_ERR(bad_clone(CLONE_NEWUSER | CLONE_FS | SIGCHLD), EINVAL);
    CHECK_ERR(bad_clone(CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_NEWPID), EINVAL);
    CHECK_ERR(bad_clone(CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_NEWUSER), EINVAL);
    /* CLONE_PIDFD and CLONE_PARENT_SETTID share the parent_tid argument. */
    CHECK_ERR(bad_clone(CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD), EINVAL);
    CHECK_ERR(bad_clone(CLONE_PIDFD | CLONE_DETACHED | SIGCHLD), EINVAL);

    struct clone_args_v2 ca;
    memset(&ca, 0, sizeof ca);
    ca.exit_signal = SIGCHLD;
    ca.flags = 1ULL << 40; /* unknown */
    CHECK_ERR(bad_clone3(&ca, sizeof ca), EINVAL);
    ca.flags = 0;
    CHECK_ERR(bad_clone3(&ca, 32), EINVAL);  /* smaller than version 0 (64 bytes) */
    CHECK_ERR(bad_clone3(&ca, 0), EINVAL);
    static char big[8192] __attribute__((aligned(8)));
    memcpy(big, &ca, sizeof ca);
    CHECK_ERR(bad_clone3(big, 4097), E2BIG); /* more than a page */
    big[sizeof ca + 3] = 1;                  /* nonzero bytes past the known struct */
    CHECK_ERR(bad_clone3(big, sizeof ca + 8), E2BIG);
    ca.exit_signal = 65; /* above _NSIG */
    CHECK_ERR(bad_clone3(&ca, sizeof ca), EINVAL);
    ca.exit_signal = SIGCHLD;
    ca.flags = SIGCHLD; /* the CSIGNAL bits of flags must be 0 in clone3 */
    CHECK_ERR(bad_clone3(&ca, sizeof ca), EINVAL);
    ca.flags = CLONE_CLEAR_SIGHAND | CLONE_SIGHAND | CLONE_VM;
    CHECK_ERR(bad_clone3(&ca, sizeof ca), EINVAL);
    ca.flags = 0;
    ca.stack = (uintptr_t)big; /* a stack needs a size */
    CHECK_ERR(bad_clone3(&ca, sizeof ca), EINVAL);
    ca.stack = 0;
    ca.set_tid_size = 1; /* with no set_tid array */
    CHECK_ERR(bad_clone3(&ca, sizeof ca), EINVAL);
    ca.set_tid_size = 0;
    CHECK_ERR(bad_clone3((void *)1, sizeof ca), EFAULT);

    /* A valid clone3 is a fork. */
    long r = syscall(SYS_clone3, &ca, sizeof ca);
    if (r == 0)
        _exit(7);
    CHECK(r > 0);
    if (r > 0)
        CHECK_EQ(reap(r), 7 << 8);
    /* So is version 0 of the struct (64 bytes). */
    r = syscall(SYS_clone3, &ca, 64);
    if (r == 0)
        _exit(8);
    CHECK(r > 0);
    if (r > 0)
        CHECK_EQ(reap(r), 8 << 8);
}

/* ---- a raw CLONE_THREAD clone ---- */

static pid_t raw_ptid, raw_ctid;
static volatile pid_t raw_seen_tid, raw_seen_ctid;
static volatile long raw_sta;

static int raw_thread_fn(void *arg)
{
    (void)arg;
    /* No TLS of its own (no CLONE_SETTLS): only raw system calls here. */
    raw_seen_tid = syscall(SYS_gettid);
    raw_seen_ctid = __atomic_load_n(&raw_ctid, __ATOMIC_SEQ_CST);
    raw_sta = syscall(SYS_set_tid_address, &raw_ctid);
    static const struct timespec delay = {0, 100000000};
    syscall(SYS_nanosleep, &delay, NULL); /* the parent is asleep on the futex by now */
    return 0;                             /* glibc's clone() then calls exit (the thread) */
}

static void test_raw_clone_thread(void)
{
    size_t size = 256 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(stack != MAP_FAILED);
    raw_ptid = 0;
    raw_ctid = -1;
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
    int tid = clone(raw_thread_fn, stack + size, flags, NULL, &raw_ptid, NULL, &raw_ctid);
    CHECK(tid > 0);
    CHECK(tid != getpid());
    CHECK_EQ(raw_ptid, tid); /* CLONE_PARENT_SETTID: written before clone returns */
    /* Wait as pthread_join does: sleep on the tid word until the kernel clears it. The
     * kernel's wake is a shared (not FUTEX_PRIVATE_FLAG) one, so wait without the flag. */
    int loops = 0;
    pid_t v;
    while ((v = __atomic_load_n(&raw_ctid, __ATOMIC_SEQ_CST)) != 0 && loops < 1000) {
        struct timespec to = {10, 0};
        syscall(SYS_futex, &raw_ctid, FUTEX_WAIT, v, &to, NULL, 0);
        loops++;
    }
    CHECK_EQ(raw_ctid, 0);
    CHECK(loops < 1000);
    CHECK_EQ(raw_seen_tid, tid);
    CHECK_EQ(raw_seen_ctid, tid); /* CLONE_CHILD_SETTID: written before the child runs */
    CHECK_EQ(raw_sta, tid);       /* set_tid_address returns the caller's tid */
    /* A thread's exit is no process exit: nothing to wait for. */
    CHECK_ERR(waitpid(-1, NULL, WNOHANG), ECHILD);
    munmap(stack, size);
}

static void *report_tid(void *arg)
{
    *(pid_t *)arg = gettid();
    return NULL;
}

static void test_tids(void)
{
    pid_t tids[4] = {0};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, report_tid, &tids[i]), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 4; i++) {
        CHECK(tids[i] > 0);
        CHECK(tids[i] != getpid());
        for (int j = i + 1; j < 4; j++)
            CHECK(tids[i] != tids[j]);
    }
    CHECK_EQ(gettid(), getpid());
}

/* ---- the main thread leaving, exit_group ---- */

static pthread_t main_thread;
static int after_main_pipe[2], go_pipe[2];

static void *outlive_main(void *arg)
{
    (void)arg;
    pid_t pid = getpid();
    int ok = pthread_join(main_thread, NULL) == 0; /* returns once main has exited */
    ok = ok && getpid() == pid;
    char c = ok ? 'j' : 'x';
    if (write(after_main_pipe[1], &c, 1) != 1)
        exit(2);
    if (read(go_pipe[0], &c, 1) != 1)
        exit(3);
    exit(23);
}

static void *thread_exit_last(void *arg)
{
    (void)arg;
    pthread_join(main_thread, NULL);
    syscall(SYS_exit, 5); /* only this thread; it is the last one */
    return NULL;
}

static void test_main_thread_exit(void)
{
    CHECK_OK(pipe(after_main_pipe));
    CHECK_OK(pipe(go_pipe));
    pid_t pid = fork();
    if (pid == 0) {
        main_thread = pthread_self();
        pthread_t w;
        if (pthread_create(&w, NULL, outlive_main, NULL) != 0)
            _exit(1);
        pthread_exit(NULL);
    }
    char c = 0;
    CHECK_EQ(read(after_main_pipe[0], &c, 1), 1);
    CHECK_EQ(c, 'j');
    /* The main thread is gone but the process is not. */
    int st = -1;
    CHECK_EQ(waitpid(pid, &st, WNOHANG), 0);
    CHECK_OK(kill(pid, 0));
    CHECK_EQ(write(go_pipe[1], "g", 1), 1);
    CHECK_EQ(reap(pid), 23 << 8);

    /* The last thread leaving by a plain thread exit (not exit_group) while the leader is
     * already gone: since Linux 6.0 (synchronize_group_exit) the process status is that
     * last thread's code; older kernels reported the leader's (here 0). */
    pid = fork();
    if (pid == 0) {
        main_thread = pthread_self();
        pthread_t w;
        if (pthread_create(&w, NULL, thread_exit_last, NULL) != 0)
            _exit(1);
        pthread_exit(NULL);
    }
    CHECK_EQ(reap(pid), 5 << 8);
    close(after_main_pipe[0]);
    close(after_main_pipe[1]);
    close(go_pipe[0]);
    close(go_pipe[1]);
}

static int block_pipe[2];
static pthread_mutex_t never_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never_cond = PTHREAD_COND_INITIALIZER;
static sem_t started;
static volatile int spin_forever = 1;

static void *blocked_reader(void *arg)
{
    (void)arg;
    char c;
    sem_post(&started);
    if (read(block_pipe[0], &c, 1) >= 0)
        _exit(90);
    _exit(91);
}

static void *blocked_cond(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&never_lock);
    sem_post(&started);
    for (;;)
        pthread_cond_wait(&never_cond, &never_lock);
    return NULL;
}

static void *spinning(void *arg)
{
    (void)arg;
    sem_post(&started);
    while (spin_forever) {
    }
    _exit(92);
}

static void *group_exiter(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        while (sem_wait(&started) == -1 && errno == EINTR) {
        }
    sleep_ms(50); /* let the others reach their blocking calls */
    syscall(SYS_exit_group, 42);
    return NULL;
}

static void test_exit_group(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (pipe(block_pipe) != 0)
            _exit(1);
        sem_init(&started, 0, 0);
        pthread_t t[4];
        pthread_create(&t[0], NULL, blocked_reader, NULL);
        pthread_create(&t[1], NULL, blocked_cond, NULL);
        pthread_create(&t[2], NULL, spinning, NULL);
        pthread_create(&t[3], NULL, group_exiter, NULL);
        pthread_join(t[0], NULL); /* the main thread blocks too */
        _exit(93);
    }
    CHECK_EQ(reap(pid), 42 << 8);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    test_counters();
    test_many_threads();
    test_tls();
    test_own_stack();
    test_barrier();
    test_tids();
    test_pthread_kill();
    test_thread_masks();
    test_clone_flags();
    test_raw_clone_thread();
    test_main_thread_exit();
    test_exit_group();
    return check_done();
}
