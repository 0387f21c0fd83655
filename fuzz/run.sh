#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after the other, on the stable
# toolchain: `fuzz/run.sh [SECONDS] [TARGET...]` (default 60 s, every target). See
# docs/fuzzing.md.
#
# Each target starts from its committed seeds (fuzz/corpus/<target>/*.seed) and what earlier
# runs added there; a crash stops that target, leaves the input in fuzz/artifacts/<target>/ and
# makes the script exit non-zero after the other targets ran. Per target it prints the wall and
# CPU time and libFuzzer's execution count.
#
# Environment: FUZZ_JOBS=N runs N targets at once (default 1); FUZZ_NICE=N runs them at that
# niceness (default 0); FUZZ_ARGS adds libFuzzer flags (for example `-max_len=4096`);
# FUZZ_NO_BUILD=1 runs the binaries already built; FUZZ_CPU=1 counts SECONDS as CPU time of the
# target instead of wall time (for a figure of CPU time fuzzed on a shared or niced machine: the
# target runs until its own CPU time reaches SECONDS, then is interrupted and prints its stats).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi

# No sanitizer: every decoder is safe Rust (the memory-safety bugs ASan finds need `unsafe`),
# and without ASan the build needs no nightly flag and runs several times faster. Debug
# assertions and overflow checks stay on (cargo fuzz's default), as in the test profile.
# 16 codegen units: a much faster build on 2 cores, at some cost in executions per second.
build_flags=(--sanitizer none --codegen-units 16)
if [ -z "${FUZZ_NO_BUILD:-}" ]; then
  nice -n "${FUZZ_NICE:-0}" cargo fuzz build "${build_flags[@]}"
fi

bin_dir=fuzz/target/x86_64-unknown-linux-gnu/release
log_dir=fuzz/target/logs
mkdir -p "$log_dir"

# Watches process PID (a libFuzzer run) until it exits, interrupting it (SIGINT: it prints its
# stats and exits) once its CPU time reaches SECONDS; prints the last user and system seconds
# seen (from /proc/PID/stat, in clock ticks), as `time` does.
stop_at_cpu() {
  local pid=$1 seconds=$2 ticks user=0 system=0 last=""
  ticks=$(getconf CLK_TCK)
  while read -r user system < <(awk '{print $14, $15}' "/proc/$pid/stat" 2>/dev/null); do
    if [ $((user + system)) -ge $((seconds * ticks)) ]; then
      kill -INT "$pid" 2>/dev/null || true
    fi
    last="$user $system"
    sleep 1
  done
  awk -v t="$ticks" '{printf "%.2f %.2f\n", $1 / t, $2 / t}' <<<"${last:-0 0}"
}

run_one() {
  local target=$1
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
  local log="$log_dir/$target.log" status=0 start end
  start=$(date +%s)
  # `-timeout`: an input that takes more than 10 s is reported as a hang; `-rss_limit_mb`: as
  # in libFuzzer's default, an input that needs more than 2 GiB is reported.
  local TIMEFORMAT='%U %S'
  local flags=(-artifact_prefix="fuzz/artifacts/$target/" -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1 -interrupted_exitcode=0)
  if [ -n "${FUZZ_CPU:-}" ]; then
    # shellcheck disable=SC2086
    nice -n "${FUZZ_NICE:-0}" "$bin_dir/$target" "fuzz/corpus/$target" "${flags[@]}" \
      ${FUZZ_ARGS:-} >"$log" 2>&1 &
    local pid=$!
    stop_at_cpu "$pid" "$seconds" >"$log_dir/$target.cpu"
    wait "$pid" || status=$?
  else
    # shellcheck disable=SC2086
    { time nice -n "${FUZZ_NICE:-0}" "$bin_dir/$target" "fuzz/corpus/$target" "${flags[@]}" \
        -max_total_time="$seconds" ${FUZZ_ARGS:-} >"$log" 2>&1 || status=$?; } \
      2>"$log_dir/$target.cpu"
  fi
  end=$(date +%s)
  local execs cpu
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cpu=$(awk '{printf "%.0f", $1 + $2}' "$log_dir/$target.cpu" 2>/dev/null || echo "?")
  if [ "$status" -eq 0 ]; then
    printf '%-18s ok     wall %4d s  cpu %4s s  execs %s\n' "$target" $((end - start)) "$cpu" "${execs:-?}"
  else
    printf '%-18s FAILED wall %4d s  cpu %4s s  execs %s  (exit %d; see %s and fuzz/artifacts/%s/)\n' \
      "$target" $((end - start)) "$cpu" "${execs:-?}" "$status" "$log" "$target"
    grep -m1 -A3 "panicked at\|ERROR: libFuzzer" "$log" || true
    return 1
  fi
}

failed=0
jobs=${FUZZ_JOBS:-1}
running=0
for target in "${targets[@]}"; do
  if [ "$jobs" -le 1 ]; then
    run_one "$target" || failed=1
  else
    run_one "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
      wait -n || failed=1
      running=$((running - 1))
    fi
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
exit "$failed"
