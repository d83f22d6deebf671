#!/bin/sh
# Build the libFuzzer harnesses with ASan + UBSan (clang 14).
#
#   fuzz/build.sh            # all harnesses into fuzz/build/
#   fuzz/build.sh fuzz_api   # just one
#
# The project's sources are meson.build's core_sources (read from it, so the
# list stays true), compiled once with the sanitizers and the fuzzer's
# coverage instrumentation, then linked with each harness.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out="$here/build"
CC=${CC:-clang}
mkdir -p "$out/obj"

version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$root/meson.build" | head -n 1)
sources=$(awk '/^core_sources *= *files\(/ {on=1} on {print} on && /\)/ {exit}' "$root/meson.build" |
          grep -o "'src/[^']*\.c'" | tr -d "'")
[ -n "$sources" ] || { echo "build.sh: no core_sources in meson.build" >&2; exit 2; }

deps="libmicrohttpd jansson sqlite3 libsodium"
dep_cflags=$(pkg-config --cflags $deps)
dep_libs=$(pkg-config --libs $deps)

SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -fno-strict-aliasing -DATTACHD_VERSION=\"$version\"
        -Wall -Wextra -Werror=implicit-function-declaration -Wno-unused-parameter $SAN -I$root/src $dep_cflags ${EXTRA_CFLAGS:-}"

objs=""
for src in $sources; do
    obj="$out/obj/$(echo "$src" | tr '/' '_' | sed 's/\.c$/.o/')"
    if [ ! -f "$obj" ] || [ "$root/$src" -nt "$obj" ] || [ "$0" -nt "$obj" ] ||
       [ -n "$(find "$root/src" -name '*.h' -newer "$obj" 2>/dev/null | head -n 1)" ]; then
        echo "  CC   $src"
        # shellcheck disable=SC2086
        $CC $CFLAGS -fsanitize=fuzzer-no-link -c "$root/$src" -o "$obj"
    fi
    objs="$objs $obj"
done

harnesses=${*:-"fuzz_api fuzz_basic fuzz_microversion fuzz_config fuzz_json"}
for h in $harnesses; do
    echo "  LINK $h"
    # shellcheck disable=SC2086
    $CC $CFLAGS -fsanitize=fuzzer "$here/$h.c" $objs -o "$out/$h" $dep_libs -lpthread
done
echo "built into $out"
