/*
 * loader_stack: the initial process stack and auxiliary vector the loader hands a static
 * program (execve(2), getauxval(3), elf(5), System V AArch64 ABI "Process initialization").
 *
 * Must be run exactly as
 *
 *     ELFUSE_TEST=1 loader_stack a "b c"
 *
 * (any other environment variables may be present as well). Build it twice from this
 * source: `-static` gives `loader_stack` (an ET_EXEC), `-static-pie` gives
 * `loader_stack_pie` (an ET_DYN loaded at a random base with no interpreter). The program
 * tells the two apart from its own ELF header and expects argv[0] / AT_EXECFN to end in
 * the matching name.
 *
 * Covers: argc/argv/envp contents and layout (argv[argc] == NULL, envp == &argv[argc + 1],
 * the auxv right after envp's NULL, strings above the pointer arrays, 16-byte aligned
 * initial stack pointer) and the auxv entries AT_PAGESZ, AT_PHDR/AT_PHENT/AT_PHNUM,
 * AT_ENTRY, AT_BASE, AT_UID/AT_EUID/AT_GID/AT_EGID, AT_SECURE, AT_RANDOM, AT_EXECFN,
 * AT_PLATFORM, AT_CLKTCK, AT_HWCAP, AT_SYSINFO_EHDR (only if present).
 */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "check.h"

extern char _start[];
/* Provided by the GNU linker: the ELF header of the executable as mapped in memory. */
extern const ElfW(Ehdr) __ehdr_start;

static int ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static int is_pie(void)
{
    return __ehdr_start.e_type == ET_DYN;
}

static const char *expected_name(void)
{
    return is_pie() ? "/loader_stack_pie" : "/loader_stack";
}

static void check_args(int argc, char **argv)
{
    CHECK_EQ(argc, 3);
    if (argc != 3)
        return;
    /* argv[0] is the path as executed; accept "loader_stack" with or without a directory. */
    CHECK(strcmp(argv[0], expected_name() + 1) == 0 || ends_with(argv[0], expected_name()));
    CHECK(strcmp(argv[1], "a") == 0);
    CHECK(strcmp(argv[2], "b c") == 0);
    CHECK(argv[argc] == NULL);
}

static void check_env(int argc, char **argv, char **envp)
{
    /* envp starts right after argv's terminating NULL. */
    CHECK(envp == &argv[argc + 1]);
    CHECK(envp == environ);

    /* Loops fold into one check each so the check count does not depend on the env. */
    int found = 0, n = 0, all_have_eq = 1;
    for (char **e = envp; *e; e++, n++) {
        if (!strchr(*e, '='))
            all_have_eq = 0;
        if (strcmp(*e, "ELFUSE_TEST=1") == 0)
            found = 1;
    }
    CHECK(n >= 1);
    CHECK_EQ(all_have_eq, 1);
    CHECK_EQ(found, 1);
    const char *v = getenv("ELFUSE_TEST");
    CHECK(v != NULL && strcmp(v, "1") == 0);
}

/* The auxv is an array of (type, value) pairs right after envp's NULL, ending in AT_NULL. */
static void check_auxv_layout(char **envp)
{
    char **e = envp;
    while (*e)
        e++;
    ElfW(auxv_t) *av = (ElfW(auxv_t) *)(e + 1);
    unsigned long pagesz = 0, phdr = 0, entry = 0, random = 0;
    int n = 0;
    for (; av->a_type != AT_NULL && n < 256; av++, n++) {
        if (av->a_type == AT_PAGESZ)
            pagesz = av->a_un.a_val;
        if (av->a_type == AT_PHDR)
            phdr = av->a_un.a_val;
        if (av->a_type == AT_ENTRY)
            entry = av->a_un.a_val;
        if (av->a_type == AT_RANDOM)
            random = av->a_un.a_val;
    }
    CHECK(n < 256);
    CHECK_EQ(pagesz, 4096);
    CHECK(phdr != 0 && phdr == getauxval(AT_PHDR));
    CHECK(entry != 0 && entry == getauxval(AT_ENTRY));
    CHECK(random != 0 && random == getauxval(AT_RANDOM));
}

static void check_stack_layout(int argc, char **argv, char **envp)
{
    /* At process entry sp points at argc, with argv right above it; sp is 16-byte aligned. */
    uintptr_t initial_sp = (uintptr_t)argv - sizeof(long);
    CHECK_EQ(initial_sp % 16, 0);
    CHECK_EQ(*(long *)initial_sp, argc);
    CHECK_EQ((uintptr_t)__builtin_frame_address(0) % 16, 0);

    /* The strings live above the pointer arrays (and the auxv that follows them). */
    char **e = envp;
    while (*e)
        e++;
    uintptr_t tables_end = (uintptr_t)(e + 1);
    int argv_above = 1, env_above = 1, packed = 1;
    for (int i = 0; i < argc; i++)
        if ((uintptr_t)argv[i] <= (uintptr_t)&argv[argc] || (uintptr_t)argv[i] <= tables_end)
            argv_above = 0;
    for (e = envp; *e; e++)
        if ((uintptr_t)*e <= tables_end)
            env_above = 0;
    /* argv strings are packed consecutively, NUL-terminated. */
    for (int i = 0; i + 1 < argc; i++)
        if (argv[i + 1] != argv[i] + strlen(argv[i]) + 1)
            packed = 0;
    CHECK_EQ(argv_above, 1);
    CHECK_EQ(env_above, 1);
    CHECK_EQ(packed, 1);
}

static void check_phdrs(void)
{
    const ElfW(Ehdr) *eh = &__ehdr_start;
    CHECK(memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0);
    CHECK_EQ(eh->e_ident[EI_CLASS], ELFCLASS64);
    CHECK(eh->e_type == ET_EXEC || eh->e_type == ET_DYN);

    unsigned long phdr = getauxval(AT_PHDR);
    CHECK(phdr != 0);
    CHECK_EQ(phdr, (uintptr_t)eh + eh->e_phoff);
    CHECK_EQ(getauxval(AT_PHENT), sizeof(ElfW(Phdr)));
    CHECK_EQ(getauxval(AT_PHENT), eh->e_phentsize);
    CHECK_EQ(getauxval(AT_PHNUM), eh->e_phnum);

    /* Load bias: where the p_offset 0 segment landed vs. its link-time address. */
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)phdr;
    int loads = 0, congruent = 1;
    uintptr_t bias = 0;
    for (unsigned i = 0; i < getauxval(AT_PHNUM); i++) {
        if (ph[i].p_type == PT_LOAD) {
            if (ph[i].p_offset == 0 && loads == 0)
                bias = (uintptr_t)eh - ph[i].p_vaddr;
            loads++;
            if (ph[i].p_vaddr % 4096 != ph[i].p_offset % 4096)
                congruent = 0;
        }
    }
    CHECK(loads >= 1);
    CHECK_EQ(congruent, 1);
    if (is_pie()) {
        CHECK(bias != 0);
        CHECK_EQ(bias % 4096, 0);
    } else {
        CHECK_EQ(bias, 0);
    }
    CHECK_EQ(getauxval(AT_ENTRY), eh->e_entry + bias);
}

/* dl_iterate_phdr's view of the main program agrees with AT_PHDR. */
static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    *(const void **)data = info->dlpi_phdr;
    return 1; /* the first object is the main program */
}

static void check_dl_iterate(void)
{
    const void *first = NULL;
    dl_iterate_phdr(phdr_cb, &first);
    CHECK_EQ((uintptr_t)first, getauxval(AT_PHDR));
}

static void check_entry_and_base(void)
{
    CHECK_EQ(getauxval(AT_ENTRY), (uintptr_t)_start);
    /* No interpreter: AT_BASE is 0 for both static and static-pie. */
    CHECK_EQ(getauxval(AT_BASE), 0);
}

static void check_ids(void)
{
    CHECK_EQ(getauxval(AT_UID), getuid());
    CHECK_EQ(getauxval(AT_EUID), geteuid());
    CHECK_EQ(getauxval(AT_GID), getgid());
    CHECK_EQ(getauxval(AT_EGID), getegid());
    CHECK_EQ(getauxval(AT_SECURE), 0);
}

static void check_misc(void)
{
    CHECK_EQ(getauxval(AT_PAGESZ), 4096);
    CHECK_EQ(sysconf(_SC_PAGESIZE), 4096);
    CHECK_EQ(getauxval(AT_CLKTCK), 100);
    CHECK_EQ(sysconf(_SC_CLK_TCK), 100);

    const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
    CHECK(rnd != NULL);
    if (rnd) {
        unsigned or_all = 0;
        for (int i = 0; i < 16; i++)
            or_all |= rnd[i];
        CHECK(or_all != 0); /* all-zero has probability 2^-128 */
    }

    const char *execfn = (const char *)getauxval(AT_EXECFN);
    CHECK(execfn != NULL);
    if (execfn)
        CHECK(strcmp(execfn, expected_name() + 1) == 0 || ends_with(execfn, expected_name()));

    const char *plat = (const char *)getauxval(AT_PLATFORM);
    CHECK(plat != NULL);
#ifdef __aarch64__
    if (plat)
        CHECK(strcmp(plat, "aarch64") == 0);
    unsigned long hwcap = getauxval(AT_HWCAP);
    CHECK(hwcap & (1UL << 0)); /* HWCAP_FP */
    CHECK(hwcap & (1UL << 1)); /* HWCAP_ASIMD */
#endif

    /* The vDSO is optional; if advertised it must be an ELF image. */
    const unsigned char *vdso = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);
    if (vdso)
        CHECK(memcmp(vdso, ELFMAG, SELFMAG) == 0);
}

int main(int argc, char **argv, char **envp)
{
    check_args(argc, argv);
    check_env(argc, argv, envp);
    check_auxv_layout(envp);
    check_stack_layout(argc, argv, envp);
    check_phdrs();
    check_dl_iterate();
    check_entry_and_base();
    check_ids();
    check_misc();
    return check_done();
}
