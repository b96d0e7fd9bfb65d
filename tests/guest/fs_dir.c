/*
 * fs_dir: the namespace: making, removing, renaming and linking names, and the current
 * directory.
 *
 * Covers mkdir(2)/mkdirat(2) (mode & ~umask, EEXIST, ENOENT, ENOTDIR), mknod(2)/mknodat(2)
 * (S_IFIFO, S_IFREG, S_IFSOCK, type 0; EPERM for S_IFDIR, EINVAL for a bad type),
 * unlink(2)/unlinkat(2)/rmdir(2) (EISDIR, ENOTEMPTY, AT_REMOVEDIR, flag validation),
 * rename(2)/renameat(2)/renameat2 (RENAME_NOREPLACE, RENAME_EXCHANGE and the usual type
 * mismatch errors), symlink(2)/symlinkat(2) with readlink(2), link(2)/linkat(2)
 * (AT_SYMLINK_FOLLOW), getcwd(3) and the raw getcwd system call (ERANGE, ENOENT after the
 * directory is removed), chdir(2)/fchdir(2), and umask(2).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "scratch.h"

/* The same values as <linux/fs.h>; glibc's <stdio.h> only has them with _GNU_SOURCE. */
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE (1 << 1)
#define RENAME_WHITEOUT (1 << 2)
#endif

static volatile uintptr_t bad_addr = 1;
#define BADP ((void *)bad_addr)

static long sys_renameat2(int od, const char *o, int nd, const char *n, unsigned flags)
{
    return syscall(SYS_renameat2, od, o, nd, n, flags);
}

static mode_t mode_of(const char *path)
{
    struct stat st = {0};
    if (lstat(path, &st) != 0)
        return (mode_t)-1;
    return st.st_mode;
}

static int exists(const char *path)
{
    struct stat st = {0};
    return lstat(path, &st) == 0;
}

static void test_umask(void)
{
    umask(022);
    CHECK_EQ(umask(077), 022);
    CHECK_EQ(umask(0), 077);
    /* Only the permission bits are kept. */
    CHECK_EQ(umask(07777), 0);
    CHECK_EQ(umask(022), 0777);
    CHECK_EQ(umask(022), 022);
}

static void test_mkdir(void)
{
    umask(022);
    CHECK_OK(mkdir(sp("d1"), 0777));
    CHECK_EQ(mode_of(sp("d1")), S_IFDIR | 0755);
    umask(077);
    CHECK_OK(mkdir(sp("d2"), 0777));
    CHECK_EQ(mode_of(sp("d2")), S_IFDIR | 0700);
    umask(0);
    CHECK_OK(mkdir(sp("d3"), 0751));
    CHECK_EQ(mode_of(sp("d3")), S_IFDIR | 0751);
    umask(022);

    /* mkdirat relative to a dirfd; a trailing slash is fine. */
    int dfd = open(sp("d1"), O_RDONLY | O_DIRECTORY);
    CHECK_OK(mkdirat(dfd, "inner", 0700));
    CHECK_OK(mkdirat(dfd, "slashed/", 0700));
    CHECK(S_ISDIR(mode_of(sp("d1/inner"))));
    CHECK(S_ISDIR(mode_of(sp("d1/slashed"))));

    /* Errors. */
    CHECK_ERR(mkdirat(dfd, "inner", 0700), EEXIST);
    CHECK_ERR(mkdir(sp("d1"), 0700), EEXIST);
    CHECK_OK(scratch_write_file(sp("plain"), ""));
    CHECK_ERR(mkdir(sp("plain"), 0700), EEXIST);
    CHECK_ERR(mkdir(sp("plain/sub"), 0700), ENOTDIR);
    CHECK_ERR(mkdir(sp("missing/sub"), 0700), ENOENT);
    CHECK_ERR(mkdirat(dfd, "a/b/c", 0700), ENOENT);
    /* A dangling symlink is not followed: EEXIST. */
    CHECK_OK(symlink("nowhere", sp("dangling")));
    CHECK_ERR(mkdir(sp("dangling"), 0700), EEXIST);
    CHECK(!exists(sp("nowhere")));
    CHECK_ERR(mkdir(BADP, 0700), EFAULT);
    CHECK_ERR(mkdirat(-1, "x", 0700), EBADF);
    close(dfd);

    unlink(sp("dangling"));
    unlink(sp("plain"));
    rmdir(sp("d1/inner"));
    rmdir(sp("d1/slashed"));
    rmdir(sp("d1"));
    rmdir(sp("d2"));
    rmdir(sp("d3"));
}

static void test_mknod(void)
{
    umask(022);
    int dfd = open(scratch_dir, O_RDONLY | O_DIRECTORY);

    CHECK_OK(mknodat(dfd, "fifo", S_IFIFO | 0666, 0));
    CHECK_EQ(mode_of(sp("fifo")), S_IFIFO | 0644);
    CHECK_OK(mknodat(dfd, "reg", S_IFREG | 0600, 0));
    CHECK_EQ(mode_of(sp("reg")), S_IFREG | 0600);
    struct stat st = {0};
    CHECK_OK(stat(sp("reg"), &st));
    CHECK_EQ(st.st_size, 0);
    /* A type of 0 means a regular file. */
    CHECK_OK(mknodat(dfd, "zero", 0644, 0));
    CHECK_EQ(mode_of(sp("zero")), S_IFREG | 0644);
    CHECK_OK(mknod(sp("sock"), S_IFSOCK | 0644, 0));
    CHECK(S_ISSOCK(mode_of(sp("sock"))));

    /* Existing names, directories, bad types. */
    CHECK_ERR(mknodat(dfd, "fifo", S_IFIFO | 0644, 0), EEXIST);
    CHECK_ERR(mknodat(dfd, "dir", S_IFDIR | 0755, 0), EPERM);
    CHECK_ERR(mknodat(dfd, "bad", 0170000 | 0644, 0), EINVAL);
    CHECK_ERR(mknodat(dfd, "missing/x", S_IFIFO | 0644, 0), ENOENT);
    close(dfd);

    unlink(sp("fifo"));
    unlink(sp("reg"));
    unlink(sp("zero"));
    unlink(sp("sock"));
}

static void test_unlink(void)
{
    int dfd = open(scratch_dir, O_RDONLY | O_DIRECTORY);
    CHECK_OK(mkdir(sp("full"), 0755));
    CHECK_OK(scratch_write_file(sp("full/f"), "x"));
    CHECK_OK(mkdir(sp("empty"), 0755));
    CHECK_OK(scratch_write_file(sp("file"), "x"));

    /* A directory without AT_REMOVEDIR: EISDIR (Linux; POSIX allows EPERM). */
    CHECK_ERR(unlinkat(dfd, "empty", 0), EISDIR);
    CHECK_ERR(unlink(sp("empty")), EISDIR);
    /* A non-empty directory. */
    CHECK_ERR(unlinkat(dfd, "full", AT_REMOVEDIR), ENOTEMPTY);
    CHECK_ERR(rmdir(sp("full")), ENOTEMPTY);
    /* A file with AT_REMOVEDIR. */
    CHECK_ERR(unlinkat(dfd, "file", AT_REMOVEDIR), ENOTDIR);
    CHECK_ERR(rmdir(sp("file")), ENOTDIR);
    /* Unknown flags. */
    CHECK_ERR(unlinkat(dfd, "file", 0x1), EINVAL);
    CHECK_ERR(unlinkat(dfd, "file", AT_SYMLINK_NOFOLLOW), EINVAL);
    /* "." and ".." as the last component. */
    CHECK_ERR(rmdir(sp("empty/.")), EINVAL);
    CHECK_ERR(rmdir(sp("empty/..")), ENOTEMPTY);
    /* Missing names. */
    CHECK_ERR(unlinkat(dfd, "missing", 0), ENOENT);
    CHECK_ERR(unlinkat(dfd, "missing", AT_REMOVEDIR), ENOENT);
    CHECK_ERR(unlink(sp("file/x")), ENOTDIR);

    /* The successes. */
    CHECK_OK(unlinkat(dfd, "empty", AT_REMOVEDIR));
    CHECK(!exists(sp("empty")));
    CHECK_OK(unlinkat(dfd, "full/f", 0));
    CHECK_OK(unlinkat(dfd, "full", AT_REMOVEDIR));
    CHECK(!exists(sp("full")));
    /* Unlinking a symlink removes the link, not its target. */
    CHECK_OK(symlink("file", sp("link")));
    CHECK_OK(unlinkat(dfd, "link", 0));
    CHECK(!exists(sp("link")));
    CHECK(exists(sp("file")));
    /* A symlink to a directory is removed with unlink, and is ENOTDIR for rmdir. */
    CHECK_OK(mkdir(sp("tdir"), 0755));
    CHECK_OK(symlink("tdir", sp("dlink")));
    CHECK_ERR(rmdir(sp("dlink")), ENOTDIR);
    CHECK_OK(unlink(sp("dlink")));
    CHECK(exists(sp("tdir")));
    CHECK_OK(unlinkat(dfd, "file", 0));
    CHECK(!exists(sp("file")));
    rmdir(sp("tdir"));
    close(dfd);
}

static void test_rename(void)
{
    char buf[32];
    int dfd = open(scratch_dir, O_RDONLY | O_DIRECTORY);
    CHECK_OK(scratch_write_file(sp("a"), "AAA"));
    CHECK_OK(scratch_write_file(sp("b"), "BB"));

    /* A plain rename, then replacing an existing file. */
    CHECK_OK(renameat(dfd, "a", dfd, "c"));
    CHECK(!exists(sp("a")));
    CHECK_EQ(scratch_read_file(sp("c"), buf, sizeof buf), 3);
    CHECK_OK(rename(sp("c"), sp("b")));
    CHECK_EQ(scratch_read_file(sp("b"), buf, sizeof buf), 3);
    CHECK(strcmp(buf, "AAA") == 0);
    CHECK(!exists(sp("c")));
    /* Renaming onto itself, or onto another link of the same inode, does nothing. */
    CHECK_OK(rename(sp("b"), sp("b")));
    CHECK_OK(link(sp("b"), sp("b2")));
    CHECK_OK(rename(sp("b"), sp("b2")));
    CHECK(exists(sp("b")));
    CHECK(exists(sp("b2")));
    unlink(sp("b2"));

    /* Type mismatches and directory rules. */
    CHECK_OK(mkdir(sp("d"), 0755));
    CHECK_OK(mkdir(sp("e"), 0755));
    CHECK_OK(scratch_write_file(sp("e/x"), ""));
    CHECK_ERR(rename(sp("b"), sp("d")), EISDIR);
    CHECK_ERR(rename(sp("d"), sp("b")), ENOTDIR);
    CHECK_ERR(rename(sp("d"), sp("e")), ENOTEMPTY);
    CHECK_ERR(rename(sp("d"), sp("d/sub")), EINVAL);
    CHECK_ERR(rename(sp("missing"), sp("x")), ENOENT);
    CHECK_ERR(rename(sp("b"), sp("missing/x")), ENOENT);
    CHECK_ERR(rename(sp("b"), sp("b/x")), ENOTDIR);
    CHECK_ERR(renameat(-1, "b", dfd, "x"), EBADF);
    /* A directory onto an empty directory replaces it. */
    CHECK_OK(mkdir(sp("f"), 0755));
    CHECK_OK(rename(sp("d"), sp("f")));
    CHECK(!exists(sp("d")));
    CHECK(S_ISDIR(mode_of(sp("f"))));

    /* renameat2 RENAME_NOREPLACE. */
    CHECK_OK(scratch_write_file(sp("n1"), "one"));
    CHECK_OK(scratch_write_file(sp("n2"), "two"));
    CHECK_ERR(sys_renameat2(dfd, "n1", dfd, "n2", RENAME_NOREPLACE), EEXIST);
    CHECK_EQ(scratch_read_file(sp("n2"), buf, sizeof buf), 3);
    CHECK(strcmp(buf, "two") == 0);
    CHECK_OK(sys_renameat2(dfd, "n1", dfd, "n3", RENAME_NOREPLACE));
    CHECK(!exists(sp("n1")));
    CHECK_OK(sys_renameat2(dfd, "n3", dfd, "n1", 0));

    /* RENAME_EXCHANGE swaps, even a file with a directory. */
    CHECK_OK(sys_renameat2(dfd, "n1", dfd, "n2", RENAME_EXCHANGE));
    CHECK_EQ(scratch_read_file(sp("n1"), buf, sizeof buf), 3);
    CHECK(strcmp(buf, "two") == 0);
    CHECK_EQ(scratch_read_file(sp("n2"), buf, sizeof buf), 3);
    CHECK(strcmp(buf, "one") == 0);
    CHECK_OK(sys_renameat2(dfd, "n1", dfd, "e", RENAME_EXCHANGE));
    CHECK(S_ISDIR(mode_of(sp("n1"))));
    CHECK(S_ISREG(mode_of(sp("e"))));
    CHECK(exists(sp("n1/x")));
    CHECK_OK(sys_renameat2(dfd, "n1", dfd, "e", RENAME_EXCHANGE));
    /* Exchanging with a missing name. */
    CHECK_ERR(sys_renameat2(dfd, "n1", dfd, "missing", RENAME_EXCHANGE), ENOENT);
    /* Invalid flag combinations and unknown flags. */
    CHECK_ERR(sys_renameat2(dfd, "n1", dfd, "n2", RENAME_NOREPLACE | RENAME_EXCHANGE), EINVAL);
    CHECK_ERR(sys_renameat2(dfd, "n1", dfd, "n2", RENAME_EXCHANGE | RENAME_WHITEOUT), EINVAL);
    CHECK_ERR(sys_renameat2(dfd, "n1", dfd, "n2", 0x100), EINVAL);

    unlink(sp("n1"));
    unlink(sp("n2"));
    unlink(sp("e/x"));
    rmdir(sp("e"));
    rmdir(sp("f"));
    unlink(sp("b"));
    close(dfd);
}

static void test_symlink(void)
{
    char buf[64];
    int dfd = open(scratch_dir, O_RDONLY | O_DIRECTORY);

    CHECK_OK(symlinkat("some/target", dfd, "sl"));
    CHECK(S_ISLNK(mode_of(sp("sl"))));
    CHECK_EQ(readlink(sp("sl"), buf, sizeof buf), 11);
    CHECK(memcmp(buf, "some/target", 11) == 0);
    /* Symlink permission bits are always 0777. */
    CHECK_EQ(mode_of(sp("sl")) & 07777, 0777);
    /* Errors: an existing name, an empty target, a missing parent. */
    CHECK_ERR(symlinkat("x", dfd, "sl"), EEXIST);
    CHECK_ERR(symlinkat("", dfd, "empty"), ENOENT);
    CHECK_ERR(symlinkat("x", dfd, "missing/sl"), ENOENT);
    CHECK_ERR(symlinkat(BADP, dfd, "bad"), EFAULT);
    /* A target of the maximum length PATH_MAX - 1 works; PATH_MAX does not. */
    static char target[PATH_MAX + 1];
    memset(target, 'x', PATH_MAX);
    target[PATH_MAX] = 0;
    CHECK_ERR(symlinkat(target, dfd, "long"), ENAMETOOLONG);
    target[PATH_MAX - 1] = 0;
    CHECK_OK(symlinkat(target, dfd, "long"));
    static char back[PATH_MAX + 1];
    CHECK_EQ(readlinkat(dfd, "long", back, sizeof back), PATH_MAX - 1);
    unlink(sp("long"));
    unlink(sp("sl"));
    close(dfd);
}

static void test_link(void)
{
    struct stat st = {0}, st2 = {0};
    int dfd = open(scratch_dir, O_RDONLY | O_DIRECTORY);
    CHECK_OK(scratch_write_file(sp("orig"), "data"));
    CHECK_OK(symlink("orig", sp("sym")));

    CHECK_OK(linkat(dfd, "orig", dfd, "hard", 0));
    CHECK_OK(stat(sp("orig"), &st));
    CHECK_OK(stat(sp("hard"), &st2));
    CHECK_EQ(st.st_ino, st2.st_ino);
    CHECK_EQ(st.st_nlink, 2);

    /* Without AT_SYMLINK_FOLLOW the new name is a link to the symlink itself... */
    CHECK_OK(linkat(dfd, "sym", dfd, "sym_nofollow", 0));
    CHECK(S_ISLNK(mode_of(sp("sym_nofollow"))));
    /* ...with it, a link to the target. */
    CHECK_OK(linkat(dfd, "sym", dfd, "sym_follow", AT_SYMLINK_FOLLOW));
    CHECK(S_ISREG(mode_of(sp("sym_follow"))));
    CHECK_OK(stat(sp("orig"), &st));
    CHECK_EQ(st.st_nlink, 3);

    /* Errors. */
    CHECK_ERR(linkat(dfd, "orig", dfd, "hard", 0), EEXIST);
    CHECK_ERR(linkat(dfd, "missing", dfd, "x", 0), ENOENT);
    CHECK_ERR(linkat(dfd, "orig", dfd, "missing/x", 0), ENOENT);
    CHECK_ERR(linkat(dfd, "orig", dfd, "x", 0x1), EINVAL);
    CHECK_ERR(linkat(dfd, "orig", dfd, "x", AT_REMOVEDIR), EINVAL);
    CHECK_OK(mkdir(sp("dir"), 0755));
    CHECK_ERR(link(sp("dir"), sp("dirlink")), EPERM);
    CHECK_ERR(linkat(-1, "orig", dfd, "x", 0), EBADF);

    rmdir(sp("dir"));
    unlink(sp("sym_follow"));
    unlink(sp("sym_nofollow"));
    unlink(sp("hard"));
    unlink(sp("sym"));
    unlink(sp("orig"));
    close(dfd);
}

static void test_cwd(void)
{
    char buf[PATH_MAX], real[PATH_MAX];
    int old = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(old >= 0);
    CHECK(realpath(scratch_dir, real) != NULL);

    CHECK_OK(chdir(scratch_dir));
    CHECK(getcwd(buf, sizeof buf) == buf);
    CHECK(strcmp(buf, real) == 0);
    /* The raw call returns the length including the NUL. */
    size_t len = strlen(real);
    CHECK_EQ(syscall(SYS_getcwd, buf, sizeof buf), (long long)len + 1);
    /* A buffer too small, exactly too small by the NUL, and of size 0. */
    errno = 0;
    CHECK(getcwd(buf, 4) == NULL && errno == ERANGE);
    CHECK_ERR(syscall(SYS_getcwd, buf, len), ERANGE);
    CHECK_ERR(syscall(SYS_getcwd, buf, 0), ERANGE);
    CHECK_EQ(syscall(SYS_getcwd, buf, len + 1), (long long)len + 1);
    CHECK_ERR(syscall(SYS_getcwd, BADP, sizeof buf), EFAULT);

    /* Relative chdir. */
    CHECK_OK(mkdir("sub", 0755));
    CHECK_OK(chdir("sub"));
    CHECK(getcwd(buf, sizeof buf) == buf);
    CHECK(strlen(buf) == len + 4 && strcmp(buf + len, "/sub") == 0);
    CHECK_OK(chdir(".."));
    CHECK(getcwd(buf, sizeof buf) == buf);
    CHECK(strcmp(buf, real) == 0);

    /* chdir errors. */
    CHECK_OK(scratch_write_file(sp("file"), ""));
    CHECK_ERR(chdir("file"), ENOTDIR);
    CHECK_ERR(chdir("missing"), ENOENT);
    CHECK_ERR(chdir(""), ENOENT);
    CHECK_ERR(chdir(BADP), EFAULT);

    /* fchdir. */
    int sub = open("sub", O_RDONLY | O_DIRECTORY);
    CHECK_OK(fchdir(sub));
    CHECK(getcwd(buf, sizeof buf) == buf);
    CHECK(strcmp(buf + len, "/sub") == 0);
    int f = open(sp("file"), O_RDONLY);
    CHECK_ERR(fchdir(f), ENOTDIR);
    close(f);
    CHECK_ERR(fchdir(-1), EBADF);
    /* An O_PATH fd of a directory is accepted. */
    int pfd = open(scratch_dir, O_PATH | O_DIRECTORY);
    CHECK_OK(fchdir(pfd));
    close(pfd);
    CHECK(getcwd(buf, sizeof buf) == buf);
    CHECK(strcmp(buf, real) == 0);

    /* Once the current directory is removed, getcwd fails with ENOENT. */
    CHECK_OK(fchdir(sub));
    CHECK_OK(rmdir(sp("sub")));
    CHECK_ERR(syscall(SYS_getcwd, buf, sizeof buf), ENOENT);
    /* ...and creating in it fails too. */
    CHECK_ERR(open("new", O_RDWR | O_CREAT, 0644), ENOENT);
    close(sub);

    CHECK_OK(fchdir(old));
    close(old);
    unlink(sp("file"));
}

int main(void)
{
    scratch_init();
    test_umask();
    test_mkdir();
    test_mknod();
    test_unlink();
    test_rename();
    test_symlink();
    test_link();
    test_cwd();
    umask(022);
    scratch_cleanup();
    return check_done();
}
