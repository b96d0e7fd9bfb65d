/*
 * musl_hello: a dynamically linked program for musl's loader, built against the musl of the
 * test sysroot (Debian's arm64 musl and musl-dev, see tests/fixtures/make-sysroot). It prints
 * its arguments, one a line after a greeting, and exits with their count:
 *
 *   musl_hello [ARG...]
 *
 * There is no aarch64 musl-gcc on the host, so it is linked by hand with the cross gcc, as
 * Debian's musl-gcc.specs would do it, with SYSROOT the path make-sysroot prints and
 * M=SYSROOT/usr/lib/aarch64-linux-musl (common::build_musl_guest runs exactly this):
 *
 *   aarch64-linux-gnu-gcc -O1 -Wall -Werror -nostdinc -nostdlib -nostartfiles \
 *     -isystem SYSROOT/usr/include/aarch64-linux-musl \
 *     -isystem "$(aarch64-linux-gnu-gcc -print-file-name=include)" \
 *     -Wl,-dynamic-linker,/lib/ld-musl-aarch64.so.1 \
 *     $M/Scrt1.o $M/crti.o "$(aarch64-linux-gnu-gcc -print-file-name=crtbeginS.o)" \
 *     musl_hello.c -L$M -lc "$(aarch64-linux-gnu-gcc -print-libgcc-file-name)" \
 *     "$(aarch64-linux-gnu-gcc -print-file-name=crtendS.o)" $M/crtn.o -o musl_hello
 *
 * The result is a PIE whose PT_INTERP is /lib/ld-musl-aarch64.so.1 and whose only DT_NEEDED
 * is libc.so (musl's loader and libc are one file). Run it with the sysroot as the root:
 * `qemu-aarch64 -L SYSROOT musl_hello a b` prints "hello from musl", "a", "b" and exits 2.
 */
#include <stdio.h>

#ifdef __GLIBC__
#error "musl_hello must be built against musl's headers, not glibc's"
#endif

int main(int argc, char **argv)
{
    puts("hello from musl");
    for (int i = 1; i < argc; i++)
        puts(argv[i]);
    return argc - 1;
}
