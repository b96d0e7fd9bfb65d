/*
 * futex_basic: the futex system calls.
 * Man pages: futex(2), futex_waitv (Documentation/userspace-api/futex2.rst), get_robust_list(2),
 * pthread_mutexattr_setprotocol(3p), pthread_mutexattr_setrobust(3), pthread_mutex_consistent(3),
 * signal(7) (which calls SA_RESTART restarts).
 *
 * Covers: FUTEX_WAIT's EAGAIN, relative timeouts (ETIMEDOUT no earlier than asked), EINVAL
 * for an unaligned word or a bad timespec, EFAULT, ENOSYS for unknown operations; FUTEX_WAKE
 * waking exactly N of 4 waiters (and Linux waking one for N = 0); WAIT_BITSET/WAKE_BITSET
 * masks (and EINVAL for an empty mask); absolute CLOCK_MONOTONIC and CLOCK_REALTIME
 * (FUTEX_CLOCK_REALTIME) deadlines, and ENOSYS for FUTEX_CLOCK_REALTIME with plain
 * FUTEX_WAIT; FUTEX_REQUEUE and FUTEX_CMP_REQUEUE (counts, EAGAIN, EINVAL); FUTEX_WAKE_OP
 * (add, set, shifted or, andn, xor, the comparison deciding the second wake, ENOSYS for bad
 * encodings, applied before a bad comparison is noticed); PI futexes on raw words
 * (LOCK_PI/TRYLOCK_PI/UNLOCK_PI: owner tid, EDEADLK, EPERM, EAGAIN when another thread
 * owns it and the FUTEX_WAITERS bit that leaves, a timed LOCK_PI, a handover to a blocked
 * locker, ESRCH for a dead owner) and a PTHREAD_PRIO_INHERIT mutex under contention;
 * robust mutexes (EOWNERDEAD and the FUTEX_OWNER_DIED word after the owner thread exits,
 * pthread_mutex_consistent, ENOTRECOVERABLE, a process-shared one whose owner process
 * dies) and a hand-built robust list (the waiter of a held word is woken, and so is the
 * waiter of a pending word without an owner; get_robust_list of another thread);
 * futex_waitv (the index of the woken futex, the last one when one call wakes two, EAGAIN,
 * ETIMEDOUT, EINVAL, EFAULT); a futex shared between processes; a signal handler
 * interrupting FUTEX_WAIT (EINTR; restarted with SA_RESTART unless there is a timeout); a
 * timed wait stopped and continued carries on (restart_syscall(2), which fails with EINTR
 * when called with nothing to resume).
 *
 * Waking "exactly N" needs the waiters to be asleep in the kernel first; gather() makes sure
 * of that without timing guesses by requeueing them (FUTEX_CMP_REQUEUE, which counts them)
 * to a staging word and back.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX_32
#define FUTEX_32 2
#endif
#define FUTEX2_PRIVATE_FLAG 128

#define MS 1000000LL
#define NSEC 1000000000LL

static volatile uintptr_t bad_word = 8;

static long futex(int *uaddr, int op, int val, const struct timespec *to, int *uaddr2, int val3)
{
    return syscall(SYS_futex, uaddr, op, val, to, uaddr2, val3);
}

/* The operations whose 4th argument is a number (val2), not a timeout. */
static long futex2(int *uaddr, int op, int val, long val2, int *uaddr2, int val3)
{
    return syscall(SYS_futex, uaddr, op, val, (void *)val2, uaddr2, val3);
}

static long long now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return ts.tv_sec * NSEC + ts.tv_nsec;
}

static struct timespec ns_ts(long long ns)
{
    struct timespec ts = {ns / NSEC, ns % NSEC};
    return ts;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- waiter threads ---- */

struct waiter {
    int *addr;
    int op, val;
    unsigned bitset;
    struct timespec timeout; /* used when has_timeout */
    int has_timeout;
    long ret;
    int err;
    volatile int done;
    pthread_t thread;
};

static void *waiter_fn(void *arg)
{
    struct waiter *w = arg;
    long r = futex(w->addr, w->op, w->val, w->has_timeout ? &w->timeout : NULL, NULL, w->bitset);
    w->err = r == -1 ? errno : 0;
    w->ret = r;
    __atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void start_waiter(struct waiter *w, int *addr, int op, int val, unsigned bitset)
{
    memset(w, 0, sizeof *w);
    w->addr = addr;
    w->op = op;
    w->val = val;
    w->bitset = bitset;
    CHECK_EQ(pthread_create(&w->thread, NULL, waiter_fn, w), 0);
}

static int count_done(struct waiter *w, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += __atomic_load_n(&w[i].done, __ATOMIC_SEQ_CST);
    return c;
}

/* Waits (up to 10 s) until at least n of the waiters have returned. */
static int wait_done(struct waiter *w, int total, int n)
{
    for (int i = 0; i < 10000 && count_done(w, total) < n; i++)
        sleep_ms(1);
    return count_done(w, total);
}

static int staging;

/* Waits (up to 10 s) until n threads sleep on *addr (op's private flag must match the
 * waiters'), moving them to *stage and back; returns 1 if they do. They stay queued on
 * addr. */
static int gather_via(int *addr, int n, int private_flag, int *stage)
{
    int moved = 0;
    for (int i = 0; i < 10000 && moved < n; i++) {
        long r = futex2(addr, FUTEX_CMP_REQUEUE | private_flag, 0, INT_MAX, stage,
                        __atomic_load_n(addr, __ATOMIC_SEQ_CST));
        if (r > 0)
            moved += r;
        else if (moved < n)
            sleep_ms(1);
    }
    long back = futex2(stage, FUTEX_REQUEUE | private_flag, 0, INT_MAX, addr, 0);
    return moved == n && back == n;
}

static int gather(int *addr, int n, int private_flag)
{
    return gather_via(addr, n, private_flag, &staging);
}

/* ---- tests ---- */

static void test_wait_errors(void)
{
    int w = 1;
    CHECK_ERR(futex(&w, FUTEX_WAIT, 0, NULL, NULL, 0), EAGAIN);
    CHECK_ERR(futex(&w, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0), EAGAIN);
    CHECK_ERR(futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, FUTEX_BITSET_MATCH_ANY), EAGAIN);

    long long t0 = now_ns(CLOCK_MONOTONIC);
    struct timespec to = {0, 100 * MS};
    CHECK_ERR(futex(&w, FUTEX_WAIT_PRIVATE, 1, &to, NULL, 0), ETIMEDOUT);
    long long el = now_ns(CLOCK_MONOTONIC) - t0;
    CHECK(el >= 100 * MS);
    CHECK(el < 10 * NSEC);
    t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_ERR(futex(&w, FUTEX_WAIT, 1, &to, NULL, 0), ETIMEDOUT); /* shared flavour */
    CHECK(now_ns(CLOCK_MONOTONIC) - t0 >= 100 * MS);
    struct timespec zero = {0, 0};
    CHECK_ERR(futex(&w, FUTEX_WAIT_PRIVATE, 1, &zero, NULL, 0), ETIMEDOUT);
    /* FUTEX_CLOCK_REALTIME only goes with WAIT_BITSET, WAIT_REQUEUE_PI and LOCK_PI2: plain
     * FUTEX_WAIT with it is ENOSYS (futex(2) says 4.5 allowed it; 6.x kernels refuse). */
    to.tv_nsec = 50 * MS;
    CHECK_ERR(futex(&w, FUTEX_WAIT_PRIVATE | FUTEX_CLOCK_REALTIME, 1, &to, NULL, 0), ENOSYS);

    struct timespec bad_ns = {0, NSEC}, neg = {-1, 0};
    CHECK_ERR(futex(&w, FUTEX_WAIT_PRIVATE, 1, &bad_ns, NULL, 0), EINVAL);
    CHECK_ERR(futex(&w, FUTEX_WAIT_PRIVATE, 1, &neg, NULL, 0), EINVAL);
    int pair[2] = {0, 0};
    int *unaligned = (int *)((char *)pair + 1);
    CHECK_ERR(futex(unaligned, FUTEX_WAIT_PRIVATE, 0, &zero, NULL, 0), EINVAL);
    CHECK_ERR(futex(unaligned, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), EINVAL);
    CHECK_ERR(futex(unaligned, FUTEX_WAKE, 1, NULL, NULL, 0), EINVAL);
    CHECK_ERR(futex((int *)bad_word, FUTEX_WAIT_PRIVATE, 0, &zero, NULL, 0), EFAULT);
    CHECK_ERR(futex((int *)bad_word, FUTEX_WAIT, 0, &zero, NULL, 0), EFAULT);
    CHECK_ERR(futex(&w, 99, 0, NULL, NULL, 0), ENOSYS);
    CHECK_ERR(futex(&w, FUTEX_WAKE | FUTEX_CLOCK_REALTIME, 1, NULL, NULL, 0), ENOSYS);
    CHECK_EQ(futex(&w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), 0); /* nobody waiting */
    CHECK_EQ(futex(&w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0), 0);
}

static void test_wake_n(void)
{
    static int w;
    struct waiter ws[4];
    w = 0;
    for (int i = 0; i < 4; i++)
        start_waiter(&ws[i], &w, FUTEX_WAIT_PRIVATE, 0, 0);
    CHECK(gather(&w, 4, FUTEX_PRIVATE_FLAG));
    CHECK_EQ(futex(&w, FUTEX_WAKE_PRIVATE, 2, NULL, NULL, 0), 2);
    CHECK_EQ(wait_done(ws, 4, 2), 2);
    sleep_ms(20);
    CHECK_EQ(count_done(ws, 4), 2); /* the other two still sleep */
    CHECK(gather(&w, 2, FUTEX_PRIVATE_FLAG));
    /* A wake count of 0 still wakes one waiter (the kernel checks the count after). */
    CHECK_EQ(futex(&w, FUTEX_WAKE_PRIVATE, 0, NULL, NULL, 0), 1);
    CHECK_EQ(wait_done(ws, 4, 3), 3);
    CHECK_EQ(futex(&w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 1);
    CHECK_EQ(wait_done(ws, 4, 4), 4);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(pthread_join(ws[i].thread, NULL), 0);
        CHECK_EQ(ws[i].ret, 0);
    }
}

static void test_bitset(void)
{
    static int w;
    struct waiter ws[3];
    w = 0;
    start_waiter(&ws[0], &w, FUTEX_WAIT_BITSET_PRIVATE, 0, 0x1);
    start_waiter(&ws[1], &w, FUTEX_WAIT_BITSET_PRIVATE, 0, 0x6);
    CHECK(gather(&w, 2, FUTEX_PRIVATE_FLAG));
    CHECK_EQ(futex(&w, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x8), 0);
    CHECK_EQ(futex(&w, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x2), 1);
    CHECK_EQ(wait_done(ws, 2, 1), 1);
    CHECK_EQ(ws[1].done, 1);
    CHECK_EQ(ws[0].done, 0);
    CHECK_EQ(futex(&w, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x1), 1);
    CHECK_EQ(wait_done(ws, 2, 2), 2);
    /* Plain FUTEX_WAKE matches any bitset; plain waiters match any wake bitset. */
    start_waiter(&ws[0], &w, FUTEX_WAIT_BITSET_PRIVATE, 0, 0x10);
    start_waiter(&ws[1], &w, FUTEX_WAIT_PRIVATE, 0, 0);
    CHECK(gather(&w, 2, FUTEX_PRIVATE_FLAG));
    CHECK_EQ(futex(&w, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x1), 1);
    CHECK_EQ(wait_done(ws, 2, 1), 1);
    CHECK_EQ(ws[1].done, 1);
    CHECK_EQ(futex(&w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 1);
    CHECK_EQ(wait_done(ws, 2, 2), 2);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(ws[i].thread, NULL), 0);
    CHECK_ERR(futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, 0), EINVAL);
    CHECK_ERR(futex(&w, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 0), EINVAL);
}

static void test_abs_deadlines(void)
{
    int w = 0;
    long long dl = now_ns(CLOCK_MONOTONIC) + 100 * MS;
    struct timespec ts = ns_ts(dl);
    CHECK_ERR(futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, &ts, NULL, FUTEX_BITSET_MATCH_ANY),
              ETIMEDOUT);
    long long end = now_ns(CLOCK_MONOTONIC);
    CHECK(end >= dl);
    CHECK(end - dl < 10 * NSEC);

    dl = now_ns(CLOCK_REALTIME) + 100 * MS;
    ts = ns_ts(dl);
    CHECK_ERR(futex(&w, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &ts, NULL,
                    FUTEX_BITSET_MATCH_ANY),
              ETIMEDOUT);
    end = now_ns(CLOCK_REALTIME);
    CHECK(end >= dl);
    CHECK(end - dl < 10 * NSEC);

    /* A deadline already past: at once. */
    ts = ns_ts(now_ns(CLOCK_MONOTONIC) - NSEC);
    long long t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_ERR(futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, &ts, NULL, FUTEX_BITSET_MATCH_ANY),
              ETIMEDOUT);
    CHECK(now_ns(CLOCK_MONOTONIC) - t0 < 5 * NSEC);
}

static void test_requeue(void)
{
    static int a, b;
    struct waiter ws[3];
    a = b = 0;
    for (int i = 0; i < 3; i++)
        start_waiter(&ws[i], &a, FUTEX_WAIT_PRIVATE, 0, 0);
    CHECK(gather(&a, 3, FUTEX_PRIVATE_FLAG));
    /* Wake 1, move 1 to b: the result counts both. */
    CHECK_EQ(futex2(&a, FUTEX_REQUEUE_PRIVATE, 1, 1, &b, 0), 2);
    CHECK_EQ(wait_done(ws, 3, 1), 1);
    CHECK_EQ(futex(&a, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 1);
    CHECK_EQ(wait_done(ws, 3, 2), 2);
    CHECK_EQ(futex(&b, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 1);
    CHECK_EQ(wait_done(ws, 3, 3), 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(pthread_join(ws[i].thread, NULL), 0);

    for (int i = 0; i < 2; i++)
        start_waiter(&ws[i], &a, FUTEX_WAIT_PRIVATE, 0, 0);
    CHECK(gather(&a, 2, FUTEX_PRIVATE_FLAG));
    CHECK_ERR(futex2(&a, FUTEX_CMP_REQUEUE_PRIVATE, 0, 1, &b, 1), EAGAIN); /* *a != 1 */
    CHECK_ERR(futex2(&a, FUTEX_CMP_REQUEUE_PRIVATE, 0, -1, &b, 0), EINVAL);
    CHECK_ERR(futex2(&a, FUTEX_CMP_REQUEUE_PRIVATE, -1, 1, &b, 0), EINVAL);
    CHECK_EQ(futex2(&a, FUTEX_CMP_REQUEUE_PRIVATE, 0, 1, &b, 0), 1); /* move one, wake none */
    sleep_ms(20);
    CHECK_EQ(count_done(ws, 2), 0);
    CHECK_EQ(futex(&b, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 1);
    CHECK_EQ(wait_done(ws, 2, 1), 1);
    CHECK_EQ(futex(&a, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 1);
    CHECK_EQ(wait_done(ws, 2, 2), 2);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(ws[i].thread, NULL), 0);
}

static void test_wake_op(void)
{
    static int f1, f2;
    struct waiter ws[2];
    f1 = f2 = 0;
    start_waiter(&ws[0], &f1, FUTEX_WAIT_PRIVATE, 0, 0);
    start_waiter(&ws[1], &f2, FUTEX_WAIT_PRIVATE, 0, 0);
    CHECK(gather(&f1, 1, FUTEX_PRIVATE_FLAG));
    CHECK(gather(&f2, 1, FUTEX_PRIVATE_FLAG));
    /* f2 += 1; old f2 == 0 is true, so f2's waiter is woken too. */
    CHECK_EQ(futex2(&f1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &f2,
                    FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0)),
             2);
    CHECK_EQ(f2, 1);
    CHECK_EQ(wait_done(ws, 2, 2), 2);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(ws[i].thread, NULL), 0);

    start_waiter(&ws[0], &f1, FUTEX_WAIT_PRIVATE, 0, 0);
    start_waiter(&ws[1], &f2, FUTEX_WAIT_PRIVATE, 1, 0);
    CHECK(gather(&f1, 1, FUTEX_PRIVATE_FLAG));
    CHECK(gather(&f2, 1, FUTEX_PRIVATE_FLAG));
    /* f2 = 5; old f2 (1) > 10 is false: only f1's waiter. */
    CHECK_EQ(futex2(&f1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &f2,
                    FUTEX_OP(FUTEX_OP_SET, 5, FUTEX_OP_CMP_GT, 10)),
             1);
    CHECK_EQ(f2, 5);
    CHECK_EQ(wait_done(ws, 2, 1), 1);
    CHECK_EQ(ws[0].done, 1);
    CHECK_EQ(futex(&f2, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), 1);
    CHECK_EQ(wait_done(ws, 2, 2), 2);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(ws[i].thread, NULL), 0);

    /* f2 |= 1 << 4 (FUTEX_OP_ARG_SHIFT), nobody waiting; then andn and xor. */
    CHECK_EQ(futex2(&f1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &f2,
                    FUTEX_OP((FUTEX_OP_OR | FUTEX_OP_OPARG_SHIFT), 4, FUTEX_OP_CMP_NE, 0)),
             0);
    CHECK_EQ(f2, 21);
    CHECK_EQ(futex2(&f1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &f2,
                    FUTEX_OP(FUTEX_OP_ANDN, 1, FUTEX_OP_CMP_LT, 0)),
             0);
    CHECK_EQ(f2, 20);
    CHECK_EQ(futex2(&f1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &f2,
                    FUTEX_OP(FUTEX_OP_XOR, 0xff, FUTEX_OP_CMP_GE, 0)),
             0);
    CHECK_EQ(f2, 20 ^ 0xff);
    CHECK_ERR(futex2(&f1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &f2, FUTEX_OP(6, 1, FUTEX_OP_CMP_EQ, 0)),
              ENOSYS);
    CHECK_ERR(futex2(&f1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &f2, FUTEX_OP(FUTEX_OP_SET, 1, 7, 0)),
              ENOSYS);
    CHECK_EQ(f2, 1); /* the bad comparison is found after the operation was done */
    CHECK_ERR(futex2(&f1, FUTEX_WAKE_OP_PRIVATE, 1, 1, (int *)bad_word,
                     FUTEX_OP(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 0)),
              EFAULT);
}

/* ---- PI ---- */

static int pi_word;
static volatile pid_t pi_owner_tid;
static volatile int pi_cmd, pi_ack;

static void wait_flag(volatile int *f, int v)
{
    for (int i = 0; i < 10000 && *f != v; i++)
        sleep_ms(1);
}

static void *pi_owner(void *arg)
{
    (void)arg;
    pi_owner_tid = gettid();
    long r = futex(&pi_word, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0);
    pi_ack = r == 0 ? 1 : -1;
    wait_flag(&pi_cmd, 1);
    r = futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0);
    pi_ack = r == 0 ? 2 : -2;
    /* Lock again, then release after a while: the main thread is blocked in LOCK_PI. */
    wait_flag(&pi_cmd, 2);
    r = futex(&pi_word, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0);
    pi_ack = r == 0 ? 3 : -3;
    wait_flag(&pi_cmd, 3);
    sleep_ms(100);
    r = futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0);
    pi_ack = r == 0 ? 4 : -4;
    return NULL;
}

static void *just_exit(void *arg)
{
    *(pid_t *)arg = gettid();
    return NULL;
}

static pthread_mutex_t pi_mutex;
static long pi_count;

static void *pi_adder(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000; i++) {
        pthread_mutex_lock(&pi_mutex);
        pi_count++;
        pthread_mutex_unlock(&pi_mutex);
    }
    return NULL;
}

static void test_pi(void)
{
    pid_t me = gettid();
    pi_word = 0;
    CHECK_EQ(futex(&pi_word, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(pi_word, me);
    CHECK_ERR(futex(&pi_word, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), EDEADLK);
    CHECK_ERR(futex(&pi_word, FUTEX_TRYLOCK_PI_PRIVATE, 0, NULL, NULL, 0), EDEADLK);
    CHECK_EQ(futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(pi_word, 0);
    CHECK_ERR(futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), EPERM);
    CHECK_EQ(futex(&pi_word, FUTEX_TRYLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(pi_word, me);
    CHECK_EQ(futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(pi_word, 0);

    /* Owned by another live thread. */
    pthread_t t;
    pi_cmd = pi_ack = 0;
    pi_owner_tid = 0;
    CHECK_EQ(pthread_create(&t, NULL, pi_owner, NULL), 0);
    wait_flag(&pi_ack, 1);
    CHECK_EQ(pi_ack, 1);
    CHECK_EQ(pi_word, pi_owner_tid);
    CHECK_ERR(futex(&pi_word, FUTEX_TRYLOCK_PI_PRIVATE, 0, NULL, NULL, 0), EAGAIN);
    /* The failed attempt made the kernel set FUTEX_WAITERS: the owner must unlock in it. */
    CHECK_EQ((unsigned)pi_word, (unsigned)pi_owner_tid | FUTEX_WAITERS);
    CHECK_ERR(futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), EPERM);
    /* LOCK_PI's timeout is an absolute CLOCK_REALTIME time. */
    long long dl = now_ns(CLOCK_REALTIME) + 100 * MS;
    struct timespec ts = ns_ts(dl);
    CHECK_ERR(futex(&pi_word, FUTEX_LOCK_PI_PRIVATE, 0, &ts, NULL, 0), ETIMEDOUT);
    CHECK(now_ns(CLOCK_REALTIME) >= dl);
    pi_cmd = 1;
    wait_flag(&pi_ack, 2);
    CHECK_EQ(pi_ack, 2);
    CHECK_EQ(pi_word, 0);
    /* Blocked in LOCK_PI until the owner unlocks: the kernel hands the lock over. */
    pi_cmd = 2;
    wait_flag(&pi_ack, 3);
    CHECK_EQ(pi_ack, 3);
    pi_cmd = 3;
    CHECK_EQ(futex(&pi_word, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(pi_word & FUTEX_TID_MASK, me);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(pi_ack, 4);
    CHECK_EQ(futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(pi_word, 0);

    /* The tid in the word names no live thread. */
    pid_t dead = 0;
    CHECK_EQ(pthread_create(&t, NULL, just_exit, &dead), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    pi_word = dead;
    ts = ns_ts(now_ns(CLOCK_REALTIME) + 5 * NSEC); /* (a bound, should the owner live) */
    CHECK_ERR(futex(&pi_word, FUTEX_LOCK_PI_PRIVATE, 0, &ts, NULL, 0), ESRCH);
    CHECK_ERR(futex(&pi_word, FUTEX_TRYLOCK_PI_PRIVATE, 0, NULL, NULL, 0), ESRCH);
    pi_word = 0;

    /* A priority-inheritance mutex under contention. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    CHECK_EQ(pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT), 0);
    CHECK_EQ(pthread_mutex_init(&pi_mutex, &ma), 0);
    pthread_mutexattr_destroy(&ma);
    pthread_t ts4[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_create(&ts4[i], NULL, pi_adder, NULL), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_join(ts4[i], NULL), 0);
    CHECK_EQ(pi_count, 40000);
    pthread_mutex_destroy(&pi_mutex);
}

/* ---- robust mutexes ---- */

static void *lock_and_leave(void *arg)
{
    pthread_mutex_lock(arg);
    return NULL; /* the thread ends holding the mutex */
}

static void init_robust(pthread_mutex_t *m, int pshared)
{
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    CHECK_EQ(pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST), 0);
    if (pshared)
        CHECK_EQ(pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED), 0);
    CHECK_EQ(pthread_mutex_init(m, &ma), 0);
    pthread_mutexattr_destroy(&ma);
}

/* pthread_mutex_lock with a 5 s limit, so that a missing robust-futex implementation
 * fails the test instead of hanging it. */
static int lock5s(pthread_mutex_t *m)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    return pthread_mutex_timedlock(m, &dl);
}

static void test_robust(void)
{
    static pthread_mutex_t m1, m2;
    init_robust(&m1, 0);
    init_robust(&m2, 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, lock_and_leave, &m1), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    /* The kernel walked the dead thread's robust list: the owner tid is replaced by
     * FUTEX_OWNER_DIED in the lock word (glibc's first int). */
    CHECK_EQ((unsigned)*(int *)&m1, FUTEX_OWNER_DIED);
    CHECK_EQ(lock5s(&m1), EOWNERDEAD);
    CHECK_EQ(pthread_mutex_consistent(&m1), 0);
    CHECK_EQ(pthread_mutex_unlock(&m1), 0);
    CHECK_EQ(lock5s(&m1), 0);
    CHECK_EQ(pthread_mutex_unlock(&m1), 0);

    CHECK_EQ(pthread_create(&t, NULL, lock_and_leave, &m2), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(pthread_mutex_trylock(&m2), EOWNERDEAD);
    CHECK_EQ(pthread_mutex_unlock(&m2), 0); /* not made consistent: unusable from now on */
    CHECK_EQ(lock5s(&m2), ENOTRECOVERABLE);

    /* Process-shared: the owner process dies holding it. */
    pthread_mutex_t *pm =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(pm != MAP_FAILED);
    if (pm == MAP_FAILED)
        return;
    init_robust(pm, 1);
    pid_t pid = fork();
    if (pid == 0) {
        if (pthread_mutex_lock(pm) != 0)
            _exit(1);
        _exit(0);
    }
    int st = -1;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EQ(st, 0);
    CHECK_EQ((unsigned)*(int *)pm, FUTEX_OWNER_DIED);
    CHECK_EQ(lock5s(pm), EOWNERDEAD);
    CHECK_EQ(pthread_mutex_consistent(pm), 0);
    CHECK_EQ(pthread_mutex_unlock(pm), 0);
    munmap(pm, 4096);
}

/* A robust list built by hand: one lock held with a waiter, and a pending operation on a
 * word whose owner is gone. */
static struct {
    struct robust_list node;
    int word;
} held, pending;
static struct robust_list_head raw_head;
static volatile pid_t raw_tid;
static int raw_go;

static void *raw_robust_owner(void *arg)
{
    (void)arg;
    pid_t me = gettid();
    held.word = me | FUTEX_WAITERS;
    pending.word = FUTEX_OWNER_DIED;
    held.node.next = &raw_head.list;
    raw_head.list.next = &held.node;
    raw_head.futex_offset = offsetof(typeof(held), word) - offsetof(typeof(held), node);
    raw_head.list_op_pending = &pending.node;
    long r = syscall(SYS_set_robust_list, &raw_head, sizeof raw_head);
    __atomic_store_n(&raw_tid, r == 0 ? me : -1, __ATOMIC_SEQ_CST);
    if (r != 0)
        return NULL;
    while (__atomic_load_n(&raw_go, __ATOMIC_SEQ_CST) == 0)
        futex(&raw_go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL; /* the kernel walks the list */
}

static void test_robust_raw(void)
{
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, raw_robust_owner, NULL), 0);
    for (int i = 0; i < 10000 && __atomic_load_n(&raw_tid, __ATOMIC_SEQ_CST) == 0; i++)
        sleep_ms(1);
    pid_t tid = raw_tid;
    CHECK(tid > 0);
    if (tid <= 0) {
        pthread_join(t, NULL);
        return;
    }
    struct robust_list_head *seen = NULL;
    size_t len = 0;
    CHECK_OK(syscall(SYS_get_robust_list, tid, &seen, &len));
    CHECK(seen == &raw_head);
    CHECK_EQ(len, sizeof raw_head);

    /* Robust futexes are woken with shared wakes: the waiters wait shared too (for at most
     * 5 s, so that a missing wake fails the test instead of hanging it). */
    struct waiter ws[2];
    int *words[2] = {&held.word, &pending.word};
    int vals[2] = {tid | FUTEX_WAITERS, FUTEX_OWNER_DIED};
    for (int i = 0; i < 2; i++) {
        memset(&ws[i], 0, sizeof ws[i]);
        ws[i].addr = words[i];
        ws[i].op = FUTEX_WAIT;
        ws[i].val = vals[i];
        ws[i].has_timeout = 1;
        ws[i].timeout.tv_sec = 5;
        CHECK_EQ(pthread_create(&ws[i].thread, NULL, waiter_fn, &ws[i]), 0);
    }
    CHECK(gather(&held.word, 1, 0));
    CHECK(gather(&pending.word, 1, 0));
    CHECK(gather(&raw_go, 1, FUTEX_PRIVATE_FLAG));
    __atomic_store_n(&raw_go, 1, __ATOMIC_SEQ_CST);
    CHECK_EQ(futex(&raw_go, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), 1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(wait_done(ws, 2, 2), 2);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(pthread_join(ws[i].thread, NULL), 0);
        CHECK_EQ(ws[i].ret, 0);
    }
    CHECK_EQ((unsigned)held.word, FUTEX_OWNER_DIED | FUTEX_WAITERS);
    CHECK_EQ((unsigned)pending.word, FUTEX_OWNER_DIED); /* left alone: it had no owner */
}

/* ---- futex_waitv ---- */

struct futex_waitv_arg {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};

static int v1, v2;
static volatile long waitv_ret = -2;

static void *waitv_thread(void *arg)
{
    (void)arg;
    struct futex_waitv_arg wv[2] = {
        {0, (uintptr_t)&v1, FUTEX_32 | FUTEX2_PRIVATE_FLAG, 0},
        {0, (uintptr_t)&v2, FUTEX_32 | FUTEX2_PRIVATE_FLAG, 0},
    };
    waitv_ret = syscall(SYS_futex_waitv, wv, 2, 0, NULL, 0);
    return NULL;
}

static long waitv_woken_by(int *which)
{
    pthread_t t;
    waitv_ret = -2;
    CHECK_EQ(pthread_create(&t, NULL, waitv_thread, NULL), 0);
    long woke = 0;
    for (int i = 0; i < 10000 && woke == 0 && waitv_ret == -2; i++) {
        woke = futex(which, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        if (woke == 0)
            sleep_ms(1);
    }
    CHECK_EQ(woke, 1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    return waitv_ret;
}

static void test_waitv(void)
{
    v1 = v2 = 0;
    CHECK_EQ(waitv_woken_by(&v2), 1);
    long first = waitv_woken_by(&v1);
    CHECK_EQ(first, 0);

    /* One FUTEX_WAKE_OP wakes the waiter through both futexes; it reports the last. (Not
     * tried if futex_waitv does not work at all: the waiter would never sleep.) */
    if (first == 0) {
        pthread_t t;
        waitv_ret = -2;
        CHECK_EQ(pthread_create(&t, NULL, waitv_thread, NULL), 0);
        CHECK(gather(&v1, 1, FUTEX_PRIVATE_FLAG));
        CHECK(gather(&v2, 1, FUTEX_PRIVATE_FLAG));
        CHECK_EQ(futex2(&v1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &v2,
                        FUTEX_OP(FUTEX_OP_ADD, 0, FUTEX_OP_CMP_EQ, 0)),
                 2);
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_EQ(waitv_ret, 1);
    }

    struct futex_waitv_arg wv[2] = {
        {0, (uintptr_t)&v1, FUTEX_32 | FUTEX2_PRIVATE_FLAG, 0},
        {1, (uintptr_t)&v2, FUTEX_32 | FUTEX2_PRIVATE_FLAG, 0}, /* v2 is 0: mismatch */
    };
    CHECK_ERR(syscall(SYS_futex_waitv, wv, 2, 0, NULL, 0), EAGAIN);
    wv[1].val = 0;
    long long dl = now_ns(CLOCK_MONOTONIC) + 50 * MS;
    struct timespec ts = ns_ts(dl);
    CHECK_ERR(syscall(SYS_futex_waitv, wv, 2, 0, &ts, CLOCK_MONOTONIC), ETIMEDOUT);
    CHECK(now_ns(CLOCK_MONOTONIC) >= dl);
    dl = now_ns(CLOCK_REALTIME) + 50 * MS;
    ts = ns_ts(dl);
    CHECK_ERR(syscall(SYS_futex_waitv, wv, 2, 0, &ts, CLOCK_REALTIME), ETIMEDOUT);
    CHECK(now_ns(CLOCK_REALTIME) >= dl);

    ts = ns_ts(now_ns(CLOCK_MONOTONIC) + 50 * MS);
    CHECK_ERR(syscall(SYS_futex_waitv, wv, 0, 0, &ts, CLOCK_MONOTONIC), EINVAL);   /* none */
    CHECK_ERR(syscall(SYS_futex_waitv, wv, 129, 0, &ts, CLOCK_MONOTONIC), EINVAL); /* > 128 */
    CHECK_ERR(syscall(SYS_futex_waitv, wv, 2, 1, &ts, CLOCK_MONOTONIC), EINVAL);   /* flags */
    CHECK_ERR(syscall(SYS_futex_waitv, wv, 2, 0, &ts, CLOCK_PROCESS_CPUTIME_ID), EINVAL);
    wv[0].flags = FUTEX2_PRIVATE_FLAG; /* no size */
    CHECK_ERR(syscall(SYS_futex_waitv, wv, 2, 0, &ts, CLOCK_MONOTONIC), EINVAL);
    wv[0].flags = FUTEX_32 | FUTEX2_PRIVATE_FLAG;
    wv[0].reserved = 1;
    CHECK_ERR(syscall(SYS_futex_waitv, wv, 2, 0, &ts, CLOCK_MONOTONIC), EINVAL);
    wv[0].reserved = 0;
    wv[0].uaddr = (uintptr_t)&v1 + 1; /* unaligned */
    CHECK_ERR(syscall(SYS_futex_waitv, wv, 2, 0, &ts, CLOCK_MONOTONIC), EINVAL);
    wv[0].uaddr = bad_word;
    CHECK_ERR(syscall(SYS_futex_waitv, wv, 2, 0, &ts, CLOCK_MONOTONIC), EFAULT);
}

/* ---- between processes ---- */

static void test_shared_between_processes(void)
{
    int *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(w != MAP_FAILED);
    if (w == MAP_FAILED)
        return;
    w[0] = 0;
    pid_t pid = fork();
    if (pid == 0) {
        long r = futex(w, FUTEX_WAIT, 0, NULL, NULL, 0);
        _exit(r == 0 && w[0] == 1 ? 0 : 1);
    }
    /* The child sleeps on the shared word (seen from here), then is woken from here. */
    CHECK(gather_via(w, 1, 0, w + 16));
    __atomic_store_n(w, 1, __ATOMIC_SEQ_CST);
    CHECK_EQ(futex(w, FUTEX_WAKE, 1, NULL, NULL, 0), 1);
    int st = -1;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EQ(st, 0);
    munmap(w, 4096);
}

/* ---- signals ---- */

static volatile int sig_count;

static void count_sig(int sig)
{
    (void)sig;
    sig_count++;
}

static void interrupt_case(int sa_flags, int timed, long want_ret, int want_err)
{
    static int w;
    w = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = count_sig;
    sa.sa_flags = sa_flags;
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    sig_count = 0;
    struct waiter ws;
    memset(&ws, 0, sizeof ws);
    ws.addr = &w;
    ws.op = FUTEX_WAIT_PRIVATE;
    ws.has_timeout = timed;
    ws.timeout.tv_sec = 30;
    CHECK_EQ(pthread_create(&ws.thread, NULL, waiter_fn, &ws), 0);
    CHECK(gather(&w, 1, FUTEX_PRIVATE_FLAG)); /* asleep in the kernel */
    CHECK_EQ(pthread_kill(ws.thread, SIGUSR1), 0);
    for (int i = 0; i < 10000 && sig_count == 0; i++)
        sleep_ms(1);
    CHECK_EQ(sig_count, 1);
    if (want_ret == 0) {
        /* Restarted: it goes back to sleep on the word and needs a real wake. */
        CHECK(gather(&w, 1, FUTEX_PRIVATE_FLAG));
        CHECK_EQ(ws.done, 0);
        CHECK_EQ(futex(&w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), 1);
    }
    CHECK_EQ(wait_done(&ws, 1, 1), 1);
    CHECK_EQ(pthread_join(ws.thread, NULL), 0);
    CHECK_EQ(ws.ret, want_ret);
    CHECK_EQ(ws.err, want_err);
    signal(SIGUSR1, SIG_DFL);
}

static void test_interrupted(void)
{
    interrupt_case(0, 0, -1, EINTR);
    interrupt_case(SA_RESTART, 0, 0, 0);
    /* With a timeout the wait is not restarted even with SA_RESTART. */
    interrupt_case(SA_RESTART, 1, -1, EINTR);
    interrupt_case(0, 1, -1, EINTR);
    /* Nothing to resume: restart_syscall itself is EINTR. */
    CHECK_ERR(syscall(SYS_restart_syscall), EINTR);
}

/* A stop interrupts a timed wait without running a handler: once the process continues, the
 * wait carries on (through restart_syscall) instead of failing with EINTR. The child's
 * waiter thread sleeps on a shared word the parent watches; the child stops itself through
 * that thread. */
static void test_stopped_wait(void)
{
    int *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(w != MAP_FAILED);
    if (w == MAP_FAILED)
        return;
    w[0] = w[1] = 0;
    pid_t pid = fork();
    if (pid == 0) {
        struct waiter ws;
        memset(&ws, 0, sizeof ws);
        ws.addr = w;
        ws.op = FUTEX_WAIT;
        ws.has_timeout = 1;
        ws.timeout.tv_sec = 30;
        if (pthread_create(&ws.thread, NULL, waiter_fn, &ws) != 0)
            _exit(2);
        while (__atomic_load_n(&w[1], __ATOMIC_SEQ_CST) == 0)
            futex(&w[1], FUTEX_WAIT, 0, NULL, NULL, 0);
        pthread_kill(ws.thread, SIGSTOP);
        pthread_join(ws.thread, NULL);
        _exit(ws.ret == 0 ? 0 : ws.err == EINTR ? 3 : 4);
    }
    CHECK(gather_via(w, 1, 0, w + 16)); /* the waiter sleeps */
    __atomic_store_n(&w[1], 1, __ATOMIC_SEQ_CST);
    futex(&w[1], FUTEX_WAKE, 1, NULL, NULL, 0);
    int st = -1;
    CHECK_EQ(waitpid(pid, &st, WUNTRACED), pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHECK_OK(kill(pid, SIGCONT));
    CHECK(gather_via(w, 1, 0, w + 16)); /* asleep on the word again */
    __atomic_store_n(w, 1, __ATOMIC_SEQ_CST);
    CHECK_EQ(futex(w, FUTEX_WAKE, 1, NULL, NULL, 0), 1);
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EQ(st, 0);
    munmap(w, 4096);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    test_wait_errors();
    test_wake_n();
    test_bitset();
    test_abs_deadlines();
    test_requeue();
    test_wake_op();
    test_pi();
    test_robust();
    test_robust_raw();
    test_waitv();
    test_shared_between_processes();
    test_interrupted();
    test_stopped_wait();
    return check_done();
}
