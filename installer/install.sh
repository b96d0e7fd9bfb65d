#!/bin/sh
# Builds and installs elfuse.
#
#   installer/install.sh [--prefix DIR] [--binary FILE] [--hooks ask|yes|no]
#
# --prefix DIR    install DIR/bin/elfuse (default: $HOME/.local)
# --binary FILE   install FILE instead of building target/release/elfuse with cargo
# --hooks WHEN    run 'elfuse install-hooks' for $SHELL afterwards: ask (the default; asks
#                 only when standard input is a terminal, else skips), yes or no
#
# On macOS the installed binary is signed with entitlements.plist (which grants
# com.apple.security.hypervisor), ad hoc unless CODESIGN_IDENTITY names a signing identity.
# Exit status: 0 when installed, 1 when a step failed, 2 for a bad command line.
set -eu

usage() {
    sed -n '3,13s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

die() {
    printf 'install.sh: %s\n' "$1" >&2
    exit 1
}

prefix=${HOME:?HOME is not set}/.local
binary=
hooks=ask
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
        --binary) [ $# -ge 2 ] || usage; binary=$2; shift 2 ;;
        --hooks)
            [ $# -ge 2 ] || usage
            case $2 in ask|yes|no) hooks=$2 ;; *) usage ;; esac
            shift 2 ;;
        -h|--help) usage ;;
        *) usage ;;
    esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "$binary" ]; then
    command -v cargo > /dev/null 2>&1 || die "cargo is not installed; see https://rustup.rs"
    (cd "$repo" && cargo build --release --locked) || die "cargo build failed"
    binary=$repo/target/release/elfuse
fi
if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
    die "$binary: not an executable file"
fi

bin=$prefix/bin
mkdir -p "$bin" || die "cannot create $bin"
# Copy next to the destination, sign the copy, then rename it over the old binary, so that a
# running elfuse and its shims never see a half-written file.
temp=$bin/.elfuse.install-$$
trap 'rm -f "$temp"' EXIT
cp "$binary" "$temp" || die "cannot write $temp"
chmod 755 "$temp"
if [ "$(uname -s)" = Darwin ]; then
    identity=${CODESIGN_IDENTITY:--}
    codesign --force --sign "$identity" --entitlements "$repo/entitlements.plist" "$temp" \
        || die "codesign failed (identity '$identity')"
fi
mv -f "$temp" "$bin/elfuse" || die "cannot install $bin/elfuse"
trap - EXIT
printf 'installed %s\n' "$bin/elfuse"

case :${PATH:-}: in
    *:"$bin":*) ;;
    *) printf 'note: %s is not on PATH\n' "$bin" ;;
esac

# Shims point at the binary by path: re-point them at the new one.
"$bin/elfuse" shim rehash || die "elfuse shim rehash failed"

if [ "$hooks" = ask ]; then
    hooks=no
    if [ -t 0 ]; then
        printf 'Install the shell hooks for %s now? [y/N] ' "${SHELL:-your shell}"
        read -r answer || answer=
        case $answer in y|Y|yes|YES) hooks=yes ;; esac
    fi
fi
if [ "$hooks" = yes ]; then
    "$bin/elfuse" install-hooks || die "elfuse install-hooks failed"
else
    printf 'shell hooks: run %s install-hooks to add them\n' "$bin/elfuse"
fi
