#include "collector_app/walk_state.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include "collector_app/internal/atomic_file.h"
#include "config/config.h"
#include "crypto/random.h"
#include "crypto/turboshake128.h"
#include "dap/base64url.h"

namespace canopy::collector {
namespace {

namespace json = boost::json;

constexpr std::string_view kFormat = "canopy-heavy-hitters-walk";
constexpr uint64_t kVersion = 1;
constexpr uint8_t kDigestDomain = 0x01;

std::string Hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  text.reserve(2 * bytes.size());
  for (uint8_t byte : bytes) {
    text.push_back(kDigits[byte >> 4]);
    text.push_back(kDigits[byte & 15]);
  }
  return text;
}

// Parses exactly 2 * N lower- or upper-case hex digits.
template <size_t N>
std::optional<std::array<uint8_t, N>> ParseHex(std::string_view text) {
  if (text.size() != 2 * N) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::array<uint8_t, N> bytes{};
  for (size_t i = 0; i < N; ++i) {
    const int high = digit(text[2 * i]);
    const int low = digit(text[2 * i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    bytes[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return bytes;
}

void AbsorbUint64(crypto::TurboShake128& xof, uint64_t value) {
  uint8_t bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(value >> (56 - 8 * i));
  xof.Absorb(bytes);
}

json::object ThresholdJson(const Threshold& threshold) {
  json::object object;
  if (threshold.is_fraction) {
    // Threshold::ToString's number: the shortest decimal that reads back exactly.
    std::string text = threshold.ToString();
    object["fraction"] = text.substr(0, text.find(' '));
  } else {
    object["count"] = threshold.count;
  }
  return object;
}

json::object SettingsJson(const WalkSettings& settings) {
  json::object object;
  object["bits"] = settings.bits;
  object["bits_per_round"] = settings.bits_per_round;
  object["first_round_bits"] = settings.first_round_bits;
  object["max_candidates_per_level"] = settings.max_candidates_per_level;
  object["default_threshold"] = ThresholdJson(settings.default_threshold);
  json::array rules;
  for (const PrefixThresholdRule& rule : settings.prefix_thresholds) {
    json::object entry;
    entry["prefix"] = rule.prefix.ToString();
    entry["threshold"] = ThresholdJson(rule.threshold);
    rules.push_back(std::move(entry));
  }
  object["prefix_thresholds"] = std::move(rules);
  return object;
}

json::object BatchJson(const WalkBatch& batch) {
  json::object object;
  if (batch.leader_selected) {
    json::object inner;
    inner["walk_id"] = batch.walk_id ? Hex(*batch.walk_id) : std::string();
    object["leader_selected"] = std::move(inner);
  } else {
    json::object inner;
    inner["start_seconds"] = batch.start_seconds;
    inner["duration_seconds"] = batch.duration_seconds;
    object["time_interval"] = std::move(inner);
  }
  return object;
}

json::object RoundJson(const RecordedRound& round) {
  json::object object;
  object["level"] = round.level;
  object["report_count"] = round.report_count;
  object["candidates"] = round.candidates;
  object["candidates_digest"] = Hex(round.candidates_digest);
  json::array counts;
  counts.reserve(round.counts.size());
  for (uint64_t count : round.counts) counts.push_back(count);
  object["counts"] = std::move(counts);
  object["milliseconds"] = round.milliseconds;
  return object;
}

// Reads the members of a parsed file, naming the file and the member in
// every complaint.
class Reader {
 public:
  explicit Reader(const std::string& file_name) : file_name_(file_name) {}

  std::unexpected<Error> Corrupt(const std::string& where, const std::string& problem) const {
    return MakeError(
        ErrorCode::kDecodeError,
        "resume state file " + file_name_ + " is corrupt or truncated: " + where + ": " + problem);
  }

  Result<const json::value*> Member(const json::object& object, std::string_view key,
                                    const std::string& where) const {
    const json::value* value = object.if_contains(key);
    if (value == nullptr) return Corrupt(where, "member \"" + std::string(key) + "\" missing");
    return value;
  }

  Result<const json::object*> Object(const json::object& object, std::string_view key,
                                     const std::string& where) const {
    Result<const json::value*> value = Member(object, key, where);
    if (!value) return std::unexpected(value.error());
    const json::object* inner = (*value)->if_object();
    if (inner == nullptr) return Corrupt(Join(where, key), "must be an object");
    return inner;
  }

  Result<const json::array*> Array(const json::object& object, std::string_view key,
                                   const std::string& where) const {
    Result<const json::value*> value = Member(object, key, where);
    if (!value) return std::unexpected(value.error());
    const json::array* inner = (*value)->if_array();
    if (inner == nullptr) return Corrupt(Join(where, key), "must be an array");
    return inner;
  }

  Result<std::string_view> String(const json::object& object, std::string_view key,
                                  const std::string& where) const {
    Result<const json::value*> value = Member(object, key, where);
    if (!value) return std::unexpected(value.error());
    const json::string* inner = (*value)->if_string();
    if (inner == nullptr) return Corrupt(Join(where, key), "must be a string");
    return std::string_view(*inner);
  }

  Result<uint64_t> Uint(const json::value& value, const std::string& where) const {
    if (const uint64_t* number = value.if_uint64()) return *number;
    if (const int64_t* number = value.if_int64(); number != nullptr && *number >= 0) {
      return static_cast<uint64_t>(*number);
    }
    return Corrupt(where, "must be a non-negative integer");
  }

  Result<uint64_t> Uint(const json::object& object, std::string_view key, const std::string& where,
                        uint64_t max) const {
    Result<const json::value*> value = Member(object, key, where);
    if (!value) return std::unexpected(value.error());
    Result<uint64_t> number = Uint(**value, Join(where, key));
    if (!number) return number;
    if (*number > max) return Corrupt(Join(where, key), "out of range");
    return number;
  }

  static std::string Join(const std::string& where, std::string_view key) {
    return where.empty() ? std::string(key) : where + "." + std::string(key);
  }

 private:
  const std::string& file_name_;
};

Result<Threshold> DecodeThreshold(const Reader& reader, const json::object& object,
                                  const std::string& where) {
  if (object.if_contains("count") != nullptr) {
    Result<uint64_t> count = reader.Uint(object, "count", where, UINT64_MAX);
    if (!count) return std::unexpected(count.error());
    return Threshold::Count(*count);
  }
  Result<std::string_view> text = reader.String(object, "fraction", where);
  if (!text) return std::unexpected(text.error());
  const std::string copy(*text);
  char* end = nullptr;
  errno = 0;
  const double fraction = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size() || errno != 0) {
    return reader.Corrupt(where + ".fraction", "not a number");
  }
  return Threshold::Fraction(fraction);
}

Result<WalkSettings> DecodeSettings(const Reader& reader, const json::object& object) {
  const std::string where = "settings";
  WalkSettings settings;
  Result<uint64_t> bits = reader.Uint(object, "bits", where, 65535);
  Result<uint64_t> step = reader.Uint(object, "bits_per_round", where, 16);
  Result<uint64_t> first = reader.Uint(object, "first_round_bits", where, 16);
  Result<uint64_t> cap = reader.Uint(object, "max_candidates_per_level", where, UINT32_MAX);
  for (const Result<uint64_t>* value : {&bits, &step, &first, &cap}) {
    if (!*value) return std::unexpected(value->error());
  }
  settings.bits = static_cast<uint32_t>(*bits);
  settings.bits_per_round = static_cast<uint32_t>(*step);
  settings.first_round_bits = static_cast<uint32_t>(*first);
  settings.max_candidates_per_level = static_cast<uint32_t>(*cap);
  Result<const json::object*> default_threshold = reader.Object(object, "default_threshold", where);
  if (!default_threshold) return std::unexpected(default_threshold.error());
  Result<Threshold> threshold =
      DecodeThreshold(reader, **default_threshold, where + ".default_threshold");
  if (!threshold) return std::unexpected(threshold.error());
  settings.default_threshold = *threshold;
  Result<const json::array*> rules = reader.Array(object, "prefix_thresholds", where);
  if (!rules) return std::unexpected(rules.error());
  for (size_t i = 0; i < (*rules)->size(); ++i) {
    const std::string rule_where = where + ".prefix_thresholds[" + std::to_string(i) + "]";
    const json::object* entry = (**rules)[i].if_object();
    if (entry == nullptr) return reader.Corrupt(rule_where, "must be an object");
    Result<std::string_view> prefix_text = reader.String(*entry, "prefix", rule_where);
    if (!prefix_text) return std::unexpected(prefix_text.error());
    Result<idpf::BitString> prefix = idpf::BitString::Parse(*prefix_text);
    if (!prefix) return reader.Corrupt(rule_where + ".prefix", prefix.error().message());
    Result<const json::object*> value = reader.Object(*entry, "threshold", rule_where);
    if (!value) return std::unexpected(value.error());
    Result<Threshold> rule_threshold = DecodeThreshold(reader, **value, rule_where + ".threshold");
    if (!rule_threshold) return std::unexpected(rule_threshold.error());
    settings.prefix_thresholds.push_back({std::move(*prefix), *rule_threshold});
  }
  if (auto ok = settings.Check(); !ok) return reader.Corrupt(where, ok.error().message());
  return settings;
}

Result<WalkBatch> DecodeBatch(const Reader& reader, const json::object& object) {
  if (object.if_contains("leader_selected") != nullptr) {
    Result<const json::object*> inner = reader.Object(object, "leader_selected", "batch");
    if (!inner) return std::unexpected(inner.error());
    Result<std::string_view> text = reader.String(**inner, "walk_id", "batch.leader_selected");
    if (!text) return std::unexpected(text.error());
    std::optional<WalkId> walk_id = ParseHex<16>(*text);
    if (!walk_id) return reader.Corrupt("batch.leader_selected.walk_id", "not 32 hex digits");
    return WalkBatch::LeaderSelected(*walk_id);
  }
  Result<const json::object*> inner = reader.Object(object, "time_interval", "batch");
  if (!inner) return std::unexpected(inner.error());
  Result<uint64_t> start = reader.Uint(**inner, "start_seconds", "batch.time_interval", UINT64_MAX);
  if (!start) return std::unexpected(start.error());
  Result<uint64_t> duration =
      reader.Uint(**inner, "duration_seconds", "batch.time_interval", UINT64_MAX);
  if (!duration) return std::unexpected(duration.error());
  return WalkBatch::TimeInterval(*start, *duration);
}

Result<RecordedRound> DecodeRound(const Reader& reader, const json::value& value,
                                  const std::string& where) {
  const json::object* object = value.if_object();
  if (object == nullptr) return reader.Corrupt(where, "must be an object");
  RecordedRound round;
  Result<uint64_t> level = reader.Uint(*object, "level", where, 65534);
  Result<uint64_t> report_count = reader.Uint(*object, "report_count", where, UINT64_MAX);
  Result<uint64_t> candidates = reader.Uint(*object, "candidates", where, kMaxCandidatesPerRound);
  Result<uint64_t> milliseconds = reader.Uint(*object, "milliseconds", where, UINT64_MAX);
  for (const Result<uint64_t>* number : {&level, &report_count, &candidates, &milliseconds}) {
    if (!*number) return std::unexpected(number->error());
  }
  round.level = static_cast<size_t>(*level);
  round.report_count = *report_count;
  round.candidates = static_cast<size_t>(*candidates);
  round.milliseconds = *milliseconds;
  Result<std::string_view> digest = reader.String(*object, "candidates_digest", where);
  if (!digest) return std::unexpected(digest.error());
  std::optional<std::array<uint8_t, 16>> digest_bytes = ParseHex<16>(*digest);
  if (!digest_bytes) return reader.Corrupt(where + ".candidates_digest", "not 32 hex digits");
  round.candidates_digest = *digest_bytes;
  Result<const json::array*> counts = reader.Array(*object, "counts", where);
  if (!counts) return std::unexpected(counts.error());
  if ((*counts)->size() != round.candidates) {
    return reader.Corrupt(where + ".counts", "holds " + std::to_string((*counts)->size()) +
                                                 " counts for " + std::to_string(round.candidates) +
                                                 " candidates");
  }
  round.counts.reserve((*counts)->size());
  for (size_t i = 0; i < (*counts)->size(); ++i) {
    Result<uint64_t> count =
        reader.Uint((**counts)[i], where + ".counts[" + std::to_string(i) + "]");
    if (!count) return std::unexpected(count.error());
    round.counts.push_back(*count);
  }
  return round;
}

std::string BatchText(const WalkBatch& batch) {
  if (batch.leader_selected) return "leader_selected";
  return "time_interval [" + std::to_string(batch.start_seconds) + ", +" +
         std::to_string(batch.duration_seconds) + " s]";
}

std::string ThresholdsText(const std::vector<PrefixThresholdRule>& rules) {
  std::string text = "{";
  for (const PrefixThresholdRule& rule : rules) {
    if (text.size() > 1) text += ", ";
    text += rule.prefix.ToString() + ": " + rule.threshold.ToString();
  }
  return text + "}";
}

}  // namespace

WalkBatch WalkBatch::TimeInterval(uint64_t start_seconds, uint64_t duration_seconds) {
  WalkBatch batch;
  batch.start_seconds = start_seconds;
  batch.duration_seconds = duration_seconds;
  return batch;
}

WalkBatch WalkBatch::LeaderSelected(std::optional<WalkId> walk_id) {
  WalkBatch batch;
  batch.leader_selected = true;
  batch.walk_id = walk_id;
  return batch;
}

Result<WalkIdentity> WalkIdentityFromConfig(const config::CollectorConfig& config) {
  Result<dap::TaskId> task_id = config::DecodeTaskId(config.task_id());
  if (!task_id) return std::unexpected(task_id.error());
  WalkIdentity identity;
  identity.task_id = *task_id;
  switch (config.batch_case()) {
    case config::CollectorConfig::kTimeInterval:
      identity.batch = WalkBatch::TimeInterval(config.time_interval().start_seconds(),
                                               config.time_interval().duration_seconds());
      break;
    case config::CollectorConfig::kLeaderSelected:
      identity.batch = WalkBatch::LeaderSelected();
      break;
    case config::CollectorConfig::BATCH_NOT_SET:
      return MakeError(ErrorCode::kInvalidArgument,
                       "batch: required: time_interval or leader_selected");
  }
  return identity;
}

std::array<uint8_t, 16> CandidatesDigest(std::span<const idpf::BitString> candidates) {
  crypto::TurboShake128 xof(kDigestDomain);
  AbsorbUint64(xof, candidates.empty() ? 0 : candidates.front().size());
  AbsorbUint64(xof, candidates.size());
  for (const idpf::BitString& candidate : candidates) xof.Absorb(candidate.bytes());
  std::array<uint8_t, 16> digest{};
  xof.Squeeze(digest);
  return digest;
}

WalkState CaptureWalkState(const WalkIdentity& identity, const HeavyHittersWalk& walk) {
  WalkState state;
  state.identity = identity;
  state.settings = walk.settings();
  for (const WalkRound& round : walk.rounds()) {
    RecordedRound recorded;
    recorded.level = round.level;
    recorded.report_count = round.report_count;
    recorded.candidates = round.candidates.size();
    std::vector<idpf::BitString> prefixes;
    prefixes.reserve(round.candidates.size());
    recorded.counts.reserve(round.candidates.size());
    for (const CandidateOutcome& candidate : round.candidates) {
      prefixes.push_back(candidate.prefix);
      recorded.counts.push_back(candidate.count);
    }
    recorded.candidates_digest = CandidatesDigest(prefixes);
    recorded.milliseconds = static_cast<uint64_t>(round.duration.count());
    state.rounds.push_back(std::move(recorded));
  }
  return state;
}

std::string EncodeWalkState(const WalkState& state) {
  json::object header;
  header["format"] = kFormat;
  header["version"] = kVersion;
  header["task_id"] = dap::Base64UrlEncode(state.identity.task_id);
  header["batch"] = BatchJson(state.identity.batch);
  header["settings"] = SettingsJson(state.settings);
  // The header's members, then one round per line, so that the file can be
  // read (and compared) by people as well.
  std::string text = json::serialize(header);
  text.pop_back();  // The closing brace.
  text += ",\"rounds\":[";
  for (size_t i = 0; i < state.rounds.size(); ++i) {
    text += i == 0 ? "\n" : ",\n";
    text += json::serialize(RoundJson(state.rounds[i]));
  }
  text += "]}\n";
  return text;
}

Result<WalkState> DecodeWalkState(std::string_view text, const std::string& file_name) {
  const Reader reader(file_name);
  boost::system::error_code error;
  json::value document = json::parse(text, error);
  if (error) return reader.Corrupt("JSON", error.message());
  const json::object* root = document.if_object();
  if (root == nullptr) return reader.Corrupt("JSON", "not an object");
  Result<std::string_view> format = reader.String(*root, "format", "");
  if (!format) return std::unexpected(format.error());
  if (*format != kFormat) {
    return reader.Corrupt(
        "format", "is \"" + std::string(*format) + "\", expected \"" + std::string(kFormat) + "\"");
  }
  Result<uint64_t> version = reader.Uint(*root, "version", "", UINT64_MAX);
  if (!version) return std::unexpected(version.error());
  if (*version != kVersion) {
    return reader.Corrupt("version", "is " + std::to_string(*version) +
                                         ", this collector reads version " +
                                         std::to_string(kVersion));
  }
  WalkState state;
  Result<std::string_view> task_id = reader.String(*root, "task_id", "");
  if (!task_id) return std::unexpected(task_id.error());
  Result<std::vector<uint8_t>> task_bytes = dap::Base64UrlDecode(*task_id);
  if (!task_bytes || task_bytes->size() != state.identity.task_id.size()) {
    return reader.Corrupt("task_id", "not 32 bytes of base64url");
  }
  std::copy(task_bytes->begin(), task_bytes->end(), state.identity.task_id.begin());
  Result<const json::object*> batch = reader.Object(*root, "batch", "");
  if (!batch) return std::unexpected(batch.error());
  Result<WalkBatch> decoded_batch = DecodeBatch(reader, **batch);
  if (!decoded_batch) return std::unexpected(decoded_batch.error());
  state.identity.batch = *decoded_batch;
  Result<const json::object*> settings = reader.Object(*root, "settings", "");
  if (!settings) return std::unexpected(settings.error());
  Result<WalkSettings> decoded_settings = DecodeSettings(reader, **settings);
  if (!decoded_settings) return std::unexpected(decoded_settings.error());
  state.settings = std::move(*decoded_settings);
  Result<const json::array*> rounds = reader.Array(*root, "rounds", "");
  if (!rounds) return std::unexpected(rounds.error());
  for (size_t i = 0; i < (*rounds)->size(); ++i) {
    Result<RecordedRound> round =
        DecodeRound(reader, (**rounds)[i], "rounds[" + std::to_string(i) + "]");
    if (!round) return std::unexpected(round.error());
    state.rounds.push_back(std::move(*round));
  }
  return state;
}

Result<void> CheckSameWalk(const WalkState& stored, const WalkIdentity& identity,
                           const WalkSettings& settings, const std::string& file_name) {
  auto differs = [&file_name](const std::string& item, const std::string& in_file,
                              const std::string& now) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "resume state file " + file_name + " is of another walk: " + item +
                         " differs (file: " + in_file + ", now: " + now +
                         "); delete the file to start the walk over");
  };
  if (stored.identity.task_id != identity.task_id) {
    return differs("task_id", dap::Base64UrlEncode(stored.identity.task_id),
                   dap::Base64UrlEncode(identity.task_id));
  }
  const WalkBatch& was = stored.identity.batch;
  const WalkBatch& now = identity.batch;
  if (was.leader_selected != now.leader_selected ||
      (!was.leader_selected &&
       (was.start_seconds != now.start_seconds || was.duration_seconds != now.duration_seconds))) {
    return differs("batch", BatchText(was), BatchText(now));
  }
  if (now.leader_selected && now.walk_id && was.walk_id != now.walk_id) {
    return differs("walk_id", was.walk_id ? Hex(*was.walk_id) : "none", Hex(*now.walk_id));
  }
  const WalkSettings& old = stored.settings;
  auto number = [](uint64_t value) { return std::to_string(value); };
  if (old.bits != settings.bits) return differs("bits", number(old.bits), number(settings.bits));
  if (old.bits_per_round != settings.bits_per_round) {
    return differs("bits_per_round", number(old.bits_per_round), number(settings.bits_per_round));
  }
  if (old.first_round_bits != settings.first_round_bits) {
    return differs("first_round_bits", number(old.first_round_bits),
                   number(settings.first_round_bits));
  }
  if (old.max_candidates_per_level != settings.max_candidates_per_level) {
    return differs("max_candidates_per_level", number(old.max_candidates_per_level),
                   number(settings.max_candidates_per_level));
  }
  if (old.default_threshold != settings.default_threshold) {
    return differs("the default threshold", old.default_threshold.ToString(),
                   settings.default_threshold.ToString());
  }
  if (old.prefix_thresholds != settings.prefix_thresholds) {
    return differs("prefix_thresholds", ThresholdsText(old.prefix_thresholds),
                   ThresholdsText(settings.prefix_thresholds));
  }
  return {};
}

Result<HeavyHittersWalk> ReplayWalk(const WalkSettings& settings,
                                    std::span<const RecordedRound> rounds,
                                    const std::string& file_name) {
  if (auto ok = settings.Check(); !ok) return std::unexpected(ok.error());
  HeavyHittersWalk walk(settings);
  for (size_t i = 0; i < rounds.size(); ++i) {
    const RecordedRound& round = rounds[i];
    auto refuse = [&](const std::string& problem) {
      return MakeError(ErrorCode::kInvalidArgument, "resume state file " + file_name + ": round " +
                                                        std::to_string(i + 1) + " " + problem +
                                                        "; delete the file to start the walk over");
    };
    if (walk.finished()) return refuse("follows the end of the walk");
    if (round.level != walk.next_level() || round.candidates != walk.next_candidates().size() ||
        round.candidates_digest != CandidatesDigest(walk.next_candidates())) {
      return refuse(
          "recorded level " + std::to_string(round.level) + " with " +
          std::to_string(round.candidates) + " candidates, but the walk asks for level " +
          std::to_string(walk.next_level()) + " with " +
          std::to_string(walk.next_candidates().size()) +
          (round.level == walk.next_level() && round.candidates == walk.next_candidates().size()
               ? " other"
               : "") +
          " candidates");
    }
    RoundResult result{round.counts, round.report_count};
    if (auto added = walk.AddRound(
            result, std::chrono::milliseconds(static_cast<int64_t>(round.milliseconds)));
        !added) {
      return refuse("is refused: " + added.error().message());
    }
  }
  return walk;
}

Result<OpenedWalk> StartOrResumeWalk(const std::string& path, const WalkIdentity& identity,
                                     const WalkSettings& settings) {
  if (auto ok = settings.Check(); !ok) return std::unexpected(ok.error());
  OpenedWalk opened{HeavyHittersWalk(settings), identity, 0};
  std::optional<WalkState> stored;
  if (!path.empty()) {
    Result<std::optional<std::string>> text = internal::ReadWholeFile(path, kMaxWalkStateBytes);
    if (!text) return std::unexpected(text.error());
    if (*text) {
      Result<WalkState> state = DecodeWalkState(**text, path);
      if (!state) return std::unexpected(state.error());
      stored = std::move(*state);
    }
  }
  if (stored) {
    if (auto same = CheckSameWalk(*stored, identity, settings, path); !same) {
      return std::unexpected(same.error());
    }
    Result<HeavyHittersWalk> walk = ReplayWalk(settings, stored->rounds, path);
    if (!walk) return std::unexpected(walk.error());
    opened.walk = std::move(*walk);
    opened.identity.batch.walk_id = stored->identity.batch.walk_id;
    opened.resumed_rounds = stored->rounds.size();
  } else if (identity.batch.leader_selected && !identity.batch.walk_id) {
    WalkId walk_id{};
    if (auto drawn = crypto::RandomBytes(walk_id); !drawn) return std::unexpected(drawn.error());
    opened.identity.batch.walk_id = walk_id;
  }
  if (!opened.identity.batch.leader_selected) opened.identity.batch.walk_id.reset();
  return opened;
}

Result<void> SaveWalkState(const std::string& path, const WalkIdentity& identity,
                           const HeavyHittersWalk& walk) {
  if (identity.batch.leader_selected && !identity.batch.walk_id) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a leader-selected walk's state needs its walk ID (" + path + ")");
  }
  return internal::WriteFileAtomically(path, EncodeWalkState(CaptureWalkState(identity, walk)));
}

RoundRecorder MakeStateRecorder(std::string path, WalkIdentity identity) {
  if (path.empty()) return {};
  return [path = std::move(path), identity = std::move(identity)](const HeavyHittersWalk& walk) {
    return SaveWalkState(path, identity, walk);
  };
}

}  // namespace canopy::collector
