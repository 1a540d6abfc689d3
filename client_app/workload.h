// Synthetic workloads for demos and load tests: a set of distinct URL-like
// strings and N reports drawn from them by a Zipf law, with the true count of
// every string, all reproducible from a seed on any platform.
//
// Reproducibility: the generator (xoshiro256**, seeded through splitmix64),
// the Zipf sampler (inverse CDF over a table built with Canopy's own
// logarithm and exponential) and the string generator use IEEE-754 basic
// arithmetic only, never the standard library's distributions or libm, whose
// results differ between implementations. The same options give the same
// strings and the same draws everywhere.
//
// Files:
//   strings file      one drawn string per line, in draw order (the strings
//                     hold no newline, so a line is a report);
//   true-counts file  CSV: the header "count,string", then one line per
//                     distinct string drawn, count descending, ties by
//                     string (byte order). See CsvField for the quoting.
#ifndef CANOPY_CLIENT_APP_WORKLOAD_H_
#define CANOPY_CLIENT_APP_WORKLOAD_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crypto/error.h"

namespace canopy::client {

// xoshiro256** (Blackman and Vigna), its state seeded with splitmix64: a fast,
// well-distributed generator whose output is defined bit for bit. Not for
// secrets.
class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed);

  // The next 64 random bits.
  uint64_t Next();

  // A uniform double in [0, 1) with 53 random bits.
  double NextDouble();

  // A uniform integer in [0, bound) without modulo bias; bound must be
  // positive.
  uint64_t Below(uint64_t bound);

 private:
  uint64_t state_[4];
};

// The Zipf law over ranks 0..n-1: P(rank k) is proportional to (k + 1)^-s.
// Sampling is the inverse CDF: a uniform draw, then a binary search in the
// cumulative weights.
class ZipfSampler {
 public:
  // Errors (kInvalidArgument): n is 0 or above 2^32, or the exponent is not
  // a finite number in [0, 100].
  static Result<ZipfSampler> Create(size_t n, double exponent);

  // A rank in [0, n).
  size_t Sample(Xoshiro256& random) const;

  // The probability of `rank` (< n), for tests and reports.
  double Probability(size_t rank) const;

  size_t size() const { return cumulative_.size(); }
  double exponent() const { return exponent_; }

 private:
  ZipfSampler(std::vector<double> cumulative, double exponent)
      : cumulative_(std::move(cumulative)), exponent_(exponent) {}
  std::vector<double> cumulative_;  // cumulative_[k]: sum of weights of ranks 0..k.
  double exponent_;
};

// `count` distinct URL-like strings ("news.example.com/world/4821",
// "https://shop.example.org/cart", ...) of 1 to max_length bytes each, of
// printable ASCII without spaces, commas or quotes, reproducible from `seed`.
// Longer forms (with the scheme, more path segments) are used when they fit.
// Errors (kInvalidArgument): count or max_length is 0, or count distinct
// strings cannot be made within max_length bytes (the message names both).
Result<std::vector<std::string>> GenerateDistinctStrings(size_t count, size_t max_length,
                                                         uint64_t seed);

// What to generate.
struct WorkloadOptions {
  uint64_t reports = 0;    // N, at most 2^32.
  double exponent = 1.03;  // The Zipf exponent s.
  size_t distinct = 1000;  // Distinct strings to draw from.
  uint64_t seed = 1;       // Everything follows from it.
  size_t max_length = 32;  // Bytes per string, at most.
};

// A string and how many reports hold it.
struct TrueCount {
  std::string string;
  uint64_t count = 0;
  friend bool operator==(const TrueCount&, const TrueCount&) = default;
};

// N reports drawn from a Zipf law over distinct strings.
struct Workload {
  // The distinct strings, most probable first (rank 0 first).
  std::vector<std::string> strings;
  // For each report, the index of its string in `strings`.
  std::vector<uint32_t> draws;

  // Report i's string.
  std::string_view Report(size_t i) const { return strings[draws[i]]; }

  // The true counts: one entry per string drawn at least once, count
  // descending, ties by string (byte order).
  std::vector<TrueCount> TrueCounts() const;
};

// Generates a workload: the strings from a generator seeded with a value
// derived from `seed`, the draws from another, so that changing `reports`
// keeps the strings. Errors (kInvalidArgument): reports above 2^32, and those
// of ZipfSampler::Create and GenerateDistinctStrings.
Result<Workload> GenerateWorkload(const WorkloadOptions& options);

// Counts equal strings: one entry per distinct string, ordered as
// Workload::TrueCounts.
std::vector<TrueCount> CountStrings(std::span<const std::string_view> strings);

// One CSV field for `text`. Text of printable ASCII (0x20 to 0x7e) without
// ',', '"' or '\\' that is not empty and neither starts nor ends with a space
// is written as is. Anything else is quoted: between double quotes, with '"'
// written '""', '\\' written '\\\\', and every byte outside printable ASCII
// written "\\xHH" (two lower-case hex digits). Inside quotes a backslash
// always starts an escape, so every string has exactly one reading.
std::string CsvField(std::string_view text);

// Writes `counts` as a true-counts file (header "count,string"). Errors
// (kIoError): the file cannot be written, naming it.
Result<void> WriteTrueCounts(const std::string& path, std::span<const TrueCount> counts);

// Writes every report's string, one a line, in draw order. Errors (kIoError):
// the file cannot be written, naming it.
Result<void> WriteReportStrings(const std::string& path, const Workload& workload);

}  // namespace canopy::client

#endif  // CANOPY_CLIENT_APP_WORKLOAD_H_
