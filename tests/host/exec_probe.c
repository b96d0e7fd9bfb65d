/* A host program that starts another with execv(2), for the binfmt_misc test:
 *   exec_probe PROGRAM ARGV0 ARGS...
 * runs PROGRAM with the argument vector ARGV0 ARGS..., or prints why execv failed and
 * exits 1. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: exec_probe PROGRAM ARGV0 ARGS...\n");
        return 2;
    }
    execv(argv[1], argv + 2);
    printf("execv: %s\n", strerror(errno));
    return 1;
}
