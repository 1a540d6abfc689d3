#!/usr/bin/env bash
# The heavy-hitters discovery demo: a leader and a helper on loopback, 10,000
# Zipf-distributed URL reports, and the collector's prefix-tree walk.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: not yet. The aggregator, client and collector programs are still being built;"
echo "      today Canopy has its cryptographic core (fields, TurboSHAKE128, XOFs, the IDPF)."
echo "      Run scripts/test.sh to build it and run its tests."
