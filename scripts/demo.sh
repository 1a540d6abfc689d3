#!/usr/bin/env bash
# The heavy-hitters discovery demo: a leader and a helper on loopback, 10,000
# Zipf-distributed URL reports, and the collector's prefix-tree walk.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: not yet. The aggregator service, the client and the collector programs do not exist yet."
echo "      Canopy has its cryptography (fields, TurboSHAKE128, AES, XOFs, HPKE), the IDPF,"
echo "      Poplar1 and Prio3, and the DAP-19 core (messages, tasks, configuration, HTTP upload)."
echo "      Run scripts/test.sh to build it and run its tests, and see docs/ for what is measured."
