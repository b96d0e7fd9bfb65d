#!/bin/sh
# Builds selftest.elf from selftest.c with the aarch64 cross compiler. The output is
# reproducible for a given compiler (no build id, no .comment, no timestamps).
set -eu
here=$(dirname "$0")
out=${1:-"$here/selftest.elf"}
"${CC:-aarch64-linux-gnu-gcc}" -Os -static -nostdlib -ffreestanding -fno-stack-protector \
    -fno-asynchronous-unwind-tables -fno-ident -Wl,--build-id=none -Wl,-z,norelro \
    -Wl,-z,noexecstack -Wl,-s -o "$out" "$here/selftest.c"
