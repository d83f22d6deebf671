#!/bin/sh
# Line coverage of src/ reached by a harness's corpus (llvm-cov, clang 14).
#
#   fuzz/coverage.sh fuzz_api            # summary per file
#   fuzz/coverage.sh fuzz_api show src/api/json.c   # annotated source
#
# Builds fuzz/build/cov/<harness> without sanitizers, with source-based
# coverage, runs it once over fuzz/corpus/<harness> and fuzz/build/corpus/<harness>.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
h=${1:?harness}
mode=${2:-report}
out="$here/build/cov"
mkdir -p "$out"

version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$root/meson.build" | head -n 1)
sources=$(awk '/^core_sources *= *files\(/ {on=1} on {print} on && /\)/ {exit}' "$root/meson.build" |
          grep -o "'src/[^']*\.c'" | tr -d "'" | sed "s|^|$root/|")
# meson.build's pkg-config dependencies (all but threads), read from it
deps=$(sed -n "s/^[a-z0-9_]* *= *dependency('\([^']*\)'.*/\1/p" "$root/meson.build" | grep -v '^threads$' | tr '\n' ' ')

if [ ! -x "$out/$h" ] || [ "$here/$h.c" -nt "$out/$h" ] ||
   [ -n "$(find "$root/src" "$here" -newer "$out/$h" -name '*.[ch]' | head -n 1)" ]; then
    # shellcheck disable=SC2046,SC2086
    clang -g -O0 -std=c11 -D_GNU_SOURCE -fno-strict-aliasing -DATTACHD_VERSION="\"$version\"" \
        -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping -I"$root/src" \
        $(pkg-config --cflags $deps) "$here/$h.c" $sources -o "$out/$h" \
        $(pkg-config --libs $deps) -lpthread
fi

dirs="$here/corpus/$h"
[ -d "$here/build/corpus/$h" ] && dirs="$dirs $here/build/corpus/$h"
rm -f "$out/$h.profraw"
# shellcheck disable=SC2086
LLVM_PROFILE_FILE="$out/$h.profraw" FUZZ_API_ALLOW=fallback,dialect \
    FUZZ_JSON_ALLOW=fallback,truncate FUZZ_BASIC_ALLOW=highbit \
    "$out/$h" -runs=0 $dirs >/dev/null 2>&1 || true
llvm-profdata-14 merge -sparse "$out/$h.profraw" -o "$out/$h.profdata"
if [ "$mode" = show ]; then
    shift 2
    llvm-cov-14 show "$out/$h" -instr-profile="$out/$h.profdata" "$@"
else
    # shellcheck disable=SC2086
    llvm-cov-14 report "$out/$h" -instr-profile="$out/$h.profdata" \
        $(echo "$sources" | grep -v -e /cli/ -e /http/server -e /http/exchange -e /http/guard -e /driver/)
fi
