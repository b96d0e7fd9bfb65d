#!/bin/bash
# Build the file-family guest tests (tests/guest/fs_*.c, or the programs named) natively and
# statically for aarch64, then run them from / :
#   - natively on this Linux host (the real-kernel oracle): every program must pass;
#   - under qemu-aarch64, if installed: a program must pass unless it is listed in
#     a qemu-divergences*.txt file, and a listed one must still fail (else the list is stale).
# Programs are run without arguments, so name only tests that need none.
# Usage: tests/guest/run-oracle.sh [program...]   (default: fs_*). Build dir: $GUEST_BUILD
# or /tmp/guest-build. Exit status 0 when everything matches.
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=${GUEST_BUILD:-/tmp/guest-build}
mkdir -p "$out/native" "$out/aarch64"
cd "$here" || exit 2

if [ $# -gt 0 ]; then progs=("$@"); else
    progs=()
    for f in fs_*.c; do progs+=("${f%.c}"); done
fi
have_cross=0; command -v aarch64-linux-gnu-gcc >/dev/null && have_cross=1
have_qemu=0; command -v qemu-aarch64 >/dev/null && have_qemu=1

status=0
for p in "${progs[@]}"; do
    if ! gcc -O1 -g -Wall -Werror -I include "$p.c" -o "$out/native/$p"; then
        echo "$p: native build FAILED"; status=1; continue
    fi
    res=$(cd / && "$out/native/$p" 2>&1); rc=$?
    if [ $rc -eq 0 ]; then echo "$p native: ${res##*$'\n'}"; else
        echo "$p native: FAILED"; echo "$res" | sed 's/^/    /'; status=1
    fi
    [ $have_cross -eq 1 ] || continue
    if ! aarch64-linux-gnu-gcc -static -O1 -g -Wall -Werror -I include "$p.c" -o "$out/aarch64/$p"; then
        echo "$p: aarch64 build FAILED"; status=1; continue
    fi
    [ $have_qemu -eq 1 ] || continue
    res=$(cd / && qemu-aarch64 "$out/aarch64/$p" 2>&1); rc=$?
    known=$(cat qemu-divergences.txt 2>/dev/null | grep -v '^#' | awk -v p="$p" '$1 == p')
    if [ $rc -eq 0 ] && [ -z "$known" ]; then
        echo "$p qemu: ${res##*$'\n'}"
    elif [ $rc -ne 0 ] && [ -n "$known" ]; then
        echo "$p qemu: ${res##*$'\n'} (known: ${known#* })"
    elif [ $rc -eq 0 ]; then
        echo "$p qemu: passes now; remove it from qemu-divergences.txt"; status=1
    else
        echo "$p qemu: FAILED (not a known divergence)"; echo "$res" | sed 's/^/    /'; status=1
    fi
done
exit $status
