/*
 * cli_probe: a small guest the command-line tests drive. Not a self-checking test; each mode
 * does one thing the test observes from outside:
 *
 *   cli_probe exit N          exit_group(N)
 *   cli_probe signal N        raise signal N with its default action
 *   cli_probe segv            write to address 16 (SIGSEGV)
 *   cli_probe args            print argv, one per line
 *   cli_probe env             print the environment, one variable per line
 *   cli_probe enosys          call an unimplemented syscall (io_setup) twice
 *   cli_probe stdout-closed   close fd 1, then report on fd 2 whether a write to it fails
 *   cli_probe cat-fd N        copy descriptor N (inherited from the shell) to stdout
 *   cli_probe cat PATH        copy the file at PATH to stdout
 *   cli_probe exec PROG ARGS  make fd 9 a copy of stdout and ignore SIGUSR1, then
 *                             execv(PROG, [PROG, ARGS...]); on failure print the error and
 *                             exit 126
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 2)
        return 64;
    const char *mode = argv[1];
    if (!strcmp(mode, "exit") && argc > 2)
        exit(atoi(argv[2]));
    if (!strcmp(mode, "signal") && argc > 2) {
        int sig = atoi(argv[2]);
        signal(sig, SIG_DFL);
        raise(sig);
        return 65;
    }
    if (!strcmp(mode, "segv")) {
        *(volatile int *)16 = 1;
        return 66;
    }
    if (!strcmp(mode, "args")) {
        for (int i = 0; i < argc; i++)
            printf("%s\n", argv[i]);
        return 0;
    }
    if (!strcmp(mode, "env")) {
        for (char **e = environ; *e; e++)
            printf("%s\n", *e);
        return 0;
    }
    if (!strcmp(mode, "enosys")) {
        long a = syscall(SYS_io_setup, 1, 0);
        long b = syscall(SYS_io_setup, 1, 0);
        return (a == -1 && b == -1) ? 0 : 67;
    }
    if (!strcmp(mode, "stdout-closed")) {
        close(1);
        ssize_t n = write(1, "x", 1);
        dprintf(2, "%s\n", n == -1 ? "closed" : "open");
        return 0;
    }
    if (!strcmp(mode, "cat-fd") && argc > 2) {
        char buf[256];
        ssize_t n;
        while ((n = read(atoi(argv[2]), buf, sizeof buf)) > 0)
            if (write(1, buf, (size_t)n) != n)
                return 1;
        return n == 0 ? 0 : 1;
    }
    if (!strcmp(mode, "cat") && argc > 2) {
        FILE *f = fopen(argv[2], "r");
        if (!f) {
            printf("open %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        int c;
        while ((c = getc(f)) != EOF)
            putchar(c);
        return 0;
    }
    if (!strcmp(mode, "exec") && argc > 2) {
        dup2(1, 9);
        signal(SIGUSR1, SIG_IGN);
        execv(argv[2], &argv[2]);
        printf("exec %s: %s\n", argv[2], strerror(errno));
        return 126;
    }
    return 64;
}
