/*
 * time_basic: clocks and sleeps (clock_gettime(2), clock_getres(2), clock_settime(2),
 * gettimeofday(2), time(2), nanosleep(2), clock_nanosleep(2), times(2)).
 *
 * Covers: every common clock id reads successfully with tv_nsec in [0, 1e9); the monotonic
 * family never goes backwards and BOOTTIME >= MONOTONIC; invalid clock ids and bad pointers
 * (EINVAL, EFAULT, through the raw syscall because the vDSO would just crash); resolution
 * of CLOCK_REALTIME; gettimeofday/time agree with CLOCK_REALTIME; relative and absolute
 * sleeps last at least as long as asked; invalid timespecs; clock_nanosleep returns an
 * error number instead of setting errno (and the raw syscall's EOPNOTSUPP for the thread
 * CPU clock); CPU clocks advance while spinning and times()
 * reports that CPU time in clock ticks.
 *
 * Timing checks only have lower bounds (plus a generous 1 s agreement window between
 * realtime sources), so they hold on a loaded machine.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define NSEC 1000000000LL

static long long ts_ns(const struct timespec *ts)
{
    return ts->tv_sec * NSEC + ts->tv_nsec;
}

static long long now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return ts_ns(&ts);
}

static const struct {
    clockid_t id;
    const char *name;
    int monotonic;
} clocks[] = {
    {CLOCK_REALTIME, "REALTIME", 0},
    {CLOCK_MONOTONIC, "MONOTONIC", 1},
    {CLOCK_MONOTONIC_RAW, "MONOTONIC_RAW", 1},
    {CLOCK_BOOTTIME, "BOOTTIME", 1},
    {CLOCK_PROCESS_CPUTIME_ID, "PROCESS_CPUTIME_ID", 1},
    {CLOCK_THREAD_CPUTIME_ID, "THREAD_CPUTIME_ID", 1},
    {CLOCK_REALTIME_COARSE, "REALTIME_COARSE", 0},
    {CLOCK_MONOTONIC_COARSE, "MONOTONIC_COARSE", 1},
};

static void test_clock_gettime(void)
{
    for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
        struct timespec a = {-1, -1}, b = {-1, -1}, res = {-1, -1};
        CHECK_OK(clock_gettime(clocks[i].id, &a));
        CHECK_OK(clock_gettime(clocks[i].id, &b));
        CHECK(a.tv_nsec >= 0 && a.tv_nsec < NSEC);
        CHECK(b.tv_nsec >= 0 && b.tv_nsec < NSEC);
        CHECK(a.tv_sec >= 0);
        if (clocks[i].monotonic)
            CHECK(ts_ns(&b) >= ts_ns(&a));
        /* The raw syscall agrees with the (possibly vDSO) library call. */
        struct timespec c;
        CHECK_EQ(syscall(SYS_clock_gettime, clocks[i].id, &c), 0);
        if (clocks[i].monotonic)
            CHECK(ts_ns(&c) >= ts_ns(&b));
        CHECK_OK(clock_getres(clocks[i].id, &res));
        CHECK(res.tv_sec == 0 && res.tv_nsec > 0 && res.tv_nsec < NSEC);
    }

    /* REALTIME is wall-clock time: after 2020-01-01. */
    CHECK(now_ns(CLOCK_REALTIME) / NSEC > 1577836800LL);
    /* Time since boot includes time since the monotonic epoch. */
    long long mono = now_ns(CLOCK_MONOTONIC);
    CHECK(now_ns(CLOCK_BOOTTIME) >= mono);
    /* Monotonic over many reads. */
    long long prev = now_ns(CLOCK_MONOTONIC), bad = 0;
    for (int i = 0; i < 10000; i++) {
        long long t = now_ns(CLOCK_MONOTONIC);
        if (t < prev)
            bad++;
        prev = t;
    }
    CHECK_EQ(bad, 0);
}

static void test_clock_errors(void)
{
    struct timespec ts;
    CHECK_ERR(syscall(SYS_clock_gettime, 99, &ts), EINVAL);
    CHECK_ERR(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)1), EFAULT);
    CHECK_ERR(syscall(SYS_clock_getres, 99, &ts), EINVAL);
    CHECK_ERR(clock_getres(99, &ts), EINVAL);
    CHECK_ERR(clock_gettime(99, &ts), EINVAL);
    /* getres with a NULL result pointer is allowed (only validates the clock). */
    CHECK_EQ(syscall(SYS_clock_getres, CLOCK_MONOTONIC, NULL), 0);

    /* REALTIME resolution is at most 1 ms (hrtimers: 1 ns). */
    CHECK_OK(clock_getres(CLOCK_REALTIME, &ts));
    CHECK(ts.tv_sec == 0 && ts.tv_nsec <= 1000000);
    CHECK_OK(clock_getres(CLOCK_MONOTONIC, &ts));
    CHECK(ts.tv_sec == 0 && ts.tv_nsec <= 1000000);

    /* MONOTONIC cannot be set by anyone (EINVAL even for root). CLOCK_REALTIME is not
     * touched here: the tests run as root and a broken implementation would set it. */
    CHECK_OK(clock_gettime(CLOCK_MONOTONIC, &ts));
    CHECK_ERR(clock_settime(CLOCK_MONOTONIC, &ts), EINVAL);
}

static void test_gettimeofday(void)
{
    struct timeval tv;
    struct timespec ts;
    CHECK_OK(gettimeofday(&tv, NULL));
    CHECK_OK(clock_gettime(CLOCK_REALTIME, &ts));
    CHECK(tv.tv_usec >= 0 && tv.tv_usec < 1000000);
    long long diff = ts_ns(&ts) - (tv.tv_sec * NSEC + tv.tv_usec * 1000LL);
    CHECK(diff >= 0 && diff < NSEC); /* read second, so never earlier */
    time_t t = time(NULL);
    CHECK(t >= ts.tv_sec && t <= ts.tv_sec + 1);
    time_t t2;
    CHECK_EQ(time(&t2), t2);
    CHECK_EQ(syscall(SYS_gettimeofday, &tv, NULL), 0);
    CHECK(tv.tv_sec >= ts.tv_sec && tv.tv_sec <= ts.tv_sec + 1);
}

static void test_nanosleep(void)
{
    struct timespec req = {0, 20 * 1000000}, rem = {-1, -1};
    long long t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_OK(nanosleep(&req, &rem));
    long long t1 = now_ns(CLOCK_MONOTONIC);
    CHECK(t1 - t0 >= 20 * 1000000LL);

    struct timespec zero = {0, 0};
    CHECK_OK(nanosleep(&zero, NULL));

    struct timespec bad = {0, NSEC};
    CHECK_ERR(nanosleep(&bad, NULL), EINVAL);
    bad.tv_nsec = -1;
    CHECK_ERR(nanosleep(&bad, NULL), EINVAL);
    bad.tv_sec = -1;
    bad.tv_nsec = 0;
    CHECK_ERR(nanosleep(&bad, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_nanosleep, (void *)1, NULL), EFAULT);
}

static void test_clock_nanosleep(void)
{
    /* Relative. */
    struct timespec req = {0, 10 * 1000000};
    long long t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL), 0);
    CHECK(now_ns(CLOCK_MONOTONIC) - t0 >= 10 * 1000000LL);

    /* Absolute: sleep until 20 ms from now, on MONOTONIC and on REALTIME. */
    clockid_t abs_clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME};
    for (int i = 0; i < 3; i++) {
        struct timespec target;
        clock_gettime(abs_clocks[i], &target);
        target.tv_nsec += 20 * 1000000;
        if (target.tv_nsec >= NSEC) {
            target.tv_nsec -= NSEC;
            target.tv_sec++;
        }
        CHECK_EQ(clock_nanosleep(abs_clocks[i], TIMER_ABSTIME, &target, NULL), 0);
        CHECK(now_ns(abs_clocks[i]) >= ts_ns(&target));
    }
    /* An absolute time in the past returns at once. */
    struct timespec past = {1, 0};
    t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL), 0);
    CHECK(now_ns(CLOCK_MONOTONIC) - t0 < NSEC);

    /* Errors come back as the return value; errno is not used. */
    errno = 0;
    CHECK_EQ(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &req, NULL), EINVAL);
    CHECK_EQ(errno, 0);
    CHECK_EQ(clock_nanosleep(99, 0, &req, NULL), EINVAL);
    struct timespec bad = {0, NSEC};
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL), EINVAL);
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &bad, NULL), EINVAL);
    /* The kernel itself says EOPNOTSUPP for the thread CPU clock (the clock has no nsleep
     * method); glibc and musl short-circuit it to EINVAL, as the man page documents. */
    CHECK_ERR(syscall(SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &req, NULL), EOPNOTSUPP);
    CHECK_ERR(syscall(SYS_clock_nanosleep, 99, 0, &req, NULL), EINVAL);
}

static void test_cpu_time(void)
{
    struct tms before, after;
    memset(&before, 0xff, sizeof before);
    clock_t c0 = times(&before);
    CHECK(c0 != (clock_t)-1);
    CHECK(before.tms_utime >= 0 && before.tms_stime >= 0);
    CHECK_EQ(before.tms_cutime, 0); /* no children were ever waited for */
    CHECK_EQ(before.tms_cstime, 0);

    /* Spin for 50 ms of process CPU time. */
    long long p0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    long long t0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    volatile unsigned long sink = 0;
    while (now_ns(CLOCK_PROCESS_CPUTIME_ID) - p0 < 50 * 1000000LL)
        for (int i = 0; i < 10000; i++)
            sink += i;
    CHECK(now_ns(CLOCK_THREAD_CPUTIME_ID) - t0 >= 40 * 1000000LL);

    clock_t c1 = times(&after);
    CHECK(c1 != (clock_t)-1);
    CHECK(c1 >= c0); /* elapsed ticks since an arbitrary point */
    long ticks = (after.tms_utime + after.tms_stime) - (before.tms_utime + before.tms_stime);
    CHECK(ticks >= 1); /* 50 ms at 100 Hz is about 5 ticks */
    CHECK(ticks <= 1000);
    CHECK(times(NULL) != (clock_t)-1);
}

int main(void)
{
    test_clock_gettime();
    test_clock_errors();
    test_gettimeofday();
    test_nanosleep();
    test_clock_nanosleep();
    test_cpu_time();
    return check_done();
}
