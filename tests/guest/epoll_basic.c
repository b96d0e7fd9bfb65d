/*
 * epoll_basic: epoll instances.
 * Man pages: epoll(7), epoll_create1(2), epoll_ctl(2), epoll_wait(2) (epoll_pwait,
 * epoll_pwait2), eventfd(2), timerfd_create(2), fork(2).
 *
 * Covers: level-triggered readiness of pipes and eventfds (reported on every wait), the user
 * data; edge-triggered: one event, none after a partial read, another once new data comes;
 * EPOLLONESHOT: one event, then nothing until EPOLL_CTL_MOD re-arms it; EPOLLHUP (and no
 * EPOLLRDHUP for a pipe) when the write end closes; a timerfd and an eventfd in one set;
 * nested instances (an epoll fd is readable while it has events) and ELOOP for a loop;
 * registrations keyed by (fd, description): a dup'ed descriptor is a second entry, closing
 * one descriptor of a dup'ed description keeps reporting, closing the last removes it;
 * epoll_pwait's timeout, its signal mask letting a blocked signal in (EINTR even with
 * SA_RESTART, the handler ran), epoll_pwait2's timespec; maxevents smaller than the ready
 * count takes turns; errors: EINVAL for bad flags, maxevents <= 0, an epoll fd added to itself,
 * a non-epoll epfd, EPOLLEXCLUSIVE with MOD, with EPOLLONESHOT or on an epoll fd, an unknown
 * op; EEXIST, ENOENT, EPERM for a regular file and /dev/null, EBADF, EFAULT; fstat and
 * /proc/self/fd; an epoll fd across fork sees the child's writes to a shared pipe.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
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

static int add(int ep, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static int mod(int ep, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};
    return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static void test_level_and_edge(void)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    CHECK_EQ(fcntl(ep, F_GETFD), FD_CLOEXEC);
    int lt[2], et[2];
    CHECK_OK(pipe(lt));
    CHECK_OK(pipe(et));
    CHECK_OK(add(ep, lt[0], EPOLLIN, 111));
    CHECK_OK(add(ep, et[0], EPOLLIN | EPOLLET, 222));
    struct epoll_event out[4];
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 0);

    CHECK_EQ(write(lt[1], "abcd", 4), 4);
    CHECK_EQ(write(et[1], "abcd", 4), 4);
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 2);
    /* Level-triggered is reported again; edge-triggered is not. */
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 1);
    CHECK_EQ(out[0].events, EPOLLIN);
    CHECK_EQ(out[0].data.u64, 111);

    /* A partial read of the edge-triggered pipe brings no new event... */
    char buf[8];
    CHECK_EQ(read(et[0], buf, 2), 2);
    CHECK_EQ(read(lt[0], buf, 4), 4);
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 0);
    CHECK_EQ(epoll_wait(ep, out, 4, 30), 0);
    /* ...until new data comes. */
    CHECK_EQ(write(et[1], "e", 1), 1);
    CHECK_EQ(epoll_wait(ep, out, 4, 1000), 1);
    CHECK_EQ(out[0].data.u64, 222);
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 0);

    /* Hang-up when the write end closes; pipes never report EPOLLRDHUP. */
    CHECK_OK(mod(ep, et[0], EPOLLIN | EPOLLRDHUP | EPOLLET, 333));
    close(et[1]);
    CHECK_EQ(epoll_wait(ep, out, 4, 1000), 1);
    CHECK_EQ(out[0].events, EPOLLIN | EPOLLHUP);
    CHECK_EQ(out[0].data.u64, 333);
    CHECK_EQ(read(et[0], buf, 8), 3);
    close(et[0]);
    close(lt[0]);
    close(lt[1]);
    close(ep);
}

static void test_oneshot_and_objects(void)
{
    int ep = epoll_create1(0);
    int e = eventfd(0, EFD_NONBLOCK);
    CHECK_OK(add(ep, e, EPOLLIN | EPOLLONESHOT, 7));
    uint64_t one = 1;
    CHECK_EQ(write(e, &one, 8), 8);
    struct epoll_event out[4];
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 1);
    CHECK_EQ(out[0].data.u64, 7);
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 0);
    CHECK_EQ(write(e, &one, 8), 8);
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 0);
    /* MOD re-arms it, and it reports the pending state at once. */
    CHECK_OK(mod(ep, e, EPOLLIN | EPOLLONESHOT, 8));
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 1);
    CHECK_EQ(out[0].data.u64, 8);
    CHECK_EQ(out[0].events, EPOLLIN);

    /* A timerfd wakes a wait at its expiry; eventfd writes wake it too. */
    int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    CHECK_OK(add(ep, t, EPOLLIN, 9));
    struct itimerspec its = {{0, 0}, {0, 40 * MS}};
    CHECK_OK(timerfd_settime(t, 0, &its, NULL));
    long long t0 = now_ns();
    CHECK_EQ(epoll_wait(ep, out, 4, 5000), 1);
    CHECK(now_ns() - t0 >= 35 * MS);
    CHECK_EQ(out[0].data.u64, 9);
    uint64_t n;
    CHECK_EQ(read(t, &n, 8), 8);
    CHECK_EQ(n, 1);

    /* Edge-triggered eventfd: every write is a new edge. */
    uint64_t drain;
    CHECK_EQ(read(e, &drain, 8), 8);
    CHECK_OK(mod(ep, e, EPOLLIN | EPOLLET, 10));
    CHECK_EQ(write(e, &one, 8), 8);
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 1);
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 0);
    CHECK_EQ(write(e, &one, 8), 8);
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 1);
    CHECK_EQ(out[0].data.u64, 10);
    close(t);
    close(e);
    close(ep);
}

static void test_nested_and_keys(void)
{
    int outer = epoll_create1(0), inner = epoll_create1(0);
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(add(inner, p[0], EPOLLIN, 1));
    CHECK_OK(add(outer, inner, EPOLLIN, 2));
    struct epoll_event out[4];
    CHECK_EQ(epoll_wait(outer, out, 4, 0), 0);
    struct pollfd pfd = {inner, POLLIN, 0};
    CHECK_EQ(poll(&pfd, 1, 0), 0);
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(epoll_wait(outer, out, 4, 1000), 1);
    CHECK_EQ(out[0].data.u64, 2);
    CHECK_EQ(poll(&pfd, 1, 0), 1);
    CHECK_EQ(pfd.revents, POLLIN);
    CHECK_EQ(epoll_wait(inner, out, 4, 0), 1);
    CHECK_EQ(out[0].data.u64, 1);

    /* Loops are refused; so is adding an instance to itself. */
    CHECK_ERR(add(inner, outer, EPOLLIN, 3), ELOOP);
    CHECK_ERR(add(inner, inner, EPOLLIN, 3), EINVAL);

    /* (fd, description) keys: a dup is a second entry. */
    int d = dup(p[0]);
    CHECK_OK(add(inner, d, EPOLLIN, 4));
    CHECK_ERR(add(inner, d, EPOLLIN, 4), EEXIST);
    CHECK_EQ(epoll_wait(inner, out, 4, 0), 2);
    /* Closing one descriptor keeps the entry of the other, and the closed one's too. */
    close(p[0]);
    CHECK_EQ(epoll_wait(inner, out, 4, 0), 2);
    CHECK_ERR(epoll_ctl(inner, EPOLL_CTL_DEL, p[0], NULL), EBADF);
    /* Closing the last reference removes both. */
    close(d);
    CHECK_EQ(epoll_wait(inner, out, 4, 0), 0);
    close(p[1]);
    close(inner);
    close(outer);
}

static void test_turns_and_waits(void)
{
    int ep = epoll_create1(0);
    int e[3];
    uint64_t one = 1;
    for (int i = 0; i < 3; i++) {
        e[i] = eventfd(1, 0);
        CHECK_OK(add(ep, e[i], EPOLLIN, i));
    }
    struct epoll_event out[4];
    int seen[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(epoll_wait(ep, out, 1, 0), 1);
        seen[out[0].data.u64 % 3]++;
    }
    CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
    for (int i = 0; i < 3; i++) {
        uint64_t v;
        CHECK_EQ(read(e[i], &v, 8), 8);
    }

    /* Timeouts. */
    long long t0 = now_ns();
    CHECK_EQ(epoll_wait(ep, out, 4, 30), 0);
    CHECK(now_ns() - t0 >= 30 * MS);
    struct timespec ts = {0, 30 * MS};
    t0 = now_ns();
    CHECK_EQ(syscall(SYS_epoll_pwait2, ep, out, 4, &ts, NULL, 8), 0);
    CHECK(now_ns() - t0 >= 30 * MS);
    ts.tv_nsec = NSEC;
    CHECK_ERR(syscall(SYS_epoll_pwait2, ep, out, 4, &ts, NULL, 8), EINVAL);

    /* The mask lets a blocked signal in: EINTR even with SA_RESTART. */
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
    CHECK_ERR(epoll_pwait(ep, out, 4, 5000, &empty), EINTR);
    CHECK_EQ(got_usr1, 1);
    sigprocmask(SIG_BLOCK, NULL, &now);
    CHECK(sigismember(&now, SIGUSR1));
    CHECK_ERR(syscall(SYS_epoll_pwait, ep, out, 4, 0, &empty, 4), EINVAL);
    sigprocmask(SIG_UNBLOCK, &block, NULL);

    CHECK_EQ(write(e[0], &one, 8), 8);
    CHECK_ERR(syscall(SYS_epoll_pwait, ep, out, 0, 0, NULL, 8), EINVAL);
    CHECK_ERR(syscall(SYS_epoll_pwait, ep, out, -1, 0, NULL, 8), EINVAL);
    CHECK_ERR(syscall(SYS_epoll_pwait, ep, (struct epoll_event *)8, 4, 0, NULL, 8), EFAULT);
    CHECK_ERR(epoll_wait(e[0], out, 4, 0), EINVAL);
    CHECK_ERR(epoll_wait(99, out, 4, 0), EBADF);
    for (int i = 0; i < 3; i++)
        close(e[i]);
    close(ep);
}

static void test_errors(void)
{
    CHECK_ERR(epoll_create1(1), EINVAL);
    CHECK_ERR(syscall(SYS_epoll_create1, O_NONBLOCK), EINVAL);
    int ep = epoll_create1(0);
    int e = eventfd(0, 0);
    int ep2 = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    CHECK_ERR(epoll_ctl(ep, 99, e, &ev), EINVAL);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_MOD, e, &ev), ENOENT);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_DEL, e, NULL), ENOENT);
    CHECK_ERR(epoll_ctl(e, EPOLL_CTL_ADD, ep, &ev), EINVAL);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, 99, &ev), EBADF);
    CHECK_ERR(epoll_ctl(99, EPOLL_CTL_ADD, e, &ev), EBADF);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, e, NULL), EFAULT);

    int f = open("/proc/self/exe", O_RDONLY);
    if (f < 0)
        f = open("/bin/sh", O_RDONLY);
    CHECK_ERR(add(ep, f, EPOLLIN, 0), EPERM);
    int null = open("/dev/null", O_RDONLY);
    CHECK_ERR(add(ep, null, EPOLLIN, 0), EPERM);
    close(f);
    close(null);

    /* EPOLLEXCLUSIVE: only at ADD, not with one-shot, not on an epoll fd. */
    CHECK_ERR(add(ep, e, EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT, 0), EINVAL);
    CHECK_ERR(add(ep, ep2, EPOLLIN | EPOLLEXCLUSIVE, 0), EINVAL);
    CHECK_OK(add(ep, e, EPOLLIN | EPOLLEXCLUSIVE, 0));
    CHECK_ERR(mod(ep, e, EPOLLIN, 0), EINVAL);
    CHECK_ERR(mod(ep, e, EPOLLIN | EPOLLEXCLUSIVE, 0), EINVAL);
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_DEL, e, NULL));

    struct stat st;
    CHECK_OK(fstat(ep, &st));
    CHECK_EQ(st.st_mode & S_IFMT, 0);
    char link[64] = {0}, path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", ep);
    CHECK_EQ(readlink(path, link, sizeof link - 1), 22);
    CHECK(strcmp(link, "anon_inode:[eventpoll]") == 0);
    uint64_t v;
    CHECK_ERR(read(ep, &v, 8), EINVAL);
    close(e);
    close(ep2);
    close(ep);
}

static void test_fork(void)
{
    int ep = epoll_create1(0);
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(add(ep, p[0], EPOLLIN, 42));
    pid_t pid = fork();
    if (pid == 0) {
        /* The child's copy of the instance watches the same pipe. */
        struct epoll_event out[1];
        int ok = epoll_wait(ep, out, 1, 0) == 0;
        struct timespec d = {0, 30 * MS};
        nanosleep(&d, NULL);
        ok &= write(p[1], "c", 1) == 1;
        _exit(ok ? 0 : 1);
    }
    struct epoll_event out[1];
    CHECK_EQ(epoll_wait(ep, out, 1, 5000), 1);
    CHECK_EQ(out[0].data.u64, 42);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(p[0]);
    close(p[1]);
    close(ep);
}

int main(void)
{
    test_level_and_edge();
    test_oneshot_and_objects();
    test_nested_and_keys();
    test_turns_and_waits();
    test_errors();
    test_fork();
    return check_done();
}
