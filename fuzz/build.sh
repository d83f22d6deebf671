#!/bin/sh
# Build the libFuzzer harnesses with ASan + UBSan (clang 14).
#
#   fuzz/build.sh            # all harnesses into fuzz/build/
#   fuzz/build.sh fuzz_api   # just one
#   FUZZ_SRC=DIR fuzz/build.sh   # the sources of another tree (DIR/meson.build,
#                                # DIR/src), e.g. a commit's: git archive HEAD
#                                # meson.build src | tar -x -C DIR
#
# The project's sources are meson.build's core_sources (read from it, so the
# list stays true), compiled once with the sanitizers and the fuzzer's
# coverage instrumentation, then linked with each harness. src/util/arena.c
# is replaced by fuzz/arena_asan.c (every block its own malloc, so that
# ASan sees overflows and use after release inside a request's arena)
# unless FUZZ_REAL_ARENA=1.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=${FUZZ_SRC:-$(dirname "$here")}
out="$here/build"
CC=${CC:-clang}
# objects of another tree apart (git archive gives its files old times)
objdir="$out/obj"
[ -z "${FUZZ_SRC:-}" ] || objdir="$out/obj-$(echo "$root" | cksum | cut -d' ' -f1)"
mkdir -p "$objdir"

version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$root/meson.build" | head -n 1)
sources=$(awk '/^core_sources *= *files\(/ {on=1} on {print} on && /\)/ {exit}' "$root/meson.build" |
          grep -o "'src/[^']*\.c'" | tr -d "'")
[ -n "$sources" ] || { echo "build.sh: no core_sources in meson.build" >&2; exit 2; }
if [ "${FUZZ_REAL_ARENA:-0}" != 1 ]; then
    sources=$(echo "$sources" | sed 's|^src/util/arena\.c$|ARENA_ASAN|')
fi

# meson.build's pkg-config dependencies (all but threads), read from it
deps=$(sed -n "s/^[a-z0-9_]* *= *dependency('\([^']*\)'.*/\1/p" "$root/meson.build" | grep -v '^threads$' | tr '\n' ' ')
dep_cflags=$(pkg-config --cflags $deps)
dep_libs=$(pkg-config --libs $deps)

SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -fno-strict-aliasing -DATTACHD_VERSION=\"$version\"
        -Wall -Wextra -Werror=implicit-function-declaration -Wno-unused-parameter $SAN -I$root/src $dep_cflags ${EXTRA_CFLAGS:-}"

objs=""
for src in $sources; do
    obj="$objdir/$(echo "$src" | tr '/' '_' | sed 's/\.c$/.o/')"
    path="$root/$src"
    [ "$src" != ARENA_ASAN ] || path="$here/arena_asan.c"
    if [ ! -f "$obj" ] || [ "$path" -nt "$obj" ] || [ "$0" -nt "$obj" ] ||
       [ -n "$(find "$root/src" -name '*.h' -newer "$obj" 2>/dev/null | head -n 1)" ]; then
        echo "  CC   $src"
        # shellcheck disable=SC2086
        $CC $CFLAGS -fsanitize=fuzzer-no-link -c "$path" -o "$obj"
    fi
    objs="$objs $obj"
done

harnesses=${*:-"fuzz_api fuzz_basic fuzz_microversion fuzz_config fuzz_json fuzz_framing fuzz_lvxml"}
for h in $harnesses; do
    echo "  LINK $h"
    # shellcheck disable=SC2086
    $CC $CFLAGS -fsanitize=fuzzer "$here/$h.c" $objs -o "$out/$h" $dep_libs -lpthread
done
echo "built into $out"
