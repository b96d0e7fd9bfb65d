/*
 * sig_basic: signal delivery.
 * Man pages: signal(7), sigaction(2), sigprocmask(2), sigsuspend(2), sigtimedwait(2),
 * sigwait(3), sigqueue(3), rt_sigqueueinfo(2) (rt_tgsigqueueinfo), tgkill(2), kill(2),
 * sigaltstack(2), sigsetjmp(3), sigreturn(2), pipe(7) (SIGPIPE/EPIPE), mprotect(2),
 * clock_gettime(2) (CLOCK_PROCESS_CPUTIME_ID).
 *
 * Covers: kill(getpid(), 0) and the si_code of kill/tgkill/raise (SI_USER, SI_TKILL);
 * sigsuspend sleeps (little CPU used) until a thread or a child sends the signal;
 * sigtimedwait/sigwaitinfo/sigwait consume a blocked signal without running its handler and
 * time out with EAGAIN; sigqueue/rt_sigqueueinfo values (SI_QUEUE, si_value) and EPERM for
 * kernel si_codes sent to another process; real-time signals queue (three deliveries, FIFO
 * values, lowest number first) while standard signals coalesce; rt_tgsigqueueinfo and
 * tgkill target one thread (ESRCH, EINVAL, EPERM cases); SA_RESTART vs EINTR for a blocking
 * pipe read; SA_RESETHAND (reset on entry, the signal still blocked in the handler, the
 * second delivery kills); SA_NODEFER nesting; sa_mask and the ucontext's uc_sigmask (which
 * sigreturn restores, even when the handler changes it); sigaltstack with SA_ONSTACK
 * (SS_ONSTACK inside, EPERM, ENOMEM, EINVAL, SS_DISABLE) and a stack overflow recovered on
 * the alternate stack; faults recovered with siglongjmp: SEGV_MAPERR (including address 0)
 * and SEGV_ACCERR (read, write, execute) with exact si_addr, SIGBUS BUS_ADRERR past the end
 * of a file mapping, SIGILL (ILL_ILLOPC on aarch64) and SIGTRAP (brk #0: TRAP_BRKPT) at the
 * faulting instruction; newly written code runs after mprotect(PROT_EXEC), and rewritten
 * code runs in its new form; a fault while its signal is blocked kills; all general and
 * vector registers and NZCV survive a handler that clobbers them all (aarch64: delivered at
 * a system call and asynchronously into a loop that makes none); SIGPIPE (kills by default,
 * EPIPE when ignored, pending with EPIPE when blocked).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "scratch.h"

#define MS 1000000LL
#define NSEC 1000000000LL

static long long now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return ts.tv_sec * NSEC + ts.tv_nsec;
}

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

static void set_handler(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(sig, &sa, NULL));
}

static sigset_t one_sig(int sig)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    return s;
}

/* What the last run of `record` saw. */
static volatile int rec_count, rec_sig, rec_code, rec_value;
static volatile pid_t rec_pid, rec_tid;
static volatile uid_t rec_uid;

static void record(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    rec_sig = sig;
    rec_code = si->si_code;
    rec_pid = si->si_pid;
    rec_uid = si->si_uid;
    rec_value = si->si_value.sival_int;
    rec_tid = gettid();
    rec_count++;
}

static void reset_record(void)
{
    rec_count = rec_sig = rec_code = rec_value = 0;
    rec_pid = rec_tid = 0;
    rec_uid = (uid_t)-1;
}

/* ---- kill to self ---- */

static void test_kill_self(void)
{
    CHECK_OK(kill(getpid(), 0));
    CHECK_OK(kill(0, 0));
    CHECK_ERR(kill(getpid(), 65), EINVAL);
    set_handler(SIGUSR1, record, 0);
    reset_record();
    CHECK_OK(kill(getpid(), SIGUSR1)); /* delivered before kill returns */
    CHECK_EQ(rec_count, 1);
    CHECK_EQ(rec_sig, SIGUSR1);
    CHECK_EQ(rec_code, SI_USER);
    CHECK_EQ(rec_pid, getpid());
    CHECK_EQ(rec_uid, getuid());
    reset_record();
    CHECK_OK(syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1));
    CHECK_EQ(rec_count, 1);
    CHECK_EQ(rec_code, SI_TKILL);
    CHECK_EQ(rec_pid, getpid());
    reset_record();
    CHECK_OK(raise(SIGUSR1));
    CHECK_EQ(rec_count, 1);
    CHECK_EQ(rec_code, SI_TKILL);
    signal(SIGUSR1, SIG_DFL);
}

/* ---- sigsuspend ---- */

static void *kill_later(void *arg)
{
    (void)arg;
    sleep_ms(200);
    kill(getpid(), SIGUSR1);
    return NULL;
}

static void test_sigsuspend(void)
{
    set_handler(SIGUSR1, record, 0);
    sigset_t usr1 = one_sig(SIGUSR1), old, empty;
    sigemptyset(&empty);
    CHECK_OK(sigprocmask(SIG_BLOCK, &usr1, &old));
    for (int from_child = 0; from_child < 2; from_child++) {
        reset_record();
        long long cpu0 = now_ns(CLOCK_PROCESS_CPUTIME_ID), t0 = now_ns(CLOCK_MONOTONIC);
        pthread_t t;
        pid_t pid = -1;
        if (from_child) {
            pid = fork();
            if (pid == 0) {
                sleep_ms(200);
                kill(getppid(), SIGUSR1);
                _exit(0);
            }
        } else {
            /* The thread inherits the blocked mask, so the signal must come to us. */
            CHECK_EQ(pthread_create(&t, NULL, kill_later, NULL), 0);
        }
        int rc = 0, err = 0, loops = 0;
        while (rec_count == 0 && loops++ < 100) {
            rc = sigsuspend(&empty);
            err = errno;
        }
        long long cpu = now_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
        long long wall = now_ns(CLOCK_MONOTONIC) - t0;
        CHECK_EQ(rc, -1);
        CHECK_EQ(err, EINTR);
        CHECK_EQ(rec_count, 1);
        CHECK_EQ(rec_tid, gettid());
        CHECK(wall >= 200 * MS);
        CHECK(cpu < 50 * MS); /* slept, did not spin */
        sigset_t now;
        CHECK_OK(sigprocmask(SIG_BLOCK, NULL, &now));
        CHECK_EQ(sigismember(&now, SIGUSR1), 1); /* the mask is back */
        if (from_child)
            CHECK_EQ(reap(pid), 0);
        else
            CHECK_EQ(pthread_join(t, NULL), 0);
    }
    CHECK_OK(sigprocmask(SIG_SETMASK, &old, NULL));
    signal(SIGUSR1, SIG_DFL);
}

/* ---- sigtimedwait ---- */

static void test_sigtimedwait(void)
{
    set_handler(SIGUSR1, record, 0);
    sigset_t usr1 = one_sig(SIGUSR1), old, pend;
    CHECK_OK(sigprocmask(SIG_BLOCK, &usr1, &old));
    reset_record();
    siginfo_t si;
    struct timespec to = {5, 0};

    CHECK_OK(raise(SIGUSR1));
    memset(&si, 0, sizeof si);
    CHECK_EQ(syscall(SYS_rt_sigtimedwait, &usr1, &si, &to, 8), SIGUSR1);
    CHECK_EQ(si.si_signo, SIGUSR1);
    CHECK_EQ(si.si_code, SI_TKILL);
    CHECK_EQ(si.si_pid, getpid());
    CHECK_EQ(rec_count, 0); /* consumed, not handled */
    CHECK_OK(sigpending(&pend));
    CHECK_EQ(sigismember(&pend, SIGUSR1), 0);
    /* glibc's sigtimedwait()/sigwaitinfo() fold SI_TKILL into SI_USER. */
    CHECK_OK(raise(SIGUSR1));
    memset(&si, 0, sizeof si);
    CHECK_EQ(sigtimedwait(&usr1, &si, &to), SIGUSR1);
    CHECK_EQ(si.si_code, SI_USER);
    CHECK_EQ(si.si_pid, getpid());

    CHECK_OK(kill(getpid(), SIGUSR1));
    memset(&si, 0, sizeof si);
    CHECK_EQ(sigwaitinfo(&usr1, &si), SIGUSR1);
    CHECK_EQ(si.si_code, SI_USER);
    CHECK_EQ(si.si_uid, getuid());

    CHECK_OK(kill(getpid(), SIGUSR1));
    int got = 0;
    CHECK_EQ(sigwait(&usr1, &got), 0);
    CHECK_EQ(got, SIGUSR1);
    CHECK_EQ(rec_count, 0);

    struct timespec t100 = {0, 100 * MS}, zero = {0, 0}, bad = {0, NSEC};
    long long t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_ERR(sigtimedwait(&usr1, &si, &t100), EAGAIN);
    long long el = now_ns(CLOCK_MONOTONIC) - t0;
    CHECK(el >= 100 * MS);
    CHECK(el < 10 * NSEC);
    t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_ERR(sigtimedwait(&usr1, &si, &zero), EAGAIN);
    CHECK(now_ns(CLOCK_MONOTONIC) - t0 < 5 * NSEC);
    CHECK_ERR(sigtimedwait(&usr1, &si, &bad), EINVAL);

    /* A pending signal outside the wait set is left alone. */
    sigset_t usr2 = one_sig(SIGUSR2);
    CHECK_OK(sigprocmask(SIG_BLOCK, &usr2, NULL));
    CHECK_OK(raise(SIGUSR2));
    CHECK_ERR(sigtimedwait(&usr1, &si, &zero), EAGAIN);
    CHECK_EQ(sigtimedwait(&usr2, &si, &zero), SIGUSR2);

    CHECK_OK(sigprocmask(SIG_SETMASK, &old, NULL));
    CHECK_EQ(rec_count, 0);
    signal(SIGUSR1, SIG_DFL);
}

/* ---- sigqueue ---- */

static void test_sigqueue(void)
{
    set_handler(SIGUSR2, record, 0);
    reset_record();
    CHECK_OK(sigqueue(getpid(), SIGUSR2, (union sigval){.sival_int = 1234}));
    CHECK_EQ(rec_count, 1);
    CHECK_EQ(rec_code, SI_QUEUE);
    CHECK_EQ(rec_value, 1234);
    CHECK_EQ(rec_pid, getpid());
    CHECK_EQ(rec_uid, getuid());

    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR2;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = -77;
    reset_record();
    CHECK_OK(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR2, &si));
    CHECK_EQ(rec_count, 1);
    CHECK_EQ(rec_code, SI_QUEUE);
    CHECK_EQ(rec_value, -77);
    /* To ourselves even a kernel-looking si_code is allowed... */
    si.si_code = SI_USER;
    reset_record();
    CHECK_OK(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR2, &si));
    CHECK_EQ(rec_code, SI_USER);
    /* ... but not to another process. */
    int pfd[2];
    CHECK_OK(pipe(pfd));
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        if (read(pfd[0], &c, 1) < 0) {
        }
        _exit(0);
    }
    CHECK_ERR(syscall(SYS_rt_sigqueueinfo, pid, SIGUSR2, &si), EPERM);
    si.si_code = SI_TKILL;
    CHECK_ERR(syscall(SYS_rt_sigqueueinfo, pid, SIGUSR2, &si), EPERM);
    si.si_code = SI_QUEUE;
    CHECK_OK(syscall(SYS_rt_sigqueueinfo, pid, 0, &si)); /* signal 0: permission check only */
    CHECK_ERR(sigqueue(pid, 65, (union sigval){0}), EINVAL);
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_EQ(reap(pid), SIGKILL);
    close(pfd[0]);
    close(pfd[1]);
    signal(SIGUSR2, SIG_DFL);
}

/* ---- queueing and order ---- */

static volatile int seq_n;
static volatile int seq_sig[16], seq_val[16];

static void record_seq(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (seq_n < 16) {
        seq_sig[seq_n] = sig;
        seq_val[seq_n] = si->si_code == SI_QUEUE ? si->si_value.sival_int : -1;
        seq_n++;
    }
}

static void test_queueing(void)
{
    int sigs[3] = {SIGUSR1, SIGRTMIN, SIGRTMIN + 1};
    sigset_t set, old;
    sigemptyset(&set);
    for (int i = 0; i < 3; i++)
        sigaddset(&set, sigs[i]);
    for (int i = 0; i < 3; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = record_seq;
        sa.sa_flags = SA_SIGINFO;
        sa.sa_mask = set; /* one handler at a time: they run in delivery order */
        CHECK_OK(sigaction(sigs[i], &sa, NULL));
    }
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, &old));
    seq_n = 0;
    CHECK_OK(sigqueue(getpid(), SIGRTMIN + 1, (union sigval){.sival_int = 10}));
    for (int v = 1; v <= 3; v++)
        CHECK_OK(sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = v}));
    for (int i = 0; i < 3; i++)
        CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_EQ(seq_n, 0);
    CHECK_OK(sigprocmask(SIG_SETMASK, &old, NULL));
    /* SIGUSR1 once (standard signals coalesce), then the real-time ones: lowest number
     * first, each number's instances in the order sent. */
    CHECK_EQ(seq_n, 5);
    static const int want_off[5] = {-1, 0, 0, 0, 1}, want_val[5] = {-1, 1, 2, 3, 10};
    for (int i = 0; i < 5 && i < seq_n; i++) {
        CHECK_EQ(seq_sig[i], want_off[i] < 0 ? SIGUSR1 : SIGRTMIN + want_off[i]);
        CHECK_EQ(seq_val[i], want_val[i]);
    }
    for (int i = 0; i < 3; i++)
        signal(sigs[i], SIG_DFL);
}

/* ---- thread-directed ---- */

static volatile pid_t worker_tid;
static volatile int worker_stop;

static void *sigsuspend_worker(void *arg)
{
    (void)arg;
    sigset_t empty;
    sigemptyset(&empty);
    worker_tid = gettid();
    while (!worker_stop)
        sigsuspend(&empty);
    return NULL;
}

static void test_thread_directed(void)
{
    set_handler(SIGUSR2, record, 0);
    sigset_t usr2 = one_sig(SIGUSR2), old;
    CHECK_OK(pthread_sigmask(SIG_BLOCK, &usr2, &old)); /* only the worker can take it */
    worker_tid = 0;
    worker_stop = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, sigsuspend_worker, NULL), 0);
    while (worker_tid == 0)
        sched_yield();

    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR2;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = 77;
    reset_record();
    CHECK_OK(syscall(SYS_rt_tgsigqueueinfo, getpid(), worker_tid, SIGUSR2, &si));
    for (int i = 0; i < 10000 && rec_count == 0; i++)
        sleep_ms(1);
    CHECK_EQ(rec_count, 1);
    CHECK_EQ(rec_tid, worker_tid);
    CHECK_EQ(rec_code, SI_QUEUE);
    CHECK_EQ(rec_value, 77);

    reset_record();
    CHECK_EQ(pthread_sigqueue(t, SIGUSR2, (union sigval){.sival_int = 78}), 0);
    for (int i = 0; i < 10000 && rec_count == 0; i++)
        sleep_ms(1);
    CHECK_EQ(rec_tid, worker_tid);
    CHECK_EQ(rec_value, 78);

    reset_record();
    CHECK_OK(syscall(SYS_tgkill, getpid(), worker_tid, SIGUSR2));
    for (int i = 0; i < 10000 && rec_count == 0; i++)
        sleep_ms(1);
    CHECK_EQ(rec_tid, worker_tid);
    CHECK_EQ(rec_code, SI_TKILL);

    /* Errors: a kernel si_code to another thread, a tid outside the group, bad ids. */
    si.si_code = SI_USER;
    CHECK_ERR(syscall(SYS_rt_tgsigqueueinfo, getpid(), worker_tid, SIGUSR2, &si), EPERM);
    CHECK_ERR(syscall(SYS_tgkill, getppid(), worker_tid, 0), ESRCH);
    CHECK_ERR(syscall(SYS_tgkill, getpid(), 0, 0), EINVAL);
    CHECK_ERR(syscall(SYS_tgkill, 0, worker_tid, 0), EINVAL);
    CHECK_ERR(syscall(SYS_tgkill, getpid(), worker_tid, 65), EINVAL);
    CHECK_OK(syscall(SYS_tgkill, getpid(), worker_tid, 0));

    worker_stop = 1;
    CHECK_EQ(pthread_kill(t, SIGUSR2), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_OK(pthread_sigmask(SIG_SETMASK, &old, NULL));
    signal(SIGUSR2, SIG_DFL);
}

/* ---- SA_RESTART ---- */

static int rpipe[2];
static volatile long reader_ret;
static volatile int reader_err, reader_done;
static char reader_buf[16];

static void *reader(void *arg)
{
    (void)arg;
    long r = read(rpipe[0], reader_buf, sizeof reader_buf);
    reader_err = r < 0 ? errno : 0;
    reader_ret = r;
    __atomic_store_n(&reader_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void restart_case(int restart)
{
    set_handler(SIGUSR1, record, restart ? SA_RESTART : 0);
    CHECK_OK(pipe(rpipe));
    reset_record();
    reader_done = 0;
    memset(reader_buf, 0, sizeof reader_buf);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, reader, NULL), 0);
    if (!restart) {
        /* Signal until the read gives up (a signal that lands before the read starts is
         * just handled; the next one interrupts it). */
        for (int i = 0; i < 500 && !reader_done; i++) {
            pthread_kill(t, SIGUSR1);
            sleep_ms(20);
        }
        CHECK_EQ(reader_done, 1);
        CHECK_EQ(reader_ret, -1);
        CHECK_EQ(reader_err, EINTR);
    } else {
        for (int i = 1; i <= 3; i++) {
            pthread_kill(t, SIGUSR1);
            for (int j = 0; j < 10000 && rec_count < i; j++)
                sleep_ms(1);
            sleep_ms(20);
        }
        CHECK_EQ(rec_count, 3);
        CHECK_EQ(reader_done, 0); /* the read went on after each handler */
        CHECK_EQ(write(rpipe[1], "data", 4), 4);
        for (int i = 0; i < 10000 && !reader_done; i++)
            sleep_ms(1);
        CHECK_EQ(reader_ret, 4);
        CHECK(memcmp(reader_buf, "data", 4) == 0);
    }
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(rec_count >= 1);
    close(rpipe[0]);
    close(rpipe[1]);
    signal(SIGUSR1, SIG_DFL);
}

static void test_restart(void)
{
    restart_case(0);
    restart_case(1);
}

/* ---- SA_RESETHAND, SA_NODEFER, masks ---- */

static volatile int in_handler_blocked, in_handler_is_dfl;

static void resethand_handler(int sig)
{
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    in_handler_blocked = sigismember(&cur, sig);
    struct sigaction now;
    sigaction(sig, NULL, &now);
    in_handler_is_dfl = now.sa_handler == SIG_DFL;
    rec_count++;
}

static void test_resethand(void)
{
    int pfd[2];
    CHECK_OK(pipe(pfd));
    pid_t pid = fork();
    if (pid == 0) {
        check_failures = 0;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = resethand_handler;
        sa.sa_flags = SA_RESETHAND;
        CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
        rec_count = 0;
        CHECK_OK(raise(SIGUSR1));
        CHECK_EQ(rec_count, 1);
        CHECK_EQ(in_handler_is_dfl, 1);   /* reset on entry */
        CHECK_EQ(in_handler_blocked, 1);  /* Linux still blocks it (no implied SA_NODEFER) */
        struct sigaction now;
        CHECK_OK(sigaction(SIGUSR1, NULL, &now));
        CHECK(now.sa_handler == SIG_DFL);
        char c = check_failures ? 1 : 0;
        if (write(pfd[1], &c, 1) != 1)
            _exit(3);
        raise(SIGUSR1); /* the default action now: death */
        _exit(4);
    }
    close(pfd[1]);
    char c = 9;
    CHECK_EQ(read(pfd[0], &c, 1), 1);
    CHECK_EQ(c, 0);
    close(pfd[0]);
    int st = reap(pid);
    CHECK(WIFSIGNALED(st));
    CHECK_EQ(WTERMSIG(st), SIGUSR1);
}

static volatile int depth, max_depth, total;

static void nesting_handler(int sig)
{
    depth++;
    total++;
    if (depth > max_depth)
        max_depth = depth;
    if (total == 1)
        raise(sig);
    depth--;
}

static void test_nodefer(void)
{
    for (int nodefer = 0; nodefer < 2; nodefer++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = nesting_handler;
        sa.sa_flags = nodefer ? SA_NODEFER : 0;
        CHECK_OK(sigaction(SIGUSR2, &sa, NULL));
        depth = max_depth = total = 0;
        CHECK_OK(raise(SIGUSR2));
        CHECK_EQ(total, 2);
        CHECK_EQ(max_depth, nodefer ? 2 : 1);
    }
    signal(SIGUSR2, SIG_DFL);
}

static volatile int mask_ok, ucmask_ok;

static void mask_handler(int sig, siginfo_t *si, void *ucv)
{
    (void)si;
    ucontext_t *uc = ucv;
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    mask_ok = sigismember(&cur, sig) && sigismember(&cur, SIGUSR2) && !sigismember(&cur, SIGHUP);
    /* uc_sigmask is the mask to return to: the one before the signal. */
    ucmask_ok = !sigismember(&uc->uc_sigmask, sig) && !sigismember(&uc->uc_sigmask, SIGUSR2) &&
                sigismember(&uc->uc_sigmask, SIGWINCH);
    sigaddset(&uc->uc_sigmask, SIGHUP); /* sigreturn installs this */
}

static void test_handler_mask(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = mask_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    sigset_t old, winch = one_sig(SIGWINCH), cur;
    CHECK_OK(sigprocmask(SIG_BLOCK, &winch, &old));
    mask_ok = ucmask_ok = 0;
    CHECK_OK(raise(SIGUSR1));
    CHECK_EQ(mask_ok, 1);
    CHECK_EQ(ucmask_ok, 1);
    CHECK_OK(sigprocmask(SIG_BLOCK, NULL, &cur));
    CHECK_EQ(sigismember(&cur, SIGHUP), 1);
    CHECK_EQ(sigismember(&cur, SIGWINCH), 1);
    CHECK_EQ(sigismember(&cur, SIGUSR1), 0);
    CHECK_EQ(sigismember(&cur, SIGUSR2), 0);
    CHECK_OK(sigprocmask(SIG_SETMASK, &old, NULL));
    signal(SIGUSR1, SIG_DFL);
}

/* ---- sigaltstack ---- */

static char *alt_base;
static size_t alt_size;
static volatile uintptr_t handler_sp;
static volatile int handler_ss_flags, handler_eperm;

static void where_handler(int sig)
{
    (void)sig;
    volatile int local = 0;
    handler_sp = (uintptr_t)&local;
    stack_t cur, other = {.ss_sp = alt_base, .ss_size = alt_size, .ss_flags = 0};
    sigaltstack(NULL, &cur);
    handler_ss_flags = cur.ss_flags;
    handler_eperm = sigaltstack(&other, NULL) == -1 && errno == EPERM;
}

static int on_alt(uintptr_t p)
{
    return p >= (uintptr_t)alt_base && p < (uintptr_t)alt_base + alt_size;
}

static sigjmp_buf overflow_jmp;
static volatile int overflow_caught, overflow_on_alt;

static void overflow_handler(int sig)
{
    (void)sig;
    volatile int local = 0;
    overflow_on_alt = on_alt((uintptr_t)&local);
    overflow_caught = 1;
    siglongjmp(overflow_jmp, 1);
}

static volatile int recurse_limit = 1 << 30;

static int recurse(int n)
{
    volatile char pad[512];
    pad[0] = (char)n;
    if (n >= recurse_limit) /* never: the stack runs out long before */
        return 0;
    return recurse(n + 1) + pad[0];
}

static void *overflow_thread(void *arg)
{
    (void)arg;
    stack_t ss = {.ss_sp = alt_base, .ss_size = alt_size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0)
        return (void *)1;
    if (sigsetjmp(overflow_jmp, 1) == 0)
        recurse(0);
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    return NULL;
}

static void test_altstack(void)
{
    alt_size = 64 * 1024;
    alt_base = mmap(NULL, alt_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(alt_base != MAP_FAILED);
    stack_t ss = {.ss_sp = alt_base, .ss_size = alt_size, .ss_flags = 0}, cur;
    memset(&cur, 0, sizeof cur);
    CHECK_OK(sigaltstack(NULL, &cur));
    CHECK_EQ(cur.ss_flags, SS_DISABLE);
    CHECK_OK(sigaltstack(&ss, NULL));
    CHECK_OK(sigaltstack(NULL, &cur));
    CHECK_EQ(cur.ss_flags, 0);
    CHECK(cur.ss_sp == alt_base);
    CHECK_EQ(cur.ss_size, alt_size);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = where_handler;
    sa.sa_flags = SA_ONSTACK;
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    handler_sp = 0;
    CHECK_OK(raise(SIGUSR1));
    CHECK(on_alt(handler_sp));
    CHECK_EQ(handler_ss_flags, SS_ONSTACK);
    CHECK_EQ(handler_eperm, 1); /* cannot change it while on it */
    sa.sa_flags = 0;
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    CHECK_OK(raise(SIGUSR1));
    CHECK(!on_alt(handler_sp));
    CHECK_EQ(handler_ss_flags, 0);

    stack_t small = {.ss_sp = alt_base, .ss_size = 512, .ss_flags = 0};
    CHECK_ERR(sigaltstack(&small, NULL), ENOMEM);
    stack_t badflags = {.ss_sp = alt_base, .ss_size = alt_size, .ss_flags = 0x1234};
    CHECK_ERR(sigaltstack(&badflags, NULL), EINVAL);
    stack_t off = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    CHECK_OK(sigaltstack(&off, NULL));
    CHECK_OK(sigaltstack(NULL, &cur));
    CHECK_EQ(cur.ss_flags, SS_DISABLE);
    sa.sa_flags = SA_ONSTACK; /* no alternate stack: the normal one is used */
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    CHECK_OK(raise(SIGUSR1));
    CHECK(!on_alt(handler_sp));
    signal(SIGUSR1, SIG_DFL);

    /* Stack overflow in a thread with a small stack, caught on the alternate stack. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = overflow_handler;
    sa.sa_flags = SA_ONSTACK | SA_NODEFER;
    CHECK_OK(sigaction(SIGSEGV, &sa, NULL));
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    pthread_t t;
    void *ret = (void *)1;
    overflow_caught = overflow_on_alt = 0;
    CHECK_EQ(pthread_create(&t, &attr, overflow_thread, NULL), 0);
    CHECK_EQ(pthread_join(t, &ret), 0);
    CHECK(ret == NULL);
    CHECK_EQ(overflow_caught, 1);
    CHECK_EQ(overflow_on_alt, 1);
    pthread_attr_destroy(&attr);
    signal(SIGSEGV, SIG_DFL);
    munmap(alt_base, alt_size);
}

/* ---- faults ---- */

static sigjmp_buf fault_jmp;
static volatile int fault_sig, fault_code;
static void *volatile fault_addr;

static void fault_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    fault_sig = sig;
    fault_code = si->si_code;
    fault_addr = si->si_addr;
    siglongjmp(fault_jmp, 1);
}

#ifdef __aarch64__
__asm__(".text\n"
        ".globl udf_insn\n.type udf_insn, %function\nudf_insn:\n .inst 0x00000000\n ret\n"
        ".globl brk_insn\n.type brk_insn, %function\nbrk_insn:\n brk #0\n ret\n");
static const uint32_t code42[] = {0x52800540, 0xd65f03c0}; /* mov w0, #42; ret */
static const uint32_t code43[] = {0x52800560, 0xd65f03c0}; /* mov w0, #43; ret */
#else
__asm__(".text\n"
        ".globl udf_insn\n.type udf_insn, @function\nudf_insn:\n ud2\n ret\n"
        ".globl brk_insn\n.type brk_insn, @function\nbrk_insn:\n int3\n ret\n");
static const unsigned char code42[] = {0xb8, 42, 0, 0, 0, 0xc3}; /* mov eax, 42; ret */
static const unsigned char code43[] = {0xb8, 43, 0, 0, 0, 0xc3};
#endif
void udf_insn(void);
void brk_insn(void);

enum { READ, WRITE, CALL };

static int probe(void *p, int how)
{
    fault_sig = fault_code = 0;
    fault_addr = NULL;
    if (sigsetjmp(fault_jmp, 1) == 0) {
        if (how == READ)
            (void)*(volatile char *)p;
        else if (how == WRITE)
            *(volatile char *)p = 1;
        else
            ((void (*)(void))p)();
        return 0;
    }
    return fault_sig;
}

static volatile uintptr_t null_addr = 0;

static void test_faults(void)
{
    const size_t PG = 4096;
    set_handler(SIGSEGV, fault_handler, 0);
    set_handler(SIGBUS, fault_handler, 0);
    set_handler(SIGILL, fault_handler, 0);
    set_handler(SIGTRAP, fault_handler, 0);

    char *p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p + PG, PG));
    CHECK_EQ(probe(p + PG + 123, READ), SIGSEGV);
    CHECK_EQ(fault_code, SEGV_MAPERR);
    CHECK(fault_addr == p + PG + 123);
    CHECK_EQ(probe(p + PG + 5, WRITE), SIGSEGV);
    CHECK_EQ(fault_code, SEGV_MAPERR);
    CHECK(fault_addr == p + PG + 5);
    CHECK_EQ(probe((void *)null_addr, READ), SIGSEGV);
    CHECK_EQ(fault_code, SEGV_MAPERR);
    CHECK(fault_addr == NULL);

    CHECK_OK(mprotect(p, PG, PROT_READ));
    CHECK_EQ(probe(p + 77, READ), 0);
    CHECK_EQ(probe(p + 77, WRITE), SIGSEGV);
    CHECK_EQ(fault_code, SEGV_ACCERR);
    CHECK(fault_addr == p + 77);
    CHECK_OK(mprotect(p, PG, PROT_NONE));
    CHECK_EQ(probe(p + 9, READ), SIGSEGV);
    CHECK_EQ(fault_code, SEGV_ACCERR);
    CHECK(fault_addr == p + 9);

    /* Code: not executable until mprotect(PROT_EXEC); rewritten code runs as rewritten. */
    CHECK_OK(mprotect(p, PG, PROT_READ | PROT_WRITE));
    memcpy(p, code42, sizeof code42);
    CHECK_EQ(probe(p, CALL), SIGSEGV);
    CHECK_EQ(fault_code, SEGV_ACCERR);
    CHECK(fault_addr == p);
    CHECK_OK(mprotect(p, PG, PROT_READ | PROT_EXEC));
    __builtin___clear_cache(p, p + sizeof code42);
    CHECK_EQ(((int (*)(void))p)(), 42);
    CHECK_OK(mprotect(p, PG, PROT_READ | PROT_WRITE));
    memcpy(p, code43, sizeof code43);
    CHECK_OK(mprotect(p, PG, PROT_READ | PROT_EXEC));
    __builtin___clear_cache(p, p + sizeof code43);
    CHECK_EQ(((int (*)(void))p)(), 43);
    CHECK_OK(munmap(p, PG));

    /* SIGBUS: a whole page past the end of the file. */
    int fd = open(sp("short"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK_EQ(write(fd, "0123456789", 10), 10);
    char *f = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(f != MAP_FAILED);
    close(fd);
    CHECK_EQ(probe(f + 200, READ), 0); /* same page as the data: zeros, no fault */
    CHECK_EQ(f[200], 0);
    CHECK_EQ(probe(f + PG + 5, READ), SIGBUS);
    CHECK_EQ(fault_code, BUS_ADRERR);
    CHECK(fault_addr == f + PG + 5);
    CHECK_EQ(probe(f + PG + 6, WRITE), SIGBUS);
    CHECK(fault_addr == f + PG + 6);
    munmap(f, 2 * PG);

    /* An undefined instruction and a breakpoint, reported at the instruction. */
    CHECK_EQ(probe((void *)udf_insn, CALL), SIGILL);
#ifdef __aarch64__
    CHECK_EQ(fault_code, ILL_ILLOPC);
#else
    CHECK_EQ(fault_code, ILL_ILLOPN);
#endif
    CHECK(fault_addr == (void *)udf_insn);
    CHECK_EQ(probe((void *)brk_insn, CALL), SIGTRAP);
#ifdef __aarch64__
    CHECK_EQ(fault_code, TRAP_BRKPT);
    CHECK(fault_addr == (void *)brk_insn);
#endif

    /* A fault while its signal is blocked cannot be handled: it kills. */
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit rl = {0, 0};
        setrlimit(RLIMIT_CORE, &rl);
        sigset_t segv = one_sig(SIGSEGV);
        sigprocmask(SIG_BLOCK, &segv, NULL);
        fault_sig = 0;
        (void)*(volatile char *)null_addr;
        _exit(fault_sig == 0 ? 10 : 11);
    }
    int st = reap(pid);
    CHECK(WIFSIGNALED(st));
    CHECK_EQ(WTERMSIG(st), SIGSEGV);

    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    signal(SIGILL, SIG_DFL);
    signal(SIGTRAP, SIG_DFL);
}

/* ---- registers across a handler ---- */

#ifdef __aarch64__
/* Register images: x[n] at byte 8n (x[0] holds NZCV), v[n] at byte 320 + 16n. */
struct reg_image {
    uint64_t x[40];
    unsigned char v[32][16];
} __attribute__((aligned(16)));
struct reg_image regs_out;
volatile int clobber_ran, in_loop;
volatile long sig_args[3];

/* A handler written in assembly that destroys every register a handler could touch. */
#define CLX(n) "mov x" #n ", #0xdead\n"
#define CLV(n) "movi v" #n ".16b, #0xee\n"
#define X_ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) \
    M(14) M(15) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) M(28)
#define X_TESTED(M) M(3) M(4) M(5) M(6) M(7) M(9) M(10) M(11) M(12) M(13) M(14) M(15) M(16) \
    M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) M(28)
#define V_ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) \
    M(14) M(15) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27)   \
    M(28) M(29) M(30) M(31)
__asm__(".text\n.globl clobber_handler\n.type clobber_handler, %function\nclobber_handler:\n"
        "adrp x16, clobber_ran\n add x16, x16, :lo12:clobber_ran\n mov w17, #1\n str w17, [x16]\n"
        X_ALL(CLX) V_ALL(CLV) "msr nzcv, xzr\n mov x16, #0xdead\n mov x17, #0xdead\n ret\n");
void clobber_handler(int);

#define SETX(n) "movz x" #n ", #(" #n "*0x101)\n movk x" #n ", #(0xa000+" #n "), lsl #48\n"
#define SETV(n) "movi v" #n ".16b, #(" #n "+0x40)\n"
#define STX(n) "str x" #n ", [x8, #(" #n "*8)]\n"
#define STQ(n) "str q" #n ", [x8, #(320+" #n "*16)]\n"
#define SET_ALL X_TESTED(SETX) V_ALL(SETV) "mov x0, #0x60000000\n msr nzcv, x0\n"
#define STORE_ALL                                                                          \
    "adrp x8, regs_out\n add x8, x8, :lo12:regs_out\n mrs x0, nzcv\n str x0, [x8]\n"       \
    X_TESTED(STX) V_ALL(STQ)
#define CLOBBERS                                                                            \
    "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",  \
        "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", \
        "x26", "x27", "x28", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9",    \
        "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", \
        "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31", "cc", "memory"

/* Signal delivered on return from tgkill. */
static void regs_at_syscall(void)
{
    sig_args[0] = getpid();
    sig_args[1] = gettid();
    sig_args[2] = SIGUSR1;
    __asm__ volatile(SET_ALL
                     "adrp x8, sig_args\n add x8, x8, :lo12:sig_args\n"
                     "ldr x0, [x8]\n ldr x1, [x8, #8]\n ldr x2, [x8, #16]\n"
                     "mov x8, #131\n svc #0\n" STORE_ALL
                     :
                     :
                     : CLOBBERS);
}

/* Signal delivered asynchronously while spinning (no system calls) until the handler ran,
 * for at most 2^32 iterations. */
static void regs_in_loop(void)
{
    __asm__ volatile(SET_ALL
                     "adrp x1, in_loop\n add x1, x1, :lo12:in_loop\n mov w2, #1\n str w2, [x1]\n"
                     "adrp x1, clobber_ran\n add x1, x1, :lo12:clobber_ran\n"
                     "mov x0, #1\n lsl x0, x0, #32\n"
                     "1: ldr w2, [x1]\n cbnz w2, 2f\n sub x0, x0, #1\n cbnz x0, 1b\n"
                     "2:\n" STORE_ALL
                     :
                     :
                     : CLOBBERS);
}

static void check_regs(void)
{
    int bad_x = 0, bad_v = 0;
    static const int tested[] = {3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                                 19, 20, 21, 22, 23, 24, 25, 26, 27, 28};
    for (unsigned i = 0; i < sizeof tested / sizeof tested[0]; i++) {
        int n = tested[i];
        if (regs_out.x[n] != (((uint64_t)(0xa000 + n) << 48) | (uint64_t)(n * 0x101)))
            bad_x++;
    }
    for (int n = 0; n < 32; n++)
        for (int b = 0; b < 16; b++)
            if (regs_out.v[n][b] != n + 0x40)
                bad_v++;
    CHECK_EQ(bad_x, 0);
    CHECK_EQ(bad_v, 0);
    CHECK_EQ(regs_out.x[0] & 0xf0000000, 0x60000000); /* NZCV: Z and C set */
}

static pthread_t main_thread;

static void *poke_when_looping(void *arg)
{
    (void)arg;
    while (!in_loop)
        sched_yield();
    sleep_ms(10);
    pthread_kill(main_thread, SIGUSR1);
    return NULL;
}

static void test_registers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = clobber_handler;
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));

    clobber_ran = 0;
    memset(&regs_out, 0, sizeof regs_out);
    regs_at_syscall();
    CHECK_EQ(clobber_ran, 1);
    check_regs();

    clobber_ran = in_loop = 0;
    memset(&regs_out, 0, sizeof regs_out);
    main_thread = pthread_self();
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, poke_when_looping, NULL), 0);
    regs_in_loop();
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(clobber_ran, 1);
    check_regs();
    signal(SIGUSR1, SIG_DFL);
}
#else
static void plain_handler(int sig)
{
    (void)sig;
    volatile double d = 1.5;
    volatile long l = 7;
    for (int i = 0; i < 10; i++)
        d = d * 3.25 + (double)(l += i);
}

static void test_registers(void)
{
    signal(SIGUSR1, plain_handler);
    volatile long a = 0x1234567890abcdefL, b = -5;
    volatile double x = 2.75, y = -1e300;
    raise(SIGUSR1);
    CHECK_EQ(a, 0x1234567890abcdefL);
    CHECK_EQ(b, -5);
    CHECK(x == 2.75 && y == -1e300);
    signal(SIGUSR1, SIG_DFL);
}
#endif

/* ---- SIGPIPE ---- */

static void test_sigpipe(void)
{
    int pfd[2];
    CHECK_OK(pipe(pfd));
    close(pfd[0]);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        if (write(pfd[1], "x", 1) < 0) {
        }
        _exit(5);
    }
    int st = reap(pid);
    CHECK(WIFSIGNALED(st));
    CHECK_EQ(WTERMSIG(st), SIGPIPE);

    signal(SIGPIPE, SIG_IGN);
    CHECK_ERR(write(pfd[1], "x", 1), EPIPE);
    signal(SIGPIPE, SIG_DFL);

    sigset_t pipe_set = one_sig(SIGPIPE), old;
    CHECK_OK(sigprocmask(SIG_BLOCK, &pipe_set, &old));
    CHECK_ERR(write(pfd[1], "x", 1), EPIPE);
    siginfo_t si;
    struct timespec zero = {0, 0};
    memset(&si, 0, sizeof si);
    CHECK_EQ(syscall(SYS_rt_sigtimedwait, &pipe_set, &si, &zero, 8), SIGPIPE);
    CHECK_EQ(si.si_code, SI_USER); /* the kernel's send_sig(SIGPIPE, current, 0) */
    CHECK_EQ(si.si_pid, getpid());
    CHECK_OK(sigprocmask(SIG_SETMASK, &old, NULL));
    close(pfd[1]);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    scratch_init();
    test_kill_self();
    test_sigsuspend();
    test_sigtimedwait();
    test_sigqueue();
    test_queueing();
    test_thread_directed();
    test_restart();
    test_resethand();
    test_nodefer();
    test_handler_mask();
    test_altstack();
    test_faults();
    test_registers();
    test_sigpipe();
    scratch_cleanup();
    return check_done();
}
