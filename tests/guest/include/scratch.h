/*
 * Scratch-directory helpers for elfuse guest tests.
 *
 * scratch_init() makes a fresh directory with mkdtemp("/tmp/elfuse-XXXXXX") so a test works
 * from any current directory; sp("name") returns "<scratch>/name" (from a small ring of
 * static buffers, so several results can be used in one expression); scratch_cleanup()
 * removes the whole tree (nftw, depth first, not following symlinks).
 */
#ifndef ELFUSE_SCRATCH_H
#define ELFUSE_SCRATCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch_dir[64];

static inline const char *scratch_init(void)
{
    strcpy(scratch_dir, "/tmp/elfuse-XXXXXX");
    if (!mkdtemp(scratch_dir)) {
        perror("mkdtemp");
        exit(2);
    }
    return scratch_dir;
}

/* "<scratch>/name"; 64 rotating buffers, so copy a result that must outlive many calls. */
static inline const char *sp(const char *name)
{
    static char bufs[64][512];
    static int next;
    char *b = bufs[next];
    next = (next + 1) % 64;
    snprintf(b, sizeof bufs[0], "%s/%s", scratch_dir, name);
    return b;
}

static inline int scratch_rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_DP || type == FTW_D)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static inline void scratch_cleanup(void)
{
    if (scratch_dir[0])
        nftw(scratch_dir, scratch_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write a whole string into a new (truncated) file; returns 0 or -1. */
static inline int scratch_write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t n = strlen(content);
    int ok = fwrite(content, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Read up to cap-1 bytes of a file into buf, NUL-terminated; returns the length or -1. */
static inline long scratch_read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return (long)n;
}

#endif
