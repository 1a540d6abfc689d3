#include "collector_app/walk_output.h"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <span>
#include <vector>

namespace canopy::collector {
namespace {

namespace json = boost::json;

std::string DisplayBytes(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  text.reserve(bytes.size());
  for (uint8_t byte : bytes) {
    if (byte == '\\') {
      text += "\\\\";
    } else if (byte >= 0x20 && byte <= 0x7e) {
      text.push_back(static_cast<char>(byte));
    } else {
      text += "\\x";
      text.push_back(kDigits[byte >> 4]);
      text.push_back(kDigits[byte & 15]);
    }
  }
  return text;
}

std::string Hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  for (uint8_t byte : bytes) {
    text.push_back(kDigits[byte >> 4]);
    text.push_back(kDigits[byte & 15]);
  }
  return text;
}

std::string Seconds(std::chrono::milliseconds duration) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(duration.count()) / 1000.0);
  return text;
}

std::string PadLeft(const std::string& text, size_t width) {
  return std::string(width > text.size() ? width - text.size() : 0, ' ') + text;
}

std::string PadRight(const std::string& text, size_t width) {
  return text + std::string(width > text.size() ? width - text.size() : 0, ' ');
}

// Lines of cells, columns aligned: numbers to the right, text to the left;
// the last column is not padded.
std::string Table(const std::vector<std::vector<std::string>>& rows,
                  const std::vector<bool>& right_aligned, const std::string& indent) {
  std::vector<size_t> widths(right_aligned.size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string text;
  for (const auto& row : rows) {
    text += indent;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) text += "  ";
      const bool last = i + 1 == row.size();
      if (right_aligned[i]) {
        text += PadLeft(row[i], widths[i]);
      } else {
        text += last ? row[i] : PadRight(row[i], widths[i]);
      }
    }
    text += "\n";
  }
  return text;
}

// A candidate in the tree: a full-length one is a client's string, shown as
// the heavy hitters are.
std::string TreeLabel(const idpf::BitString& prefix, size_t bits) {
  return prefix.size() == bits ? DisplayString(prefix, bits) : DisplayPrefix(prefix);
}

std::string Summary(const WalkResult& result) {
  std::string text = "Heavy hitters: " + std::to_string(result.heavy_hitters.size()) + " (" +
                     std::to_string(result.bits) + "-bit strings; batch of " +
                     std::to_string(result.report_count) + " reports; " +
                     std::to_string(result.rounds.size()) + " rounds";
  if (result.resumed_rounds > 0) {
    text += ", " + std::to_string(result.resumed_rounds) + " of them resumed";
  }
  text += ", " + Seconds(result.elapsed) + ")";
  if (result.stopped_early && !result.rounds.empty()) {
    text += "\nThe walk stopped at level " + std::to_string(result.rounds.back().level) +
            ": no candidate met its threshold.";
  }
  return text + "\n";
}

size_t ZeroCounts(const WalkRound& round) {
  return static_cast<size_t>(
      std::count_if(round.candidates.begin(), round.candidates.end(),
                    [](const CandidateOutcome& candidate) { return candidate.count == 0; }));
}

std::string RoundHeading(size_t index, const WalkRound& round) {
  std::string text = "round " + std::to_string(index + 1) + ", level " +
                     std::to_string(round.level) + " (" + std::to_string(round.level + 1) +
                     "-bit prefixes), " + std::to_string(round.report_count) +
                     " reports: " + std::to_string(round.candidates.size()) + " candidates, " +
                     std::to_string(round.Survivors()) + " kept";
  if (const size_t zeros = ZeroCounts(round); zeros > 0) {
    text += " (" + std::to_string(zeros) + " with count 0 not shown)";
  }
  return text + "\n";
}

std::string FormatText(const WalkResult& result, const OutputOptions& options) {
  std::string text = Summary(result);
  if (!result.heavy_hitters.empty()) {
    std::vector<std::vector<std::string>> rows = {{"rank", "count", "string"}};
    for (size_t i = 0; i < result.heavy_hitters.size(); ++i) {
      const HeavyHitter& hitter = result.heavy_hitters[i];
      rows.push_back({std::to_string(i + 1), std::to_string(hitter.count),
                      DisplayString(hitter.string, result.bits)});
    }
    text += Table(rows, {true, true, false}, "");
  }
  if (options.tree) {
    text += "\nPrefix tree:\n";
    for (size_t r = 0; r < result.rounds.size(); ++r) {
      const WalkRound& round = result.rounds[r];
      text += RoundHeading(r, round);
      std::vector<std::vector<std::string>> rows = {{"prefix", "count", "threshold", "status"}};
      for (const CandidateOutcome& candidate : round.candidates) {
        if (candidate.count == 0) continue;
        rows.push_back({TreeLabel(candidate.prefix, result.bits), std::to_string(candidate.count),
                        std::to_string(candidate.threshold),
                        std::string(CandidateStatusName(candidate.status))});
      }
      text += Table(rows, {false, true, true, false}, "  ");
    }
  }
  return text;
}

std::string FormatJson(const WalkResult& result, const OutputOptions& options) {
  json::object document;
  document["bits"] = result.bits;
  document["report_count"] = result.report_count;
  document["rounds"] = result.rounds.size();
  document["resumed_rounds"] = result.resumed_rounds;
  document["seconds"] = static_cast<double>(result.elapsed.count()) / 1000.0;
  document["stopped_early"] = result.stopped_early;
  json::array hitters;
  for (size_t i = 0; i < result.heavy_hitters.size(); ++i) {
    const HeavyHitter& hitter = result.heavy_hitters[i];
    json::object entry;
    entry["rank"] = i + 1;
    entry["count"] = hitter.count;
    entry["string"] = DisplayString(hitter.string, result.bits);
    entry["hex"] = Hex(hitter.string.bytes());
    hitters.push_back(std::move(entry));
  }
  document["heavy_hitters"] = std::move(hitters);
  if (options.tree) {
    json::array tree;
    for (size_t r = 0; r < result.rounds.size(); ++r) {
      const WalkRound& round = result.rounds[r];
      json::object level;
      level["round"] = r + 1;
      level["level"] = round.level;
      level["prefix_bits"] = round.level + 1;
      level["report_count"] = round.report_count;
      level["candidate_count"] = round.candidates.size();
      level["zero_count_candidates"] = ZeroCounts(round);
      json::array candidates;
      for (const CandidateOutcome& candidate : round.candidates) {
        if (candidate.count == 0) continue;
        json::object entry;
        entry["prefix"] = TreeLabel(candidate.prefix, result.bits);
        entry["count"] = candidate.count;
        entry["threshold"] = candidate.threshold;
        entry["status"] = CandidateStatusName(candidate.status);
        candidates.push_back(std::move(entry));
      }
      level["candidates"] = std::move(candidates);
      tree.push_back(std::move(level));
    }
    document["tree"] = std::move(tree);
  }
  return json::serialize(document) + "\n";
}

std::string FormatCsv(const WalkResult& result, const OutputOptions& options) {
  std::string text = "count,string\n";
  for (const HeavyHitter& hitter : result.heavy_hitters) {
    text += std::to_string(hitter.count) + "," +
            CsvField(DisplayString(hitter.string, result.bits)) + "\n";
  }
  if (options.tree) {
    text += "\nround,level,prefix,count,threshold,status\n";
    for (size_t r = 0; r < result.rounds.size(); ++r) {
      for (const CandidateOutcome& candidate : result.rounds[r].candidates) {
        if (candidate.count == 0) continue;
        text += std::to_string(r + 1) + "," + std::to_string(result.rounds[r].level) + "," +
                CsvField(TreeLabel(candidate.prefix, result.bits)) + "," +
                std::to_string(candidate.count) + "," + std::to_string(candidate.threshold) + "," +
                std::string(CandidateStatusName(candidate.status)) + "\n";
      }
    }
  }
  return text;
}

}  // namespace

OutputFormat OutputFormatFromConfig(config::CollectorConfig::OutputFormat format) {
  switch (format) {
    case config::CollectorConfig::JSON:
      return OutputFormat::kJson;
    case config::CollectorConfig::CSV:
      return OutputFormat::kCsv;
    default:
      return OutputFormat::kText;
  }
}

std::string DisplayString(const idpf::BitString& string, size_t bits) {
  if (bits % 8 != 0) return string.ToString();
  std::span<const uint8_t> bytes = string.bytes();
  while (!bytes.empty() && bytes.back() == 0) bytes = bytes.first(bytes.size() - 1);
  return DisplayBytes(bytes);
}

std::string DisplayPrefix(const idpf::BitString& prefix) {
  if (prefix.size() % 8 != 0) return prefix.ToString();
  return DisplayBytes(prefix.bytes());
}

std::string CsvField(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string quoted = "\"";
  for (char c : field) {
    if (c == '"') quoted.push_back('"');
    quoted.push_back(c);
  }
  return quoted + "\"";
}

std::string FormatWalkResult(const WalkResult& result, const OutputOptions& options) {
  switch (options.format) {
    case OutputFormat::kJson:
      return FormatJson(result, options);
    case OutputFormat::kCsv:
      return FormatCsv(result, options);
    case OutputFormat::kText:
      break;
  }
  return FormatText(result, options);
}

std::string FormatProgress(const WalkProgress& progress) {
  const std::string round = "round " + std::to_string(progress.round) + "/" +
                            std::to_string(progress.planned_rounds) + ": level " +
                            std::to_string(progress.level) + ", " +
                            std::to_string(progress.candidates) + " candidates";
  switch (progress.stage) {
    case WalkProgress::Stage::kResumed:
      return "resumed " + std::to_string(progress.round) +
             " rounds from the state file (last: level " + std::to_string(progress.level) + ", " +
             std::to_string(progress.survivors) + " survivors)";
    case WalkProgress::Stage::kRoundStarted:
      return round + ", collecting";
    case WalkProgress::Stage::kRoundFinished:
      return round + ", " + std::to_string(progress.survivors) + " survivors, " +
             std::to_string(progress.report_count) + " reports, " + Seconds(progress.round_time) +
             " (total " + Seconds(progress.total_time) + ")";
  }
  return round;
}

}  // namespace canopy::collector
