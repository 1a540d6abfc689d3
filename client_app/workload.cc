#include "client_app/workload.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <utility>

namespace canopy::client {
namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

uint64_t RotateLeft(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// ln 2, split so that n * kLn2Hi is exact for the n that Exp meets.
constexpr double kLn2 = 0.6931471805599453;
constexpr double kLn2Hi = 0.693147180369123816490;
constexpr double kLn2Lo = 1.90821492927058770002e-10;

// The natural logarithm of x >= 1 with basic arithmetic only (libm's log may
// round differently between implementations, and the Zipf table must not):
// x = m * 2^e with m in [sqrt(1/2), sqrt(2)), and ln m = 2 atanh(z) for
// z = (m - 1) / (m + 1), |z| < 0.172, whose series has converged to double
// precision after 12 terms.
double PortableLog(double x) {
  int exponent = 0;
  double m = std::frexp(x, &exponent);  // Exact: m in [0.5, 1).
  if (m < 0.70710678118654752440) {
    m *= 2;
    --exponent;
  }
  const double z = (m - 1) / (m + 1);
  const double z2 = z * z;
  double series = 0;
  for (int k = 23; k >= 1; k -= 2) series = 1.0 / k + z2 * series;
  return exponent * kLn2 + 2 * z * series;
}

// e^y for y <= 0 with basic arithmetic only: y = n ln 2 + r with |r| <= ln 2 / 2,
// e^r by its Taylor series (20 terms), then an exact scaling by 2^n. Values
// below e^-700 are taken as 0.
double PortableExp(double y) {
  if (y < -700) return 0;
  const double n = std::floor(y / kLn2 + 0.5);
  const double r = (y - n * kLn2Hi) - n * kLn2Lo;
  double sum = 1;
  for (int k = 20; k >= 1; --k) sum = 1 + r * sum / k;
  return std::ldexp(sum, static_cast<int>(n));
}

// ---- URL-like strings ------------------------------------------------------------

constexpr std::array<std::string_view, 24> kSubdomains = {
    "news", "shop", "mail",  "docs",  "maps", "video", "blog",  "wiki",
    "www",  "m",    "api",   "cdn",   "img",  "forum", "music", "travel",
    "jobs", "app",  "login", "store", "play", "radio", "cloud", "search"};
constexpr std::array<std::string_view, 6> kDomains = {"example.com", "example.org", "example.net",
                                                      "example",     "test",        "invalid"};
constexpr std::array<std::string_view, 40> kSections = {
    "world", "sports", "tech",    "science", "health",  "travel",  "food", "music",
    "films", "games",  "books",   "cars",    "money",   "weather", "jobs", "search",
    "watch", "item",   "product", "cart",    "account", "login",   "help", "about",
    "news",  "video",  "photos",  "maps",    "docs",    "wiki",    "user", "tag",
    "blog",  "post",   "forum",   "thread",  "static",  "img",     "api",  "v1"};
constexpr std::array<std::string_view, 32> kWords = {
    "best",  "new",   "top",    "how",     "guide", "review", "cheap", "local",
    "pizza", "phone", "laptop", "garden",  "shoes", "coffee", "trail", "river",
    "city",  "night", "market", "recipe",  "match", "league", "storm", "space",
    "cat",   "dog",   "home",   "tickets", "sale",  "update", "live",  "open"};
constexpr std::array<std::string_view, 6> kPages = {"index.html", "main.css", "app.js",
                                                    "feed.xml",   "logo.png", "robots.txt"};

template <size_t N>
std::string_view Pick(const std::array<std::string_view, N>& words, Xoshiro256& random) {
  return words[random.Below(N)];
}

// The leaf of a path: a number, a slug of words or a file name.
std::string Leaf(Xoshiro256& random) {
  switch (random.Below(3)) {
    case 0:
      return std::to_string(random.Below(100000));
    case 1:
      return std::string(Pick(kWords, random)) + "-" + std::string(Pick(kWords, random));
    default:
      return std::string(Pick(kPages, random));
  }
}

// A URL-like string of at most max_length bytes: the longest of its forms
// that fits (with a scheme or without, fewer path parts), else truncated.
std::string UrlLike(size_t max_length, Xoshiro256& random) {
  // A bare domain only when it has a dot ("example.com", not "test").
  const std::string_view domain = Pick(kDomains, random);
  std::string host;
  if (random.Below(5) != 0 || domain.find('.') == std::string_view::npos) {
    host = std::string(Pick(kSubdomains, random)) + ".";
  }
  host += domain;
  std::vector<std::string> parts;
  const uint64_t sections = random.Below(3);
  for (uint64_t i = 0; i < sections; ++i) parts.emplace_back(Pick(kSections, random));
  if (random.Below(4) != 0) parts.push_back(Leaf(random));
  const bool scheme = random.Below(2) == 0;

  auto form = [&](bool with_scheme, size_t part_count) {
    std::string text = with_scheme ? "https://" + host : host;
    for (size_t i = 0; i < part_count; ++i) text += "/" + parts[i];
    if (part_count == 0 && with_scheme) text += "/";
    return text;
  };
  for (size_t part_count = parts.size() + 1; part_count-- > 0;) {
    for (bool with_scheme : {scheme, false}) {
      std::string text = form(with_scheme, part_count);
      if (text.size() <= max_length) return text;
    }
  }
  std::string text = form(false, parts.size());
  text.resize(max_length);
  return text;
}

// The strings of [a-z0-9] in order of length, then of value: a supply of
// distinct short strings for lengths too small for URLs.
class ShortStrings {
 public:
  explicit ShortStrings(size_t max_length) : max_length_(max_length) {}

  // Number of such strings of 1..max_length bytes, saturated at `cap`.
  static uint64_t Capacity(size_t max_length, uint64_t cap) {
    uint64_t total = 0;
    uint64_t of_length = 1;
    for (size_t length = 1; length <= max_length; ++length) {
      if (of_length > cap / kAlphabet.size()) return cap;
      of_length *= kAlphabet.size();
      total += of_length;
      if (total >= cap) return cap;
    }
    return total;
  }

  // The next string, or "" when none is left.
  std::string Next() {
    uint64_t n = ++counter_;  // Bijective base 36.
    std::string text;
    while (n > 0) {
      --n;
      text.push_back(kAlphabet[n % kAlphabet.size()]);
      n /= kAlphabet.size();
    }
    if (text.size() > max_length_) return "";
    std::reverse(text.begin(), text.end());
    return text;
  }

 private:
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  size_t max_length_;
  uint64_t counter_ = 0;
};

Result<void> WriteFile(const std::string& path, const std::string& what,
                       const std::function<bool(std::FILE*)>& write) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "wb"),
                                                       &std::fclose);
  if (!file) {
    return MakeError(ErrorCode::kIoError,
                     path + ": cannot write the " + what + ": " + std::strerror(errno));
  }
  bool ok = write(file.get());
  ok = ok && std::fflush(file.get()) == 0;
  const int saved_errno = errno;
  ok = (std::fclose(file.release()) == 0) && ok;
  if (!ok) {
    return MakeError(ErrorCode::kIoError, path + ": cannot write the " + what + ": " +
                                              std::strerror(saved_errno ? saved_errno : errno));
  }
  return {};
}

void SortCounts(std::vector<TrueCount>& counts) {
  std::sort(counts.begin(), counts.end(), [](const TrueCount& a, const TrueCount& b) {
    if (a.count != b.count) return a.count > b.count;
    return a.string < b.string;
  });
}

}  // namespace

// ---- Xoshiro256 ------------------------------------------------------------------

Xoshiro256::Xoshiro256(uint64_t seed) {
  uint64_t state = seed;
  for (uint64_t& word : state_) word = SplitMix64(state);
}

uint64_t Xoshiro256::Next() {
  const uint64_t result = RotateLeft(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = RotateLeft(state_[3], 45);
  return result;
}

double Xoshiro256::NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

uint64_t Xoshiro256::Below(uint64_t bound) {
  // Values below 2^64 mod bound would make the low residues more likely.
  const uint64_t threshold = (0 - bound) % bound;
  while (true) {
    const uint64_t value = Next();
    if (value >= threshold) return value % bound;
  }
}

// ---- ZipfSampler -----------------------------------------------------------------

Result<ZipfSampler> ZipfSampler::Create(size_t n, double exponent) {
  if (n == 0 || n > (uint64_t{1} << 32)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "Zipf: the number of ranks must be in [1, 2^32], got " + std::to_string(n));
  }
  if (!std::isfinite(exponent) || exponent < 0 || exponent > 100) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "Zipf: the exponent must be in [0, 100], got " + std::to_string(exponent));
  }
  std::vector<double> cumulative(n);
  double total = 0;
  for (size_t k = 0; k < n; ++k) {
    total += PortableExp(-exponent * PortableLog(static_cast<double>(k + 1)));
    cumulative[k] = total;
  }
  return ZipfSampler(std::move(cumulative), exponent);
}

size_t ZipfSampler::Sample(Xoshiro256& random) const {
  const double u = random.NextDouble() * cumulative_.back();
  const size_t rank =
      std::upper_bound(cumulative_.begin(), cumulative_.end(), u) - cumulative_.begin();
  // u may round up to the total; the last rank takes it.
  return std::min(rank, cumulative_.size() - 1);
}

double ZipfSampler::Probability(size_t rank) const {
  const double below = rank == 0 ? 0 : cumulative_[rank - 1];
  return (cumulative_[rank] - below) / cumulative_.back();
}

// ---- Strings and workloads -------------------------------------------------------

Result<std::vector<std::string>> GenerateDistinctStrings(size_t count, size_t max_length,
                                                         uint64_t seed) {
  if (count == 0 || max_length == 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "strings: the number of strings and the maximum length must be positive");
  }
  if (ShortStrings::Capacity(max_length, count) < count) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "strings: cannot make " + std::to_string(count) +
                         " distinct strings of at most " + std::to_string(max_length) +
                         " bytes; allow longer strings or fewer distinct ones");
  }
  // Attempts at a fresh URL before taking a short string: enough that short
  // strings only appear when URLs of this length are nearly exhausted.
  constexpr int kAttempts = 16;
  Xoshiro256 random(seed);
  ShortStrings short_strings(max_length);
  std::set<std::string, std::less<>> seen;
  std::vector<std::string> strings;
  strings.reserve(count);
  while (strings.size() < count) {
    std::string text;
    for (int attempt = 0; attempt < kAttempts && text.empty(); ++attempt) {
      std::string candidate = UrlLike(max_length, random);
      if (!seen.contains(candidate)) text = std::move(candidate);
    }
    while (text.empty()) {
      std::string candidate = short_strings.Next();
      // Capacity() guarantees enough strings; this guards the invariant.
      if (candidate.empty()) return MakeError(ErrorCode::kInternal, "strings: supply exhausted");
      if (!seen.contains(candidate)) text = std::move(candidate);
    }
    seen.insert(text);
    strings.push_back(std::move(text));
  }
  return strings;
}

std::vector<TrueCount> Workload::TrueCounts() const {
  std::vector<uint64_t> counts(strings.size(), 0);
  for (uint32_t draw : draws) ++counts[draw];
  std::vector<TrueCount> result;
  for (size_t i = 0; i < strings.size(); ++i) {
    if (counts[i] > 0) result.push_back({strings[i], counts[i]});
  }
  SortCounts(result);
  return result;
}

Result<Workload> GenerateWorkload(const WorkloadOptions& options) {
  if (options.reports > (uint64_t{1} << 32)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "workload: at most 2^32 reports, got " + std::to_string(options.reports));
  }
  auto sampler = ZipfSampler::Create(options.distinct, options.exponent);
  if (!sampler) return std::unexpected(sampler.error());
  // Two streams from one seed: the strings do not depend on the report count.
  uint64_t seeds = options.seed;
  const uint64_t strings_seed = SplitMix64(seeds);
  const uint64_t draws_seed = SplitMix64(seeds);
  auto strings = GenerateDistinctStrings(options.distinct, options.max_length, strings_seed);
  if (!strings) return std::unexpected(strings.error());
  Workload workload;
  workload.strings = std::move(*strings);
  workload.draws.resize(options.reports);
  Xoshiro256 random(draws_seed);
  for (uint32_t& draw : workload.draws) draw = static_cast<uint32_t>(sampler->Sample(random));
  return workload;
}

std::vector<TrueCount> CountStrings(std::span<const std::string_view> strings) {
  std::map<std::string_view, uint64_t> counts;
  for (std::string_view text : strings) ++counts[text];
  std::vector<TrueCount> result;
  result.reserve(counts.size());
  for (const auto& [text, count] : counts) result.push_back({std::string(text), count});
  SortCounts(result);
  return result;
}

std::string CsvField(std::string_view text) {
  auto plain = [](char c) { return c >= 0x20 && c <= 0x7e && c != ',' && c != '"' && c != '\\'; };
  const bool as_is = !text.empty() && text.front() != ' ' && text.back() != ' ' &&
                     std::all_of(text.begin(), text.end(), plain);
  if (as_is) return std::string(text);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string field = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"') {
      field += "\"\"";
    } else if (c == '\\') {
      field += "\\\\";
    } else if (byte < 0x20 || byte > 0x7e) {
      field += "\\x";
      field.push_back(kHex[byte >> 4]);
      field.push_back(kHex[byte & 0xf]);
    } else {
      field.push_back(c);
    }
  }
  field += "\"";
  return field;
}

Result<void> WriteTrueCounts(const std::string& path, std::span<const TrueCount> counts) {
  return WriteFile(path, "true counts", [&](std::FILE* file) {
    if (std::fputs("count,string\n", file) < 0) return false;
    for (const TrueCount& entry : counts) {
      const std::string line = std::to_string(entry.count) + "," + CsvField(entry.string) + "\n";
      if (std::fwrite(line.data(), 1, line.size(), file) != line.size()) return false;
    }
    return true;
  });
}

Result<void> WriteReportStrings(const std::string& path, const Workload& workload) {
  return WriteFile(path, "report strings", [&](std::FILE* file) {
    for (size_t i = 0; i < workload.draws.size(); ++i) {
      const std::string_view text = workload.Report(i);
      if (std::fwrite(text.data(), 1, text.size(), file) != text.size()) return false;
      if (std::fputc('\n', file) == EOF) return false;
    }
    return true;
  });
}

}  // namespace canopy::client
