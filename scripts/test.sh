#!/usr/bin/env bash
# Builds Canopy and runs every test suite. Does all set-up on a fresh Debian
# machine first (scripts/setup.sh installs what is missing).
#
# Environment:
#   CANOPY_VECTORS_DIR  the official test vectors (vdaf/, hpke/, turboshake/).
#                       When set, a missing vector file fails its test; when
#                       unset, ../shared/vectors is used if present.
#   CANOPY_BUILD_DIR    build folder (default: build)
#   CANOPY_SANITIZE     "1" builds with AddressSanitizer and UBSan
set -euo pipefail

cd "$(dirname "$0")/.."
scripts/setup.sh

build_dir="${CANOPY_BUILD_DIR:-build}"
jobs="$(nproc)"
cmake_args=(-S . -B "$build_dir" -G Ninja -DCANOPY_WERROR=ON)
if [[ "${CANOPY_SANITIZE:-0}" == "1" ]]; then
  cmake_args+=(-DCANOPY_ASAN=ON -DCANOPY_UBSAN=ON -DCMAKE_BUILD_TYPE=Debug)
fi

echo "test: configuring in $build_dir"
cmake "${cmake_args[@]}" >/dev/null
echo "test: building with $jobs jobs"
cmake --build "$build_dir" --parallel "$jobs"
echo "test: running the test suites"
cd "$build_dir"
ctest --output-on-failure --parallel "$jobs" --timeout 600
