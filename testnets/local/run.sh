#!/usr/bin/env bash
# Starts N validator-mode sidecars and M provers as separate processes on loopback, against a
# beacon node given by URL (BEACON_URL, default http://127.0.0.1:5052).
#
#   testnets/local/run.sh [N_SIDECARS] [M_PROVERS]
#
# Environment: BEACON_URL, SIDECAR (path of the binary; default: cargo build --release),
# BASE_DIR (default testnets/local/data), HTTP_PORT (first sidecar's API port, default 5062),
# P2P_PORT (first sidecar's libp2p/discv5 port, default 9100).
#
# Sidecar i serves the proving API on HTTP_PORT+i and gossips on P2P_PORT+i (bootnode: sidecar
# 0); prover j gets a fresh EIP-2335 key (password "devnet") and submits to sidecar j mod N.
# Logs go to BASE_DIR/*.log. Ctrl-C stops everything.
#
# Status: `sidecar prover` is wired; `sidecar run` needs the node core, and the embedded devnet
# beacon node is started by `sidecar devnet` (not yet wired), so BEACON_URL must point at a
# running beacon node.
set -euo pipefail

N=${1:-3}
M=${2:-8}
BEACON_URL=${BEACON_URL:-http://127.0.0.1:5052}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BASE_DIR=${BASE_DIR:-$HERE/data}
HTTP_PORT=${HTTP_PORT:-5062}
P2P_PORT=${P2P_PORT:-9100}

if [[ -z "${SIDECAR:-}" ]]; then
  (cd "$ROOT" && cargo build --release -p sidecar)
  SIDECAR=${CARGO_TARGET_DIR:-$ROOT/target}/release/sidecar
fi

mkdir -p "$BASE_DIR"
export SIDECAR_KEYSTORE_PASSWORD=devnet
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait; }
trap cleanup EXIT INT TERM

for ((i = 0; i < N; i++)); do
  "$SIDECAR" run -c "$HERE/sidecar.toml" \
    --data-dir "$BASE_DIR/sidecar-$i" \
    --http-address "127.0.0.1:$((HTTP_PORT + i))" \
    --beacon-url "$BEACON_URL" \
    --listen-address 127.0.0.1 --p2p-port $((P2P_PORT + i)) --discovery-port $((P2P_PORT + i)) \
    >"$BASE_DIR/sidecar-$i.log" 2>&1 &
  pids+=($!)
done

for ((j = 0; j < M; j++)); do
  key="$BASE_DIR/prover-$j.json"
  [[ -f "$key" ]] || "$SIDECAR" keys new --kdf pbkdf2 -o "$key" >/dev/null
  "$SIDECAR" prover -c "$HERE/sidecar.toml" --key "$key" \
    --http-address "127.0.0.1:$((HTTP_PORT + j % N))" \
    --beacon-url "$BEACON_URL" \
    >"$BASE_DIR/prover-$j.log" 2>&1 &
  pids+=($!)
done

echo "started $N sidecars (API ports $HTTP_PORT..$((HTTP_PORT + N - 1))) and $M provers; logs in $BASE_DIR"
wait
