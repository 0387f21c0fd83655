#!/usr/bin/env bash
# Canonical rounds beside a real beacon node: the Lodestar rig of ../shared/beacon-node (installed
# from the npm registry on first use), 2 sidecars (`sidecar run`) and 4 provers as separate
# processes (testnets/local/run.sh). Sidecar 0 sets the graffiti of the rig's validators through
# its validator client's keymanager API, so their blocks commit to its inclusion records; both
# sidecars settle every block from the canonical records. Passes if at least $MIN_SLOTS slots were
# proven and settled with the same ledger root by both sidecars, and the blocks carried records.
#
#   .ci/lodestar.sh            (uses target/debug/sidecar, building it if needed)
#
# Environment: SIDECAR (binary), SECONDS_PER_SLOT (default 4), MIN_SLOTS (default 20),
# DURATION (seconds the network runs, default enough for MIN_SLOTS settled slots).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
rig="$root/../shared/beacon-node/start.sh"
[[ -x "$rig" || -f "$rig" ]] || { echo "error: $rig not found (../shared beside the clone)"; exit 1; }

SLOT=${SECONDS_PER_SLOT:-4}
MIN_SLOTS=${MIN_SLOTS:-20}
# Settlement trails the head by inclusion.max_delay_slots (4) and a slot or two of rounds.
DURATION=${DURATION:-$(((MIN_SLOTS + 10) * SLOT))}
if [[ -z "${SIDECAR:-}" ]]; then
  cargo build --locked -p sidecar
  SIDECAR="${CARGO_TARGET_DIR:-$root/target}/debug/sidecar"
fi
work=$(mktemp -d)
REST_PORT=19596 P2P_PORT=19000 KEYMANAGER_PORT=15500
echo "lodestar rig: installing (first use) and starting; logs in $work"
REST_PORT=$REST_PORT P2P_PORT=$P2P_PORT KEYMANAGER_PORT=$KEYMANAGER_PORT SECONDS_PER_SLOT=$SLOT \
  DATA_DIR="$work/lodestar" bash "$rig" >"$work/lodestar.log" 2>&1 &
lodestar=$!
trap 'kill "$lodestar" 2>/dev/null || true; wait "$lodestar" 2>/dev/null || true' EXIT

# The beacon API answers and the validator client's keymanager token exists (install included).
token="$work/lodestar/validator-db/api-token.txt"
for _ in $(seq 1 600); do
  if [[ -s "$token" ]] && curl -sf "http://127.0.0.1:$REST_PORT/eth/v1/beacon/genesis" >/dev/null; then
    break
  fi
  kill -0 "$lodestar" 2>/dev/null || { echo "error: lodestar exited"; tail -20 "$work/lodestar.log"; exit 1; }
  sleep 1
done
[[ -s "$token" ]] || { echo "error: lodestar did not start in 600 s"; tail -20 "$work/lodestar.log"; exit 1; }
echo "lodestar up at http://127.0.0.1:$REST_PORT; keymanager at 127.0.0.1:$KEYMANAGER_PORT"

BEACON_URL="http://127.0.0.1:$REST_PORT" KEYMANAGER_URL="http://127.0.0.1:$KEYMANAGER_PORT" \
  KEYMANAGER_TOKEN_FILE="$token" SECONDS_PER_SLOT=$SLOT SIDECAR="$SIDECAR" BASE_DIR="$work/net" \
  HTTP_PORT=15062 P2P_PORT=19100 DURATION=$DURATION \
  bash testnets/local/run.sh 2 4 | tee "$work/report.txt"

settled=$(awk '/settled slots proven and settled identically/ {print $1}' "$work/report.txt")
records=$(sed 's/\x1b\[[0-9;]*m//g' "$work/net/sidecar-0.log" | grep -c "inclusion record committed" || true)
graffiti=$(grep -c "graffiti=pv1:" "$work/lodestar.log" || true)
echo "slots settled identically and proven: ${settled:-0} (need $MIN_SLOTS); records committed: $records; blocks with a pv1 graffiti: $graffiti"
if [[ "${settled:-0}" -lt "$MIN_SLOTS" || "$records" -eq 0 || "$graffiti" -eq 0 ]]; then
  echo "error: canonical rounds beside Lodestar failed; logs in $work"
  for f in "$work"/net/sidecar-*.log; do echo "== $f"; tail -15 "$f"; done
  exit 1
fi
rm -rf "$work"
