/*
 * fork_cost: what one guest fork costs with N MiB of resident private memory.
 *
 * Usage: fork_cost MIB FORKS. Touches MIB MiB of anonymous memory (every page written, so it
 * is resident), then forks FORKS times; each child exits at once and is reaped before the next
 * fork. Prints the mean wall-clock time of one fork + exit + wait in microseconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fork_cost MIB FORKS\n");
        return 2;
    }
    size_t mib = strtoul(argv[1], NULL, 10);
    int forks = atoi(argv[2]);
    size_t len = mib << 20;
    char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    for (size_t i = 0; i < len; i += 4096)
        mem[i] = (char)(i >> 12);

    double start = now_us();
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0)
            _exit(mem[len / 2] == (char)((len / 2) >> 12) ? 0 : 1);
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "child failed\n");
            return 1;
        }
    }
    printf("%.0f\n", (now_us() - start) / forks);
    return 0;
}
