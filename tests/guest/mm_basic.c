/*
 * mm_basic: the memory-management syscalls (brk(2), mmap(2), munmap(2), mprotect(2),
 * mremap(2), madvise(2), msync(2), mincore(2)).
 *
 * Covers: brk query/grow/shrink and the "failure returns the old break" rule; anonymous
 * mmap zero fill, MAP_FIXED replacing part of a mapping, MAP_FIXED_NOREPLACE (EEXIST),
 * hint addresses, argument errors (EINVAL, EBADF, EACCES); MAP_PRIVATE and MAP_SHARED file
 * mappings (copy-on-write vs. write-back, coherence with read/write, zero tail of the last
 * page, SIGBUS past EOF); munmap (faults afterwards with SEGV_MAPERR and the exact si_addr,
 * holes in the middle, EINVAL cases); mprotect (SEGV_ACCERR, EINVAL/ENOMEM cases);
 * mremap (grow in place, shrink, MAYMOVE, FIXED, ENOMEM/EINVAL/EFAULT cases);
 * madvise(MADV_DONTNEED) on private anonymous and private file memory; msync and mincore
 * argument checking.
 *
 * Faults are observed with a SIGSEGV/SIGBUS handler that siglongjmps back (sigaction(2),
 * sigsetjmp(3)). The page size is assumed to be 4096 and checked.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <fcntl.h>

#include "check.h"

#define PG 4096UL

/* ---- fault probing ---- */

static sigjmp_buf fault_jmp;
static volatile int fault_sig, fault_code;
static void *volatile fault_addr;

static void fault_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    fault_sig = sig;
    fault_code = si->si_code;
    fault_addr = si->si_addr;
    siglongjmp(fault_jmp, 1);
}

static void install_fault_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fault_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}

/* Returns the signal raised by writing (write=1) or reading one byte at p, or 0. */
static int probe(volatile char *p, int write)
{
    fault_sig = 0;
    fault_code = 0;
    fault_addr = NULL;
    if (sigsetjmp(fault_jmp, 1) == 0) {
        if (write)
            *p = 0x5a;
        else
            (void)*p;
        return 0;
    }
    return fault_sig;
}

/* The access must fault with SIGSEGV, the given si_code, and si_addr == p. */
#define CHECK_SEGV(p, write, code)                                                       \
    do {                                                                                 \
        volatile char *p_ = (volatile char *)(p);                                        \
        CHECK_EQ(probe(p_, write), SIGSEGV);                                             \
        CHECK_EQ(fault_code, code);                                                      \
        CHECK_EQ((uintptr_t)fault_addr, (uintptr_t)p_);                                  \
    } while (0)

#define CHECK_NO_FAULT(p, write) CHECK_EQ(probe((volatile char *)(p), write), 0)

/* ---- helpers ---- */

static char *map_anon(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    return p == MAP_FAILED ? NULL : p;
}

/* An address range of len bytes that is free right now (mapped, then unmapped). */
static char *free_range(size_t len)
{
    char *p = map_anon(len);
    munmap(p, len);
    return p;
}

static int all_bytes(const char *p, size_t len, unsigned char v)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] != v)
            return 0;
    return 1;
}

static char tmpl[] = "/tmp/mm_basic.XXXXXX";

/* A temporary file of len bytes, byte i == (char)(i * 7 + 1). If path is NULL it is
 * unlinked right away, otherwise its name is stored there and the caller unlinks it. */
static int make_named_file(size_t len, char *path)
{
    char local[sizeof tmpl];
    if (!path)
        path = local;
    memcpy(path, tmpl, sizeof tmpl);
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (path == local)
        unlink(path);
    char *buf = malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)(i * 7 + 1);
    CHECK_EQ(pwrite(fd, buf, len, 0), len);
    free(buf);
    return fd;
}

static int make_file(size_t len)
{
    return make_named_file(len, NULL);
}

static int file_pattern_ok(const char *p, size_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != (char)((off + i) * 7 + 1))
            return 0;
    return 1;
}

/* ---- brk ---- */

static void test_brk(void)
{
    long cur = syscall(SYS_brk, 0);
    CHECK(cur > 0);
    CHECK_EQ(syscall(SYS_brk, 0), cur);

    long grown = cur + 16 * PG;
    CHECK_EQ(syscall(SYS_brk, grown), grown);
    CHECK_EQ(syscall(SYS_brk, 0), grown);
    /* The first page boundary at or above the old break: everything from there is new. */
    uintptr_t above = ((uintptr_t)cur + PG - 1) & ~(PG - 1);
    CHECK(all_bytes((char *)above, 8 * PG, 0)); /* fresh heap pages are zero */
    memset((char *)cur, 0x11, 16 * PG);
    CHECK(all_bytes((char *)cur, 16 * PG, 0x11));

    /* Shrinking unmaps the pages above the new (page-rounded) break. */
    CHECK_EQ(syscall(SYS_brk, cur), cur);
    CHECK_EQ(syscall(SYS_brk, 0), cur);
    CHECK_SEGV(above + 4 * PG, 0, SEGV_MAPERR);

    /* Growing again gives zeroed memory, not the old contents. */
    CHECK_EQ(syscall(SYS_brk, grown), grown);
    CHECK(all_bytes((char *)above + PG, 8 * PG, 0));
    CHECK_EQ(syscall(SYS_brk, cur), cur);

    /* A request below the start of the heap fails by returning the current break. */
    CHECK_EQ(syscall(SYS_brk, 1), cur);
    CHECK_EQ(syscall(SYS_brk, 0), cur);
}

/* ---- anonymous mmap ---- */

static void test_mmap_anon(void)
{
    CHECK_EQ(sysconf(_SC_PAGESIZE), PG);

    char *p = map_anon(4 * PG);
    CHECK_EQ((uintptr_t)p % PG, 0);
    CHECK(all_bytes(p, 4 * PG, 0));
    memset(p, 0xaa, 4 * PG);

    /* MAP_FIXED over page 1 replaces exactly that page. */
    char *q = mmap(p + PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                   -1, 0);
    CHECK(q == p + PG);
    CHECK(all_bytes(p, PG, 0xaa));
    CHECK(all_bytes(p + PG, PG, 0));
    CHECK(all_bytes(p + 2 * PG, 2 * PG, 0xaa));

    /* MAP_FIXED_NOREPLACE refuses to clobber, and leaves the old contents alone. */
    CHECK(mmap(p + 2 * PG, PG, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED);
    CHECK_EQ(errno, EEXIST);
    CHECK(all_bytes(p + 2 * PG, 2 * PG, 0xaa));
    /* ...and partial overlap counts too. */
    CHECK(mmap(p + 3 * PG, 2 * PG, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED);
    CHECK_EQ(errno, EEXIST);
    CHECK(all_bytes(p + 3 * PG, PG, 0xaa));
    CHECK_OK(munmap(p, 4 * PG));

    /* MAP_FIXED_NOREPLACE at a free address maps exactly there. */
    char *f = free_range(2 * PG);
    q = mmap(f, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
             -1, 0);
    CHECK(q == f);
    CHECK_OK(munmap(f, 2 * PG));

    /* A hint at a free address is honoured. */
    f = free_range(3 * PG);
    q = mmap(f, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(q == f);
    memset(q, 0x33, 3 * PG);
    /* A hint over an existing mapping is not: another address, old mapping untouched. */
    char *r = mmap(f + PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(r != MAP_FAILED);
    CHECK(r < f || r >= f + 3 * PG);
    CHECK(all_bytes(f, 3 * PG, 0x33));
    CHECK(all_bytes(r, PG, 0));
    CHECK_OK(munmap(r, PG));
    CHECK_OK(munmap(f, 3 * PG));

    /* A length that is not a page multiple is rounded up. */
    p = mmap(NULL, PG + 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_NO_FAULT(p + 2 * PG - 1, 1);
    CHECK_OK(munmap(p, 2 * PG));

    /* PROT_NONE mappings fault on read with SEGV_ACCERR. */
    p = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_SEGV(p + 8, 0, SEGV_ACCERR);
    CHECK_OK(munmap(p, PG));
}

static void test_mmap_errors(void)
{
    char path[sizeof tmpl];
    int fd = make_named_file(2 * PG, path);
    CHECK_EQ((long)mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ((long)mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 1), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ((long)mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, PG + 4), -1);
    CHECK_EQ(errno, EINVAL);
    /* Neither MAP_PRIVATE nor MAP_SHARED. */
    CHECK_EQ((long)mmap(NULL, PG, PROT_READ, MAP_ANONYMOUS, -1, 0), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ((long)mmap(NULL, PG, PROT_READ, 0, fd, 0), -1);
    CHECK_EQ(errno, EINVAL);
    /* MAP_FIXED needs an aligned address. */
    char *f = free_range(2 * PG);
    CHECK_EQ((long)mmap(f + 1, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
             -1);
    CHECK_EQ(errno, EINVAL);
    /* File mappings need a valid fd. */
    CHECK_EQ((long)mmap(NULL, PG, PROT_READ, MAP_PRIVATE, -1, 0), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ((long)mmap(NULL, PG, PROT_READ, MAP_PRIVATE, 987, 0), -1);
    CHECK_EQ(errno, EBADF);

    /* Access mode: a write-only fd cannot be mapped at all; read-only not shared-writable. */
    int rofd = open(path, O_RDONLY);
    int wfd = open(path, O_WRONLY);
    CHECK(rofd >= 0 && wfd >= 0);
    unlink(path);
    CHECK_EQ((long)mmap(NULL, PG, PROT_READ, MAP_PRIVATE, wfd, 0), -1);
    CHECK_EQ(errno, EACCES);
    CHECK_EQ((long)mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, rofd, 0), -1);
    CHECK_EQ(errno, EACCES);
    /* ...but a private writable mapping of a read-only fd is fine (copy-on-write). */
    char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, rofd, 0);
    CHECK(p != MAP_FAILED);
    if (p != MAP_FAILED)
        munmap(p, PG);
    close(wfd);
    close(rofd);
    close(fd);
}

/* ---- file mappings ---- */

static void test_mmap_private_file(void)
{
    int fd = make_file(2 * PG);
    char *p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK(file_pattern_ok(p, 0, 2 * PG));

    /* Writes stay private. */
    memset(p, 0xee, 100);
    CHECK(all_bytes(p, 100, 0xee));
    char buf[100];
    CHECK_EQ(pread(fd, buf, 100, 0), 100);
    CHECK(file_pattern_ok(buf, 0, 100));
    CHECK_OK(msync(p, 2 * PG, MS_SYNC));
    CHECK_EQ(pread(fd, buf, 100, 0), 100);
    CHECK(file_pattern_ok(buf, 0, 100));

    /* MADV_DONTNEED on a private file mapping drops the private copy: file data again. */
    CHECK_OK(madvise(p, PG, MADV_DONTNEED));
    CHECK(file_pattern_ok(p, 0, 100));

    /* A mapping at a page offset sees the file from there. */
    char *q = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, PG);
    CHECK(q != MAP_FAILED);
    CHECK(file_pattern_ok(q, PG, PG));
    CHECK_OK(munmap(q, PG));
    CHECK_OK(munmap(p, 2 * PG));
    close(fd);
}

static void test_mmap_shared_file(void)
{
    int fd = make_file(2 * PG);
    char *p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK(file_pattern_ok(p, 0, 2 * PG));

    /* Stores reach the file. */
    memset(p + PG + 10, 0x77, 50);
    CHECK_OK(msync(p, 2 * PG, MS_SYNC));
    char buf[50];
    CHECK_EQ(pread(fd, buf, 50, PG + 10), 50);
    CHECK(all_bytes(buf, 50, 0x77));

    /* write() is visible through the mapping (one page cache). */
    memset(buf, 0x44, 20);
    CHECK_EQ(pwrite(fd, buf, 20, 30), 20);
    CHECK(all_bytes(p + 30, 20, 0x44));

    /* Two shared mappings of the same file alias each other. */
    char *q = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PG);
    CHECK(q != MAP_FAILED);
    q[5] = 0x12;
    CHECK_EQ(p[PG + 5], 0x12);

    /* After munmap the data is still in the file. */
    CHECK_OK(munmap(q, PG));
    CHECK_OK(munmap(p, 2 * PG));
    CHECK_EQ(pread(fd, buf, 1, PG + 5), 1);
    CHECK_EQ(buf[0], 0x12);
    close(fd);
}

static void test_mmap_file_eof(void)
{
    /* File of one page plus 100 bytes: the rest of the last page reads as zero, and a page
     * wholly past EOF raises SIGBUS (BUS_ADRERR). */
    int fd = make_file(PG + 100);
    char *p = mmap(NULL, 3 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK(file_pattern_ok(p + PG, PG, 100));
    CHECK(all_bytes(p + PG + 100, PG - 100, 0));
    CHECK_EQ(probe(p + 2 * PG + 3, 0), SIGBUS);
    CHECK_EQ(fault_code, BUS_ADRERR);
    CHECK_EQ((uintptr_t)fault_addr, (uintptr_t)(p + 2 * PG + 3));
    CHECK_OK(munmap(p, 3 * PG));
    close(fd);
}

/* ---- munmap ---- */

static void test_munmap(void)
{
    char *p = map_anon(3 * PG);
    memset(p, 1, 3 * PG);
    CHECK_OK(munmap(p, 3 * PG));
    CHECK_SEGV(p, 0, SEGV_MAPERR);
    CHECK_SEGV(p + PG + 123, 1, SEGV_MAPERR);
    /* Unmapping nothing is not an error. */
    CHECK_OK(munmap(p, 3 * PG));

    /* A hole in the middle. */
    p = map_anon(3 * PG);
    memset(p, 2, 3 * PG);
    CHECK_OK(munmap(p + PG, PG));
    CHECK_NO_FAULT(p, 1);
    CHECK_SEGV(p + PG, 0, SEGV_MAPERR);
    CHECK_NO_FAULT(p + 2 * PG, 1);
    CHECK_EQ(p[2 * PG + 1], 2);
    /* Length need not be a page multiple; it is rounded up. */
    CHECK_OK(munmap(p, 3 * PG - 1));
    CHECK_SEGV(p + 2 * PG, 0, SEGV_MAPERR);

    char *f = free_range(PG);
    CHECK_ERR(munmap(f + 1, PG), EINVAL);
    CHECK_ERR(munmap(f, 0), EINVAL);
}

/* ---- mprotect ---- */

static void test_mprotect(void)
{
    char *p = map_anon(3 * PG);
    memset(p, 3, 3 * PG);
    CHECK_OK(mprotect(p + PG, PG, PROT_READ));
    CHECK_SEGV(p + PG + 7, 1, SEGV_ACCERR);
    CHECK_EQ(p[PG + 7], 3); /* still readable, unchanged */
    CHECK_NO_FAULT(p, 1);
    CHECK_NO_FAULT(p + 2 * PG, 1);
    CHECK_OK(mprotect(p + PG, PG, PROT_NONE));
    CHECK_SEGV(p + PG, 0, SEGV_ACCERR);
    CHECK_OK(mprotect(p + PG, PG, PROT_READ | PROT_WRITE));
    CHECK_NO_FAULT(p + PG, 1);

    CHECK_ERR(mprotect(p + 1, PG, PROT_READ), EINVAL);
    CHECK_ERR(mprotect(p, PG, 0x40), EINVAL);
    CHECK_OK(mprotect(p, 0, PROT_READ)); /* empty range: nothing to do */
    CHECK_OK(munmap(p, 3 * PG));

    char *f = free_range(2 * PG);
    CHECK_ERR(mprotect(f, PG, PROT_READ), ENOMEM);
    /* A range only partly mapped also fails with ENOMEM. */
    p = mmap(f, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(p == f);
    CHECK_ERR(mprotect(f, 2 * PG, PROT_READ), ENOMEM);
    CHECK_OK(munmap(f, PG));
}

/* ---- mremap ---- */

static void test_mremap(void)
{
    /* Grow in place: 2 pages followed by 2 free pages. */
    char *p = map_anon(4 * PG);
    CHECK_OK(munmap(p + 2 * PG, 2 * PG));
    memset(p, 0x21, 2 * PG);
    char *q = mremap(p, 2 * PG, 4 * PG, 0);
    CHECK(q == p);
    CHECK(all_bytes(p, 2 * PG, 0x21));
    CHECK(all_bytes(p + 2 * PG, 2 * PG, 0));

    /* Shrink: the tail goes away. */
    q = mremap(p, 4 * PG, PG, 0);
    CHECK(q == p);
    CHECK(all_bytes(p, PG, 0x21));
    CHECK_SEGV(p + PG, 0, SEGV_MAPERR);
    CHECK_SEGV(p + 3 * PG, 0, SEGV_MAPERR);

    /* Blocked growth: page 1 is occupied by another mapping. */
    char *blk = mmap(p + PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(blk == p + PG);
    CHECK_EQ((long)mremap(p, PG, 4 * PG, 0), -1);
    CHECK_EQ(errno, ENOMEM);
    CHECK(all_bytes(p, PG, 0x21));

    /* ...so MREMAP_MAYMOVE moves it, keeping the contents and unmapping the old range. */
    q = mremap(p, PG, 4 * PG, MREMAP_MAYMOVE);
    CHECK(q != MAP_FAILED && q != p);
    if (q != MAP_FAILED) {
        CHECK(all_bytes(q, PG, 0x21));
        CHECK(all_bytes(q + PG, 3 * PG, 0));
        CHECK_SEGV(p, 0, SEGV_MAPERR);
        CHECK_EQ(blk[0], 0); /* the blocker is untouched */
        p = q;
    }

    /* MREMAP_FIXED puts it exactly at the chosen address. */
    char *dst = free_range(4 * PG);
    q = mremap(p, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    CHECK(q == dst);
    CHECK(all_bytes(dst, PG, 0x21));
    CHECK_SEGV(p, 0, SEGV_MAPERR);
    p = dst;
    /* MREMAP_FIXED onto an existing mapping (the read-only blocker) replaces it. */
    q = mremap(p, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, blk);
    CHECK(q == blk);
    CHECK(all_bytes(blk, PG, 0x21));
    CHECK_NO_FAULT(blk, 1); /* it took over the moved mapping's PROT_READ|PROT_WRITE */

    /* Errors. */
    char *f = free_range(2 * PG);
    CHECK_EQ((long)mremap(blk, PG, PG, MREMAP_FIXED, f), -1); /* FIXED needs MAYMOVE */
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ((long)mremap(blk, PG, 2 * PG, 0x80), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ((long)mremap(blk + 1, PG, 2 * PG, 0), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ((long)mremap(blk, PG, 0, 0), -1);
    CHECK_EQ(errno, EINVAL);
    /* An unmapped old address is EFAULT, not ENOMEM. */
    CHECK_EQ((long)mremap(f, PG, 2 * PG, MREMAP_MAYMOVE), -1);
    CHECK_EQ(errno, EFAULT);

    CHECK_OK(munmap(blk, PG));
    CHECK_OK(munmap(p + PG, 3 * PG));
}

/* ---- madvise / msync / mincore ---- */

static void test_madvise(void)
{
    char *p = map_anon(3 * PG);
    memset(p, 0x5c, 3 * PG);
    CHECK_OK(madvise(p, 2 * PG, MADV_DONTNEED));
    CHECK(all_bytes(p, 2 * PG, 0));
    CHECK(all_bytes(p + 2 * PG, PG, 0x5c));
    CHECK_OK(madvise(p, 3 * PG, MADV_NORMAL));
    CHECK_OK(madvise(p, 3 * PG, MADV_WILLNEED));
    CHECK_ERR(madvise(p, PG, 999), EINVAL);
    CHECK_ERR(madvise(p + 1, PG, MADV_DONTNEED), EINVAL);
    CHECK_OK(munmap(p, 3 * PG));
    CHECK_ERR(madvise(p, PG, MADV_NORMAL), ENOMEM);
}

static void test_msync(void)
{
    int fd = make_file(PG);
    char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(msync(p, PG, MS_SYNC));
    CHECK_OK(msync(p, PG, MS_ASYNC));
    CHECK_OK(msync(p, PG, MS_INVALIDATE));
    CHECK_ERR(msync(p, PG, MS_ASYNC | MS_SYNC), EINVAL);
    CHECK_ERR(msync(p, PG, 0x100), EINVAL);
    CHECK_ERR(msync(p + 1, PG, MS_SYNC), EINVAL);
    CHECK_OK(munmap(p, PG));
    CHECK_ERR(msync(p, PG, MS_SYNC), ENOMEM);
    close(fd);

    /* msync on anonymous memory is allowed (nothing to write). */
    p = map_anon(PG);
    CHECK_OK(msync(p, PG, MS_SYNC));
    CHECK_OK(munmap(p, PG));
}

static void test_mincore(void)
{
    char *p = map_anon(2 * PG);
    p[0] = 1;
    unsigned char vec[2] = {0xff, 0xff};
    CHECK_OK(mincore(p, 2 * PG, vec));
    CHECK_EQ(vec[0] & 1, 1);
    CHECK_EQ(vec[0] & 0xfe, 0); /* the other bits are reserved, zero */
    CHECK_ERR(mincore(p + 1, PG, vec), EINVAL);
    CHECK_OK(munmap(p, 2 * PG));
    CHECK_ERR(mincore(p, PG, vec), ENOMEM);
}

/*
 * Code written at run time (as a JIT does) runs, and rewriting it, then clearing the
 * instruction cache, runs the new code: the emulator must drop what it translated from the
 * page. Each version is `mov w0, #N; ret`, executed many times so that it is translated.
 */
static void test_self_modifying_code(void)
{
    uint32_t *code = mmap(NULL, PG, PROT_READ | PROT_WRITE | PROT_EXEC,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(code != MAP_FAILED);
    if (code == MAP_FAILED)
        return;
    int (*fn)(void) = (int (*)(void))(uintptr_t)code;
    for (int n = 1; n <= 3; n++) {
        code[0] = 0x52800000u | ((uint32_t)n << 5); /* mov w0, #n */
        code[1] = 0xd65f03c0u;                      /* ret */
        __builtin___clear_cache((char *)code, (char *)(code + 2));
        int sum = 0;
        for (int i = 0; i < 1000; i++)
            sum += fn();
        CHECK_EQ(sum, 1000 * n);
    }
    /* Data written next to the code, in the same page, does not disturb it. */
    code[100] = 42;
    CHECK_EQ(fn(), 3);
    munmap(code, PG);
}

int main(void)
{
    /* Unbuffered stdout: a failure message must not call malloc (and so brk) mid-test. */
    setvbuf(stdout, NULL, _IONBF, 0);
    install_fault_handler();
    test_brk();
    test_mmap_anon();
    test_mmap_errors();
    test_mmap_private_file();
    test_mmap_shared_file();
    test_mmap_file_eof();
    test_munmap();
    test_mprotect();
    test_mremap();
    test_madvise();
    test_msync();
    test_mincore();
    test_self_modifying_code();
    return check_done();
}
