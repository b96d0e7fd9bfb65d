/*
 * The program the debugger tests (tests/gdb.rs) drive with gdb and lldb: known values in a
 * global and a local, calls to step through, a watched counter, four threads, and a fault on
 * request. Every function is built without optimisation so that source lines and variables
 * are where the tests expect them; the tests name lines by the comments at their end.
 *
 *   gdb_target            exits with status 7 (1 if add() did not return 50)
 *   gdb_target threads    four threads meet, then the same exit
 *   gdb_target crash      a store to address 16 (SIGSEGV)
 *   gdb_target signal     raises SIGUSR2, which has a handler (so has SIGUSR1)
 *   gdb_target spin       loops until a debugger sets `spinning` to 0
 *   gdb_target fork       a child calls bump() and exits 3; the parent waits for it
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PLAIN __attribute__((noinline, optimize("O0")))

long counter = 0;
int global_value = 1234;
volatile int spinning = 1;
volatile sig_atomic_t handled = 0;
static pthread_barrier_t barrier;

PLAIN int add(int a, int b)
{
    int sum = a + b; /* LINE_ADD_SUM */
    return sum;      /* LINE_ADD_RETURN */
}

PLAIN void bump(void)
{
    counter += 5; /* LINE_BUMP */
}

PLAIN void crash(void)
{
    volatile int *p = (volatile int *)16;
    *p = 42; /* LINE_CRASH */
}

PLAIN void all_started(void)
{
    global_value++; /* LINE_ALL_STARTED */
}

PLAIN static void on_signal(int signo)
{
    handled = signo; /* LINE_HANDLER */
}

PLAIN static void *worker(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&barrier);
    pthread_barrier_wait(&barrier);
    return NULL;
}

PLAIN int main(int argc, char **argv)
{
    volatile int local = 42;
    int r = add(local, 8); /* LINE_CALL_ADD */
    bump();                /* LINE_CALL_BUMP */
    bump();
    if (argc > 1 && strcmp(argv[1], "threads") == 0) {
        pthread_t threads[3];
        pthread_barrier_init(&barrier, NULL, 4);
        for (int i = 0; i < 3; i++)
            pthread_create(&threads[i], NULL, worker, NULL);
        pthread_barrier_wait(&barrier);
        all_started();
        pthread_barrier_wait(&barrier);
        for (int i = 0; i < 3; i++)
            pthread_join(threads[i], NULL);
    }
    if (argc > 1 && strcmp(argv[1], "crash") == 0)
        crash();
    if (argc > 1 && strcmp(argv[1], "signal") == 0) {
        signal(SIGUSR1, on_signal);
        signal(SIGUSR2, on_signal);
        raise(SIGUSR2);
        printf("handled %d\n", (int)handled);
    }
    if (argc > 1 && strcmp(argv[1], "spin") == 0) {
        while (spinning)
            counter++;
        counter = 10;
    }
    if (argc > 1 && strcmp(argv[1], "fork") == 0) {
        pid_t child = fork();
        if (child == 0) {
            bump();
            _exit(3);
        }
        int status = 0;
        waitpid(child, &status, 0);
        printf("child %d\n", WEXITSTATUS(status));
    }
    printf("result %d counter %ld global %d\n", r, counter, global_value);
    return r == 50 ? 7 : 1;
}
