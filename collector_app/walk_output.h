// Writing a heavy-hitters walk's results for people and programs: the heavy
// hitters as a TEXT table, a JSON document or CSV, optionally with the pruned
// prefix tree, and the progress lines of a running walk.
//
// Strings are shown decoded: a client zero-pads its string to bits / 8 bytes,
// so trailing zero bytes are dropped; printable ASCII is shown as is, a
// backslash as "\\" and every other byte as "\xNN". When bits is not a
// multiple of 8 a string is shown as its binary digits. Prefixes in the tree
// are shown as text when they are whole bytes (without dropping zero bytes:
// they are not padded yet), else as binary digits; the full-length ones are
// strings and shown as such. The tree leaves out
// candidates with a count of 0 (with a stride of b bits most of a round's
// 2^b extensions are empty) and says how many it left out.
#ifndef CANOPY_COLLECTOR_APP_WALK_OUTPUT_H_
#define CANOPY_COLLECTOR_APP_WALK_OUTPUT_H_

#include <string>

#include "collector_app/heavy_hitters_walk.h"
#include "idpf/bit_string.h"
#include "proto/canopy_config.pb.h"

namespace canopy::collector {

// How results are written.
enum class OutputFormat {
  // An aligned table (rank, count, string) under a summary line; with the
  // tree, one block per round.
  kText,
  // One JSON document: {"bits", "report_count", "rounds", "resumed_rounds",
  // "seconds", "stopped_early", "heavy_hitters": [{"rank", "count", "string",
  // "hex"}], and with the tree "tree": [{"round", "level", "prefix_bits",
  // "report_count", "candidate_count", "zero_count_candidates", "candidates":
  // [{"prefix", "count", "threshold", "status"}]}]}. "string" is the decoded form above (a JSON
  // string, escaped
  // as JSON requires); "hex" is the string's bytes, padding included.
  kJson,
  // RFC 4180 CSV (lines end with LF) with a header line: "count,string", the same columns as the
  // client's true-counts file. With the tree, a blank line and a second table
  // "round,level,prefix,count,threshold,status". No summary.
  kCsv,
};

// The format a configuration asks for (TEXT when unset).
OutputFormat OutputFormatFromConfig(config::CollectorConfig::OutputFormat format);

struct OutputOptions {
  OutputFormat format = OutputFormat::kText;
  // Also write the pruned prefix tree, round by round.
  bool tree = false;
};

// The decoded form of a full-length string of `bits` bits (see the file
// comment).
std::string DisplayString(const idpf::BitString& string, size_t bits);

// The display form of a prefix in the tree (see the file comment).
std::string DisplayPrefix(const idpf::BitString& prefix);

// `field` as one RFC 4180 CSV field: quoted, with quotes doubled, when it
// holds a comma, a double quote, a carriage return or a line feed.
std::string CsvField(const std::string& field);

// The whole output of a walk in `options.format`, ending with a newline.
std::string FormatWalkResult(const WalkResult& result, const OutputOptions& options);

// One line (without a newline) for standard error about a walk's progress:
// "round 3/17: level 9, 40 candidates, collecting", "round 3/17: level 9, 40
// candidates, 12 survivors, 1.2 s (total 5.0 s)", "resumed 4 rounds from the
// state file".
std::string FormatProgress(const WalkProgress& progress);

}  // namespace canopy::collector

#endif  // CANOPY_COLLECTOR_APP_WALK_OUTPUT_H_
