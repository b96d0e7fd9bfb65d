/*
 * fs_io: reading, writing and seeking.
 *
 * Covers read(2)/write(2), readv(2)/writev(2), pread(2)/pwrite(2) (pread64/pwrite64),
 * preadv(2)/pwritev(2), preadv2(2)/pwritev2(2) (offset -1 = current position, RWF_APPEND,
 * unknown flags), lseek(2) (SEEK_SET/CUR/END/DATA/HOLE and its errors), sendfile(2) (with and
 * without an offset pointer), copy_file_range(2), EFAULT/EBADF/EINVAL/ESPIPE errors, the
 * character devices null(4), zero(4), full(4) and urandom(4), and pipe2(2) (O_CLOEXEC,
 * O_NONBLOCK, EOF, EPIPE with SIGPIPE ignored; see pipe(7)).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "check.h"
#include "scratch.h"

/* A fresh file holding `content`, opened O_RDWR; the offset is 0. */
static int make_file(const char *name, const char *content)
{
    int fd = open(sp(name), O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    size_t n = strlen(content);
    CHECK_EQ(write(fd, content, n), (long long)n);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

/* An unmapped address, hidden from the compiler's buffer-size diagnostics. */
static volatile uintptr_t bad_addr = 1;
#define BADP ((void *)bad_addr)

/* The raw preadv2/pwritev2 system calls: glibc falls back to preadv/pwritev when the
   kernel lacks them and flags is 0, which would hide a missing syscall. On 64-bit
   architectures the offset goes whole in pos_l and pos_h is ignored. */
static long sys_preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    return syscall(SYS_preadv2, fd, iov, cnt, (long)off, 0L, flags);
}

static long sys_pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    return syscall(SYS_pwritev2, fd, iov, cnt, (long)off, 0L, flags);
}

static off_t pos(int fd)
{
    return lseek(fd, 0, SEEK_CUR);
}

static void test_read_write(void)
{
    char buf[64];
    int fd = make_file("rw", "0123456789");

    CHECK_EQ(read(fd, buf, 4), 4);
    CHECK(memcmp(buf, "0123", 4) == 0);
    CHECK_EQ(pos(fd), 4);
    /* A short read at end of file, then 0 at EOF. */
    CHECK_EQ(read(fd, buf, sizeof buf), 6);
    CHECK(memcmp(buf, "456789", 6) == 0);
    CHECK_EQ(read(fd, buf, sizeof buf), 0);
    /* Zero-length read and write return 0. */
    CHECK_EQ(read(fd, buf, 0), 0);
    CHECK_EQ(write(fd, buf, 0), 0);
    /* Overwrite in the middle. */
    CHECK_EQ(lseek(fd, 2, SEEK_SET), 2);
    CHECK_EQ(write(fd, "ab", 2), 2);
    CHECK_EQ(pos(fd), 4);
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 10);
    CHECK(memcmp(buf, "01ab456789", 10) == 0);
    close(fd);

    /* EBADF: writing to a read-only fd, reading a write-only fd, a closed fd. */
    fd = open(sp("rw"), O_RDONLY);
    CHECK_ERR(write(fd, "x", 1), EBADF);
    close(fd);
    fd = open(sp("rw"), O_WRONLY);
    CHECK_ERR(read(fd, buf, 1), EBADF);
    close(fd);
    CHECK_ERR(read(fd, buf, 1), EBADF);
    CHECK_ERR(write(-1, "x", 1), EBADF);
    unlink(sp("rw"));
}

static void test_efault(void)
{
    int fd = make_file("fault", "some data here");
    /* Reading into, or writing from, an unmapped address. */
    CHECK_ERR(read(fd, BADP, 10), EFAULT);
    CHECK_ERR(write(fd, BADP, 10), EFAULT);
    CHECK_ERR(pread(fd, BADP, 10, 0), EFAULT);
    struct iovec iov = {BADP, 10};
    CHECK_ERR(readv(fd, &iov, 1), EFAULT);
    /* A bad iovec array pointer. */
    CHECK_ERR(readv(fd, BADP, 1), EFAULT);
    /* A count that runs past the end of the address space is refused whole, before Linux
     * cuts counts to MAX_RW_COUNT. (The volatile keeps the compiler from judging the size.) */
    char small[4];
    volatile size_t huge = SIZE_MAX;
    CHECK_ERR(read(fd, small, huge), EFAULT);
    CHECK_ERR(write(fd, small, huge), EFAULT);
    CHECK_ERR(pread(fd, small, huge, 0), EFAULT);
    /* Nothing was consumed or written. */
    CHECK_EQ(pos(fd), 0);
    struct stat st = {0};
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 14);
    close(fd);
    unlink(sp("fault"));
}

static void test_vectored(void)
{
    int fd = make_file("vec", "");
    char a[] = "abc", b[] = "", c[] = "defgh";
    struct iovec wv[3] = {{a, 3}, {b, 0}, {c, 5}};
    CHECK_EQ(writev(fd, wv, 3), 8);
    CHECK_EQ(pos(fd), 8);
    /* iovcnt 0 is a no-op. */
    CHECK_EQ(writev(fd, wv, 0), 0);

    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    char x[2], y[4], z[8];
    memset(z, 0, sizeof z);
    struct iovec rv[3] = {{x, 2}, {y, 4}, {z, 8}};
    /* Fills the buffers in order; the last one only partly. */
    CHECK_EQ(readv(fd, rv, 3), 8);
    CHECK(memcmp(x, "ab", 2) == 0);
    CHECK(memcmp(y, "cdef", 4) == 0);
    CHECK(memcmp(z, "gh", 2) == 0);
    CHECK_EQ(readv(fd, rv, 3), 0);

    /* iovcnt above IOV_MAX (1024), or negative. */
    static struct iovec many[1025];
    for (int i = 0; i < 1025; i++)
        many[i] = (struct iovec){x, 1};
    CHECK_EQ(IOV_MAX, 1024);
    CHECK_ERR(readv(fd, many, 1025), EINVAL);
    CHECK_ERR(writev(fd, many, 1025), EINVAL);
    volatile int minus_one = -1;
    CHECK_ERR(readv(fd, many, minus_one), EINVAL);
    /* Exactly IOV_MAX is allowed. */
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_EQ(readv(fd, many, 1024), 8);
    /* A single iov_len that does not fit in ssize_t. */
    struct iovec huge = {x, (size_t)SSIZE_MAX + 1};
    CHECK_ERR(readv(fd, &huge, 1), EINVAL);
    close(fd);
    unlink(sp("vec"));
}

static void test_positional(void)
{
    char buf[16] = {0};
    int fd = make_file("pos", "abcdefghij");
    CHECK_EQ(lseek(fd, 3, SEEK_SET), 3);

    /* pread/pwrite do not move the file offset. */
    CHECK_EQ(pread(fd, buf, 4, 5), 4);
    CHECK(memcmp(buf, "fghi", 4) == 0);
    CHECK_EQ(pos(fd), 3);
    CHECK_EQ(pwrite(fd, "XY", 2, 0), 2);
    CHECK_EQ(pos(fd), 3);
    CHECK_EQ(pread(fd, buf, 16, 8), 2);
    CHECK_EQ(pread(fd, buf, 16, 100), 0);
    /* pwrite past the end leaves a hole of zeroes. */
    CHECK_EQ(pwrite(fd, "Z", 1, 12), 1);
    memset(buf, 'q', sizeof buf);
    CHECK_EQ(pread(fd, buf, 16, 0), 13);
    CHECK(memcmp(buf, "XYcdefghij\0\0Z", 13) == 0);
    /* A negative offset. */
    CHECK_ERR(pread(fd, buf, 1, -1), EINVAL);
    CHECK_ERR(pwrite(fd, "x", 1, -1), EINVAL);

    /* preadv/pwritev. */
    char p[3], q[3];
    struct iovec rv[2] = {{p, 3}, {q, 3}};
    CHECK_EQ(preadv(fd, rv, 2, 2), 6);
    CHECK(memcmp(p, "cde", 3) == 0);
    CHECK(memcmp(q, "fgh", 3) == 0);
    CHECK_EQ(pos(fd), 3);
    struct iovec wv[2] = {{"12", 2}, {"34", 2}};
    CHECK_EQ(pwritev(fd, wv, 2, 4), 4);
    CHECK_EQ(pos(fd), 3);
    CHECK_EQ(pread(fd, buf, 10, 0), 10);
    CHECK(memcmp(buf, "XYcd1234ij", 10) == 0);
    CHECK_ERR(preadv(fd, rv, 2, -5), EINVAL);

    /* preadv2/pwritev2 with offset -1 use and advance the current position. */
    CHECK_EQ(lseek(fd, 2, SEEK_SET), 2);
    CHECK_EQ(sys_preadv2(fd, rv, 2, -1, 0), 6);
    CHECK(memcmp(p, "cd1", 3) == 0);
    CHECK(memcmp(q, "234", 3) == 0);
    CHECK_EQ(pos(fd), 8);
    /* With an explicit offset they behave like preadv. */
    CHECK_EQ(sys_preadv2(fd, rv, 1, 0, 0), 3);
    CHECK(memcmp(p, "XYc", 3) == 0);
    CHECK_EQ(pos(fd), 8);
    CHECK_EQ(sys_pwritev2(fd, wv, 1, -1, 0), 2);
    CHECK_EQ(pos(fd), 10);
    /* RWF_APPEND writes at the end regardless of the offset. */
    CHECK_EQ(sys_pwritev2(fd, wv + 1, 1, 0, RWF_APPEND), 2);
    CHECK_EQ(pread(fd, buf, 16, 0), 15);
    CHECK(memcmp(buf, "XYcd123412\0\0Z34", 15) == 0);
    /* Unknown RWF_ flags. */
    CHECK_ERR(sys_preadv2(fd, rv, 1, 0, 0x40000000), EOPNOTSUPP);
    CHECK_ERR(sys_pwritev2(fd, wv, 1, 0, 0x40000000), EOPNOTSUPP);
    /* Offsets below -1 are invalid. */
    CHECK_ERR(sys_preadv2(fd, rv, 1, -2, 0), EINVAL);
    close(fd);
    unlink(sp("pos"));
}

static void test_lseek(void)
{
    int fd = make_file("seek", "0123456789");
    CHECK_EQ(lseek(fd, 4, SEEK_SET), 4);
    CHECK_EQ(lseek(fd, 3, SEEK_CUR), 7);
    CHECK_EQ(lseek(fd, -2, SEEK_CUR), 5);
    CHECK_EQ(lseek(fd, 0, SEEK_END), 10);
    CHECK_EQ(lseek(fd, -3, SEEK_END), 7);
    char c;
    CHECK_EQ(read(fd, &c, 1), 1);
    CHECK_EQ(c, '7');
    /* Seeking past the end is allowed; reading there gives EOF. */
    CHECK_EQ(lseek(fd, 100, SEEK_END), 110);
    CHECK_EQ(read(fd, &c, 1), 0);
    /* A negative resulting offset, or a bad whence, is EINVAL and leaves the offset. */
    CHECK_EQ(lseek(fd, 5, SEEK_SET), 5);
    CHECK_ERR(lseek(fd, -1, SEEK_SET), EINVAL);
    CHECK_ERR(lseek(fd, -6, SEEK_CUR), EINVAL);
    CHECK_ERR(lseek(fd, -11, SEEK_END), EINVAL);
    CHECK_ERR(lseek(fd, 0, 99), EINVAL);
    CHECK_ERR(lseek(fd, 0, -1), EINVAL);
    CHECK_EQ(pos(fd), 5);
    /* SEEK_DATA/SEEK_HOLE: a file without holes is data up to its end, then a hole. */
    CHECK_EQ(lseek(fd, 3, SEEK_DATA), 3);
    CHECK_EQ(lseek(fd, 3, SEEK_HOLE), 10);
    CHECK_ERR(lseek(fd, 10, SEEK_DATA), ENXIO);
    CHECK_ERR(lseek(fd, 11, SEEK_HOLE), ENXIO);
    close(fd);
    CHECK_ERR(lseek(fd, 0, SEEK_SET), EBADF);

    /* A pipe cannot seek. */
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_ERR(lseek(p[0], 0, SEEK_SET), ESPIPE);
    CHECK_ERR(lseek(p[1], 0, SEEK_CUR), ESPIPE);
    CHECK_ERR(pread(p[0], &c, 1, 0), ESPIPE);
    CHECK_ERR(pwrite(p[1], &c, 1, 0), ESPIPE);
    close(p[0]);
    close(p[1]);
    unlink(sp("seek"));
}

static void test_sendfile(void)
{
    char buf[32] = {0};
    int in = make_file("sf_in", "0123456789abcdef");
    int out = make_file("sf_out", "");

    /* Without an offset pointer the input's file offset advances. */
    CHECK_EQ(lseek(in, 2, SEEK_SET), 2);
    CHECK_EQ(sendfile(out, in, NULL, 4), 4);
    CHECK_EQ(pos(in), 6);
    CHECK_EQ(pos(out), 4);

    /* With one, data comes from *offset, *offset advances, the input's offset does not. */
    off_t off = 10;
    CHECK_EQ(sendfile(out, in, &off, 3), 3);
    CHECK_EQ(off, 13);
    CHECK_EQ(pos(in), 6);
    CHECK_EQ(pos(out), 7);
    /* A short transfer at end of file, then 0. */
    CHECK_EQ(sendfile(out, in, &off, 100), 3);
    CHECK_EQ(off, 16);
    CHECK_EQ(sendfile(out, in, &off, 100), 0);
    CHECK_EQ(sendfile(out, in, NULL, 0), 0);
    CHECK_EQ(pread(out, buf, sizeof buf, 0), 10);
    CHECK(memcmp(buf, "2345abcdef", 10) == 0);

    /* To a pipe. */
    int p[2];
    CHECK_OK(pipe(p));
    off = 0;
    CHECK_EQ(sendfile(p[1], in, &off, 5), 5);
    CHECK_EQ(read(p[0], buf, sizeof buf), 5);
    CHECK(memcmp(buf, "01234", 5) == 0);
    close(p[0]);
    close(p[1]);

    /* Errors: a negative offset, an input not open for reading, an output with O_APPEND,
       a bad offset pointer. */
    off = -1;
    CHECK_ERR(sendfile(out, in, &off, 1), EINVAL);
    int wo = open(sp("sf_in"), O_WRONLY);
    CHECK_ERR(sendfile(out, wo, NULL, 1), EBADF);
    close(wo);
    int ap = open(sp("sf_out"), O_WRONLY | O_APPEND);
    CHECK_ERR(sendfile(ap, in, NULL, 1), EINVAL);
    close(ap);
    CHECK_ERR(sendfile(out, in, BADP, 1), EFAULT);
    CHECK_ERR(sendfile(out, -1, NULL, 1), EBADF);
    close(in);
    close(out);
    unlink(sp("sf_in"));
    unlink(sp("sf_out"));
}

static void test_copy_file_range(void)
{
    char buf[32] = {0};
    int in = make_file("cfr_in", "0123456789");
    int out = make_file("cfr_out", "");

    /* With offset pointers: the file offsets stay put. */
    loff_t oi = 2, oo = 0;
    CHECK_EQ(copy_file_range(in, &oi, out, &oo, 5, 0), 5);
    CHECK_EQ(oi, 7);
    CHECK_EQ(oo, 5);
    CHECK_EQ(pos(in), 0);
    CHECK_EQ(pos(out), 0);
    /* Without them: the file offsets advance. */
    CHECK_EQ(lseek(in, 8, SEEK_SET), 8);
    CHECK_EQ(lseek(out, 5, SEEK_SET), 5);
    CHECK_EQ(copy_file_range(in, NULL, out, NULL, 100, 0), 2);
    CHECK_EQ(pos(in), 10);
    CHECK_EQ(pos(out), 7);
    /* At end of input: 0. */
    CHECK_EQ(copy_file_range(in, NULL, out, NULL, 100, 0), 0);
    CHECK_EQ(pread(out, buf, sizeof buf, 0), 7);
    CHECK(memcmp(buf, "2345689", 7) == 0);

    /* Errors: nonzero flags, overlapping ranges of one file, an O_APPEND output,
       an input that is write-only. */
    oi = 0, oo = 0;
    CHECK_ERR(copy_file_range(in, &oi, out, &oo, 1, 1), EINVAL);
    oi = 0, oo = 2;
    CHECK_ERR(copy_file_range(in, &oi, in, &oo, 5, 0), EINVAL);
    int ap = open(sp("cfr_out"), O_WRONLY | O_APPEND);
    CHECK_ERR(copy_file_range(in, NULL, ap, NULL, 1, 0), EBADF);
    close(ap);
    int wo = open(sp("cfr_in"), O_WRONLY);
    CHECK_ERR(copy_file_range(wo, NULL, out, NULL, 1, 0), EBADF);
    close(wo);
    /* A directory as input. */
    int d = open(scratch_dir, O_RDONLY | O_DIRECTORY);
    CHECK_ERR(copy_file_range(d, NULL, out, NULL, 1, 0), EISDIR);
    close(d);
    close(in);
    close(out);
    unlink(sp("cfr_in"));
    unlink(sp("cfr_out"));
}

static void test_devices(void)
{
    char buf[64];
    struct stat st = {0};

    int fd = open("/dev/null", O_RDWR);
    CHECK(fd >= 0);
    CHECK_OK(fstat(fd, &st));
    CHECK(S_ISCHR(st.st_mode));
    CHECK_EQ(major(st.st_rdev), 1);
    CHECK_EQ(minor(st.st_rdev), 3);
    CHECK_EQ(read(fd, buf, sizeof buf), 0);
    CHECK_EQ(write(fd, "discard", 7), 7);
    close(fd);

    fd = open("/dev/zero", O_RDONLY);
    CHECK(fd >= 0);
    memset(buf, 0x55, sizeof buf);
    CHECK_EQ(read(fd, buf, sizeof buf), (long long)sizeof buf);
    int zero = 1;
    for (size_t i = 0; i < sizeof buf; i++)
        zero &= buf[i] == 0;
    CHECK(zero);
    close(fd);

    fd = open("/dev/full", O_RDWR);
    CHECK(fd >= 0);
    CHECK_ERR(write(fd, "x", 1), ENOSPC);
    /* Reading /dev/full gives zeroes like /dev/zero. */
    buf[0] = 1;
    CHECK_EQ(read(fd, buf, 8), 8);
    CHECK_EQ(buf[0], 0);
    close(fd);

    fd = open("/dev/urandom", O_RDONLY);
    CHECK(fd >= 0);
    memset(buf, 0, sizeof buf);
    CHECK_EQ(read(fd, buf, 16), 16);
    int nonzero = 0;
    for (int i = 0; i < 16; i++)
        nonzero |= buf[i] != 0;
    CHECK(nonzero);
    close(fd);
}

static void test_pipe2(void)
{
    int p[2];
    char buf[16];

    CHECK_OK(pipe2(p, 0));
    struct stat st = {0};
    CHECK_OK(fstat(p[0], &st));
    CHECK(S_ISFIFO(st.st_mode));
    CHECK_EQ(fcntl(p[0], F_GETFL) & O_ACCMODE, O_RDONLY);
    CHECK_EQ(fcntl(p[1], F_GETFL) & O_ACCMODE, O_WRONLY);
    CHECK_EQ(fcntl(p[0], F_GETFD), 0);
    /* Reading the write end, writing the read end. */
    CHECK_ERR(read(p[1], buf, 1), EBADF);
    CHECK_ERR(write(p[0], "x", 1), EBADF);
    /* Data in order; after the writer closes, reads drain and then see EOF. */
    CHECK_EQ(write(p[1], "hello", 5), 5);
    CHECK_EQ(write(p[1], "world", 5), 5);
    close(p[1]);
    CHECK_EQ(read(p[0], buf, 3), 3);
    CHECK(memcmp(buf, "hel", 3) == 0);
    CHECK_EQ(read(p[0], buf, sizeof buf), 7);
    CHECK(memcmp(buf, "loworld", 7) == 0);
    CHECK_EQ(read(p[0], buf, sizeof buf), 0);
    close(p[0]);

    CHECK_OK(pipe2(p, O_CLOEXEC));
    CHECK_EQ(fcntl(p[0], F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(p[1], F_GETFD), FD_CLOEXEC);
    close(p[0]);
    close(p[1]);

    CHECK_OK(pipe2(p, O_NONBLOCK));
    CHECK((fcntl(p[0], F_GETFL) & O_NONBLOCK) != 0);
    CHECK((fcntl(p[1], F_GETFL) & O_NONBLOCK) != 0);
    CHECK_ERR(read(p[0], buf, sizeof buf), EAGAIN);
    CHECK_EQ(write(p[1], "a", 1), 1);
    CHECK_EQ(read(p[0], buf, sizeof buf), 1);
    CHECK_ERR(read(p[0], buf, sizeof buf), EAGAIN);
    close(p[0]);
    close(p[1]);

    /* Unknown flags; O_RDWR is not a pipe2 flag either. */
    CHECK_ERR(pipe2(p, 0x1), EINVAL);
    CHECK_ERR(pipe2(p, O_RDWR), EINVAL);
    CHECK_ERR(pipe2(p, O_APPEND), EINVAL);
    /* A bad array pointer. */
    CHECK_ERR(pipe2(BADP, 0), EFAULT);

    /* Writing with no reader: EPIPE (SIGPIPE is ignored here). */
    signal(SIGPIPE, SIG_IGN);
    CHECK_OK(pipe(p));
    close(p[0]);
    CHECK_ERR(write(p[1], "x", 1), EPIPE);
    close(p[1]);
}

int main(void)
{
    scratch_init();
    test_read_write();
    test_efault();
    test_vectored();
    test_positional();
    test_lseek();
    test_sendfile();
    test_copy_file_range();
    test_devices();
    test_pipe2();
    scratch_cleanup();
    return check_done();
}
