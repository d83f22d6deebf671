#!/bin/sh
# Run one harness for a while, in one process (-jobs=1: the machine is shared).
#
#   fuzz/run.sh fuzz_api 600            # 10 minutes
#   fuzz/run.sh fuzz_basic 120 -max_len=2048
#
# New inputs go to fuzz/build/corpus/<harness>/ (the seeds in
# fuzz/corpus/<harness>/ stay as they are); a crash or failed check is written
# to fuzz/build/artifacts/<harness>/; libFuzzer's log is
# fuzz/build/logs/<harness>-<time>.log (its last "#N DONE"/"pulse" line has
# cov:, ft:, exec/s).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
h=${1:?harness}
secs=${2:-120}
shift 2 || shift $#

bin="$here/build/$h"
[ -x "$bin" ] || "$here/build.sh" "$h"
work="$here/build/corpus/$h"
art="$here/build/artifacts/$h/"
logs="$here/build/logs"
mkdir -p "$work" "$art" "$logs"
dict=""
[ -f "$here/dict/$h.dict" ] && dict="-dict=$here/dict/$h.dict"
log="$logs/$h-$(date +%Y%m%d-%H%M%S).log"

cd "$logs"
# shellcheck disable=SC2086
"$bin" -jobs=1 -workers=1 -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix="$art" $dict "$@" "$work" "$here/corpus/$h" >/dev/null 2>&1 || true
mv "$logs/fuzz-0.log" "$log"
echo "log: $log"
grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1
grep -E 'stat::|CHECK FAILED|ERROR: |SUMMARY' "$log" || true
ls -1 "$art" 2>/dev/null | sed 's/^/artifact: /'
