// The resume state of a heavy-hitters walk: after each finished round the
// collector rewrites one file with everything needed to pick the walk up
// again, so that a collector killed mid-walk restarts at the round it was
// collecting instead of at the first (each round is a collection the task's
// max_collections_per_batch counts, and finished rounds cannot be asked for
// again with another parameter).
//
// A resumed walk is rebuilt by replaying the recorded counts into a fresh
// HeavyHittersWalk: the candidates of every round are recomputed, never read
// from the file, and each recomputed round is checked against the recorded
// level, number of candidates and digest of the candidates. A file written
// for another task, batch or settings is refused rather than mixed in.
//
// File format: one JSON object (UTF-8), written as
//
//   {"format":"canopy-heavy-hitters-walk","version":1,
//    "task_id":"<32 bytes, unpadded base64url>",
//    "batch":{"time_interval":{"start_seconds":N,"duration_seconds":N}}
//         or {"leader_selected":{"walk_id":"<16 bytes, 32 lower-case hex digits>"}},
//    "settings":{"bits":N,"bits_per_round":N,"first_round_bits":N,
//                "max_candidates_per_level":N,
//                "default_threshold":{"count":N} or {"fraction":"0.001"},
//                "prefix_thresholds":[{"prefix":"0110","threshold":{"count":N}},...]},
//    "rounds":[
//    {"level":N,"report_count":N,"candidates":N,"candidates_digest":"<32 hex>",
//     "counts":[N,...],"milliseconds":N},
//    ...]}
//
// with one line per round. "counts" are in candidate order (candidates sorted
// as bit strings); "candidates_digest" is TurboSHAKE128 (domain byte 0x01,
// 16 bytes) of: the candidates' length in bits and their number, each as 8
// bytes big-endian, then each candidate's bytes (MSB first, zero padding
// bits). Fractions are decimal strings so they read back exactly.
// "milliseconds" is the round's collection time, for the summary only.
// Prefixes are binary digits, most significant first.
#ifndef CANOPY_COLLECTOR_APP_WALK_STATE_H_
#define CANOPY_COLLECTOR_APP_WALK_STATE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "collector_app/heavy_hitters_walk.h"
#include "crypto/error.h"
#include "dap/messages.h"
#include "idpf/bit_string.h"
#include "proto/canopy_config.pb.h"

namespace canopy::collector {

// The walk_id collection job extension's value (docs/multi-level-collection.md):
// the collector's name for a leader-selected batch across the rounds of a walk.
using WalkId = std::array<uint8_t, 16>;

// Files larger than this are refused rather than read.
inline constexpr uint64_t kMaxWalkStateBytes = uint64_t{1} << 30;

// The batch a walk collects.
struct WalkBatch {
  // A time_interval task's batch, in seconds.
  static WalkBatch TimeInterval(uint64_t start_seconds, uint64_t duration_seconds);
  // A leader-selected batch; nullopt: the walk ID is taken from the state
  // file when resuming, and drawn at random for a fresh walk.
  static WalkBatch LeaderSelected(std::optional<WalkId> walk_id = std::nullopt);

  friend bool operator==(const WalkBatch&, const WalkBatch&) = default;

  bool leader_selected = false;
  uint64_t start_seconds = 0;     // time_interval only.
  uint64_t duration_seconds = 0;  // time_interval only.
  std::optional<WalkId> walk_id;  // leader_selected only.
};

// What a walk is of: a resume file is only used for the same task and batch
// (and the same settings, kept beside it).
struct WalkIdentity {
  dap::TaskId task_id{};
  WalkBatch batch;
  friend bool operator==(const WalkIdentity&, const WalkIdentity&) = default;
};

// The identity of the walk a collector configuration describes (a
// leader-selected batch without a walk ID yet). Errors (kInvalidArgument): a
// task_id that is not 32 bytes of base64url, no batch.
Result<WalkIdentity> WalkIdentityFromConfig(const config::CollectorConfig& config);

// One finished round as the file records it.
struct RecordedRound {
  size_t level = 0;
  uint64_t report_count = 0;
  size_t candidates = 0;
  std::array<uint8_t, 16> candidates_digest{};
  std::vector<uint64_t> counts;
  uint64_t milliseconds = 0;
  friend bool operator==(const RecordedRound&, const RecordedRound&) = default;
};

// A resume file's content.
struct WalkState {
  WalkIdentity identity;
  WalkSettings settings;
  std::vector<RecordedRound> rounds;
};

// The digest of one round's candidates (see the file comment).
std::array<uint8_t, 16> CandidatesDigest(std::span<const idpf::BitString> candidates);

// The state of `walk`'s finished rounds.
WalkState CaptureWalkState(const WalkIdentity& identity, const HeavyHittersWalk& walk);

// The file's text for `state` (its identity must have a walk ID when
// leader-selected).
std::string EncodeWalkState(const WalkState& state);

// Parses a file's text. Errors (kDecodeError, naming `file_name`, saying the
// file is corrupt or truncated and what is wrong): not JSON, another format
// or version, a member missing or of the wrong type, settings that fail
// WalkSettings::Check, a round whose counts do not match its candidates.
Result<WalkState> DecodeWalkState(std::string_view text, const std::string& file_name);

// Checks that a file's state belongs to the walk of `identity` and
// `settings`. The walk ID is compared only when `identity` has one. Errors
// (kInvalidArgument): the message names the file and the first item that
// differs (task_id, batch, walk_id, bits, bits_per_round, first_round_bits,
// max_candidates_per_level, the default threshold, prefix_thresholds) with
// both values, and says to delete the file to start the walk over.
Result<void> CheckSameWalk(const WalkState& stored, const WalkIdentity& identity,
                           const WalkSettings& settings, const std::string& file_name);

// A fresh walk with `settings` into which `rounds` are replayed. Errors
// (kInvalidArgument, naming the file and the round): a round's level, number
// of candidates or digest differs from what the walk asks for, a round after
// the walk finished, counts the walk refuses (AddRound's errors).
Result<HeavyHittersWalk> ReplayWalk(const WalkSettings& settings,
                                    std::span<const RecordedRound> rounds,
                                    const std::string& file_name);

// A walk ready to run, fresh or resumed.
struct OpenedWalk {
  HeavyHittersWalk walk;
  // The identity to collect with: a leader-selected batch always has its
  // walk ID here (the file's when resuming).
  WalkIdentity identity;
  // Rounds taken from the file (0 for a fresh walk).
  size_t resumed_rounds = 0;
};

// Resumes the walk recorded in `path` if that file exists, else starts a
// fresh one; an empty `path` means no resumption. Errors: kIoError (the file
// cannot be read), DecodeWalkState's, CheckSameWalk's, ReplayWalk's; kInternal
// when no random walk ID can be drawn.
Result<OpenedWalk> StartOrResumeWalk(const std::string& path, const WalkIdentity& identity,
                                     const WalkSettings& settings);

// Writes `walk`'s state to `path` atomically (see
// internal/atomic_file.h). Errors: kIoError naming the path;
// kInvalidArgument for a leader-selected identity without a walk ID.
Result<void> SaveWalkState(const std::string& path, const WalkIdentity& identity,
                           const HeavyHittersWalk& walk);

// A RoundRecorder for RunWalk that saves the state to `path` after each
// round; an empty recorder when `path` is empty.
RoundRecorder MakeStateRecorder(std::string path, WalkIdentity identity);

}  // namespace canopy::collector

#endif  // CANOPY_COLLECTOR_APP_WALK_STATE_H_
