/*
 * proc_exec: replacing the process image.
 * Man pages: execve(2), execveat(2), fexecve(3), execv(3), sigaction(2), sigprocmask(2),
 * sigaltstack(2), alarm(2), umask(2), prctl(2) (PR_GET_NAME), fcntl(2) (FD_CLOEXEC),
 * pthread_create(3), getrlimit(2) (RLIMIT_STACK), credentials(7), signal(7).
 *
 * Covers: the pid, parent, cwd, umask, signal mask, pending signals, ignored dispositions
 * and a pending alarm survive execve; handled signals go back to SIG_DFL, every action's
 * sa_flags and sa_mask are cleared, the alternate signal stack and the old mappings are
 * gone, close-on-exec descriptors (O_CLOEXEC, F_SETFD, dup3) are closed and the others
 * stay open, comm becomes the file's basename, argv[0] and envp are exactly as passed;
 * `#!` scripts (interpreter argv layout with and without the optional argument, whitespace
 * handling, a script interpreted by a script, a missing interpreter); argument size limits
 * (MAX_ARG_STRLEN exactly, E2BIG for one 200000-byte string and for 3 MB of strings under
 * an 8 MiB stack limit); ENOENT, ENOTDIR, EACCES (no x bit even for root, a directory),
 * ENOEXEC (junk, empty file, "#!" alone), EFAULT, ENAMETOOLONG, ELOOP; execve from a
 * non-main thread (the new image has the old pid and one thread); execveat with
 * AT_EMPTY_PATH and with a directory fd, fexecve on an O_PATH fd, and execveat's errors.
 *
 * The test re-executes itself (argv[0] is its path) in a forked child; in the new image
 * argv[1] selects what to check ("image KEY=VALUE..."), and the exit status (0 = all
 * passed) goes back to the parent. With PROC_EXEC_ARGV_OUT set in its environment the
 * program just writes its argv (NUL-separated) to that file: the `#!` interpreter mode.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "scratch.h"

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

extern char **environ;
static const char *self;
static char self_dir[512], self_base[256];

static volatile uintptr_t bad_addr = 1;
#define BADP ((void *)bad_addr)

/* ---- the re-executed image ---- */

static int image_main(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        char *a = argv[i], *eq = strchr(a, '=');
        const char *v = eq ? eq + 1 : "";
        long n = strtol(v, NULL, 0);
        size_t klen = eq ? (size_t)(eq - a) : strlen(a);
#define KEY(k) (klen == strlen(k) && strncmp(a, k, klen) == 0)
        if (KEY("pid")) {
            CHECK_EQ(getpid(), n);
        } else if (KEY("ppid")) {
            CHECK_EQ(getppid(), n);
        } else if (KEY("onethread")) {
            CHECK_EQ(gettid(), getpid());
            CHECK_EQ(syscall(SYS_gettid), getpid());
        } else if (KEY("argc")) {
            CHECK_EQ(argc, n);
        } else if (KEY("argv0")) {
            CHECK(strcmp(argv[0], v) == 0);
        } else if (KEY("open")) {
            CHECK_EQ(fcntl((int)n, F_GETFD), 0);
        } else if (KEY("closed")) {
            CHECK_ERR(fcntl((int)n, F_GETFD), EBADF);
        } else if (KEY("ign") || KEY("dfl")) {
            struct sigaction sa;
            memset(&sa, 0xa5, sizeof sa);
            CHECK_OK(sigaction((int)n, NULL, &sa));
            CHECK(sa.sa_handler == (KEY("ign") ? SIG_IGN : SIG_DFL));
            /* Every action loses its flags and mask, ignored or not. */
            CHECK_EQ(sa.sa_flags & ~0x04000000 /* SA_RESTORER */, 0);
            CHECK_EQ(sigisemptyset(&sa.sa_mask), 1);
        } else if (KEY("blocked") || KEY("unblocked")) {
            sigset_t set;
            CHECK_OK(sigprocmask(SIG_BLOCK, NULL, &set));
            CHECK_EQ(sigismember(&set, (int)n), KEY("blocked") ? 1 : 0);
        } else if (KEY("pending")) {
            sigset_t set;
            CHECK_OK(sigpending(&set));
            CHECK_EQ(sigismember(&set, (int)n), 1);
        } else if (KEY("umask")) {
            CHECK_EQ(umask(0), n);
        } else if (KEY("alarm")) {
            unsigned left = alarm(0);
            CHECK(left > 0 && left <= (unsigned)n);
        } else if (KEY("env")) {
            char name[64];
            const char *eq2 = strchr(v, '=');
            snprintf(name, sizeof name, "%.*s", eq2 ? (int)(eq2 - v) : 0, v);
            const char *got = getenv(name);
            CHECK(eq2 && got && strcmp(got, eq2 + 1) == 0);
        } else if (KEY("envcount")) {
            int c = 0;
            for (char **e = environ; *e; e++)
                c++;
            CHECK_EQ(c, n);
        } else if (KEY("cwd")) {
            char buf[512];
            CHECK(getcwd(buf, sizeof buf) && strcmp(buf, v) == 0);
        } else if (KEY("comm")) {
            char name[17] = {0};
            CHECK_OK(prctl(PR_GET_NAME, name, 0, 0, 0));
            CHECK(strncmp(name, v, 15) == 0);
        } else if (KEY("noaltstack")) {
            stack_t ss;
            memset(&ss, 0, sizeof ss);
            CHECK_OK(sigaltstack(NULL, &ss));
            CHECK_EQ(ss.ss_flags, SS_DISABLE);
        } else if (KEY("unmapped")) {
            /* The old image's mapping is gone (or something new, unrelated, is there). */
            volatile unsigned *p = (volatile unsigned *)(uintptr_t)strtoull(v, NULL, 0);
            if (msync((void *)p, 4096, MS_ASYNC) == 0)
                CHECK(*p != 0x5eed1234u);
            else
                CHECK_EQ(errno, ENOMEM);
        } else {
            printf("FAIL unknown image key %s\n", a);
            check_failures++;
        }
#undef KEY
    }
    return check_failures ? 1 : 0;
}

/* The `#!` interpreter mode: record argv exactly. */
static int dump_argv(int argc, char **argv, const char *out)
{
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 3;
    for (int i = 0; i < argc; i++)
        if (write(fd, argv[i], strlen(argv[i]) + 1) < 0)
            return 4;
    close(fd);
    return 0;
}

/* ---- helpers for the test side ---- */

static int reap(pid_t pid)
{
    int st = -1;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    return st;
}

static void child_begin(void)
{
    check_failures = 0;
}

static void child_end(void)
{
    _exit(check_failures ? 1 : 0);
}

static char *fmt(const char *f, long v)
{
    char *s = malloc(64);
    snprintf(s, 64, f, v);
    return s;
}

static void write_mode(const char *path, const char *content, mode_t mode)
{
    CHECK_OK(scratch_write_file(path, content));
    CHECK_OK(chmod(path, mode));
}

/* Reads a NUL-separated argv dump into list (up to max entries); returns the count. */
static int read_dump(const char *path, char *buf, size_t cap, char **list, int max)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    long n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    int count = 0;
    for (long i = 0; i < n && count < max; count++) {
        list[count] = buf + i;
        i += strlen(buf + i) + 1;
    }
    return count;
}

/* ---- tests ---- */

static void on_usr2(int sig)
{
    (void)sig;
}

static void test_exec_state(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        child_begin();
        int keep = open(sp("state"), O_RDWR | O_CREAT, 0600);
        int cl1 = open(sp("state"), O_RDONLY | O_CLOEXEC);
        int cl2 = dup(keep);
        CHECK_OK(fcntl(cl2, F_SETFD, FD_CLOEXEC));
        int cl3 = dup3(keep, 40, O_CLOEXEC);
        int keep2 = dup2(cl1, 41); /* dup2 never copies FD_CLOEXEC */
        CHECK(keep >= 0 && cl1 >= 0 && cl2 >= 0 && cl3 == 40 && keep2 == 41);

        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_IGN;
        sa.sa_flags = SA_RESTART;
        sigaddset(&sa.sa_mask, SIGINT);
        CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
        sa.sa_handler = on_usr2;
        sa.sa_flags = SA_RESTART | SA_NODEFER;
        CHECK_OK(sigaction(SIGUSR2, &sa, NULL));
        CHECK_OK(sigaction(SIGRTMIN + 3, &sa, NULL));

        sigset_t block;
        sigemptyset(&block);
        sigaddset(&block, SIGHUP);
        sigaddset(&block, SIGRTMIN + 2);
        CHECK_OK(sigprocmask(SIG_BLOCK, &block, NULL));
        CHECK_OK(raise(SIGHUP)); /* stays pending across the exec */

        static char altstack[65536];
        stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
        CHECK_OK(sigaltstack(&ss, NULL));
        umask(027);
        CHECK_OK(chdir(scratch_dir));
        alarm(100);
        CHECK_OK(prctl(PR_SET_NAME, "before-exec", 0, 0, 0));
        unsigned *mem =
            mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(mem != MAP_FAILED);
        *mem = 0x5eed1234u;

        char *args[] = {"renamed-argv0", "image", fmt("pid=%ld", getpid()),
                        fmt("ppid=%ld", getppid()), "onethread", "argc=(set below)",
                        "argv0=renamed-argv0",
                        fmt("open=%ld", keep), fmt("open=%ld", keep2), fmt("closed=%ld", cl1),
                        fmt("closed=%ld", cl2), fmt("closed=%ld", cl3),
                        fmt("ign=%ld", SIGUSR1), fmt("dfl=%ld", SIGUSR2),
                        fmt("dfl=%ld", SIGRTMIN + 3), fmt("blocked=%ld", SIGHUP),
                        fmt("blocked=%ld", SIGRTMIN + 2), fmt("unblocked=%ld", SIGINT),
                        fmt("pending=%ld", SIGHUP), "umask=027", "alarm=100",
                        "env=PROC_EXEC_X=42", "envcount=2", NULL};
        char cwd[600], comm[300], unmapped[64];
        snprintf(cwd, sizeof cwd, "cwd=%s", scratch_dir);
        snprintf(comm, sizeof comm, "comm=%s", self_base);
        snprintf(unmapped, sizeof unmapped, "unmapped=%#lx", (unsigned long)(uintptr_t)mem);
        char *all[40];
        int n = 0;
        for (char **a = args; *a; a++)
            all[n++] = *a;
        all[n++] = cwd;
        all[n++] = comm;
        all[n++] = "noaltstack";
        all[n++] = unmapped;
        all[n] = NULL;
        all[5] = fmt("argc=%ld", n); /* counting argv[0] and "image" */
        char *envp[] = {"PROC_EXEC_X=42", "OTHER=1", NULL};
        execve(self, all, envp);
        printf("FAIL execve: %s\n", strerror(errno));
        _exit(127);
    }
    CHECK_EQ(reap(pid), 0);
}

static void test_scripts(void)
{
    char line[1200], env_out[600], *envp[] = {env_out, NULL};
    char buf[4096], *got[16];

    /* "#!interp arg": argv = interp, arg, script path (as passed), then argv[1..]. */
    snprintf(line, sizeof line, "#!%s script-mode\nignored body\n", self);
    write_mode(sp("s1"), line, 0755);
    snprintf(env_out, sizeof env_out, "PROC_EXEC_ARGV_OUT=%s", sp("out1"));
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {"ignored-argv0", "x1", "x 2", "", NULL};
        execve(sp("s1"), args, envp);
        _exit(127);
    }
    CHECK_EQ(reap(pid), 0);
    int n = read_dump(sp("out1"), buf, sizeof buf, got, 16);
    CHECK_EQ(n, 6);
    if (n == 6) {
        CHECK(strcmp(got[0], self) == 0);
        CHECK(strcmp(got[1], "script-mode") == 0);
        CHECK(strcmp(got[2], sp("s1")) == 0);
        CHECK(strcmp(got[3], "x1") == 0);
        CHECK(strcmp(got[4], "x 2") == 0);
        CHECK(strcmp(got[5], "") == 0);
    }

    /* No optional argument. */
    snprintf(line, sizeof line, "#!%s\n", self);
    write_mode(sp("s2"), line, 0755);
    snprintf(env_out, sizeof env_out, "PROC_EXEC_ARGV_OUT=%s", sp("out2"));
    pid = fork();
    if (pid == 0) {
        char *args[] = {"s2", "y", NULL};
        execve(sp("s2"), args, envp);
        _exit(127);
    }
    CHECK_EQ(reap(pid), 0);
    n = read_dump(sp("out2"), buf, sizeof buf, got, 16);
    CHECK_EQ(n, 3);
    if (n == 3) {
        CHECK(strcmp(got[0], self) == 0);
        CHECK(strcmp(got[1], sp("s2")) == 0);
        CHECK(strcmp(got[2], "y") == 0);
    }

    /* Whitespace: skipped before the interpreter, the rest is ONE argument with its
     * inner spaces kept and trailing blanks stripped. */
    snprintf(line, sizeof line, "#! \t%s  spaced \t arg \t \n", self);
    write_mode(sp("s3"), line, 0755);
    snprintf(env_out, sizeof env_out, "PROC_EXEC_ARGV_OUT=%s", sp("out3"));
    pid = fork();
    if (pid == 0) {
        char *args[] = {"s3", NULL};
        execve(sp("s3"), args, envp);
        _exit(127);
    }
    CHECK_EQ(reap(pid), 0);
    n = read_dump(sp("out3"), buf, sizeof buf, got, 16);
    CHECK_EQ(n, 3);
    if (n == 3) {
        CHECK(strcmp(got[0], self) == 0);
        CHECK(strcmp(got[1], "spaced \t arg") == 0);
        CHECK(strcmp(got[2], sp("s3")) == 0);
    }

    /* A script whose interpreter is a script. */
    snprintf(line, sizeof line, "#!%s\n", sp("s1"));
    write_mode(sp("s4"), line, 0755);
    snprintf(env_out, sizeof env_out, "PROC_EXEC_ARGV_OUT=%s", sp("out4"));
    pid = fork();
    if (pid == 0) {
        char *args[] = {"s4", "z", NULL};
        execve(sp("s4"), args, envp);
        _exit(127);
    }
    CHECK_EQ(reap(pid), 0);
    n = read_dump(sp("out4"), buf, sizeof buf, got, 16);
    CHECK_EQ(n, 5);
    if (n == 5) {
        CHECK(strcmp(got[0], self) == 0);
        CHECK(strcmp(got[1], "script-mode") == 0);
        CHECK(strcmp(got[2], sp("s1")) == 0);
        CHECK(strcmp(got[3], sp("s4")) == 0);
        CHECK(strcmp(got[4], "z") == 0);
    }

    /* Errors: a missing interpreter, no x bit on the script, "#!" with no interpreter. */
    char *args[] = {"x", NULL};
    write_mode(sp("s5"), "#!/elfuse-no-such-dir/interp arg\n", 0755);
    CHECK_ERR(execve(sp("s5"), args, envp), ENOENT);
    snprintf(line, sizeof line, "#!%s\n", self);
    write_mode(sp("s6"), line, 0644);
    CHECK_ERR(execve(sp("s6"), args, envp), EACCES);
    write_mode(sp("s7"), "#!\n", 0755);
    CHECK_ERR(execve(sp("s7"), args, envp), ENOEXEC);
    write_mode(sp("s8"), "#!   \n", 0755);
    CHECK_ERR(execve(sp("s8"), args, envp), ENOEXEC);
}

static void test_exec_errors(void)
{
    char *args[] = {"x", NULL}, *envp[] = {NULL};
    static const unsigned char junk[] = {0x13, 0x37, 0xc0, 0xde, 0x7f, 'E', 'L', 'G', 0, 1, 2, 3,
                                         4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
    int fd = open(sp("junk"), O_WRONLY | O_CREAT | O_TRUNC, 0755);
    CHECK_EQ(write(fd, junk, sizeof junk), (long)sizeof junk);
    close(fd);
    CHECK_OK(chmod(sp("junk"), 0755));
    write_mode(sp("empty"), "", 0755);
    write_mode(sp("short"), "\x7f" "E", 0755);
    write_mode(sp("noexec"), "#!/bin/sh\n", 0644);

    CHECK_ERR(execve(sp("missing"), args, envp), ENOENT);
    CHECK_ERR(execve(sp("junk/x"), args, envp), ENOTDIR);
    CHECK_ERR(execve(sp("junk"), args, envp), ENOEXEC);
    CHECK_ERR(execve(sp("empty"), args, envp), ENOEXEC);
    CHECK_ERR(execve(sp("short"), args, envp), ENOEXEC);
    /* No execute bit at all: EACCES even for root (CAP_DAC_OVERRIDE needs one x bit). */
    CHECK_ERR(execve(sp("noexec"), args, envp), EACCES);
    CHECK_ERR(execve(scratch_dir, args, envp), EACCES);
    CHECK_ERR(execve("", args, envp), ENOENT);
    CHECK_ERR(execve(BADP, args, envp), EFAULT);
    CHECK_ERR(execve(sp("junk"), BADP, envp), EFAULT);
    CHECK_ERR(execve(sp("junk"), args, BADP), EFAULT);
    char *bad_elem[] = {"x", BADP, NULL};
    CHECK_ERR(execve(sp("junk"), bad_elem, envp), EFAULT);

    char *longname = malloc(5000);
    memset(longname, 'a', 4999);
    longname[0] = '/';
    longname[4999] = 0;
    CHECK_ERR(execve(longname, args, envp), ENAMETOOLONG);
    free(longname);
    CHECK_OK(symlink("loop2", sp("loop1")));
    CHECK_OK(symlink("loop1", sp("loop2")));
    CHECK_ERR(execve(sp("loop1"), args, envp), ELOOP);

    /* One string longer than MAX_ARG_STRLEN (32 pages, counting its NUL): E2BIG, as an
     * argument or as an environment string. (The size checks come before the format
     * check, so the junk target never runs.) */
    char *big = malloc(200001);
    memset(big, 'b', 200000);
    big[200000] = 0;
    char *bigargs[] = {"x", big, NULL}, *bigenv[] = {big, NULL};
    CHECK_ERR(execve(sp("junk"), bigargs, envp), E2BIG);
    CHECK_ERR(execve(sp("junk"), args, bigenv), E2BIG);
    big[131072] = 0; /* 131072 bytes + NUL: one too many */
    CHECK_ERR(execve(sp("junk"), bigargs, envp), E2BIG);
    big[131071] = 0; /* 131071 bytes + NUL: exactly the limit, accepted */
    CHECK_ERR(execve(sp("junk"), bigargs, envp), ENOEXEC);

    /* Many strings: more than a quarter of an 8 MiB stack limit (2 MiB) is E2BIG. */
    pid_t pid = fork();
    if (pid == 0) {
        child_begin();
        struct rlimit rl;
        CHECK_OK(getrlimit(RLIMIT_STACK, &rl));
        rl.rlim_cur = 8 << 20;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < rl.rlim_cur)
            rl.rlim_cur = rl.rlim_max;
        CHECK_OK(setrlimit(RLIMIT_STACK, &rl));
        big[100000] = 0;
        char *many[34];
        many[0] = "x";
        for (int i = 1; i < 33; i++)
            many[i] = big; /* 32 x 100001 bytes = 3.2 MB */
        many[33] = NULL;
        CHECK_ERR(execve(sp("junk"), many, envp), E2BIG);
        many[12] = NULL; /* 11 x 100001 bytes = 1.1 MB: fits */
        CHECK_ERR(execve(sp("junk"), many, envp), ENOEXEC);
        child_end();
    }
    CHECK_EQ(reap(pid), 0);

    /* A 131071-byte argument really reaches the new image. */
    big[131071] = 0;
    pid = fork();
    if (pid == 0) {
        char *a[] = {(char *)self, "exit-with-len", big, NULL};
        execv(self, a);
        _exit(127);
    }
    CHECK_EQ(reap(pid), (131071 % 251) << 8);
    free(big);
}

static void *exec_thread(void *arg)
{
    char **args = arg;
    execv(self, args);
    printf("FAIL execv from a thread: %s\n", strerror(errno));
    _exit(127);
}

static void *idle_thread(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static void test_exec_from_thread(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        static char *args[8];
        args[0] = (char *)self;
        args[1] = "image";
        args[2] = fmt("pid=%ld", getpid());
        args[3] = fmt("ppid=%ld", getppid());
        args[4] = "onethread";
        args[5] = NULL;
        pthread_t idle, t;
        pthread_create(&idle, NULL, idle_thread, NULL);
        pthread_create(&t, NULL, exec_thread, args);
        for (;;)
            pause(); /* the main thread is blocked when the other thread execs */
    }
    CHECK_EQ(reap(pid), 0);
}

static void test_execveat(void)
{
    char *envp[] = {NULL};
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(self, O_RDONLY);
        char *args[] = {"via-fd", "image", fmt("pid=%ld", getpid()), "argv0=via-fd",
                        fmt("closed=%ld", fd + 1), NULL};
        int cl = open(self, O_RDONLY | O_CLOEXEC); /* fd + 1 */
        (void)cl;
        syscall(SYS_execveat, fd, "", args, envp, AT_EMPTY_PATH);
        printf("FAIL execveat AT_EMPTY_PATH: %s\n", strerror(errno));
        _exit(127);
    }
    CHECK_EQ(reap(pid), 0);

    /* A directory fd and a name relative to it. */
    pid = fork();
    if (pid == 0) {
        int dfd = open(self_dir, O_RDONLY | O_DIRECTORY);
        char *args[] = {"via-dirfd", "image", fmt("pid=%ld", getpid()), NULL};
        syscall(SYS_execveat, dfd, self_base, args, envp, 0);
        printf("FAIL execveat dirfd: %s\n", strerror(errno));
        _exit(127);
    }
    CHECK_EQ(reap(pid), 0);

    /* fexecve on an O_PATH descriptor (glibc uses execveat AT_EMPTY_PATH). */
    pid = fork();
    if (pid == 0) {
        int fd = open(self, O_PATH);
        char *args[] = {"fexecve", "image", fmt("pid=%ld", getpid()), NULL};
        fexecve(fd, args, envp);
        printf("FAIL fexecve: %s\n", strerror(errno));
        _exit(127);
    }
    CHECK_EQ(reap(pid), 0);

    /* Errors (none of these can start the program). */
    char *args[] = {"x", "exit-with", "99", NULL};
    int fd = open(self, O_RDONLY);
    int dfd = open(self_dir, O_RDONLY | O_DIRECTORY);
    CHECK_ERR(syscall(SYS_execveat, fd, "", args, envp, 0), ENOENT); /* no AT_EMPTY_PATH */
    CHECK_ERR(syscall(SYS_execveat, dfd, self_base, args, envp, 0x40000000), EINVAL);
    CHECK_ERR(syscall(SYS_execveat, fd, self_base, args, envp, 0), ENOTDIR);
    CHECK_ERR(syscall(SYS_execveat, 9999, self_base, args, envp, 0), EBADF);
    CHECK_ERR(syscall(SYS_execveat, dfd, "elfuse-missing", args, envp, 0), ENOENT);
    CHECK_OK(symlink(self, sp("link")));
    CHECK_ERR(syscall(SYS_execveat, AT_FDCWD, sp("link"), args, envp, AT_SYMLINK_NOFOLLOW), ELOOP);
    int jfd = open(sp("junk"), O_RDONLY);
    CHECK_ERR(syscall(SYS_execveat, jfd, "", args, envp, AT_EMPTY_PATH), ENOEXEC);
    close(jfd);
    close(fd);
    close(dfd);

    /* Through the symlink (followed by default) it works. */
    pid = fork();
    if (pid == 0) {
        char *a[] = {"via-link", "exit-with", "6", NULL};
        syscall(SYS_execveat, AT_FDCWD, sp("link"), a, envp, 0);
        _exit(127);
    }
    CHECK_EQ(reap(pid), 6 << 8);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *out = getenv("PROC_EXEC_ARGV_OUT");
    if (out)
        return dump_argv(argc, argv, out);
    if (argc >= 2 && strcmp(argv[1], "image") == 0)
        return image_main(argc, argv);
    if (argc >= 3 && strcmp(argv[1], "exit-with") == 0)
        return atoi(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "exit-with-len") == 0)
        return (int)(strlen(argv[2]) % 251);

    /* The test chdir()s before exec'ing itself: make the path absolute first. */
    static char abs_self[1024];
    if (argv[0][0] != '/' && getcwd(abs_self, 512)) {
        strcat(abs_self, "/");
        strncat(abs_self, argv[0], 500);
        self = abs_self;
    } else {
        self = argv[0];
    }
    const char *slash = strrchr(self, '/');
    snprintf(self_base, sizeof self_base, "%.200s", slash ? slash + 1 : self);
    if (slash && slash != self)
        snprintf(self_dir, sizeof self_dir, "%.*s",
                 (int)(slash - self < 500 ? slash - self : 500), self);
    else
        snprintf(self_dir, sizeof self_dir, "%s", slash ? "/" : ".");
    scratch_init();
    test_exec_state();
    test_scripts();
    test_exec_errors();
    test_exec_from_thread();
    test_execveat();
    scratch_cleanup();
    return check_done();
}
