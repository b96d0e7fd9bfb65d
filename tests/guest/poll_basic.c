/*
 * poll_basic: ppoll, pselect6, eventfd and timerfd.
 * Man pages: poll(2) (ppoll), select(2) (pselect6), eventfd(2), timerfd_create(2)
 * (timerfd_settime, timerfd_gettime), signal(7), fork(2).
 *
 * Covers: poll on pipes (readable, writable, POLLHUP after the write end closes), a regular
 * file and /dev/null (always ready), POLLNVAL for a closed descriptor, negative descriptors
 * ignored; EINVAL for nfds above RLIMIT_NOFILE, EFAULT for a bad array; ppoll's timeout
 * (0 returns at once, a short one elapses and is rewritten with the time left, EINVAL for a
 * bad one); ppoll's signal mask letting a blocked signal in (EINTR, the handler ran, the
 * mask is back afterwards) and EINVAL for a bad mask size; pselect6 with read/write sets,
 * its timeout, EINVAL for nfds < 0, EBADF for a closed descriptor in a set, nfds beyond
 * FD_SETSIZE; a child writing a pipe after fork wakes the parent's poll. eventfd: counter
 * and semaphore modes, EFD_NONBLOCK (EAGAIN), EINVAL for short buffers and for
 * 0xffffffffffffffff, the 0xfffffffffffffffe limit, poll readiness, a read blocked until
 * another thread writes, fcntl flags, fstat and /proc/self/fd. timerfd: one-shot and
 * interval timers (expirations counted when the reader is late), TFD_TIMER_ABSTIME (also in
 * the past), timerfd_gettime, the old value from timerfd_settime, disarming, TFD_NONBLOCK
 * (EAGAIN), EINVAL cases, poll readiness, a blocking read.
 *
 * Timing checks have strict lower bounds and generous upper bounds (a loaded machine).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define MS 1000000LL
#define NSEC 1000000000LL

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * NSEC + ts.tv_nsec;
}

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig)
{
    (void)sig;
    got_usr1++;
}

static void test_poll_pipes(void)
{
    int p[2];
    CHECK_OK(pipe(p));
    struct pollfd fds[3] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}, {-1, POLLIN, 77}};
    CHECK_EQ(poll(fds, 3, 0), 1);
    CHECK_EQ(fds[0].revents, 0);
    CHECK_EQ(fds[1].revents, POLLOUT);
    CHECK_EQ(fds[2].revents, 0);
    CHECK_EQ(write(p[1], "abc", 3), 3);
    CHECK_EQ(poll(fds, 2, 0), 2);
    CHECK_EQ(fds[0].revents, POLLIN);
    close(p[1]);
    fds[1].fd = -1;
    CHECK_EQ(poll(fds, 2, 0), 1);
    CHECK_EQ(fds[0].revents, POLLIN | POLLHUP);
    char buf[8];
    CHECK_EQ(read(p[0], buf, sizeof buf), 3);
    CHECK_EQ(poll(fds, 1, 0), 1);
    CHECK_EQ(fds[0].revents, POLLHUP);
    close(p[0]);

    /* A closed descriptor is POLLNVAL, whatever was asked. */
    fds[0].fd = p[0];
    fds[0].events = 0;
    CHECK_EQ(poll(fds, 1, 0), 1);
    CHECK_EQ(fds[0].revents, POLLNVAL);

    /* Regular files and /dev/null are always ready. */
    int f = open("/proc/self/exe", O_RDONLY);
    if (f < 0)
        f = open("/bin/sh", O_RDONLY);
    int null = open("/dev/null", O_RDWR);
    struct pollfd always[2] = {{f, POLLIN | POLLOUT | POLLPRI, 0}, {null, POLLIN | POLLOUT, 0}};
    CHECK_EQ(poll(always, 2, 1000), 2);
    CHECK_EQ(always[0].revents, POLLIN | POLLOUT);
    CHECK_EQ(always[1].revents, POLLIN | POLLOUT);
    close(f);
    close(null);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    struct timespec zero = {0, 0};
    CHECK_ERR(syscall(SYS_ppoll, fds, rl.rlim_cur + 1, &zero, NULL, 8), EINVAL);
    CHECK_ERR(syscall(SYS_ppoll, (struct pollfd *)8, 1, &zero, NULL, 8), EFAULT);
}

static void test_ppoll_timeout_and_mask(void)
{
    int p[2];
    CHECK_OK(pipe(p));
    struct pollfd fd = {p[0], POLLIN, 0};
    struct timespec ts = {0, 0};
    CHECK_EQ(syscall(SYS_ppoll, &fd, 1, &ts, NULL, 8), 0);

    ts.tv_nsec = 50 * MS;
    long long t0 = now_ns();
    CHECK_EQ(syscall(SYS_ppoll, &fd, 1, &ts, NULL, 8), 0);
    long long took = now_ns() - t0;
    CHECK(took >= 50 * MS && took < 2000 * MS);
    CHECK_EQ(ts.tv_sec, 0);
    CHECK_EQ(ts.tv_nsec, 0);

    ts.tv_sec = -1;
    CHECK_ERR(syscall(SYS_ppoll, &fd, 1, &ts, NULL, 8), EINVAL);
    ts.tv_sec = 0;
    ts.tv_nsec = NSEC;
    CHECK_ERR(syscall(SYS_ppoll, &fd, 1, &ts, NULL, 8), EINVAL);

    /* The mask lets a blocked signal in: EINTR after the handler ran, old mask back. */
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t block, empty, now;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigemptyset(&empty);
    sigprocmask(SIG_BLOCK, &block, NULL);
    raise(SIGUSR1);
    CHECK_EQ(got_usr1, 0);
    ts.tv_sec = 5;
    ts.tv_nsec = 0;
    CHECK_ERR(ppoll(&fd, 1, &ts, &empty), EINTR);
    CHECK_EQ(got_usr1, 1);
    sigprocmask(SIG_BLOCK, NULL, &now);
    CHECK(sigismember(&now, SIGUSR1));

    /* Ready descriptors win over the signal: no EINTR, the signal stays pending. */
    raise(SIGUSR1);
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(ppoll(&fd, 1, &ts, &empty), 1);
    CHECK_EQ(got_usr1, 1);
    sigset_t pending;
    sigpending(&pending);
    CHECK(sigismember(&pending, SIGUSR1));
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    CHECK_EQ(got_usr1, 2);

    CHECK_ERR(syscall(SYS_ppoll, &fd, 1, &ts, &empty, 4), EINVAL);
    close(p[0]);
    close(p[1]);
}

static void test_pselect(void)
{
    int p[2];
    CHECK_OK(pipe(p));
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p[0], &r);
    FD_SET(p[1], &w);
    struct timespec ts = {0, 0};
    int n = p[0] > p[1] ? p[0] + 1 : p[1] + 1;
    CHECK_EQ(pselect(n, &r, &w, NULL, &ts, NULL), 1);
    CHECK(!FD_ISSET(p[0], &r));
    CHECK(FD_ISSET(p[1], &w));

    CHECK_EQ(write(p[1], "x", 1), 1);
    FD_SET(p[0], &r);
    FD_SET(p[1], &w);
    CHECK_EQ(pselect(n, &r, &w, NULL, &ts, NULL), 2);
    CHECK(FD_ISSET(p[0], &r));

    /* A timeout that elapses, rewritten by the raw call. */
    char c;
    CHECK_EQ(read(p[0], &c, 1), 1);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    ts.tv_nsec = 30 * MS;
    long long t0 = now_ns();
    CHECK_EQ(syscall(SYS_pselect6, n, &r, NULL, NULL, &ts, NULL), 0);
    CHECK(now_ns() - t0 >= 30 * MS);
    CHECK(!FD_ISSET(p[0], &r));
    CHECK_EQ(ts.tv_nsec, 0);

    CHECK_ERR(syscall(SYS_pselect6, -1, NULL, NULL, NULL, NULL, NULL), EINVAL);
    ts.tv_nsec = -1;
    CHECK_ERR(syscall(SYS_pselect6, n, NULL, NULL, NULL, &ts, NULL), EINVAL);

    /* A closed descriptor in a set is EBADF. */
    int closed = dup(p[0]);
    close(closed);
    FD_ZERO(&r);
    FD_SET(closed, &r);
    ts.tv_nsec = 0;
    CHECK_ERR(pselect(closed + 1, &r, NULL, NULL, &ts, NULL), EBADF);
    close(p[0]);
    close(p[1]);
}

/* nfds past FD_SETSIZE: Linux caps it at its table size. (Last: it aborts qemu.) */
static void test_pselect_big_nfds(void)
{
    int p[2];
    CHECK_OK(pipe(p));
    struct timespec ts = {0, 0};
    static unsigned long big[4096 / (8 * sizeof(unsigned long))];
    big[p[1] / 64] |= 1UL << (p[1] % 64);
    CHECK_EQ(syscall(SYS_pselect6, 4096, NULL, big, NULL, &ts, NULL), 1);
    CHECK(big[p[1] / 64] & (1UL << (p[1] % 64)));
    close(p[0]);
    close(p[1]);
}

static void test_poll_across_fork(void)
{
    int p[2];
    CHECK_OK(pipe(p));
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec d = {0, 50 * MS};
        nanosleep(&d, NULL);
        _exit(write(p[1], "z", 1) == 1 ? 0 : 1);
    }
    struct pollfd fd = {p[0], POLLIN, 0};
    CHECK_EQ(poll(&fd, 1, 5000), 1);
    CHECK_EQ(fd.revents, POLLIN);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(p[0]);
    close(p[1]);
}

static void *write_later(void *arg)
{
    struct timespec d = {0, 50 * MS};
    nanosleep(&d, NULL);
    uint64_t one = 1;
    if (write(*(int *)arg, &one, 8) != 8)
        return (void *)1;
    return NULL;
}

static void test_eventfd(void)
{
    int e = eventfd(5, 0);
    CHECK(e >= 0);
    uint64_t v = 0;
    char small[4];
    CHECK_ERR(read(e, small, 4), EINVAL);
    CHECK_ERR(write(e, small, 4), EINVAL);
    CHECK_EQ(read(e, &v, 8), 8);
    CHECK_EQ(v, 5);
    v = 0xffffffffffffffffULL;
    CHECK_ERR(write(e, &v, 8), EINVAL);
    v = 0xfffffffffffffffeULL;
    CHECK_EQ(write(e, &v, 8), 8);
    CHECK_EQ(fcntl(e, F_SETFL, O_NONBLOCK), 0);
    v = 1;
    CHECK_ERR(write(e, &v, 8), EAGAIN);
    struct pollfd fd = {e, POLLIN | POLLOUT, 0};
    CHECK_EQ(poll(&fd, 1, 0), 1);
    CHECK_EQ(fd.revents, POLLIN);
    CHECK_EQ(read(e, &v, 8), 8);
    CHECK_EQ(v, 0xfffffffffffffffeULL);
    CHECK_ERR(read(e, &v, 8), EAGAIN);
    CHECK_EQ(poll(&fd, 1, 0), 1);
    CHECK_EQ(fd.revents, POLLOUT);
    close(e);

    /* Semaphore mode hands out one at a time. */
    int s = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK_EQ(fcntl(s, F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDWR | O_NONBLOCK);
    CHECK_EQ(fcntl(s, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(read(s, &v, 8), 8);
    CHECK_EQ(v, 1);
    CHECK_EQ(read(s, &v, 8), 8);
    CHECK_EQ(v, 1);
    CHECK_ERR(read(s, &v, 8), EAGAIN);

    struct stat st;
    CHECK_OK(fstat(s, &st));
    CHECK_EQ(st.st_mode & S_IFMT, 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    char link[64] = {0}, path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", s);
    CHECK_EQ(readlink(path, link, sizeof link - 1), 20);
    CHECK(strcmp(link, "anon_inode:[eventfd]") == 0);
    CHECK_EQ(lseek(s, 0, SEEK_SET), 0);
    CHECK_ERR(lseek(s, 0, 7), EINVAL);
    CHECK_ERR(pread(s, &v, 8, 0), ESPIPE);
    close(s);

    CHECK_ERR(eventfd(0, 0x4), EINVAL);

    /* A blocking read waits for another thread's write. */
    int b = eventfd(0, 0);
    pthread_t t;
    pthread_create(&t, NULL, write_later, &b);
    long long t0 = now_ns();
    CHECK_EQ(read(b, &v, 8), 8);
    CHECK_EQ(v, 1);
    CHECK(now_ns() - t0 >= 40 * MS);
    void *ret;
    pthread_join(t, &ret);
    CHECK(ret == NULL);
    close(b);
}

static void test_timerfd(void)
{
    CHECK_ERR(timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0), EINVAL);
    CHECK_ERR(timerfd_create(CLOCK_MONOTONIC, 0x4), EINVAL);
    if (geteuid() != 0)
        CHECK_ERR(timerfd_create(CLOCK_REALTIME_ALARM, 0), EPERM);

    int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    CHECK(t >= 0);
    uint64_t n;
    CHECK_ERR(read(t, &n, 8), EAGAIN);
    CHECK_ERR(write(t, &n, 8), EINVAL);
    struct itimerspec its = {{0, 0}, {0, 30 * MS}}, old;
    CHECK_OK(timerfd_settime(t, 0, &its, NULL));
    CHECK_OK(timerfd_gettime(t, &old));
    CHECK(old.it_value.tv_sec == 0 && old.it_value.tv_nsec > 0 &&
          old.it_value.tv_nsec <= 30 * MS);
    struct pollfd fd = {t, POLLIN, 0};
    long long t0 = now_ns();
    CHECK_EQ(poll(&fd, 1, 5000), 1);
    CHECK(now_ns() - t0 >= 25 * MS);
    CHECK_EQ(read(t, &n, 8), 8);
    CHECK_EQ(n, 1);
    CHECK_ERR(read(t, &n, 8), EAGAIN);
    CHECK_OK(timerfd_gettime(t, &old));
    CHECK(old.it_value.tv_sec == 0 && old.it_value.tv_nsec == 0);

    /* A late reader gets every expiration of an interval timer. */
    its.it_interval.tv_nsec = 10 * MS;
    its.it_value.tv_nsec = 10 * MS;
    CHECK_OK(timerfd_settime(t, 0, &its, NULL));
    struct timespec d = {0, 105 * MS};
    nanosleep(&d, NULL);
    CHECK_EQ(read(t, &n, 8), 8);
    CHECK(n >= 9 && n < 100);

    /* The old value comes back; disarming stops it. */
    struct itimerspec off = {{0, 0}, {0, 0}};
    CHECK_OK(timerfd_settime(t, 0, &off, &old));
    CHECK_EQ(old.it_interval.tv_nsec, 10 * MS);
    CHECK(old.it_value.tv_nsec > 0 && old.it_value.tv_nsec <= 10 * MS);
    nanosleep(&d, NULL);
    CHECK_ERR(read(t, &n, 8), EAGAIN);

    /* Absolute times, also in the past. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct itimerspec abs = {{0, 0}, now};
    CHECK_OK(timerfd_settime(t, TFD_TIMER_ABSTIME, &abs, NULL));
    CHECK_EQ(read(t, &n, 8), 8);
    CHECK_EQ(n, 1);
    abs.it_value.tv_nsec += 40 * MS;
    if (abs.it_value.tv_nsec >= NSEC) {
        abs.it_value.tv_sec++;
        abs.it_value.tv_nsec -= NSEC;
    }
    CHECK_OK(timerfd_settime(t, TFD_TIMER_ABSTIME, &abs, NULL));
    CHECK_ERR(read(t, &n, 8), EAGAIN);

    /* A blocking read waits for the expiry. */
    CHECK_EQ(fcntl(t, F_SETFL, 0), 0);
    t0 = now_ns();
    CHECK_EQ(read(t, &n, 8), 8);
    CHECK_EQ(n, 1);
    CHECK(now_ns() - t0 >= 20 * MS);

    /* A real-time timer in absolute time. */
    int rt = timerfd_create(CLOCK_REALTIME, 0);
    clock_gettime(CLOCK_REALTIME, &now);
    struct itimerspec rabs = {{0, 0}, now};
    CHECK_OK(timerfd_settime(rt, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &rabs, NULL));
    CHECK_EQ(read(rt, &n, 8), 8);
    CHECK_EQ(n, 1);
    close(rt);

    its.it_value.tv_nsec = NSEC;
    CHECK_ERR(timerfd_settime(t, 0, &its, NULL), EINVAL);
    its.it_value.tv_nsec = 0;
    CHECK_ERR(timerfd_settime(t, 0x10, &its, NULL), EINVAL);
    int e = eventfd(0, 0);
    CHECK_ERR(timerfd_settime(e, 0, &its, NULL), EINVAL);
    CHECK_ERR(timerfd_gettime(e, &old), EINVAL);
    CHECK_ERR(timerfd_gettime(99, &old), EBADF);
    close(e);

    char link[64] = {0}, path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", t);
    CHECK_EQ(readlink(path, link, sizeof link - 1), 20);
    CHECK(strcmp(link, "anon_inode:[timerfd]") == 0);
    close(t);
}

int main(void)
{
    test_poll_pipes();
    test_ppoll_timeout_and_mask();
    test_pselect();
    test_poll_across_fork();
    test_eventfd();
    test_timerfd();
    test_pselect_big_nfds();
    return check_done();
}
