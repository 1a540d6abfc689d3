#!/usr/bin/env bash
# The heavy-hitters discovery demo, end to end, on this machine:
#   1. installs what is missing and builds the three programs (Release);
#   2. makes keys, a Poplar1 task over 32-byte strings and both aggregators'
#      configurations in a temporary folder;
#   3. starts a leader and a helper on loopback, each with its own SQLite file;
#   4. uploads 10,000 reports of URL-like strings drawn from a Zipf law;
#   5. runs the collector's prefix-tree walk with the threshold of
#      scripts/demo/collector.textproto;
#   6. prints the heavy hitters beside their true counts, and shuts down.
#
# Environment: CANOPY_DEMO_REPORTS (default 10000), CANOPY_DEMO_SEED (1),
# CANOPY_DEMO_KEEP=1 keeps the temporary folder (configurations, databases,
# logs) for a look afterwards, CANOPY_BUILD_DIR (default build-release).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
reports=${CANOPY_DEMO_REPORTS:-10000}
seed=${CANOPY_DEMO_SEED:-1}
build_dir=${CANOPY_BUILD_DIR:-build-release}

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
seconds_since() { echo $(( $(date +%s) - $1 )); }

say "Installing the Debian packages Canopy needs, if any is missing (scripts/setup.sh)"
scripts/setup.sh

say "Building canopy-aggregator, canopy-client and canopy-collector ($build_dir/, Release)"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCANOPY_BUILD_TESTS=OFF -DCANOPY_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build_dir" --target canopy-aggregator canopy-client canopy-collector \
  --parallel "$(nproc)"
aggregator="$repo/$build_dir/aggregator/canopy-aggregator"
client="$repo/$build_dir/client_app/canopy-client"
collector="$repo/$build_dir/collector_app/canopy-collector"

work=$(mktemp -d "${TMPDIR:-/tmp}/canopy-demo.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ "${CANOPY_DEMO_KEEP:-0}" == 1 ]]; then
    echo "The demo's files are kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# A TCP port on loopback that nothing listens on.
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  echo "no free port found" >&2
  return 1
}
random_token() { head -c 24 /dev/urandom | basenc --base64url | tr -d '=\n'; }

say "Making keys and configuration files in $work"
cd "$work"
mkdir -p keys
leader_port=$(free_port)
helper_port=$(free_port)
while [[ "$helper_port" == "$leader_port" ]]; do helper_port=$(free_port); done
"$collector" keygen --private-key keys/leader.key --public-key keys/leader.pub >/dev/null
"$collector" keygen --private-key keys/helper.key --public-key keys/helper.pub >/dev/null
collector_public=$("$collector" keygen --private-key keys/collector.key \
  --public-key keys/collector.pub)
peer_token=$(random_token)
collector_token=$(random_token)
task_id=$(head -c 32 /dev/urandom | basenc --base64url | tr -d '=\n')
verify_key=$(head -c 32 /dev/urandom | basenc --base64url | tr -d '=\n')

# The task: heavy hitters over 32-byte strings, walked level by level over
# one leader-selected batch.
cat > task.textproto <<EOF
task_id: "$task_id"
task_info: "canopy demo: popular URLs"
leader_url: "http://127.0.0.1:$leader_port/"
helper_url: "http://127.0.0.1:$helper_port/"
time_precision_seconds: 60
min_batch_size: 100
batch_mode: LEADER_SELECTED
poplar1 { bits: 256 }
multi_level_collection { max_collections_per_batch: 256 }
collector_hpke_config { id: 1 public_key: "$collector_public" }
EOF
# The aggregators hold the verify key too; clients and the collector do not.
{ cat task.textproto; printf 'verify_keys { id: 0 key: "%s" }\n' "$verify_key"; } \
  > task-aggregators.textproto

for role in leader helper; do
  if [[ $role == leader ]]; then port=$leader_port peer=$helper_port; else
    port=$helper_port peer=$leader_port; fi
  cat > "$role.textproto" <<EOF
role: ${role^^}
listen_address: "127.0.0.1:$port"
database_path: "$role.sqlite"
peer_url: "http://127.0.0.1:$peer/"
peer_token: "$peer_token"
$([[ $role == leader ]] && echo "collector_token: \"$collector_token\"")
hpke_keys { config_id: 1 private_key_file: "keys/$role.key" }
task_files: "task-aggregators.textproto"
EOF
done

# The collector: the walk's settings come from scripts/demo/collector.textproto.
cat > collector.textproto <<EOF
leader_url: "http://127.0.0.1:$leader_port/"
task_id: "$task_id"
collector_token: "$collector_token"
hpke_key { config_id: 1 private_key_file: "keys/collector.key" }
task_file: "task.textproto"
leader_selected {}
poll_interval_seconds: 1
EOF
grep -v '^#' "$repo/scripts/demo/collector.textproto" | grep -v '^$' >> collector.textproto
sed -i "s|RESUME_STATE_PATH|$work/walk.resume|" collector.textproto

say "Starting the leader (port $leader_port) and the helper (port $helper_port)"
healthy() {
  local reply
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
  reply=$(head -n 1 <&3 || true)
  exec 3<&-
  [[ "$reply" == *" 200 "* ]]
}
for role in helper leader; do
  "$aggregator" --config "$role.textproto" >"$role.log" 2>&1 &
  pids+=($!)
done
for port in "$helper_port" "$leader_port"; do
  for attempt in $(seq 1 100); do
    if healthy "$port" 2>/dev/null; then break; fi
    if (( attempt == 100 )); then
      echo "an aggregator did not start; its log:" >&2
      cat leader.log helper.log >&2
      exit 1
    fi
    sleep 0.1
  done
done
echo "both aggregators answer /healthz"

demo_start=$(date +%s)
say "Uploading $reports reports: URL-like strings of at most 32 bytes, Zipf exponent 1.03, seed $seed"
start=$(date +%s)
"$client" upload --task task.textproto --zipf-reports "$reports" --seed "$seed" \
  --true-counts true-counts.csv --progress lines
echo "uploaded in $(seconds_since "$start") s"

say "Walking the prefix tree (each round is one collection of the batch)"
sed -n '/heavy_hitters {/,/^}/p' collector.textproto
start=$(date +%s)
"$collector" heavy-hitters --config collector.textproto --format csv --output heavy-hitters.csv
echo "the walk took $(seconds_since "$start") s"

say "The heavy hitters the collector found, beside their true counts"
# Both files are CSV "count,string" with a header line; the demo's strings
# hold no comma or quote, so the text after the first comma is the string.
awk -F, '
  FNR == 1 { next }
  FNR == NR { truth[substr($0, index($0, ",") + 1)] = $1; next }
  {
    string = substr($0, index($0, ",") + 1)
    printf "%8s %8s  %s\n", $1, truth[string], string
  }' true-counts.csv heavy-hitters.csv | { printf '%8s %8s  %s\n' found true string; cat; }

# Every string whose true count meets the threshold must be there, with its
# exact count, and nothing else.
threshold=$(sed -n 's/^ *\(default_threshold\|relative_threshold\): *\([0-9.]*\).*/\1 \2/p' \
  collector.textproto | head -n 1)
verdict=$(awk -F, -v spec="$threshold" '
  BEGIN { split(spec, s, " "); kind = s[1]; value = s[2] }
  FNR == 1 { next }
  FNR == NR { truth[substr($0, index($0, ",") + 1)] = $1; total += $1; next }
  {
    string = substr($0, index($0, ",") + 1)
    found[string] = 1
    if (truth[string] != $1) wrong++
  }
  END {
    limit = (kind == "relative_threshold") ? value * total : value
    for (string in truth) if (truth[string] >= limit - 1e-9 && !(string in found)) missed++
    for (string in found) if (truth[string] + 0 < limit - 1e-9) extra++
    printf "%d %d %d", wrong + 0, missed + 0, extra + 0
  }' true-counts.csv heavy-hitters.csv)
read -r wrong missed extra <<<"$verdict"
if (( wrong > 0 || missed > 0 || extra > 0 )); then
  echo "The walk differs from the true counts: $wrong wrong, $missed missed," \
    "$extra below the threshold." >&2
  exit 1
fi
echo
echo "Exactly the strings whose true count meets the threshold, each with its exact count."

say "Shutting down (the demo took $(seconds_since "$demo_start") s from the first upload)"
