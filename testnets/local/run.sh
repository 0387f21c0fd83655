#!/usr/bin/env bash
# Starts N validator-mode sidecars and M provers as separate processes on loopback, against the
# embedded devnet beacon node (`sidecar devnet --beacon-only`, started here) or against a beacon
# node given by URL.
#
#   testnets/local/run.sh [N_SIDECARS] [M_PROVERS]
#
# Environment:
#   BEACON_URL        follow this beacon node instead of starting the embedded devnet one
#   BEACON_PORT       port of the embedded devnet beacon node (default 5052)
#   SECONDS_PER_SLOT  devnet slot time (default 12); MIN_GAS / MAX_GAS: devnet block sizes
#   SIDECAR           path of the binary (default: cargo build --release -p sidecar)
#   BASE_DIR          data and logs (default testnets/local/data; wiped at start unless KEEP=1)
#   HTTP_PORT         first sidecar's API port (default 5062); sidecar i uses HTTP_PORT+i
#   P2P_PORT          first sidecar's libp2p TCP / discv5 UDP port (default 9100); sidecar i
#                     uses P2P_PORT+i
#   DURATION          stop everything after this many seconds (default: run until Ctrl-C)
#   KEYMANAGER_URL, KEYMANAGER_TOKEN_FILE
#                     the validator client sidecar 0 includes for (default with the embedded
#                     devnet: its own keymanager API, which serves all of its validators)
#
# Sidecar 0 starts first; its node record (ENR) is the bootnode of the others, which find each
# other by discv5 and gossip over libp2p. Prover j gets a fresh EIP-2335 key (password "devnet"),
# registers with sidecar j mod N (the registration reaches the other sidecars by gossip and
# activates at the next block) and submits there. Logs: BASE_DIR/*.log; a sidecar's proving API
# (rounds, ledgers, balances) and /metrics on its HTTP port. Ctrl-C stops every process cleanly.
set -euo pipefail

N=${1:-3}
M=${2:-8}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BASE_DIR=${BASE_DIR:-$HERE/data}
HTTP_PORT=${HTTP_PORT:-5062}
P2P_PORT=${P2P_PORT:-9100}
BEACON_PORT=${BEACON_PORT:-5052}
SECONDS_PER_SLOT=${SECONDS_PER_SLOT:-12}
MIN_GAS=${MIN_GAS:-5000000}
MAX_GAS=${MAX_GAS:-36000000}

if [[ -z "${SIDECAR:-}" ]]; then
  (cd "$ROOT" && cargo build --release -p sidecar)
  SIDECAR=${CARGO_TARGET_DIR:-$ROOT/target}/release/sidecar
fi

if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$BASE_DIR"; fi
mkdir -p "$BASE_DIR"
export SIDECAR_KEYSTORE_PASSWORD=devnet
unset SIDECAR_CONFIG
pids=()
spids=()
cleanup() {
  trap - EXIT INT TERM
  # SIGINT is the sidecars' Ctrl-C: they shut down cleanly (stores closed).
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  wait || true
  report
}

# Per settled slot (from the sidecars' logs): proven on every sidecar, and the same settlement
# root everywhere? Prints a line per slot and a total.
report() {
  local logs=()
  for ((i = 0; i < N; i++)); do [[ -f "$BASE_DIR/sidecar-$i.log" ]] && logs+=("$BASE_DIR/sidecar-$i.log"); done
  [[ ${#logs[@]} -gt 0 ]] || return 0
  local settled="$BASE_DIR/settled.txt"
  sed 's/\x1b\[[0-9;]*m//g' "${logs[@]}" | grep 'block settled' |
    sed -E 's/.*slot=([0-9]+).*settlement_root=(0x[0-9a-f]+).*proven=(true|false).*/\1 \2 \3/' |
    sort -n >"$settled" || true
  awk -v n="${#logs[@]}" '
    { if (!($1 in seen)) order[++count] = $1; seen[$1]++; if (!(($1, $2) in pair)) { pair[$1, $2] = 1; roots[$1]++; root[$1] = $2 }
      if ($3 == "true") proven[$1]++ }
    END {
      ok = 0
      for (i = 1; i <= count; i++) {
        slot = order[i]
        good = (seen[slot] == n && roots[slot] == 1 && proven[slot] == n)
        ok += good
        printf "slot %6d  settled by %d/%d  proven by %d/%d  %s\n", slot, seen[slot], n,
          proven[slot] + 0, n, (roots[slot] == 1 ? "root " substr(root[slot], 1, 10) "..." : roots[slot] " different roots")
      }
      printf "%d of %d settled slots proven and settled identically by all %d sidecars\n", ok, count, n
    }' "$settled"
}
trap cleanup EXIT INT TERM

# Waits until FILE has a line matching PATTERN (or the process PID died); prints the line.
wait_for_line() {
  local file=$1 pattern=$2 pid=$3
  for _ in $(seq 1 600); do
    if line=$(grep -m1 -E "$pattern" "$file" 2>/dev/null); then
      echo "$line"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "process $pid exited; see $file" >&2
      tail -5 "$file" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "timed out waiting for /$pattern/ in $file" >&2
  return 1
}

if [[ -z "${BEACON_URL:-}" ]]; then
  "$SIDECAR" devnet --beacon-only --beacon-address "127.0.0.1:$BEACON_PORT" \
    --seconds-per-slot "$SECONDS_PER_SLOT" --min-gas "$MIN_GAS" --max-gas "$MAX_GAS" \
    >"$BASE_DIR/beacon.log" 2>&1 &
  pids+=($!)
  wait_for_line "$BASE_DIR/beacon.log" "devnet beacon node" "$!" >/dev/null
  BEACON_URL="http://127.0.0.1:$BEACON_PORT"
  echo "embedded devnet beacon node at $BEACON_URL ($SECONDS_PER_SLOT s slots)"
  # Its keymanager API sets the graffiti of its validators: sidecar 0 includes for all of them.
  KEYMANAGER_URL=${KEYMANAGER_URL:-$BEACON_URL}
  if [[ -z "${KEYMANAGER_TOKEN_FILE:-}" ]]; then
    KEYMANAGER_TOKEN_FILE="$BASE_DIR/keymanager-token"
    echo "sidecar-devnet-keymanager" >"$KEYMANAGER_TOKEN_FILE"
  fi
fi
vc=()
if [[ -n "${KEYMANAGER_URL:-}" && -n "${KEYMANAGER_TOKEN_FILE:-}" ]]; then
  vc=(--keymanager-url "$KEYMANAGER_URL" --keymanager-token-file "$KEYMANAGER_TOKEN_FILE")
fi

# Prover keys first: every sidecar knows the provers from genesis (the same registry
# everywhere from the first block), so the provers find their index at once.
CONFIG="$BASE_DIR/sidecar.toml"
cp "$HERE/sidecar.toml" "$CONFIG"
for ((j = 0; j < M; j++)); do
  key="$BASE_DIR/prover-$j.json"
  [[ -f "$key" ]] || "$SIDECAR" keys new --kdf pbkdf2 -o "$key" >/dev/null
  pubkey=$("$SIDECAR" keys show "$key" | awk '/^pubkey/ {print $2}')
  printf '\n[[genesis.provers]]\npubkey = "%s"\nstake = 32000000000\n' "$pubkey" >>"$CONFIG"
done
# The round windows (4 s each at 12 s slots) and the inclusion records' cut-off margin scale
# with the slot time.
if [[ "$SECONDS_PER_SLOT" != 12 ]]; then
  rewards="$BASE_DIR/rewards.toml"
  awk -v s="$SECONDS_PER_SLOT" '
    /^\[/ { section = $0 }
    (section == "[phases]" && /^(t[1-5]_ms|max_clock_disparity_ms) *=/) ||
    (section == "[inclusion]" && /^cutoff_margin_ms *=/) {
      v = $3; gsub("_", "", v); $0 = $1 " = " int(v * s / 12)
    }
    { print }' "$ROOT/configs/rewards.toml" >"$rewards"
  printf '\n[node]\nrewards_file = "%s"\n' "$rewards" >>"$CONFIG"
fi

start_sidecar() {
  local i=$1
  shift
  "$SIDECAR" run -c "$CONFIG" \
    --data-dir "$BASE_DIR/sidecar-$i" \
    --http-address "127.0.0.1:$((HTTP_PORT + i))" \
    --beacon-url "$BEACON_URL" \
    --listen-address 127.0.0.1 --p2p-port $((P2P_PORT + i)) --discovery-port $((P2P_PORT + i)) \
    "$@" >"$BASE_DIR/sidecar-$i.log" 2>&1 &
  pids+=($!)
  spids[i]=$!
}

start_sidecar 0 "${vc[@]}"
enr=$(wait_for_line "$BASE_DIR/sidecar-0.log" "^node record " "${spids[0]}" | awk '{print $3}')
wait_for_line "$BASE_DIR/sidecar-0.log" "proving API" "${spids[0]}" >/dev/null
for ((i = 1; i < N; i++)); do
  start_sidecar "$i" --bootnodes "$enr"
done
for ((i = 1; i < N; i++)); do
  wait_for_line "$BASE_DIR/sidecar-$i.log" "proving API" "${spids[i]}" >/dev/null
done

for ((j = 0; j < M; j++)); do
  "$SIDECAR" prover -c "$CONFIG" --key "$BASE_DIR/prover-$j.json" \
    --http-address "127.0.0.1:$((HTTP_PORT + j % N))" \
    --beacon-url "$BEACON_URL" \
    >"$BASE_DIR/prover-$j.log" 2>&1 &
  pids+=($!)
done

echo "started $N sidecars (API ports $HTTP_PORT..$((HTTP_PORT + N - 1))) and $M provers; logs in $BASE_DIR"
echo "settled blocks: curl -s http://127.0.0.1:$HTTP_PORT/metrics | grep rounds"
if [[ -n "${DURATION:-}" ]]; then
  sleep "$DURATION"
  exit 0
fi
wait
