/*
 * fs_stat: asking about files.
 *
 * Covers stat(2)/fstat(2)/lstat(2)/fstatat(2) (newfstatat: AT_SYMLINK_NOFOLLOW,
 * AT_EMPTY_PATH, flag validation), statx(2) (STATX_BASIC_STATS agreeing with fstat,
 * AT_EMPTY_PATH, mask/flag validation), inode(7) file types and sizes, link counts,
 * access(2)/faccessat(2)/faccessat2 (F_OK/R_OK/W_OK/X_OK, AT_EACCESS, validation),
 * readlink(2)/readlinkat(2) (length without NUL, truncation, EINVAL cases), statfs(2)/
 * fstatfs(2), and getdents64 (getdents(2): names, d_type, EOF, rewind, ENOTDIR, EINVAL for a
 * buffer too small for one entry), with the usual ENOENT/ENOTDIR/EFAULT errors.
 *
 * Raw syscall(2) is used for newfstatat, statx, faccessat, faccessat2 and getdents64 so that
 * glibc's emulations and fallbacks cannot stand in for the system call.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "scratch.h"

/* An unmapped address, hidden from the compiler's buffer-size diagnostics. */
static volatile uintptr_t bad_addr = 1;
#define BADP ((void *)bad_addr)

static long sys_newfstatat(int dfd, const char *path, struct stat *st, int flags)
{
    return syscall(SYS_newfstatat, dfd, path, st, flags);
}

static long sys_statx(int dfd, const char *path, int flags, unsigned mask, struct statx *stx)
{
    return syscall(SYS_statx, dfd, path, flags, mask, stx);
}

static long sys_faccessat(int dfd, const char *path, int mode)
{
    return syscall(SYS_faccessat, dfd, path, mode);
}

static long sys_faccessat2(int dfd, const char *path, int mode, int flags)
{
    return syscall(SYS_faccessat2, dfd, path, mode, flags);
}

struct dirent64_raw {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static void make_fixture(void)
{
    CHECK_OK(scratch_write_file(sp("file"), "0123456789"));
    CHECK_OK(mkdir(sp("dir"), 0755));
    CHECK_OK(symlink("file", sp("link")));
    CHECK_OK(mkfifo(sp("fifo"), 0644));
}

static void test_types_and_sizes(void)
{
    struct stat st = {0};

    CHECK_OK(stat(sp("file"), &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_size, 10);
    CHECK_EQ(st.st_nlink, 1);
    CHECK_EQ(st.st_uid, geteuid());
    CHECK_EQ(st.st_gid, getegid());
    CHECK(st.st_blksize > 0);
    ino_t file_ino = st.st_ino;
    dev_t file_dev = st.st_dev;

    CHECK_OK(stat(sp("dir"), &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_OK(stat(sp("fifo"), &st));
    CHECK(S_ISFIFO(st.st_mode));
    CHECK_EQ(st.st_size, 0);

    /* stat follows a symlink, lstat does not; a symlink's size is its target's length. */
    CHECK_OK(stat(sp("link"), &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_ino, file_ino);
    CHECK_OK(lstat(sp("link"), &st));
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(st.st_size, 4);
    CHECK(st.st_ino != file_ino);
    CHECK_EQ(st.st_dev, file_dev);
    /* lstat on a non-symlink is the same as stat. */
    CHECK_OK(lstat(sp("file"), &st));
    CHECK(S_ISREG(st.st_mode));
    /* A character device. */
    CHECK_OK(stat("/dev/null", &st));
    CHECK(S_ISCHR(st.st_mode));

    /* st_size follows writes. */
    int fd = open(sp("grow"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 0);
    CHECK_EQ(write(fd, "abcde", 5), 5);
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 5);
    CHECK_EQ(pwrite(fd, "z", 1, 99), 1);
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 100);
    close(fd);
    unlink(sp("grow"));

    /* st_nlink follows link() and unlink(). */
    CHECK_OK(link(sp("file"), sp("hard")));
    CHECK_OK(stat(sp("file"), &st));
    CHECK_EQ(st.st_nlink, 2);
    CHECK_OK(stat(sp("hard"), &st));
    CHECK_EQ(st.st_nlink, 2);
    CHECK_EQ(st.st_ino, file_ino);
    CHECK_OK(unlink(sp("hard")));
    CHECK_OK(stat(sp("file"), &st));
    CHECK_EQ(st.st_nlink, 1);
    /* An open file keeps its inode after the last name goes: nlink 0. */
    CHECK_OK(scratch_write_file(sp("doomed"), "x"));
    fd = open(sp("doomed"), O_RDONLY);
    CHECK_OK(unlink(sp("doomed")));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_nlink, 0);
    CHECK_EQ(st.st_size, 1);
    close(fd);
}

static void test_stat_errors(void)
{
    struct stat st = {0};
    CHECK_ERR(stat(sp("missing"), &st), ENOENT);
    CHECK_ERR(stat(sp("missing/x"), &st), ENOENT);
    CHECK_ERR(stat(sp("file/x"), &st), ENOTDIR);
    CHECK_ERR(stat(sp("file/"), &st), ENOTDIR);
    CHECK_ERR(lstat(sp("file/x"), &st), ENOTDIR);
    CHECK_ERR(stat("", &st), ENOENT);
    CHECK_ERR(stat(BADP, &st), EFAULT);
    CHECK_ERR(stat(sp("file"), BADP), EFAULT);
    CHECK_ERR(fstat(-1, &st), EBADF);
    CHECK_ERR(fstat(9999, &st), EBADF);
    /* A dangling symlink: stat fails, lstat works. */
    CHECK_OK(symlink("nothing", sp("dangling")));
    CHECK_ERR(stat(sp("dangling"), &st), ENOENT);
    CHECK_OK(lstat(sp("dangling"), &st));
    unlink(sp("dangling"));
}

static void test_newfstatat(void)
{
    struct stat st = {0}, st2 = {0};
    int dfd = open(scratch_dir, O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);

    CHECK_OK(sys_newfstatat(dfd, "link", &st, 0));
    CHECK(S_ISREG(st.st_mode));
    CHECK_OK(sys_newfstatat(dfd, "link", &st, AT_SYMLINK_NOFOLLOW));
    CHECK(S_ISLNK(st.st_mode));
    CHECK_OK(sys_newfstatat(AT_FDCWD, sp("file"), &st, 0));
    CHECK_EQ(st.st_size, 10);

    /* AT_EMPTY_PATH with "" stats the fd itself. */
    int fd = open(sp("file"), O_RDONLY);
    CHECK_OK(sys_newfstatat(fd, "", &st, AT_EMPTY_PATH));
    CHECK_OK(fstat(fd, &st2));
    CHECK_EQ(st.st_ino, st2.st_ino);
    CHECK_EQ(st.st_size, 10);
    /* "" without AT_EMPTY_PATH is ENOENT. */
    CHECK_ERR(sys_newfstatat(fd, "", &st, 0), ENOENT);
    /* A relative path with a non-directory fd. */
    CHECK_ERR(sys_newfstatat(fd, "x", &st, 0), ENOTDIR);
    close(fd);
    /* AT_EMPTY_PATH with AT_FDCWD stats the current directory. */
    CHECK_OK(sys_newfstatat(AT_FDCWD, "", &st, AT_EMPTY_PATH));
    CHECK(S_ISDIR(st.st_mode));

    /* Flags outside AT_SYMLINK_NOFOLLOW|AT_NO_AUTOMOUNT|AT_EMPTY_PATH. */
    CHECK_ERR(sys_newfstatat(dfd, "file", &st, 0x1), EINVAL);
    CHECK_ERR(sys_newfstatat(dfd, "file", &st, AT_REMOVEDIR), EINVAL);
    CHECK_ERR(sys_newfstatat(dfd, "file", &st, AT_SYMLINK_FOLLOW), EINVAL);
    CHECK_ERR(sys_newfstatat(9999, "file", &st, 0), EBADF);
    close(dfd);
}

static void test_statx(void)
{
    struct statx stx = {0};
    struct stat st = {0};
    int fd = open(sp("file"), O_RDONLY);
    CHECK_OK(fstat(fd, &st));

    memset(&stx, 0xff, sizeof stx);
    CHECK_EQ(sys_statx(AT_FDCWD, sp("file"), 0, STATX_BASIC_STATS, &stx), 0);
    CHECK_EQ(stx.stx_mask & STATX_BASIC_STATS, STATX_BASIC_STATS);
    CHECK_EQ(stx.stx_mode, st.st_mode);
    CHECK(S_ISREG(stx.stx_mode));
    CHECK_EQ(stx.stx_size, 10);
    CHECK_EQ(stx.stx_size, st.st_size);
    CHECK_EQ(stx.stx_nlink, st.st_nlink);
    CHECK_EQ(stx.stx_ino, st.st_ino);
    CHECK_EQ(stx.stx_uid, st.st_uid);
    CHECK_EQ(stx.stx_gid, st.st_gid);
    CHECK_EQ(stx.stx_blksize, st.st_blksize);
    CHECK_EQ(stx.stx_blocks, st.st_blocks);
    CHECK_EQ(stx.stx_mtime.tv_sec, st.st_mtim.tv_sec);
    CHECK_EQ(stx.stx_mtime.tv_nsec, st.st_mtim.tv_nsec);
    CHECK_EQ(makedev(stx.stx_dev_major, stx.stx_dev_minor), st.st_dev);

    /* AT_EMPTY_PATH on the fd. */
    memset(&stx, 0, sizeof stx);
    CHECK_EQ(sys_statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx), 0);
    CHECK_EQ(stx.stx_ino, st.st_ino);
    CHECK_EQ(stx.stx_size, 10);
    close(fd);

    /* Symlinks: followed by default, not with AT_SYMLINK_NOFOLLOW. */
    CHECK_EQ(sys_statx(AT_FDCWD, sp("link"), 0, STATX_BASIC_STATS, &stx), 0);
    CHECK(S_ISREG(stx.stx_mode));
    CHECK_EQ(sys_statx(AT_FDCWD, sp("link"), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx), 0);
    CHECK(S_ISLNK(stx.stx_mode));
    CHECK_EQ(stx.stx_size, 4);
    CHECK_EQ(sys_statx(AT_FDCWD, sp("dir"), 0, STATX_TYPE | STATX_MODE, &stx), 0);
    CHECK(S_ISDIR(stx.stx_mode));
    CHECK_EQ(sys_statx(AT_FDCWD, sp("fifo"), 0, STATX_BASIC_STATS, &stx), 0);
    CHECK(S_ISFIFO(stx.stx_mode));

    /* Errors. */
    CHECK_ERR(sys_statx(AT_FDCWD, sp("missing"), 0, STATX_BASIC_STATS, &stx), ENOENT);
    CHECK_ERR(sys_statx(AT_FDCWD, sp("file/x"), 0, STATX_BASIC_STATS, &stx), ENOTDIR);
    CHECK_ERR(sys_statx(AT_FDCWD, BADP, 0, STATX_BASIC_STATS, &stx), EFAULT);
    CHECK_ERR(sys_statx(AT_FDCWD, sp("file"), 0, STATX_BASIC_STATS, BADP), EFAULT);
    /* Unknown flags, a reserved mask bit, both sync types at once. */
    CHECK_ERR(sys_statx(AT_FDCWD, sp("file"), 0x1, STATX_BASIC_STATS, &stx), EINVAL);
    CHECK_ERR(sys_statx(AT_FDCWD, sp("file"), 0, STATX__RESERVED, &stx), EINVAL);
    CHECK_ERR(sys_statx(AT_FDCWD, sp("file"), AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC,
                        STATX_BASIC_STATS, &stx),
              EINVAL);
}

static void test_access(void)
{
    int root = geteuid() == 0;
    CHECK_OK(scratch_write_file(sp("ro"), "r"));
    CHECK_OK(chmod(sp("ro"), 0400));

    CHECK_OK(access(sp("file"), F_OK));
    CHECK_OK(access(sp("file"), R_OK | W_OK));
    CHECK_OK(access(sp("ro"), R_OK));
    if (!root) /* root passes W_OK on any file of a writable filesystem */
        CHECK_ERR(access(sp("ro"), W_OK), EACCES);
    /* X_OK needs an x bit somewhere, even for root. */
    CHECK_ERR(access(sp("file"), X_OK), EACCES);
    CHECK_OK(access(sp("dir"), X_OK));
    CHECK_ERR(access(sp("missing"), F_OK), ENOENT);
    CHECK_ERR(access(sp("file/x"), F_OK), ENOTDIR);
    CHECK_ERR(access(BADP, F_OK), EFAULT);
    /* Mode bits beyond R_OK|W_OK|X_OK. */
    CHECK_ERR(access(sp("file"), 8), EINVAL);

    /* faccessat (no flags argument in the system call). */
    int dfd = open(scratch_dir, O_RDONLY | O_DIRECTORY);
    CHECK_OK(sys_faccessat(dfd, "file", R_OK));
    CHECK_ERR(sys_faccessat(dfd, "missing", F_OK), ENOENT);
    CHECK_ERR(sys_faccessat(dfd, "file", 0x10), EINVAL);
    CHECK_ERR(sys_faccessat(-1, "file", F_OK), EBADF);

    /* faccessat2. */
    CHECK_OK(sys_faccessat2(dfd, "file", R_OK | W_OK, 0));
    CHECK_OK(sys_faccessat2(dfd, "file", R_OK, AT_EACCESS));
    CHECK_OK(sys_faccessat2(dfd, "ro", R_OK, AT_EACCESS));
    if (!root)
        CHECK_ERR(sys_faccessat2(dfd, "ro", W_OK, AT_EACCESS), EACCES);
    /* AT_SYMLINK_NOFOLLOW checks the link itself: a dangling one exists. */
    CHECK_OK(symlink("nothing", sp("dangling")));
    CHECK_ERR(sys_faccessat2(dfd, "dangling", F_OK, 0), ENOENT);
    CHECK_OK(sys_faccessat2(dfd, "dangling", F_OK, AT_SYMLINK_NOFOLLOW));
    unlink(sp("dangling"));
    /* AT_EMPTY_PATH on an fd. */
    int fd = open(sp("file"), O_RDONLY);
    CHECK_OK(sys_faccessat2(fd, "", R_OK, AT_EMPTY_PATH));
    CHECK_ERR(sys_faccessat2(fd, "", R_OK, 0), ENOENT);
    close(fd);
    /* Invalid flags and invalid mode bits. */
    CHECK_ERR(sys_faccessat2(dfd, "file", F_OK, 0x1), EINVAL);
    CHECK_ERR(sys_faccessat2(dfd, "file", F_OK, AT_SYMLINK_FOLLOW), EINVAL);
    /* (AT_REMOVEDIR is not an error here: it has the same value as AT_EACCESS, 0x200.) */
    CHECK_EQ(AT_REMOVEDIR, AT_EACCESS);
    CHECK_ERR(sys_faccessat2(dfd, "file", 0x10, 0), EINVAL);
    close(dfd);
    unlink(sp("ro"));
}

static void test_readlink(void)
{
    char buf[64];
    memset(buf, 'X', sizeof buf);
    /* The content, no NUL appended. */
    CHECK_EQ(readlink(sp("link"), buf, sizeof buf), 4);
    CHECK(memcmp(buf, "fileX", 5) == 0);
    /* Truncated silently to bufsiz. */
    memset(buf, 'X', sizeof buf);
    CHECK_EQ(readlink(sp("link"), buf, 2), 2);
    CHECK(memcmp(buf, "fiX", 3) == 0);
    /* readlinkat relative to a dirfd. */
    int dfd = open(scratch_dir, O_RDONLY | O_DIRECTORY);
    CHECK_EQ(readlinkat(dfd, "link", buf, sizeof buf), 4);
    /* An absolute target. */
    CHECK_OK(symlink("/some/where/else", sp("abslink")));
    CHECK_EQ(readlinkat(dfd, "abslink", buf, sizeof buf), 16);
    CHECK(memcmp(buf, "/some/where/else", 16) == 0);
    /* "" with an O_PATH|O_NOFOLLOW fd of the link reads that link. */
    int lfd = open(sp("link"), O_PATH | O_NOFOLLOW);
    CHECK(lfd >= 0);
    CHECK_EQ(readlinkat(lfd, "", buf, sizeof buf), 4);
    close(lfd);

    /* Not a symlink: EINVAL. bufsiz 0: EINVAL. */
    CHECK_ERR(readlinkat(dfd, "file", buf, sizeof buf), EINVAL);
    CHECK_ERR(readlinkat(dfd, "dir", buf, sizeof buf), EINVAL);
    CHECK_ERR(syscall(SYS_readlinkat, dfd, "link", buf, 0), EINVAL);
    CHECK_ERR(readlinkat(dfd, "missing", buf, sizeof buf), ENOENT);
    CHECK_ERR(readlinkat(dfd, "file/x", buf, sizeof buf), ENOTDIR);
    CHECK_ERR(readlinkat(dfd, "link", BADP, sizeof buf), EFAULT);
    close(dfd);
    unlink(sp("abslink"));
}

static void test_statfs(void)
{
    struct statfs a = {0}, b = {0};
    CHECK_OK(statfs(scratch_dir, &a));
    CHECK(a.f_bsize > 0);
    CHECK(a.f_namelen >= 255);
    CHECK(a.f_blocks >= a.f_bfree);
    CHECK(a.f_bfree >= a.f_bavail);
    int fd = open(sp("file"), O_RDONLY);
    CHECK_OK(fstatfs(fd, &b));
    close(fd);
    CHECK_EQ(b.f_type, a.f_type);
    CHECK_EQ(b.f_bsize, a.f_bsize);
    CHECK_EQ(b.f_namelen, a.f_namelen);
    CHECK_ERR(statfs(sp("missing"), &a), ENOENT);
    CHECK_ERR(statfs(sp("file/x"), &a), ENOTDIR);
    CHECK_ERR(fstatfs(-1, &a), EBADF);
    CHECK_ERR(statfs(BADP, &a), EFAULT);
}

static long sys_getdents64(int fd, void *buf, size_t n)
{
    return syscall(SYS_getdents64, fd, buf, n);
}

static void test_getdents64(void)
{
    CHECK_OK(mkdir(sp("gd"), 0755));
    CHECK_OK(scratch_write_file(sp("gd/reg"), ""));
    CHECK_OK(mkdir(sp("gd/sub"), 0755));
    CHECK_OK(symlink("reg", sp("gd/lnk")));
    CHECK_OK(mkfifo(sp("gd/pipe"), 0644));

    int fd = open(sp("gd"), O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    static char buf[4096];
    for (int pass = 0; pass < 2; pass++) {
        int seen_dot = 0, seen_dotdot = 0, seen_reg = 0, seen_sub = 0, seen_lnk = 0,
            seen_pipe = 0, total = 0, aligned = 1;
        long n;
        while ((n = sys_getdents64(fd, buf, sizeof buf)) > 0) {
            for (long off = 0; off < n;) {
                struct dirent64_raw *d = (struct dirent64_raw *)(buf + off);
                const char *name = d->d_name;
                total++;
                aligned &= d->d_reclen % 8 == 0;
                if (!strcmp(name, "."))
                    seen_dot = d->d_type == DT_DIR;
                else if (!strcmp(name, ".."))
                    seen_dotdot = d->d_type == DT_DIR;
                else if (!strcmp(name, "reg"))
                    seen_reg = d->d_type == DT_REG;
                else if (!strcmp(name, "sub"))
                    seen_sub = d->d_type == DT_DIR;
                else if (!strcmp(name, "lnk"))
                    seen_lnk = d->d_type == DT_LNK;
                else if (!strcmp(name, "pipe"))
                    seen_pipe = d->d_type == DT_FIFO;
                off += d->d_reclen;
            }
        }
        CHECK_EQ(n, 0); /* end of directory */
        CHECK_EQ(total, 6);
        CHECK(aligned);
        CHECK(seen_dot);
        CHECK(seen_dotdot);
        CHECK(seen_reg);
        CHECK(seen_sub);
        CHECK(seen_lnk);
        CHECK(seen_pipe);
        /* Still at the end; rewinding starts over for the second pass. */
        CHECK_EQ(sys_getdents64(fd, buf, sizeof buf), 0);
        CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    }

    /* A buffer too small for even one entry (header 19 bytes + name). */
    CHECK_ERR(sys_getdents64(fd, buf, 10), EINVAL);
    CHECK_ERR(sys_getdents64(fd, buf, 0), EINVAL);
    /* A bad buffer. */
    CHECK_ERR(sys_getdents64(fd, BADP, sizeof buf), EFAULT);
    close(fd);
    CHECK_ERR(sys_getdents64(fd, buf, sizeof buf), EBADF);

    /* A regular file. */
    fd = open(sp("gd/reg"), O_RDONLY);
    CHECK_ERR(sys_getdents64(fd, buf, sizeof buf), ENOTDIR);
    close(fd);

    /* An emptied directory lists only "." and "..". */
    CHECK_OK(mkdir(sp("gd/empty"), 0755));
    fd = open(sp("gd/empty"), O_RDONLY | O_DIRECTORY);
    long n = sys_getdents64(fd, buf, sizeof buf);
    int count = 0;
    for (long off = 0; off < n; off += ((struct dirent64_raw *)(buf + off))->d_reclen)
        count++;
    CHECK_EQ(count, 2);
    close(fd);
}

int main(void)
{
    scratch_init();
    make_fixture();
    test_types_and_sizes();
    test_stat_errors();
    test_newfstatat();
    test_statx();
    test_access();
    test_readlink();
    test_statfs();
    test_getdents64();
    scratch_cleanup();
    return check_done();
}
