/*
 * The program `elfuse selftest` runs: a freestanding aarch64 Linux program (no C library)
 * that exercises the whole path through elfuse: the loader and initial stack, memory
 * syscalls, files, time, identity and exit. It prints nothing; it exits 0 when every check
 * passes, or with the number of the first check that failed.
 *
 * Built by build.sh; the bytes are checked in as selftest.elf and a test rebuilds them to
 * prove they match this source.
 */

typedef unsigned long u64;
typedef long i64;

static i64 sys6(i64 nr, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f)
{
    register i64 x8 __asm__("x8") = nr;
    register i64 x0 __asm__("x0") = a;
    register i64 x1 __asm__("x1") = b;
    register i64 x2 __asm__("x2") = c;
    register i64 x3 __asm__("x3") = d;
    register i64 x4 __asm__("x4") = e;
    register i64 x5 __asm__("x5") = f;
    __asm__ volatile("svc #0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
}

/* sys(nr, args...) pads the arguments with zeroes to six. */
#define SYS_PICK(nr, a, b, c, d, e, f, ...) sys6(nr, a, b, c, d, e, f)
#define sys(...) SYS_PICK(__VA_ARGS__, 0, 0, 0, 0, 0, 0)
#define SYS(nr, a, b, c, d, e, f) sys6(nr, a, b, c, d, e, f)

enum {
    NR_openat = 56, NR_close = 57, NR_read = 63, NR_write = 64, NR_exit_group = 94,
    NR_clock_gettime = 113, NR_uname = 160, NR_getpid = 172, NR_gettid = 178,
    NR_brk = 214, NR_munmap = 215, NR_mmap = 222, NR_mprotect = 226, NR_getrandom = 278,
};

#define AT_FDCWD -100
#define AT_PAGESZ 6
#define AT_RANDOM 25
#define ENOENT 2
#define EFAULT 14

static void check(int ok, int number)
{
    if (!ok)
        sys(NR_exit_group, number);
}

static int same(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

void selftest_main(u64 *sp)
{
    /* The initial stack: argc, argv, NULL, envp, NULL, auxv. */
    u64 argc = sp[0];
    u64 *envp = sp + 1 + argc + 1;
    while (*envp)
        envp++;
    u64 *auxv = envp + 1;
    u64 pagesz = 0, random = 0;
    for (; auxv[0]; auxv += 2) {
        if (auxv[0] == AT_PAGESZ)
            pagesz = auxv[1];
        if (auxv[0] == AT_RANDOM)
            random = auxv[1];
    }
    check(((u64)sp & 15) == 0, 1);
    check(argc >= 1, 2);
    check(pagesz == 4096, 3);
    check(random != 0, 4);

    /* Identity and the system. */
    check(sys(NR_getpid) == sys(NR_gettid), 5);
    char uts[390];
    check(sys(NR_uname, (i64)uts) == 0, 6);
    check(same(uts, "Linux") && same(uts + 4 * 65, "aarch64"), 7);

    /* Memory: brk, mmap, mprotect, munmap. */
    i64 brk = sys(NR_brk, 0);
    check(sys(NR_brk, brk + 8192) == brk + 8192, 8);
    ((volatile char *)brk)[8191] = 1;
    i64 map = SYS(NR_mmap, 0, 65536, 3, 0x22, -1, 0);
    check(map > 0 && (map & 4095) == 0, 9);
    ((volatile char *)map)[65535] = 42;
    check(((volatile char *)map)[65535] == 42 && ((volatile char *)map)[0] == 0, 10);
    check(sys(NR_mprotect, map, 4096, 1) == 0, 11);
    check(sys(NR_munmap, map, 65536) == 0, 12);

    /* Files: a device, an error, a bad pointer. */
    i64 fd = SYS(NR_openat, AT_FDCWD, (i64)"/dev/null", 2, 0, 0, 0);
    check(fd >= 0, 13);
    check(sys(NR_write, fd, (i64)"x", 1) == 1, 14);
    check(sys(NR_read, fd, (i64)uts, 1) == 0, 15);
    check(sys(NR_close, fd) == 0, 16);
    check(SYS(NR_openat, AT_FDCWD, (i64)"/nonexistent/elfuse", 0, 0, 0, 0) == -ENOENT, 17);
    check(sys(NR_write, 1, 16, 1) == -EFAULT, 18);

    /* Time and randomness. */
    i64 ts[2];
    check(sys(NR_clock_gettime, 1, (i64)ts) == 0 && ts[1] >= 0 && ts[1] < 1000000000, 19);
    unsigned char bytes[16] = {0};
    check(sys(NR_getrandom, (i64)bytes, 16, 0) == 16, 20);

    sys(NR_exit_group, 0);
}

__asm__(".global _start\n"
        "_start:\n"
        "    mov x0, sp\n"
        "    bl selftest_main\n"
        "    brk #0\n");
