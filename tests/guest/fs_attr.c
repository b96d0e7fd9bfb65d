/*
 * fs_attr: file attributes and descriptor operations.
 *
 * Covers chmod(2)/fchmod(2)/fchmodat(2) and fchmodat2 (Linux 6.6), chown(2)/fchown(2)/
 * fchownat(2), utimensat(2)/futimens(3) (explicit times, UTIME_NOW, UTIME_OMIT,
 * AT_SYMLINK_NOFOLLOW, a NULL path with a dirfd), truncate(2)/ftruncate(2), fallocate(2),
 * fsync(2)/fdatasync(2)/sync(2)/syncfs(2), fcntl(2) (F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD/F_SETFD,
 * F_GETFL/F_SETFL, F_SETLK/F_GETLK, F_OFD_SETLK/F_OFD_GETLK, F_GETPIPE_SZ/F_SETPIPE_SZ),
 * flock(2), dup(2)/dup2(2)/dup3(2), ioctl(2) (ioctl_tty(2) TCGETS, FIONREAD, FIOCLEX/FIONCLEX,
 * FIONBIO; see ioctl_list(2)), and extended attributes (setxattr(2), getxattr(2),
 * listxattr(2), removexattr(2); xattr(7)), skipped quietly if /tmp has no user xattrs.
 * The path-based calls (and chdir(2)) also go through the /proc/self/fd/N magic links
 * (proc(5)), which is how glibc implements fchmodat(AT_SYMLINK_NOFOLLOW) on an O_PATH
 * descriptor.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "scratch.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452 /* the same number on every architecture */
#endif

static volatile uintptr_t bad_addr = 1;
#define BADP ((void *)bad_addr)

static mode_t perms(const char *path)
{
    struct stat st = {0};
    if (lstat(path, &st) != 0)
        return (mode_t)-1;
    return st.st_mode & 07777;
}

static off_t size_of_fd(int fd)
{
    struct stat st = {0};
    if (fstat(fd, &st) != 0)
        return -1;
    return st.st_size;
}

static void test_chmod(void)
{
    CHECK_OK(scratch_write_file(sp("f"), "x"));
    CHECK_OK(symlink("f", sp("l")));
    int fd = open(sp("f"), O_RDONLY);

    CHECK_OK(fchmod(fd, 0640));
    CHECK_EQ(perms(sp("f")), 0640);
    /* Special bits are kept; the file type bits in mode are ignored. */
    CHECK_OK(fchmod(fd, 04755));
    CHECK_EQ(perms(sp("f")), 04755);
    CHECK_OK(chmod(sp("f"), S_IFDIR | 0600));
    CHECK_EQ(perms(sp("f")), 0600);
    struct stat st = {0};
    CHECK_OK(stat(sp("f"), &st));
    CHECK(S_ISREG(st.st_mode));
    /* chmod follows symlinks; the link keeps 0777. */
    CHECK_OK(chmod(sp("l"), 0604));
    CHECK_EQ(perms(sp("f")), 0604);
    CHECK_EQ(perms(sp("l")), 0777);
    /* fchmodat relative to a dirfd (the system call has no flags argument). */
    int dfd = open(scratch_dir, O_RDONLY | O_DIRECTORY);
    CHECK_EQ(syscall(SYS_fchmodat, dfd, "f", 0644), 0);
    CHECK_EQ(perms(sp("f")), 0644);
    CHECK_ERR(syscall(SYS_fchmodat, dfd, "missing", 0644), ENOENT);

    /* fchmodat2 (Linux 6.6) takes flags: AT_SYMLINK_NOFOLLOW on a symlink is
       EOPNOTSUPP, on a regular file it works; unknown flags are EINVAL. */
    CHECK_EQ(syscall(SYS_fchmodat2, dfd, "f", 0600, AT_SYMLINK_NOFOLLOW), 0);
    CHECK_EQ(perms(sp("f")), 0600);
    CHECK_ERR(syscall(SYS_fchmodat2, dfd, "l", 0600, AT_SYMLINK_NOFOLLOW), EOPNOTSUPP);
    CHECK_ERR(syscall(SYS_fchmodat2, dfd, "f", 0600, 0x1), EINVAL);
    CHECK_EQ(syscall(SYS_fchmodat2, fd, "", 0644, AT_EMPTY_PATH), 0);
    CHECK_EQ(perms(sp("f")), 0644);

    /* Errors. */
    CHECK_ERR(fchmod(-1, 0644), EBADF);
    CHECK_ERR(chmod(sp("missing"), 0644), ENOENT);
    CHECK_ERR(chmod(sp("f/x"), 0644), ENOTDIR);
    CHECK_ERR(chmod(BADP, 0644), EFAULT);
    close(dfd);
    close(fd);
    unlink(sp("l"));
    unlink(sp("f"));
}

static void test_chown(void)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    struct stat st = {0};
    CHECK_OK(scratch_write_file(sp("f"), "x"));
    CHECK_OK(symlink("f", sp("l")));
    int fd = open(sp("f"), O_RDONLY);
    int dfd = open(scratch_dir, O_RDONLY | O_DIRECTORY);

    CHECK_OK(fchown(fd, uid, gid));
    CHECK_OK(chown(sp("f"), uid, gid));
    /* -1 leaves an id unchanged. */
    CHECK_OK(fchown(fd, (uid_t)-1, (gid_t)-1));
    CHECK_OK(fchownat(dfd, "f", uid, gid, 0));
    CHECK_OK(fchownat(dfd, "l", uid, gid, AT_SYMLINK_NOFOLLOW));
    CHECK_OK(lchown(sp("l"), uid, gid));
    CHECK_OK(fchownat(fd, "", uid, gid, AT_EMPTY_PATH));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_uid, uid);
    CHECK_EQ(st.st_gid, gid);
    CHECK_OK(lstat(sp("l"), &st));
    CHECK_EQ(st.st_uid, uid);

    /* Errors. */
    CHECK_ERR(fchownat(dfd, "f", uid, gid, 0x1), EINVAL);
    CHECK_ERR(fchown(-1, uid, gid), EBADF);
    CHECK_ERR(chown(sp("missing"), uid, gid), ENOENT);
    if (uid != 0) /* only root may give a file away */
        CHECK_ERR(fchown(fd, 0, (gid_t)-1), EPERM);
    close(dfd);
    close(fd);
    unlink(sp("l"));
    unlink(sp("f"));
}

static int ts_eq(struct timespec a, time_t sec, long nsec)
{
    return a.tv_sec == sec && a.tv_nsec == nsec;
}

static void test_utimensat(void)
{
    struct stat st = {0};
    CHECK_OK(scratch_write_file(sp("f"), "x"));
    CHECK_OK(symlink("f", sp("l")));
    int dfd = open(scratch_dir, O_RDONLY | O_DIRECTORY);

    /* Explicit times, to the nanosecond. */
    struct timespec t[2] = {{1000000000, 123456789}, {1100000000, 987654321}};
    CHECK_OK(utimensat(dfd, "f", t, 0));
    CHECK_OK(stat(sp("f"), &st));
    CHECK(ts_eq(st.st_atim, 1000000000, 123456789));
    CHECK(ts_eq(st.st_mtim, 1100000000, 987654321));

    /* UTIME_OMIT keeps a time; UTIME_NOW sets it to the current time. */
    struct timespec now_before, now_after;
    clock_gettime(CLOCK_REALTIME, &now_before);
    struct timespec t2[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    CHECK_OK(utimensat(dfd, "f", t2, 0));
    clock_gettime(CLOCK_REALTIME, &now_after);
    CHECK_OK(stat(sp("f"), &st));
    CHECK(ts_eq(st.st_atim, 1000000000, 123456789));
    /* File timestamps come from a coarse clock: allow a second either way. */
    CHECK(st.st_mtim.tv_sec >= now_before.tv_sec - 1);
    CHECK(st.st_mtim.tv_sec <= now_after.tv_sec + 1);
    /* Both omitted: nothing changes (and the tv_sec values are ignored). */
    struct timespec t3[2] = {{5, UTIME_OMIT}, {5, UTIME_OMIT}};
    CHECK_OK(utimensat(dfd, "f", t3, 0));
    CHECK_OK(stat(sp("f"), &st));
    CHECK(ts_eq(st.st_atim, 1000000000, 123456789));
    /* NULL times: both now. */
    CHECK_OK(utimensat(dfd, "f", NULL, 0));
    CHECK_OK(stat(sp("f"), &st));
    CHECK(st.st_atim.tv_sec >= now_before.tv_sec - 1);

    /* AT_SYMLINK_NOFOLLOW sets the link's own times, not the target's. */
    struct timespec tl[2] = {{200000000, 0}, {300000000, 0}};
    CHECK_OK(utimensat(dfd, "f", t, 0));
    CHECK_OK(utimensat(dfd, "l", tl, AT_SYMLINK_NOFOLLOW));
    CHECK_OK(lstat(sp("l"), &st));
    CHECK(ts_eq(st.st_mtim, 300000000, 0));
    CHECK_OK(stat(sp("f"), &st));
    CHECK(ts_eq(st.st_mtim, 1100000000, 987654321));
    /* Without it the target changes. */
    CHECK_OK(utimensat(dfd, "l", tl, 0));
    CHECK_OK(stat(sp("f"), &st));
    CHECK(ts_eq(st.st_mtim, 300000000, 0));

    /* A NULL path with a dirfd (the raw call; glibc refuses NULL) acts on the fd itself,
       like futimens. */
    int fd = open(sp("f"), O_RDONLY);
    CHECK_EQ(syscall(SYS_utimensat, fd, NULL, t, 0), 0);
    CHECK_OK(stat(sp("f"), &st));
    CHECK(ts_eq(st.st_mtim, 1100000000, 987654321));
    CHECK_OK(futimens(fd, tl));
    CHECK_OK(fstat(fd, &st));
    CHECK(ts_eq(st.st_atim, 200000000, 0));
    /* ...but not with flags, nor with AT_FDCWD. */
    CHECK_ERR(syscall(SYS_utimensat, fd, NULL, t, AT_SYMLINK_NOFOLLOW), EINVAL);
    CHECK_ERR(syscall(SYS_utimensat, AT_FDCWD, NULL, t, 0), EFAULT);

    /* Errors: tv_nsec out of range, unknown flags, a missing file, a bad times pointer. */
    struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
    CHECK_ERR(utimensat(dfd, "f", bad, 0), EINVAL);
    bad[0].tv_nsec = -1;
    CHECK_ERR(utimensat(dfd, "f", bad, 0), EINVAL);
    CHECK_ERR(utimensat(dfd, "f", t, 0x1), EINVAL);
    CHECK_ERR(utimensat(dfd, "missing", t, 0), ENOENT);
    CHECK_ERR(syscall(SYS_utimensat, dfd, "f", BADP, 0), EFAULT);
    CHECK_ERR(futimens(-1, t), EBADF);
    close(fd);
    close(dfd);
    unlink(sp("l"));
    unlink(sp("f"));
}

static void test_truncate(void)
{
    char buf[32];
    CHECK_OK(scratch_write_file(sp("f"), "0123456789"));
    CHECK_OK(truncate(sp("f"), 4));
    CHECK_EQ(scratch_read_file(sp("f"), buf, sizeof buf), 4);
    CHECK(memcmp(buf, "0123", 4) == 0);
    /* Growing fills with zeroes. */
    CHECK_OK(truncate(sp("f"), 8));
    CHECK_EQ(scratch_read_file(sp("f"), buf, sizeof buf), 8);
    CHECK(memcmp(buf, "0123\0\0\0\0", 8) == 0);

    int fd = open(sp("f"), O_RDWR);
    CHECK_OK(ftruncate(fd, 2));
    CHECK_EQ(size_of_fd(fd), 2);
    CHECK_OK(ftruncate(fd, 100000));
    CHECK_EQ(size_of_fd(fd), 100000);
    CHECK_EQ(pread(fd, buf, 4, 50000), 4);
    CHECK(memcmp(buf, "\0\0\0\0", 4) == 0);
    /* The file offset is not changed. */
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
    CHECK_OK(ftruncate(fd, 0));
    CHECK_EQ(size_of_fd(fd), 0);

    /* Errors. */
    CHECK_ERR(ftruncate(fd, -1), EINVAL);
    CHECK_ERR(truncate(sp("f"), -1), EINVAL);
    close(fd);
    fd = open(sp("f"), O_RDONLY);
    CHECK_ERR(ftruncate(fd, 1), EINVAL); /* not open for writing: EINVAL, not EBADF */
    close(fd);
    CHECK_ERR(ftruncate(-1, 1), EBADF);
    CHECK_ERR(truncate(scratch_dir, 1), EISDIR);
    CHECK_ERR(truncate(sp("missing"), 1), ENOENT);
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_ERR(ftruncate(p[1], 0), EINVAL);
    close(p[0]);
    close(p[1]);
    unlink(sp("f"));
}

static void test_fallocate(void)
{
    char buf[16];
    int fd = open(sp("fa"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK_OK(fallocate(fd, 0, 0, 4096));
    CHECK_EQ(size_of_fd(fd), 4096);
    /* Beyond the end: the size becomes offset + len. */
    CHECK_OK(fallocate(fd, 0, 8192, 100));
    CHECK_EQ(size_of_fd(fd), 8292);
    /* Inside the file: no change. */
    CHECK_OK(fallocate(fd, 0, 0, 10));
    CHECK_EQ(size_of_fd(fd), 8292);
    /* FALLOC_FL_KEEP_SIZE leaves the size. */
    CHECK_OK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 65536));
    CHECK_EQ(size_of_fd(fd), 8292);
    /* Allocated space reads as zeroes. */
    CHECK_EQ(pread(fd, buf, 8, 100), 8);
    CHECK(memcmp(buf, "\0\0\0\0\0\0\0\0", 8) == 0);
    /* Punching a hole zeroes the range and keeps the size. */
    CHECK_EQ(pwrite(fd, "ABCDEFGH", 8, 0), 8);
    CHECK_OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
    CHECK_EQ(pread(fd, buf, 8, 0), 8);
    CHECK(memcmp(buf, "\0\0\0\0\0\0\0\0", 8) == 0);
    CHECK_EQ(size_of_fd(fd), 8292);

    /* Errors: len 0, negative offset or length, PUNCH_HOLE without KEEP_SIZE, unknown
       mode bits, a read-only fd, a pipe. */
    CHECK_ERR(fallocate(fd, 0, 0, 0), EINVAL);
    CHECK_ERR(fallocate(fd, 0, -1, 10), EINVAL);
    CHECK_ERR(fallocate(fd, 0, 0, -10), EINVAL);
    CHECK_ERR(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 10), EOPNOTSUPP);
    CHECK_ERR(fallocate(fd, 0x80000, 0, 10), EOPNOTSUPP);
    close(fd);
    fd = open(sp("fa"), O_RDONLY);
    CHECK_ERR(fallocate(fd, 0, 0, 10), EBADF);
    close(fd);
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_ERR(fallocate(p[1], 0, 0, 10), ESPIPE);
    close(p[0]);
    close(p[1]);
    unlink(sp("fa"));
}

static void test_sync(void)
{
    int fd = open(sp("s"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK_EQ(write(fd, "sync", 4), 4);
    CHECK_OK(fsync(fd));
    CHECK_OK(fdatasync(fd));
    CHECK_OK(syncfs(fd));
    sync();
    CHECK_ERR(fsync(-1), EBADF);
    CHECK_ERR(fdatasync(9999), EBADF);
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_ERR(fsync(p[0]), EINVAL);
    close(p[0]);
    close(p[1]);
    close(fd);
    unlink(sp("s"));
}

static void test_fcntl_fd_flags(void)
{
    int fd = open(sp("fc"), O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);
    CHECK(fd >= 0);

    /* F_DUPFD returns the lowest free fd >= the minimum, without FD_CLOEXEC. */
    int d = fcntl(fd, F_DUPFD, 50);
    CHECK_EQ(d, 50);
    CHECK_EQ(fcntl(d, F_GETFD), 0);
    int d2 = fcntl(fd, F_DUPFD, 50);
    CHECK_EQ(d2, 51);
    close(d2);
    /* F_DUPFD_CLOEXEC. */
    int d3 = fcntl(fd, F_DUPFD_CLOEXEC, 50);
    CHECK_EQ(d3, 51);
    CHECK_EQ(fcntl(d3, F_GETFD), FD_CLOEXEC);
    close(d3);
    close(d);
    /* A minimum at or over RLIMIT_NOFILE, or negative. */
    struct rlimit rl;
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &rl));
    CHECK_ERR(fcntl(fd, F_DUPFD, (int)rl.rlim_cur), EINVAL);
    CHECK_ERR(fcntl(fd, F_DUPFD, -1), EINVAL);

    /* F_GETFD/F_SETFD. */
    CHECK_EQ(fcntl(fd, F_GETFD), 0);
    CHECK_EQ(fcntl(fd, F_SETFD, FD_CLOEXEC), 0);
    CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(fd, F_SETFD, 0), 0);
    CHECK_EQ(fcntl(fd, F_GETFD), 0);

    /* F_GETFL shows the access mode and status flags (not O_CREAT/O_TRUNC). */
    int fl = fcntl(fd, F_GETFL);
    CHECK_EQ(fl & O_ACCMODE, O_WRONLY);
    CHECK((fl & O_APPEND) != 0);
    CHECK_EQ(fl & (O_CREAT | O_TRUNC | O_EXCL), 0);
    /* F_SETFL toggles O_NONBLOCK but cannot change the access mode. */
    CHECK_EQ(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
    CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    CHECK_EQ(fcntl(fd, F_SETFL, (fl & ~O_NONBLOCK & ~O_ACCMODE) | O_RDWR), 0);
    CHECK_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    CHECK_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_WRONLY);
    /* F_SETFL can clear O_APPEND. */
    CHECK_EQ(fcntl(fd, F_SETFL, 0), 0);
    CHECK_EQ(fcntl(fd, F_GETFL) & O_APPEND, 0);

    /* Unknown commands, bad fds. */
    CHECK_ERR(fcntl(fd, 9999), EINVAL);
    CHECK_ERR(fcntl(-1, F_GETFD), EBADF);
    CHECK_ERR(fcntl(9999, F_GETFL), EBADF);

    /* Pipe buffer size: 16 pages by default; rounded up to a power-of-two number of pages. */
    int p[2];
    CHECK_OK(pipe(p));
    long page = sysconf(_SC_PAGESIZE);
    CHECK_EQ(fcntl(p[0], F_GETPIPE_SZ), 16 * page);
    CHECK_EQ(fcntl(p[0], F_SETPIPE_SZ, 3 * page), 4 * page);
    CHECK_EQ(fcntl(p[1], F_GETPIPE_SZ), 4 * page);
    CHECK_ERR(fcntl(fd, F_GETPIPE_SZ), EBADF);
    close(p[0]);
    close(p[1]);
    close(fd);
    unlink(sp("fc"));
}

static struct flock lk(short type, off_t start, off_t len)
{
    struct flock f;
    memset(&f, 0, sizeof f);
    f.l_type = type;
    f.l_whence = SEEK_SET;
    f.l_start = start;
    f.l_len = len;
    return f;
}

static void test_record_locks(void)
{
    int fd = open(sp("lock"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK_EQ(write(fd, "0123456789", 10), 10);
    struct flock f;

    /* A POSIX lock never conflicts with the same process's own locks. */
    f = lk(F_WRLCK, 0, 5);
    CHECK_EQ(fcntl(fd, F_SETLK, &f), 0);
    f = lk(F_WRLCK, 0, 10);
    CHECK_EQ(fcntl(fd, F_GETLK, &f), 0);
    CHECK_EQ(f.l_type, F_UNLCK);
    /* Upgrading/downgrading and unlocking our own lock work. */
    f = lk(F_RDLCK, 0, 5);
    CHECK_EQ(fcntl(fd, F_SETLK, &f), 0);
    f = lk(F_UNLCK, 0, 0);
    CHECK_EQ(fcntl(fd, F_SETLK, &f), 0);

    /* Open file description locks conflict between two open()s even in one process. */
    int fd2 = open(sp("lock"), O_RDWR);
    f = lk(F_WRLCK, 2, 3);
    CHECK_EQ(fcntl(fd, F_OFD_SETLK, &f), 0);
    f = lk(F_RDLCK, 0, 10);
    CHECK_EQ(fcntl(fd2, F_OFD_GETLK, &f), 0);
    CHECK_EQ(f.l_type, F_WRLCK);
    CHECK_EQ(f.l_start, 2);
    CHECK_EQ(f.l_len, 3);
    CHECK_EQ(f.l_pid, -1);
    f = lk(F_WRLCK, 4, 1);
    CHECK_ERR(fcntl(fd2, F_OFD_SETLK, &f), EAGAIN);
    /* A non-overlapping range is free. */
    f = lk(F_WRLCK, 5, 5);
    CHECK_EQ(fcntl(fd2, F_OFD_SETLK, &f), 0);
    /* The same description may re-lock its own range. */
    f = lk(F_RDLCK, 2, 3);
    CHECK_EQ(fcntl(fd, F_OFD_SETLK, &f), 0);
    /* l_pid must be 0 for OFD requests. */
    f = lk(F_WRLCK, 0, 1);
    f.l_pid = 1;
    CHECK_ERR(fcntl(fd, F_OFD_SETLK, &f), EINVAL);
    /* Closing the description releases its locks. */
    close(fd2);
    f = lk(F_WRLCK, 0, 0);
    CHECK_EQ(fcntl(fd, F_OFD_GETLK, &f), 0);
    CHECK_EQ(f.l_type, F_UNLCK);
    f = lk(F_UNLCK, 0, 0);
    CHECK_EQ(fcntl(fd, F_OFD_SETLK, &f), 0);

    /* Errors: a write lock needs a writable fd, a read lock a readable one; a bad type;
       a range that starts before 0. */
    int ro = open(sp("lock"), O_RDONLY);
    f = lk(F_WRLCK, 0, 1);
    CHECK_ERR(fcntl(ro, F_SETLK, &f), EBADF);
    close(ro);
    int wo = open(sp("lock"), O_WRONLY);
    f = lk(F_RDLCK, 0, 1);
    CHECK_ERR(fcntl(wo, F_SETLK, &f), EBADF);
    close(wo);
    f = lk(42, 0, 1);
    CHECK_ERR(fcntl(fd, F_SETLK, &f), EINVAL);
    f = lk(F_WRLCK, -5, 1);
    CHECK_ERR(fcntl(fd, F_SETLK, &f), EINVAL);
    CHECK_ERR(fcntl(fd, F_GETLK, BADP), EFAULT);
    close(fd);
    unlink(sp("lock"));
}

static void test_flock(void)
{
    int a = open(sp("fl"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    int b = open(sp("fl"), O_RDWR);
    CHECK_OK(flock(a, LOCK_EX));
    /* flock locks belong to the open file description: a second open() conflicts... */
    CHECK_ERR(flock(b, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    CHECK_ERR(flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    /* ...a dup() of the locked one does not. */
    int c = dup(a);
    CHECK_OK(flock(c, LOCK_EX | LOCK_NB));
    CHECK_OK(flock(a, LOCK_UN));
    CHECK_OK(flock(b, LOCK_EX | LOCK_NB));
    CHECK_OK(flock(b, LOCK_UN));
    /* Shared locks coexist. */
    CHECK_OK(flock(a, LOCK_SH));
    CHECK_OK(flock(b, LOCK_SH | LOCK_NB));
    CHECK_ERR(flock(c, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    CHECK_OK(flock(a, LOCK_UN));
    CHECK_OK(flock(b, LOCK_UN));
    /* Unlocking without a lock is fine. */
    CHECK_OK(flock(b, LOCK_UN));
    /* Bad operations. */
    CHECK_ERR(flock(a, 0), EINVAL);
    CHECK_ERR(flock(a, LOCK_NB), EINVAL);
    CHECK_ERR(flock(a, 64), EINVAL);
    CHECK_ERR(flock(-1, LOCK_EX), EBADF);
    close(c);
    close(b);
    close(a);
    unlink(sp("fl"));
}

static void test_dup(void)
{
    int fd = open(sp("dup"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK_EQ(write(fd, "abcdef", 6), 6);

    /* dup shares the file offset and status flags, not FD_CLOEXEC. */
    CHECK_EQ(fcntl(fd, F_SETFD, FD_CLOEXEC), 0);
    int d = dup(fd);
    CHECK(d > fd);
    CHECK_EQ(fcntl(d, F_GETFD), 0);
    CHECK_EQ(lseek(fd, 2, SEEK_SET), 2);
    CHECK_EQ(lseek(d, 0, SEEK_CUR), 2);
    CHECK_EQ(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    CHECK((fcntl(d, F_GETFL) & O_NONBLOCK) != 0);
    close(d);

    /* dup2 onto an open fd closes it first; onto itself is a no-op returning it. */
    int other = open(scratch_dir, O_RDONLY);
    CHECK_EQ(dup2(fd, other), other);
    CHECK_EQ(lseek(other, 0, SEEK_CUR), 2);
    CHECK_EQ(dup2(fd, fd), fd);
    CHECK_ERR(dup2(9999, 9999), EBADF);
    CHECK_ERR(dup2(fd, -1), EBADF);

    /* dup3. */
    CHECK_EQ(dup3(fd, 60, O_CLOEXEC), 60);
    CHECK_EQ(fcntl(60, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(dup3(fd, 60, 0), 60);
    CHECK_EQ(fcntl(60, F_GETFD), 0);
    CHECK_ERR(dup3(fd, fd, 0), EINVAL);
    CHECK_ERR(dup3(fd, 61, O_NONBLOCK), EINVAL);
    CHECK_ERR(dup3(fd, 61, 0x1), EINVAL);
    CHECK_ERR(dup3(-1, 61, 0), EBADF);
    CHECK_EQ(fcntl(61, F_GETFD), -1);
    close(60);

    CHECK_ERR(dup(-1), EBADF);
    close(other);
    close(fd);
    unlink(sp("dup"));
}

static void test_ioctl(void)
{
    int fd = open(sp("io"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK_EQ(write(fd, "0123456789", 10), 10);
    CHECK_EQ(lseek(fd, 3, SEEK_SET), 3);
    char big[256];

    /* A regular file is not a terminal. */
    CHECK_ERR(ioctl(fd, TCGETS, big), ENOTTY);
    CHECK_ERR(ioctl(fd, TIOCGWINSZ, big), ENOTTY);
    /* FIONREAD on a regular file: bytes between the offset and the end. */
    int n = -1;
    CHECK_EQ(ioctl(fd, FIONREAD, &n), 0);
    CHECK_EQ(n, 7);

    /* FIOCLEX/FIONCLEX. */
    CHECK_EQ(ioctl(fd, FIOCLEX), 0);
    CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(ioctl(fd, FIONCLEX), 0);
    CHECK_EQ(fcntl(fd, F_GETFD), 0);
    /* FIONBIO. */
    int on = 1, off = 0;
    CHECK_EQ(ioctl(fd, FIONBIO, &on), 0);
    CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    CHECK_EQ(ioctl(fd, FIONBIO, &off), 0);
    CHECK_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);

    /* FIONREAD on a pipe holding 5 bytes. */
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_EQ(write(p[1], "hello", 5), 5);
    n = -1;
    CHECK_EQ(ioctl(p[0], FIONREAD, &n), 0);
    CHECK_EQ(n, 5);
    CHECK_ERR(ioctl(p[0], TCGETS, big), ENOTTY);
    CHECK_ERR(ioctl(p[0], FIONREAD, BADP), EFAULT);
    close(p[0]);
    close(p[1]);

    /* Bad fds; an unknown request. */
    CHECK_ERR(ioctl(-1, FIONREAD, &n), EBADF);
    CHECK_ERR(ioctl(fd, 0x12345678, big), ENOTTY);
    close(fd);
    unlink(sp("io"));
}

static void test_xattr(void)
{
    const char *f = sp("xa");
    char buf[64];
    CHECK_OK(scratch_write_file(f, "x"));
    errno = 0;
    if (setxattr(f, "user.elfuse", "value1", 6, 0) != 0) {
        if (errno == ENOTSUP || errno == EOPNOTSUPP) {
            unlink(f);
            return; /* no user xattrs on this filesystem */
        }
        CHECK(!"setxattr user.elfuse");
    }

    /* Size 0 asks for the length; then the value. */
    CHECK_EQ(getxattr(f, "user.elfuse", NULL, 0), 6);
    memset(buf, 0, sizeof buf);
    CHECK_EQ(getxattr(f, "user.elfuse", buf, sizeof buf), 6);
    CHECK(memcmp(buf, "value1", 6) == 0);
    /* A buffer too small; a missing name. */
    CHECK_ERR(getxattr(f, "user.elfuse", buf, 3), ERANGE);
    CHECK_ERR(getxattr(f, "user.missing", buf, sizeof buf), ENODATA);

    /* XATTR_CREATE on an existing name, XATTR_REPLACE on a missing one, bad flags. */
    CHECK_ERR(setxattr(f, "user.elfuse", "v", 1, XATTR_CREATE), EEXIST);
    CHECK_ERR(setxattr(f, "user.other", "v", 1, XATTR_REPLACE), ENODATA);
    CHECK_ERR(setxattr(f, "user.other", "v", 1, 0x10), EINVAL);
    CHECK_OK(setxattr(f, "user.elfuse", "val2", 4, XATTR_REPLACE));
    CHECK_EQ(getxattr(f, "user.elfuse", buf, sizeof buf), 4);
    /* An empty value. */
    CHECK_OK(setxattr(f, "user.empty", "", 0, XATTR_CREATE));
    CHECK_EQ(getxattr(f, "user.empty", buf, sizeof buf), 0);

    /* listxattr: NUL-separated names; size 0 gives the length. */
    ssize_t len = listxattr(f, NULL, 0);
    CHECK(len >= (ssize_t)(sizeof "user.elfuse" + sizeof "user.empty"));
    char list[1024];
    memset(list, 0, sizeof list);
    CHECK_EQ(listxattr(f, list, sizeof list), len);
    int found = 0, found_empty = 0;
    for (char *q = list; q < list + len; q += strlen(q) + 1) {
        found |= strcmp(q, "user.elfuse") == 0;
        found_empty |= strcmp(q, "user.empty") == 0;
    }
    CHECK(found);
    CHECK(found_empty);
    CHECK_ERR(listxattr(f, list, 1), ERANGE);

    /* The f* variants on an fd. */
    int fd = open(f, O_RDONLY);
    CHECK_EQ(fgetxattr(fd, "user.elfuse", buf, sizeof buf), 4);
    CHECK_OK(fsetxattr(fd, "user.fd", "fdv", 3, 0));
    CHECK_EQ(getxattr(f, "user.fd", buf, sizeof buf), 3);
    CHECK_OK(fremovexattr(fd, "user.fd"));
    CHECK_EQ(flistxattr(fd, list, sizeof list), len);
    close(fd);

    /* Names: no namespace prefix, empty, longer than 255 bytes. */
    CHECK_ERR(setxattr(f, "elfuse", "v", 1, 0), EOPNOTSUPP);
    CHECK_ERR(getxattr(f, "", buf, sizeof buf), ERANGE);
    char longname[300] = "user.";
    memset(longname + 5, 'n', 260);
    longname[265] = 0;
    CHECK_ERR(setxattr(f, longname, "v", 1, 0), ERANGE);
    /* user.* attributes are not allowed on symlinks. */
    CHECK_OK(symlink("xa", sp("xl")));
    CHECK_ERR(lsetxattr(sp("xl"), "user.elfuse", "v", 1, 0), EPERM);
    /* ...but through the symlink they reach the target. */
    CHECK_EQ(getxattr(sp("xl"), "user.elfuse", buf, sizeof buf), 4);
    CHECK_ERR(lgetxattr(sp("xl"), "user.elfuse", buf, sizeof buf), ENODATA);

    /* removexattr. */
    CHECK_OK(removexattr(f, "user.elfuse"));
    CHECK_ERR(getxattr(f, "user.elfuse", buf, sizeof buf), ENODATA);
    CHECK_ERR(removexattr(f, "user.elfuse"), ENODATA);
    CHECK_OK(removexattr(f, "user.empty"));
    CHECK_ERR(getxattr(sp("missing"), "user.elfuse", buf, sizeof buf), ENOENT);
    unlink(sp("xl"));
    unlink(f);
}

/* chmod, chown, utimensat, truncate, chdir and the xattr calls through /proc/self/fd/N act on
   the descriptor's file, even an O_PATH one; glibc's fchmodat(..., AT_SYMLINK_NOFOLLOW) relies on it (GNU tar restores
   directory modes that way). */
static void test_proc_fd_paths(void)
{
    char link[64];
    struct stat st = {0};
    CHECK_OK(scratch_write_file(sp("f"), "x"));
    CHECK_OK(mkdir(sp("d"), 0700));
    int fd = open(sp("f"), O_PATH | O_NOFOLLOW);
    int dfd = open(sp("d"), O_PATH | O_NOFOLLOW);

    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    CHECK_OK(chmod(link, 0604));
    CHECK_EQ(perms(sp("f")), 0604);
    CHECK_OK(chown(link, geteuid(), getegid()));
    struct timespec t[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1234567890}};
    CHECK_OK(utimensat(AT_FDCWD, link, t, 0));
    CHECK_OK(stat(sp("f"), &st));
    CHECK_EQ(st.st_mtime, 1234567890);

    snprintf(link, sizeof link, "/proc/self/fd/%d", dfd);
    CHECK_OK(chmod(link, 0755));
    CHECK_EQ(perms(sp("d")), 0755);
    CHECK_OK(fchmodat(AT_FDCWD, sp("d"), 0750, AT_SYMLINK_NOFOLLOW));
    CHECK_EQ(perms(sp("d")), 0750);
    /* chdir through the link of an O_PATH directory. */
    char cwd[4096], back[4096];
    CHECK(getcwd(back, sizeof back) != NULL);
    CHECK_OK(chdir(link));
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK_EQ(strcmp(cwd, sp("d")), 0);
    CHECK_OK(chdir(back));

    /* truncate through the link needs write permission on the file, not a writable
       descriptor: read-only and O_PATH descriptors work. */
    int rfd = open(sp("f"), O_RDONLY);
    snprintf(link, sizeof link, "/proc/self/fd/%d", rfd);
    CHECK_OK(truncate(link, 5));
    CHECK_OK(stat(sp("f"), &st));
    CHECK_EQ(st.st_size, 5);
    close(rfd);
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    CHECK_OK(truncate(link, 2));
    CHECK_OK(stat(sp("f"), &st));
    CHECK_EQ(st.st_size, 2);

    /* Extended attributes through the link of an O_PATH file (where /tmp has them). */
    if (setxattr(sp("f"), "user.probe", "p", 1, 0) == 0) {
        char value[64] = {0};
        CHECK_OK(setxattr(link, "user.elfuse", "v", 1, 0));
        CHECK_EQ(getxattr(sp("f"), "user.elfuse", value, sizeof value), 1);
        CHECK_EQ(value[0], 'v');
        CHECK_EQ(getxattr(link, "user.probe", value, sizeof value), 1);
        CHECK_EQ(value[0], 'p');
        CHECK_EQ(listxattr(link, value, sizeof value),
                 (ssize_t)(sizeof "user.probe" + sizeof "user.elfuse"));
    }

    /* A descriptor that is not open names nothing. */
    close(fd);
    CHECK_ERR(chmod(link, 0644), ENOENT);
    close(dfd);
    rmdir(sp("d"));
    unlink(sp("f"));
}

int main(void)
{
    scratch_init();
    test_chmod();
    test_chown();
    test_proc_fd_paths();
    test_utimensat();
    test_truncate();
    test_fallocate();
    test_sync();
    test_fcntl_fd_flags();
    test_record_locks();
    test_flock();
    test_dup();
    test_ioctl();
    test_xattr();
    scratch_cleanup();
    return check_done();
}
