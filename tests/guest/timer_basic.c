/*
 * timer_basic: interval timers and POSIX per-process timers.
 * Man pages: alarm(2), setitimer(2) (getitimer), timer_create(2), timer_settime(2)
 * (timer_gettime), timer_getoverrun(2), timer_delete(2), nanosleep(2), clock_nanosleep(2),
 * restart_syscall(2), sigevent(7), signal(7), fork(2).
 *
 * Covers: alarm's return value (remaining seconds, rounded) and SIGALRM after 1 s with
 * si_code SI_KERNEL; ITIMER_REAL one-shot and periodic (three expirations no sooner than
 * 300 ms at a 100 ms period, and no more than the elapsed time allows), getitimer's
 * remaining time and interval, setitimer's old value and EINVAL cases; ITIMER_VIRTUAL and
 * ITIMER_PROF firing while the process spins without system calls, after the CPU time asked
 * for; SIGALRM interrupting a syscall-free busy loop; sleeps cut short by a handler (EINTR
 * even with SA_RESTART, the time left for relative sleeps only), not ended by a blocked
 * signal or by one that runs no handler (they go on to their end), and not keeping other
 * threads from running; a sleep on the process CPU clock; POSIX timers with SIGEV_SIGNAL
 * (SI_TIMER, si_value), relative, absolute (TIMER_ABSTIME, also already past) and
 * CLOCK_REALTIME arming, timer_gettime, the old value from timer_settime, overruns counted
 * while the signal is blocked (si_overrun and timer_getoverrun), SIGEV_NONE, SIGEV_THREAD,
 * SIGEV_THREAD_ID targeting one thread (raw system calls), EINVAL after timer_delete and for
 * bad arguments; timers and alarms are not inherited across fork.
 *
 * Timing checks have strict lower bounds and generous upper bounds (a loaded machine).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define MS 1000000LL
#define NSEC 1000000000LL

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

static long long now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return ts.tv_sec * NSEC + ts.tv_nsec;
}

static long long tv_us(struct timeval tv)
{
    return tv.tv_sec * 1000000LL + tv.tv_usec;
}

static long long ts_ns(struct timespec ts)
{
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

static volatile int rec_count, rec_sig, rec_code, rec_value, rec_overrun;
static volatile pid_t rec_tid;

static void record(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    rec_sig = sig;
    rec_code = si->si_code;
    rec_value = si->si_value.sival_int;
    rec_overrun = si->si_overrun;
    rec_tid = gettid();
    rec_count++;
}

static void reset_record(void)
{
    rec_count = rec_sig = rec_code = rec_value = rec_overrun = 0;
    rec_tid = 0;
}

static void set_handler(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = record;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(sig, &sa, NULL));
}

/* Sleeps (in 50 ms naps that the signal cuts short) until rec_count reaches n, 20 s at
 * most. */
static void wait_count(int n)
{
    long long end = now_ns(CLOCK_MONOTONIC) + 20 * NSEC;
    while (rec_count < n && now_ns(CLOCK_MONOTONIC) < end) {
        struct timespec ts = {0, 50 * MS};
        nanosleep(&ts, NULL);
    }
}

/* Spins without system calls until rec_count reaches n or the budget runs out. */
static unsigned long long spin_until(int n)
{
    unsigned long long i;
    for (i = 0; i < (1ULL << 33) && rec_count < n; i++) {
    }
    return i;
}

static void test_alarm(void)
{
    set_handler(SIGALRM);
    CHECK_EQ(alarm(0), 0);
    CHECK_EQ(alarm(5), 0);
    CHECK_EQ(alarm(3), 5); /* 4.99... s left, rounded to the nearest second */
    CHECK_EQ(alarm(0), 3);
    CHECK_EQ(alarm(0), 0);

    reset_record();
    long long t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_EQ(alarm(1), 0);
    wait_count(1);
    long long el = now_ns(CLOCK_MONOTONIC) - t0;
    CHECK_EQ(rec_count, 1);
    CHECK_EQ(rec_sig, SIGALRM);
    CHECK_EQ(rec_code, SI_KERNEL);
    CHECK(el >= 1000 * MS);
    CHECK(el < 10 * NSEC);
    CHECK_EQ(alarm(0), 0);
    /* alarm and ITIMER_REAL are the same timer. */
    CHECK_EQ(alarm(7), 0);
    struct itimerval it;
    CHECK_OK(getitimer(ITIMER_REAL, &it));
    CHECK(tv_us(it.it_value) > 6000000 && tv_us(it.it_value) <= 7000000);
    CHECK_EQ(tv_us(it.it_interval), 0);
    CHECK_EQ(alarm(0), 7);
}

static void test_itimer_real(void)
{
    set_handler(SIGALRM);
    struct itimerval it = {{0, 100000}, {0, 100000}}, old, cur;
    memset(&old, 0xff, sizeof old);
    reset_record();
    long long t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_OK(setitimer(ITIMER_REAL, &it, &old));
    CHECK_EQ(tv_us(old.it_value), 0);
    CHECK_EQ(tv_us(old.it_interval), 0);
    CHECK_OK(getitimer(ITIMER_REAL, &cur));
    CHECK_EQ(tv_us(cur.it_interval), 100000);
    CHECK(tv_us(cur.it_value) > 0 && tv_us(cur.it_value) <= 100000);
    wait_count(3);
    int count = rec_count; /* read before the clock: count expiries happened by then */
    long long el = now_ns(CLOCK_MONOTONIC) - t0;
    CHECK(count >= 3);
    CHECK(el >= 300 * MS);           /* the third expiry is due at 300 ms */
    CHECK(count <= el / (100 * MS)); /* never more than one per period */
    CHECK_EQ(rec_code, SI_KERNEL);
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK_OK(setitimer(ITIMER_REAL, &off, &old));
    CHECK_EQ(tv_us(old.it_interval), 100000);
    CHECK_OK(getitimer(ITIMER_REAL, &cur));
    CHECK_EQ(tv_us(cur.it_value), 0);
    CHECK_EQ(tv_us(cur.it_interval), 0);

    /* One-shot: the remaining time counts down, the interval stays 0. */
    struct itimerval ten = {{0, 0}, {10, 0}};
    CHECK_OK(setitimer(ITIMER_REAL, &ten, NULL));
    sleep_ms(20);
    CHECK_OK(getitimer(ITIMER_REAL, &cur));
    CHECK(tv_us(cur.it_value) > 9000000 && tv_us(cur.it_value) <= 9980000);
    CHECK_EQ(tv_us(cur.it_interval), 0);
    CHECK_OK(setitimer(ITIMER_REAL, &off, &old));
    CHECK(tv_us(old.it_value) > 9000000 && tv_us(old.it_value) <= 9980000);

    struct itimerval bad = {{0, 0}, {0, 1000000}};
    CHECK_ERR(setitimer(ITIMER_REAL, &bad, NULL), EINVAL);
    CHECK_ERR(setitimer((__itimer_which_t)99, &ten, NULL), EINVAL);
    CHECK_ERR(getitimer((__itimer_which_t)99, &cur), EINVAL);
    signal(SIGALRM, SIG_DFL);
}

static void cpu_timer_case(int which, int sig)
{
    set_handler(sig);
    reset_record();
    struct itimerval it = {{0, 0}, {0, 100000}}, cur;
    long long cpu0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    CHECK_OK(setitimer(which, &it, NULL));
    CHECK_OK(getitimer(which, &cur));
    /* Linux adds one jiffy (TICK_NSEC: 1 to 10 ms depending on HZ) to a CPU timer. */
    CHECK(tv_us(cur.it_value) > 0 && tv_us(cur.it_value) <= 110000);
    spin_until(1); /* no system calls: the signal has to interrupt user code */
    long long cpu = now_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    CHECK_EQ(rec_count, 1);
    CHECK_EQ(rec_sig, sig);
    CHECK_EQ(rec_code, SI_KERNEL);
    /* Tick-based accounting may run a tick or two ahead of the precise clock. */
    CHECK(cpu >= 50 * MS);
    CHECK_OK(getitimer(which, &cur));
    CHECK_EQ(tv_us(cur.it_value), 0);
    signal(sig, SIG_DFL);
}

static void test_itimer_cpu(void)
{
    cpu_timer_case(ITIMER_VIRTUAL, SIGVTALRM);
    cpu_timer_case(ITIMER_PROF, SIGPROF);
}

static void test_busy_loop_alarm(void)
{
    set_handler(SIGALRM);
    reset_record();
    struct itimerval it = {{0, 0}, {0, 50000}};
    long long t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_OK(setitimer(ITIMER_REAL, &it, NULL));
    spin_until(1);
    long long el = now_ns(CLOCK_MONOTONIC) - t0;
    CHECK_EQ(rec_count, 1);
    CHECK(el >= 50 * MS);
    signal(SIGALRM, SIG_DFL);
}

/* A relative sleep cut short by a handler fails with EINTR, SA_RESTART or not (signal(7)),
 * and reports the time it had left; an absolute one reports nothing. */
static void test_sleep_interrupted(void)
{
    set_handler(SIGALRM); /* with SA_RESTART */
    struct itimerval soon = {{0, 0}, {0, 100000}};

    reset_record();
    struct timespec req = {2, 0}, rem = {-1, -1};
    long long t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_OK(setitimer(ITIMER_REAL, &soon, NULL));
    CHECK_ERR(nanosleep(&req, &rem), EINTR);
    long long el = now_ns(CLOCK_MONOTONIC) - t0;
    CHECK_EQ(rec_count, 1);
    CHECK(el >= 100 * MS && el < 1900 * MS);
    CHECK(ts_ns(rem) >= 2 * NSEC - el && ts_ns(rem) < 1950 * MS);
    CHECK(rem.tv_nsec >= 0 && rem.tv_nsec < NSEC);

    reset_record();
    rem.tv_sec = rem.tv_nsec = -1;
    t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_OK(setitimer(ITIMER_REAL, &soon, NULL));
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem), EINTR);
    el = now_ns(CLOCK_MONOTONIC) - t0;
    CHECK_EQ(rec_count, 1);
    CHECK(ts_ns(rem) >= 2 * NSEC - el && ts_ns(rem) < 1950 * MS);

    /* The same on CLOCK_REALTIME. */
    reset_record();
    rem.tv_sec = rem.tv_nsec = -1;
    CHECK_OK(setitimer(ITIMER_REAL, &soon, NULL));
    CHECK_EQ(clock_nanosleep(CLOCK_REALTIME, 0, &req, &rem), EINTR);
    CHECK_EQ(rec_count, 1);
    CHECK(ts_ns(rem) > 0 && ts_ns(rem) < 1950 * MS);

    /* Absolute: EINTR too, and the remaining time is left alone. */
    reset_record();
    struct timespec until = ns_ts(now_ns(CLOCK_MONOTONIC) + 2 * NSEC);
    rem.tv_sec = 77;
    rem.tv_nsec = 0;
    CHECK_OK(setitimer(ITIMER_REAL, &soon, NULL));
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, &rem), EINTR);
    CHECK_EQ(rec_count, 1);
    CHECK(now_ns(CLOCK_MONOTONIC) < ts_ns(until));
    CHECK_EQ(rem.tv_sec, 77);

    /* A signal blocked during the sleep does not end it. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    CHECK_OK(sigprocmask(SIG_BLOCK, &block, &old));
    reset_record();
    struct timespec short_req = {0, 300 * MS};
    t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_OK(setitimer(ITIMER_REAL, &soon, NULL));
    CHECK_OK(nanosleep(&short_req, NULL));
    CHECK(now_ns(CLOCK_MONOTONIC) - t0 >= 300 * MS);
    CHECK_EQ(rec_count, 0);
    CHECK_OK(sigprocmask(SIG_SETMASK, &old, NULL)); /* the pending SIGALRM runs now */
    CHECK_EQ(rec_count, 1);
    signal(SIGALRM, SIG_DFL);

    /* A signal that runs no handler (SIGCONT's default action) does not cut a sleep short:
     * it goes on to its end and succeeds. */
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGCONT;
    timer_t t;
    CHECK_OK(timer_create(CLOCK_MONOTONIC, &sev, &t));
    struct itimerspec in50 = {{0, 0}, {0, 50 * MS}};
    CHECK_OK(timer_settime(t, 0, &in50, NULL));
    t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_OK(nanosleep(&short_req, NULL));
    CHECK(now_ns(CLOCK_MONOTONIC) - t0 >= 300 * MS);
    CHECK_OK(timer_settime(t, 0, &in50, NULL));
    t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &short_req, NULL), 0);
    CHECK(now_ns(CLOCK_MONOTONIC) - t0 >= 300 * MS);
    CHECK_OK(timer_settime(t, 0, &in50, NULL));
    struct timespec abs_until = ns_ts(now_ns(CLOCK_MONOTONIC) + 300 * MS);
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs_until, NULL), 0);
    CHECK(now_ns(CLOCK_MONOTONIC) >= ts_ns(abs_until));
    CHECK_OK(timer_delete(t));
}

static volatile unsigned long spins;
static volatile int spin_stop;

static void *spinner(void *arg)
{
    (void)arg;
    while (!spin_stop)
        spins++;
    return NULL;
}

/* A sleeping thread does not keep the others from running, and a sleep on the process CPU
 * clock ends once they have used that much CPU time. */
static void test_sleep_lets_threads_run(void)
{
    pthread_t th;
    spins = 0;
    spin_stop = 0;
    CHECK_EQ(pthread_create(&th, NULL, spinner, NULL), 0);
    while (spins == 0)
        sched_yield();

    unsigned long before = spins;
    struct timespec req = {0, 100 * MS};
    CHECK_OK(nanosleep(&req, NULL));
    CHECK(spins > before);

    before = spins;
    long long cpu0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    req.tv_nsec = 50 * MS;
    CHECK_EQ(clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 0, &req, NULL), 0);
    CHECK(now_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0 >= 50 * MS);
    CHECK(spins > before);

    spin_stop = 1;
    CHECK_EQ(pthread_join(th, NULL), 0);
}

static void test_posix_timer(void)
{
    int sig = SIGRTMIN;
    set_handler(sig);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = sig;
    sev.sigev_value.sival_int = 99;
    timer_t t;
    CHECK_OK(timer_create(CLOCK_MONOTONIC, &sev, &t));
    struct itimerspec cur, old;
    memset(&cur, 0xff, sizeof cur);
    CHECK_OK(timer_gettime(t, &cur));
    CHECK_EQ(ts_ns(cur.it_value), 0);
    CHECK_EQ(ts_ns(cur.it_interval), 0);

    /* Relative. */
    reset_record();
    struct itimerspec rel = {{0, 0}, {0, 100 * MS}};
    long long t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_OK(timer_settime(t, 0, &rel, NULL));
    CHECK_OK(timer_gettime(t, &cur));
    CHECK(ts_ns(cur.it_value) > 0 && ts_ns(cur.it_value) <= 100 * MS);
    wait_count(1);
    long long el = now_ns(CLOCK_MONOTONIC) - t0;
    CHECK_EQ(rec_count, 1);
    CHECK_EQ(rec_sig, sig);
    CHECK_EQ(rec_code, SI_TIMER);
    CHECK_EQ(rec_value, 99);
    CHECK_EQ(rec_overrun, 0);
    CHECK(el >= 100 * MS);
    CHECK(el < 10 * NSEC);
    CHECK_OK(timer_gettime(t, &cur));
    CHECK_EQ(ts_ns(cur.it_value), 0); /* one-shot: disarmed */

    /* Absolute. */
    reset_record();
    long long dl = now_ns(CLOCK_MONOTONIC) + 100 * MS;
    struct itimerspec abs = {{0, 0}, ns_ts(dl)};
    CHECK_OK(timer_settime(t, TIMER_ABSTIME, &abs, NULL));
    CHECK_OK(timer_gettime(t, &cur)); /* reported relative */
    CHECK(ts_ns(cur.it_value) > 0 && ts_ns(cur.it_value) <= 100 * MS);
    wait_count(1);
    CHECK_EQ(rec_count, 1);
    CHECK(now_ns(CLOCK_MONOTONIC) >= dl);

    /* An absolute time already past: fires at once. */
    reset_record();
    abs.it_value = ns_ts(now_ns(CLOCK_MONOTONIC) - NSEC);
    t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_OK(timer_settime(t, TIMER_ABSTIME, &abs, NULL));
    wait_count(1);
    CHECK_EQ(rec_count, 1);
    CHECK(now_ns(CLOCK_MONOTONIC) - t0 < 5 * NSEC);

    /* The old value. */
    struct itimerspec ten = {{0, 0}, {10, 0}}, off = {{0, 0}, {0, 0}};
    CHECK_OK(timer_settime(t, 0, &ten, NULL));
    memset(&old, 0, sizeof old);
    CHECK_OK(timer_settime(t, 0, &off, &old));
    CHECK(ts_ns(old.it_value) > 9 * NSEC && ts_ns(old.it_value) <= 10 * NSEC);
    CHECK_OK(timer_gettime(t, &cur));
    CHECK_EQ(ts_ns(cur.it_value), 0);

    /* Overruns: the signal stays blocked across many expirations. */
    sigset_t block, oldmask;
    sigemptyset(&block);
    sigaddset(&block, sig);
    CHECK_OK(sigprocmask(SIG_BLOCK, &block, &oldmask));
    struct itimerspec every10 = {{0, 10 * MS}, {0, 10 * MS}};
    CHECK_OK(timer_settime(t, 0, &every10, NULL));
    CHECK_OK(timer_gettime(t, &cur));
    CHECK_EQ(ts_ns(cur.it_interval), 10 * MS);
    sleep_ms(200);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    struct timespec to = {5, 0};
    CHECK_EQ(sigtimedwait(&block, &si, &to), sig);
    CHECK_EQ(si.si_code, SI_TIMER);
    CHECK_EQ(si.si_value.sival_int, 99);
    CHECK(si.si_overrun >= 2);
    int ov = timer_getoverrun(t);
    CHECK(ov >= 2);
    CHECK(ov <= 200);
    CHECK_OK(timer_settime(t, 0, &off, NULL));
    struct timespec zero = {0, 0};
    while (sigtimedwait(&block, &si, &zero) == sig) {
    }
    CHECK_OK(sigprocmask(SIG_SETMASK, &oldmask, NULL));

    /* Deleted. */
    CHECK_OK(timer_delete(t));
    CHECK_ERR(timer_gettime(t, &cur), EINVAL);
    CHECK_ERR(timer_settime(t, 0, &ten, NULL), EINVAL);
    CHECK_ERR(timer_getoverrun(t), EINVAL);
    CHECK_ERR(timer_delete(t), EINVAL);

    /* Bad arguments. */
    CHECK_ERR(timer_create((clockid_t)1234, &sev, &t), EINVAL);
    sev.sigev_signo = 65;
    CHECK_ERR(timer_create(CLOCK_MONOTONIC, &sev, &t), EINVAL);
    sev.sigev_signo = sig;
    sev.sigev_notify = 77;
    CHECK_ERR(timer_create(CLOCK_MONOTONIC, &sev, &t), EINVAL);
    sev.sigev_notify = SIGEV_SIGNAL;
    CHECK_OK(timer_create(CLOCK_MONOTONIC, &sev, &t));
    struct itimerspec badns = {{0, 0}, {0, NSEC}};
    CHECK_ERR(timer_settime(t, 0, &badns, NULL), EINVAL);
    CHECK_OK(timer_delete(t));
    signal(sig, SIG_DFL);
}

static void test_realtime_and_none(void)
{
    int sig = SIGRTMIN + 1;
    set_handler(sig);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = sig;
    sev.sigev_value.sival_int = 5;
    timer_t t;
    CHECK_OK(timer_create(CLOCK_REALTIME, &sev, &t));
    reset_record();
    long long dl = now_ns(CLOCK_REALTIME) + 100 * MS;
    struct itimerspec abs = {{0, 0}, ns_ts(dl)};
    CHECK_OK(timer_settime(t, TIMER_ABSTIME, &abs, NULL));
    wait_count(1);
    CHECK_EQ(rec_count, 1);
    CHECK_EQ(rec_value, 5);
    CHECK(now_ns(CLOCK_REALTIME) >= dl);
    CHECK_OK(timer_delete(t));

    /* SIGEV_NONE: counts down, never signals. */
    sev.sigev_notify = SIGEV_NONE;
    CHECK_OK(timer_create(CLOCK_MONOTONIC, &sev, &t));
    reset_record();
    struct itimerspec short_one = {{0, 0}, {0, 50 * MS}}, ten = {{0, 0}, {10, 0}}, cur;
    CHECK_OK(timer_settime(t, 0, &ten, NULL));
    CHECK_OK(timer_gettime(t, &cur));
    CHECK(ts_ns(cur.it_value) > 9 * NSEC && ts_ns(cur.it_value) <= 10 * NSEC);
    CHECK_OK(timer_settime(t, 0, &short_one, NULL));
    sleep_ms(150);
    CHECK_OK(timer_gettime(t, &cur));
    CHECK_EQ(ts_ns(cur.it_value), 0);
    CHECK_EQ(rec_count, 0);
    CHECK_OK(timer_delete(t));
    signal(sig, SIG_DFL);
}

static sem_t thread_fired;
static volatile int notify_value;

static void notify_fn(union sigval v)
{
    notify_value = v.sival_int;
    sem_post(&thread_fired);
}

static void test_sigev_thread(void)
{
    sem_init(&thread_fired, 0, 0);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_notify_function = notify_fn;
    sev.sigev_value.sival_int = 4242;
    timer_t t;
    CHECK_OK(timer_create(CLOCK_MONOTONIC, &sev, &t));
    struct itimerspec rel = {{0, 0}, {0, 50 * MS}};
    CHECK_OK(timer_settime(t, 0, &rel, NULL));
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    int rc;
    while ((rc = sem_timedwait(&thread_fired, &dl)) == -1 && errno == EINTR) {
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(notify_value, 4242);
    CHECK_OK(timer_delete(t));
    sem_destroy(&thread_fired);
}

static volatile pid_t target_tid;
static volatile int target_stop;

static void *target_thread(void *arg)
{
    (void)arg;
    target_tid = gettid();
    sigset_t empty;
    sigemptyset(&empty);
    while (!target_stop)
        sigsuspend(&empty);
    return NULL;
}

static void test_thread_id(void)
{
    int sig = SIGRTMIN + 2;
    set_handler(sig);
    pthread_t th;
    target_tid = 0;
    target_stop = 0;
    CHECK_EQ(pthread_create(&th, NULL, target_thread, NULL), 0);
    while (target_tid == 0)
        sched_yield();

    /* The main thread does not block the signal: only the tid decides. */
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = sig;
    sev.sigev_value.sival_int = 31;
    sev._sigev_un._tid = target_tid;
    int kid = -1;
    CHECK_OK(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &kid));
    reset_record();
    struct itimerspec rel = {{0, 0}, {0, 50 * MS}};
    CHECK_OK(syscall(SYS_timer_settime, kid, 0, &rel, NULL));
    for (int i = 0; i < 10000 && rec_count == 0; i++)
        sleep_ms(1);
    CHECK_EQ(rec_count, 1);
    CHECK_EQ(rec_tid, target_tid);
    CHECK_EQ(rec_code, SI_TIMER);
    CHECK_EQ(rec_value, 31);
    struct itimerspec cur;
    CHECK_OK(syscall(SYS_timer_gettime, kid, &cur));
    CHECK_EQ(ts_ns(cur.it_value), 0);
    CHECK_OK(syscall(SYS_timer_delete, kid));
    CHECK_ERR(syscall(SYS_timer_gettime, kid, &cur), EINVAL);

    /* A tid outside this process is refused. */
    sev._sigev_un._tid = getppid();
    CHECK_ERR(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &kid), EINVAL);

    target_stop = 1;
    pthread_kill(th, sig);
    CHECK_EQ(pthread_join(th, NULL), 0);
    signal(sig, SIG_DFL);
}

static void test_fork_inheritance(void)
{
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_NONE;
    timer_t t;
    CHECK_OK(timer_create(CLOCK_MONOTONIC, &sev, &t));
    struct itimerspec ten = {{0, 0}, {10, 0}};
    CHECK_OK(timer_settime(t, 0, &ten, NULL));
    CHECK_EQ(alarm(100), 0);
    pid_t pid = fork();
    if (pid == 0) {
        check_failures = 0;
        CHECK_EQ(alarm(0), 0); /* the alarm is not inherited */
        struct itimerval it;
        CHECK_OK(getitimer(ITIMER_REAL, &it));
        CHECK_EQ(tv_us(it.it_value), 0);
        struct itimerspec cur;
        CHECK_ERR(timer_gettime(t, &cur), EINVAL); /* nor are POSIX timers */
        _exit(check_failures ? 1 : 0);
    }
    int st = -1;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EQ(st, 0);
    unsigned left = alarm(0);
    CHECK(left >= 90 && left <= 100);
    struct itimerspec cur;
    CHECK_OK(timer_gettime(t, &cur));
    CHECK(ts_ns(cur.it_value) > 0);
    CHECK_OK(timer_delete(t));
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    test_alarm();
    test_itimer_real();
    test_itimer_cpu();
    test_busy_loop_alarm();
    test_sleep_interrupted();
    test_sleep_lets_threads_run();
    test_posix_timer();
    test_realtime_and_none();
    test_sigev_thread();
    test_thread_id();
    test_fork_inheritance();
    return check_done();
}
