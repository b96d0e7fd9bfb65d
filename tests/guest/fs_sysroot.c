/*
 * The guest's name space under a sysroot: a dynamically linked program (loaded through the
 * sysroot's ld.so) checks that no path leads outside the guest root, that the system
 * directories come only from the sysroot, and that the host directories the launcher makes
 * reachable (the working directory, HOME, /tmp) are the host's.
 *
 * Run by tests/sysroot.rs, which builds the sysroot (see there for its tree) and passes:
 *   argv[1]  the working directory's absolute host path
 *   argv[2]  a file name in the host's /tmp that the test created, holding "host tmp\n"
 * and sets HOME to a host directory holding home.txt ("host home\n").
 *
 * Expected values follow from the name-space rules (src/kernel/fs/root.rs); a Linux chroot
 * into the same tree gives the same answers for every path that stays in the sysroot.
 * References: path_resolution(7), openat2(2), getcwd(3), readlink(2), proc(5), getauxval(3).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

/* The contents of `path`, or "" if it cannot be read. */
static const char *slurp(const char *path)
{
    static char buf[256];
    buf[0] = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return buf;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    close(fd);
    return buf;
}

#define CHECK_READS(path, want) CHECK(strcmp(slurp(path), want) == 0)

static long openat2_(int dfd, const char *path, unsigned long long resolve)
{
    struct open_how how = {.flags = O_RDONLY, .resolve = resolve};
    return syscall(SYS_openat2, dfd, path, &how, sizeof how);
}

static void test_loader(void)
{
    /* The interpreter was mapped, page-aligned, away from the program. */
    unsigned long base = getauxval(AT_BASE), entry = getauxval(AT_ENTRY);
    CHECK(base != 0);
    CHECK_EQ(base % 4096, 0);
    CHECK(entry != 0 && (entry < base || entry > base + (64 << 20)));
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK_EQ(n, 9);
    exe[n > 0 ? n : 0] = 0;
    CHECK(strcmp(exe, "/bin/prog") == 0);
}

static void test_escapes(void)
{
    const char *etc = "sysroot etc\n";
    CHECK_READS("/etc/marker", etc);
    CHECK_READS("/../../../../etc/marker", etc);
    CHECK_READS("/usr/../../../etc/marker", etc);
    CHECK_READS("/etc/../../etc/./marker", etc);
    /* Links out of the sysroot land back inside it. */
    CHECK_READS("/escape_abs/marker", etc);
    CHECK_READS("/escape_rel/marker", etc);
    CHECK_READS("/usr/dotdot/usr/dotdot/etc/marker", etc);
    CHECK_READS("/etc/abs_passwd", "root:x:0:0:root:/root:/bin/sh\n");
    CHECK_ERR(open("/usr/loop1", O_RDONLY), ELOOP);
    CHECK_ERR(open("/usr/loop1/x", O_RDONLY), ELOOP);
    /* A system directory never falls back to the host, even when the sysroot lacks it. */
    CHECK_ERR(access("/lib64", F_OK), ENOENT);
    CHECK_ERR(access("/sbin/init", F_OK), ENOENT);
    /* An lstat sees the link itself. */
    struct stat st;
    CHECK_OK(lstat("/escape_abs", &st));
    CHECK(S_ISLNK(st.st_mode));
    CHECK_OK(stat("/escape_abs", &st));
    CHECK(S_ISDIR(st.st_mode));
    char target[PATH_MAX];
    ssize_t n = readlink("/escape_abs", target, sizeof target);
    CHECK_EQ(n, 4);
    CHECK(n == 4 && memcmp(target, "/etc", 4) == 0);
    char *real = realpath("/escape_rel/marker", NULL);
    CHECK(real && strcmp(real, "/etc/marker") == 0);
    free(real);
}

static void test_cwd(const char *workdir)
{
    char cwd[PATH_MAX];
    /* The working directory is a host directory, reported by its host path. */
    CHECK(getcwd(cwd, sizeof cwd) && strcmp(cwd, workdir) == 0);
    CHECK_READS("data.txt", "host data\n");
    char abs[PATH_MAX];
    snprintf(abs, sizeof abs, "%s/data.txt", workdir);
    CHECK_READS(abs, "host data\n");
    int here = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(here >= 0);

    CHECK_OK(chdir("/.."));
    CHECK(getcwd(cwd, sizeof cwd) && strcmp(cwd, "/") == 0);
    CHECK_READS("etc/marker", "sysroot etc\n");
    CHECK_READS("../../etc/marker", "sysroot etc\n");
    CHECK_OK(chdir("/usr/dotdot"));
    CHECK(getcwd(cwd, sizeof cwd) && strcmp(cwd, "/") == 0);
    CHECK_OK(chdir("/etc"));
    CHECK(getcwd(cwd, sizeof cwd) && strcmp(cwd, "/etc") == 0);
    CHECK_READS("marker", "sysroot etc\n");
    CHECK_READS("../../../etc/marker", "sysroot etc\n");

    /* A descriptor's link names its guest path. */
    int fd = open("/etc/marker", O_RDONLY);
    char link[64], name[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, name, sizeof name - 1);
    name[n > 0 ? n : 0] = 0;
    CHECK(strcmp(name, "/etc/marker") == 0);
    close(fd);

    /* Relative to a directory descriptor on the host side. */
    fd = openat(here, "data.txt", O_RDONLY);
    CHECK(fd >= 0);
    close(fd);
    CHECK_OK(fchdir(here));
    CHECK(getcwd(cwd, sizeof cwd) && strcmp(cwd, workdir) == 0);
    close(here);
}

static void test_host_dirs(const char *tmpname)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "/tmp/%s", tmpname);
    CHECK_READS(path, "host tmp\n");
    const char *home = getenv("HOME");
    CHECK(home != NULL);
    snprintf(path, sizeof path, "%s/home.txt", home ? home : "");
    CHECK_READS(path, "host home\n");
    /* A name the sysroot has (here /home) comes from the sysroot. */
    int fd = open("/home/created", O_WRONLY | O_CREAT | O_EXCL, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "in sysroot\n", 11), 11);
    close(fd);
}

static void test_openat2(void)
{
    int usr = open("/usr", O_RDONLY | O_DIRECTORY);
    CHECK(usr >= 0);
    /* IN_ROOT: /usr acts as / for the walk, and has no etc. */
    CHECK_SYS_ERR(openat2_(usr, "/etc/marker", RESOLVE_IN_ROOT), ENOENT);
    CHECK_SYS_ERR(openat2_(usr, "../etc/marker", RESOLVE_BENEATH), EXDEV);
    CHECK_SYS_ERR(openat2_(AT_FDCWD, "/escape_abs/marker", RESOLVE_NO_SYMLINKS), ELOOP);
    CHECK_SYS_ERR(openat2_(AT_FDCWD, "/proc/self/exe", RESOLVE_NO_MAGICLINKS), ELOOP);
    long fd = openat2_(usr, "dotdot/etc/marker", RESOLVE_IN_ROOT);
    /* dotdot is "..": clamped at /usr, which has no etc. */
    CHECK_EQ(fd < 0 ? errno : 0, ENOENT);
    fd = openat2_(AT_FDCWD, "/escape_rel/marker", 0);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    close(usr);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        printf("usage: fs_sysroot WORKDIR TMPNAME\n");
        return 2;
    }
    test_loader();
    test_escapes();
    test_cwd(argv[1]);
    test_host_dirs(argv[2]);
    test_openat2();
    return check_done();
}
