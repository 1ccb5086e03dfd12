#!/usr/bin/env bash
# run-fuzz.sh BINARY CORPUS_DIR SECONDS — run one libFuzzer target.
#
# CORPUS_DIR (the checked-in seed corpus, e.g. tests/fuzz/corpus/vq_split) is
# only READ: libFuzzer writes new inputs to its first corpus directory, which
# is $FUZZ_NEW_DIR, or a temporary directory removed at exit. So `make check`
# (meson tests 'fuzz_NAME') never modifies the source tree. A dictionary
# CORPUS_DIR.dict (e.g. tests/fuzz/corpus/ctl.dict) is used when it exists.
#
# Environment:
#   FUZZ_NEW_DIR       keep new interesting inputs here (created if missing).
#                      For long runs: FUZZ_NEW_DIR=tests/fuzz/new/vq_split;
#                      fold them into the checked-in corpus, minimised, with
#                        BINARY -merge=1 CORPUS_DIR FUZZ_NEW_DIR
#   FUZZ_ARTIFACT_DIR  where crash-/leak-/timeout-/oom- inputs are written
#                      (default: artifacts/ next to BINARY). Save a real one
#                      into CORPUS_DIR as crash-<what> so replay keeps it.
#   FUZZ_ARGS          extra libFuzzer flags (e.g. "-jobs=2 -workers=2").
#
# Fails (exit 1) on any crash, sanitizer report, leak, per-input timeout
# (10 s) or OOM. Prints total execs and execs/s at the end.
set -u

if [ $# -ne 3 ]; then
	echo "usage: $0 BINARY CORPUS_DIR SECONDS" >&2
	exit 2
fi
bin=$1 corpus=$2 secs=$3
case $secs in '' | *[!0-9]*) echo "run-fuzz: SECONDS must be a number" >&2; exit 2 ;; esac
[ -x "$bin" ] || { echo "run-fuzz: $bin is not executable" >&2; exit 2; }
[ -d "$corpus" ] || { echo "run-fuzz: corpus $corpus is not a directory" >&2; exit 2; }

name=$(basename "$bin")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/run-fuzz.$name.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

newdir=${FUZZ_NEW_DIR:-$tmp/new}
mkdir -p "$newdir" || exit 2
artdir=${FUZZ_ARTIFACT_DIR:-$(cd "$(dirname "$bin")" && pwd)/artifacts}
mkdir -p "$artdir" || exit 2
log=$tmp/fuzz.log

# Sanitizers: stop at the first report, and report leaks.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}abort_on_error=0:detect_leaks=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1

ninit=$(find "$corpus" -maxdepth 1 -type f | wc -l)
echo "run-fuzz: $name for ${secs}s; seeds: $corpus ($ninit files, read-only); new inputs: $newdir; artifacts: $artdir"

if [ "$secs" -eq 0 ]; then
	limit=(-runs=0)
else
	limit=(-max_total_time="$secs")
fi
dict=()
[ -f "${corpus%/}.dict" ] && dict=(-dict="${corpus%/}.dict")

# shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
"$bin" "${limit[@]}" "${dict[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
	-print_final_stats=1 -artifact_prefix="$artdir/" ${FUZZ_ARGS:-} \
	"$newdir" "$corpus" >"$log" 2>&1 &
pid=$!
# Stream progress lines while it runs (libFuzzer logs to stderr).
tail -n +1 -f "$log" --pid=$pid 2>/dev/null | grep -v '^INFO: Loaded\|^INFO: -max_len' &
tailpid=$!
wait $pid
rc=$?
wait $tailpid 2>/dev/null

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
ncorp=$(find "$newdir" -maxdepth 1 -type f | wc -l)
echo "run-fuzz: $name: ${execs:-?} total execs, ${rate:-?} execs/s over ${secs}s; $ncorp new corpus inputs; exit $rc"

if [ $rc -ne 0 ] || grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:\|==ERROR: libFuzzer' "$log"; then
	echo "run-fuzz: FAILED ($name, exit $rc). Inputs:" >&2
	ls -l "$artdir" >&2
	exit 1
fi
rmdir "$artdir" 2>/dev/null
exit 0
