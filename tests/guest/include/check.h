/*
 * Tiny self-checking harness for elfuse guest tests.
 *
 * Each test program asserts Linux's behaviour with expected values written into the test.
 * On failure a CHECK prints one line naming the file, line, expression and the values seen;
 * main() ends with `return check_done();`, which prints a one-line summary and exits 1 if
 * anything failed. Output is deterministic: nothing but failures and the summary.
 */
#ifndef ELFUSE_CHECK_H
#define ELFUSE_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        check_count++;                                                                   \
        if (!(cond)) {                                                                   \
            check_failures++;                                                            \
            printf("FAIL %s:%d: %s (errno %d %s)\n", __FILE__, __LINE__, #cond, errno,   \
                   strerror(errno));                                                     \
            fflush(stdout);                                                              \
        }                                                                                \
    } while (0)

/* Compare two integers; prints both on mismatch. */
#define CHECK_EQ(got, want)                                                              \
    do {                                                                                 \
        long long check_got_ = (long long)(got), check_want_ = (long long)(want);        \
        check_count++;                                                                   \
        if (check_got_ != check_want_) {                                                 \
            check_failures++;                                                            \
            printf("FAIL %s:%d: %s == %s (got %lld, want %lld)\n", __FILE__, __LINE__,   \
                   #got, #want, check_got_, check_want_);                                \
            fflush(stdout);                                                              \
        }                                                                                \
    } while (0)

/* A call that must fail with -1 and the given errno. */
#define CHECK_ERR(call, want_errno)                                                      \
    do {                                                                                 \
        errno = 0;                                                                       \
        long long check_rc_ = (long long)(call);                                         \
        int check_errno_ = errno;                                                        \
        check_count++;                                                                   \
        if (check_rc_ != -1 || check_errno_ != (want_errno)) {                           \
            check_failures++;                                                            \
            printf("FAIL %s:%d: %s (rc %lld errno %d %s, want -1 errno %d %s)\n",        \
                   __FILE__, __LINE__, #call, check_rc_, check_errno_,                   \
                   strerror(check_errno_), (int)(want_errno), strerror(want_errno));     \
            fflush(stdout);                                                              \
        }                                                                                \
    } while (0)

/* A raw syscall (via syscall(2)) that must fail with the given errno. */
#define CHECK_SYS_ERR(call, want_errno) CHECK_ERR(call, want_errno)

/* A call that must succeed (not return -1). */
#define CHECK_OK(call)                                                                   \
    do {                                                                                 \
        errno = 0;                                                                       \
        long long check_rc_ = (long long)(call);                                         \
        check_count++;                                                                   \
        if (check_rc_ == -1) {                                                           \
            check_failures++;                                                            \
            printf("FAIL %s:%d: %s failed (errno %d %s)\n", __FILE__, __LINE__, #call,   \
                   errno, strerror(errno));                                              \
            fflush(stdout);                                                              \
        }                                                                                \
    } while (0)

static inline int check_done(void)
{
    if (check_failures) {
        printf("FAILED %d of %d checks\n", check_failures, check_count);
        fflush(stdout);
        return 1;
    }
    printf("ok %d checks\n", check_count);
    fflush(stdout);
    return 0;
}

#endif
