/*
 * poll_fork_copy: whether a child's write to an eventfd created before fork reaches the
 * parent. On Linux the two share the object and this prints "shared"; elfuse keeps event
 * objects in each process, so a child has a copy and this prints "copied" (a documented
 * limitation, pinned by tests/guest.rs). Not part of the Linux-checked corpus.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    int e = eventfd(0, EFD_NONBLOCK);
    pid_t pid = fork();
    if (pid == 0) {
        uint64_t one = 1;
        _exit(write(e, &one, 8) == 8 ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    uint64_t v = 0;
    int shared = read(e, &v, 8) == 8 && v == 1;
    printf("%s\n", shared ? "shared" : "copied");
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
