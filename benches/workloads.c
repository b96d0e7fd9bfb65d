/*
 * The benchmark workloads (benches/run), one static aarch64 program, one mode per workload:
 *
 *   workloads true                 return at once (process start-up)
 *   workloads getppid N            N getppid calls
 *   workloads pipe-small N         write and read back 1 byte through a pipe, N times
 *   workloads pipe-bulk MIB        a child writes MIB MiB into a pipe in 64 KiB blocks, the
 *                                  parent reads them
 *   workloads stat DIR             stat DIR/dNN/fNNN for the 100 x 100 tree benches/run makes
 *   workloads spawn N PROG         fork, execv(PROG, [PROG, "true"]) and wait, N times
 *   workloads threads N            create and join one thread at a time, N times
 *   workloads futex N              two threads hand a token back and forth N times by futex
 *   workloads hash N               an integer hash loop of N rounds
 *   workloads mem-seq MIB PASSES   sum a MIB MiB array sequentially, PASSES times
 *   workloads mem-rand MIB N       N dependent random reads from a MIB MiB array
 *
 * Each prints one line (a checksum or a count) so that the work cannot be optimized away, and
 * exits 0 only when the work was done as asked.
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long arg(char **argv, int i)
{
    return strtol(argv[i], NULL, 10);
}

static int run_getppid(long n)
{
    long sum = 0;
    for (long i = 0; i < n; i++)
        sum += syscall(SYS_getppid);
    printf("%ld\n", sum / n);
    return 0;
}

static int run_pipe_small(long n)
{
    int fds[2];
    char c = 'x';
    if (pipe(fds))
        return 1;
    for (long i = 0; i < n; i++)
        if (write(fds[1], &c, 1) != 1 || read(fds[0], &c, 1) != 1)
            return 1;
    printf("%c\n", c);
    return 0;
}

static int run_pipe_bulk(long mib)
{
    static char buf[64 << 10];
    int fds[2];
    if (pipe(fds))
        return 1;
    pid_t child = fork();
    if (child == 0) {
        close(fds[0]);
        memset(buf, 'b', sizeof buf);
        for (long left = mib << 20; left > 0;) {
            ssize_t n = write(fds[1], buf, sizeof buf);
            if (n <= 0)
                _exit(1);
            left -= n;
        }
        _exit(0);
    }
    close(fds[1]);
    long total = 0;
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0)
        total += n;
    int status;
    waitpid(child, &status, 0);
    printf("%ld\n", total);
    return total == mib << 20 && status == 0 ? 0 : 1;
}

static int run_stat(const char *dir)
{
    char path[4096];
    struct stat st;
    long size = 0;
    for (int d = 0; d < 100; d++)
        for (int f = 0; f < 100; f++) {
            snprintf(path, sizeof path, "%s/d%02d/f%03d", dir, d, f);
            if (stat(path, &st))
                return 1;
            size += st.st_size;
        }
    printf("%ld\n", size);
    return 0;
}

static int run_spawn(long n, char *prog)
{
    char *child_argv[] = {prog, "true", NULL};
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            execv(prog, child_argv);
            _exit(127);
        }
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0)
            return 1;
    }
    printf("%ld\n", n);
    return 0;
}

static void *nothing(void *arg)
{
    return arg;
}

static int run_threads(long n)
{
    for (long i = 0; i < n; i++) {
        pthread_t t;
        void *back;
        if (pthread_create(&t, NULL, nothing, (void *)i) || pthread_join(t, &back) ||
            back != (void *)i)
            return 1;
    }
    printf("%ld\n", n);
    return 0;
}

/* The token: even when it is the main thread's turn, odd for the partner's. */
static _Atomic uint32_t token;
static long rounds;

static void futex_wait(uint32_t expected)
{
    while (token == expected)
        syscall(SYS_futex, &token, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void pass_token(void)
{
    token++;
    syscall(SYS_futex, &token, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *partner(void *arg)
{
    for (long i = 0; i < rounds; i++) {
        futex_wait(2 * (uint32_t)i);
        pass_token();
    }
    return arg;
}

static int run_futex(long n)
{
    pthread_t t;
    rounds = n;
    if (pthread_create(&t, NULL, partner, NULL))
        return 1;
    for (long i = 0; i < n; i++) {
        pass_token();
        futex_wait(2 * (uint32_t)i + 1);
    }
    pthread_join(t, NULL);
    printf("%u\n", (unsigned)token);
    return token == 2 * (uint32_t)n ? 0 : 1;
}

static int run_hash(long n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (long i = 0; i < n; i++) {
        h ^= (uint64_t)i;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
    }
    printf("%016llx\n", (unsigned long long)h);
    return 0;
}

static uint64_t *array(long mib, size_t *count)
{
    *count = (size_t)mib << 17;
    uint64_t *a = malloc(*count * sizeof *a);
    if (a)
        for (size_t i = 0; i < *count; i++)
            a[i] = i * 0x9e3779b97f4a7c15ull;
    return a;
}

static int run_mem_seq(long mib, long passes)
{
    size_t count;
    uint64_t *a = array(mib, &count);
    if (!a)
        return 1;
    uint64_t sum = 0;
    for (long p = 0; p < passes; p++)
        for (size_t i = 0; i < count; i++)
            sum += a[i];
    printf("%016llx\n", (unsigned long long)sum);
    return 0;
}

static int run_mem_rand(long mib, long n)
{
    size_t count;
    uint64_t *a = array(mib, &count);
    if (!a)
        return 1;
    /* Each index depends on the value read, so the reads cannot overlap. */
    uint64_t at = 0;
    for (long i = 0; i < n; i++)
        at = (a[at % count] >> 7) ^ (uint64_t)i;
    printf("%016llx\n", (unsigned long long)at);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 64;
    const char *mode = argv[1];
    if (!strcmp(mode, "true"))
        return 0;
    if (!strcmp(mode, "getppid") && argc == 3)
        return run_getppid(arg(argv, 2));
    if (!strcmp(mode, "pipe-small") && argc == 3)
        return run_pipe_small(arg(argv, 2));
    if (!strcmp(mode, "pipe-bulk") && argc == 3)
        return run_pipe_bulk(arg(argv, 2));
    if (!strcmp(mode, "stat") && argc == 3)
        return run_stat(argv[2]);
    if (!strcmp(mode, "spawn") && argc == 4)
        return run_spawn(arg(argv, 2), argv[3]);
    if (!strcmp(mode, "threads") && argc == 3)
        return run_threads(arg(argv, 2));
    if (!strcmp(mode, "futex") && argc == 3)
        return run_futex(arg(argv, 2));
    if (!strcmp(mode, "hash") && argc == 3)
        return run_hash(arg(argv, 2));
    if (!strcmp(mode, "mem-seq") && argc == 4)
        return run_mem_seq(arg(argv, 2), arg(argv, 3));
    if (!strcmp(mode, "mem-rand") && argc == 4)
        return run_mem_rand(arg(argv, 2), arg(argv, 3));
    return 64;
}
