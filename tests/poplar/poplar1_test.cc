// Poplar1: random walks compared with plain counting, tampered reports,
// is_valid, and refusal of malformed encodings.
#include "poplar/poplar1.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "crypto/field64.h"
#include "crypto/xof.h"
#include "tests/testing/prefixes.h"

namespace canopy::poplar {
namespace {

using idpf::BitString;

const std::vector<uint8_t> kCtx = {'c', 'a', 'n', 'o', 'p', 'y'};

std::vector<uint8_t> RandomBytes(std::mt19937_64& random, size_t size) {
  std::vector<uint8_t> bytes(size);
  for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(random());
  return bytes;
}

BitString RandomString(std::mt19937_64& random, size_t bits) {
  BitString string;
  for (size_t i = 0; i < bits; ++i) string = string.Extended(random() & 1);
  return string;
}

// `count` random strings of `bits` bits.
std::vector<BitString> RandomStrings(std::mt19937_64& random, size_t count, size_t bits) {
  std::vector<BitString> strings;
  for (size_t i = 0; i < count; ++i) strings.push_back(RandomString(random, bits));
  return strings;
}

// One client's report as both aggregators hold it.
struct Report {
  BitString measurement;
  std::vector<uint8_t> nonce;
  ShardOutput shares;
  std::unique_ptr<PreparedReport> prepared[2];
};

std::vector<Report> MakeReports(const Poplar1& vdaf, const std::vector<BitString>& measurements,
                                std::mt19937_64& random) {
  std::vector<Report> reports;
  for (const BitString& measurement : measurements) {
    Report report;
    report.measurement = measurement;
    report.nonce = RandomBytes(random, 16);
    auto shares = vdaf.Shard(kCtx, measurement, report.nonce, RandomBytes(random, 128));
    EXPECT_TRUE(shares) << shares.error().ToString();
    report.shares = std::move(*shares);
    for (int agg = 0; agg < 2; ++agg) {
      auto prepared = vdaf.PrepareReport(agg, kCtx, report.nonce, report.shares.public_share,
                                         report.shares.input_shares[agg]);
      EXPECT_TRUE(prepared) << prepared.error().ToString();
      report.prepared[agg] = std::move(*prepared);
    }
    reports.push_back(std::move(report));
  }
  return reports;
}

// The same client report prepared again by both aggregators, as from the
// stored shares.
Report PreparedAgain(const Poplar1& vdaf, const Report& report) {
  Report copy;
  copy.measurement = report.measurement;
  copy.nonce = report.nonce;
  copy.shares = report.shares;
  for (int agg = 0; agg < 2; ++agg) {
    copy.prepared[agg] = std::move(*vdaf.PrepareReport(
        agg, kCtx, copy.nonce, copy.shares.public_share, copy.shares.input_shares[agg]));
  }
  return copy;
}

// Runs both aggregators over every report with `agg_param`; returns the
// unsharded counts and how many reports were rejected.
struct LevelOutcome {
  AggregateResult counts;
  size_t rejected = 0;
};

LevelOutcome RunLevel(const Poplar1& vdaf, std::vector<Report>& reports,
                      const AggregationParameter& agg_param,
                      const std::vector<uint8_t>& verify_key) {
  FieldVector agg_shares[2] = {vdaf.AggregateInit(agg_param), vdaf.AggregateInit(agg_param)};
  LevelOutcome outcome;
  for (Report& report : reports) {
    Result<VerifyTransition> init[2];
    for (int agg = 0; agg < 2; ++agg) {
      init[agg] = vdaf.VerifyInit(verify_key, kCtx, agg_param, *report.prepared[agg]);
      EXPECT_TRUE(init[agg]) << init[agg].error().ToString();
    }
    std::vector<std::vector<uint8_t>> round0 = {init[0]->verifier_share, init[1]->verifier_share};
    auto message0 = vdaf.VerifierSharesToMessage(kCtx, agg_param, round0);
    if (!message0) {
      ++outcome.rejected;
      continue;
    }
    Result<VerifyTransition> next[2];
    for (int agg = 0; agg < 2; ++agg) {
      next[agg] = vdaf.VerifyNext(kCtx, init[agg]->state, *message0);
      EXPECT_TRUE(next[agg] && !next[agg]->finished);
    }
    std::vector<std::vector<uint8_t>> round1 = {next[0]->verifier_share, next[1]->verifier_share};
    auto message1 = vdaf.VerifierSharesToMessage(kCtx, agg_param, round1);
    if (!message1) {
      EXPECT_EQ(message1.error().code(), ErrorCode::kVerifyFailed);
      ++outcome.rejected;
      continue;
    }
    EXPECT_TRUE(message1->empty());
    for (int agg = 0; agg < 2; ++agg) {
      // The state survives a round trip through its storage encoding.
      auto stored = DecodeVerifyState(EncodeVerifyState(next[agg]->state));
      EXPECT_TRUE(stored);
      auto done = vdaf.VerifyNext(kCtx, *stored, *message1);
      EXPECT_TRUE(done && done->finished);
      EXPECT_TRUE(AddFieldVector(agg_shares[agg], done->out_share));
    }
  }
  std::vector<std::vector<uint8_t>> encoded = {EncodeFieldVector(agg_shares[0]),
                                               EncodeFieldVector(agg_shares[1])};
  auto counts = vdaf.Unshard(agg_param, encoded, reports.size() - outcome.rejected);
  EXPECT_TRUE(counts) << counts.error().ToString();
  outcome.counts = *counts;
  return outcome;
}

// The plain count of measurements that start with each prefix.
AggregateResult PlainCounts(const std::vector<BitString>& measurements,
                            const std::vector<BitString>& prefixes) {
  AggregateResult counts;
  for (const BitString& prefix : prefixes) {
    unsigned __int128 count = 0;
    for (const BitString& measurement : measurements) count += measurement.StartsWith(prefix);
    counts.push_back(count);
  }
  return counts;
}

// Candidates for the next level: children of this level's candidates (those
// with a non-zero count first), at most `cap`, sorted.
std::vector<BitString> NextCandidates(const std::vector<BitString>& candidates,
                                      const AggregateResult& counts, size_t cap,
                                      std::mt19937_64& random) {
  std::set<BitString> next;
  for (size_t i = 0; i < candidates.size() && next.size() < cap; ++i) {
    if (counts[i] == 0) continue;
    next.insert(candidates[i].Extended(false));
    next.insert(candidates[i].Extended(true));
  }
  for (const BitString& candidate : candidates) {
    if (next.size() >= cap) break;
    if (random() % 4 == 0) next.insert(candidate.Extended(random() & 1));
  }
  return std::vector<BitString>(next.begin(), next.end());
}

class Poplar1Walk : public ::testing::TestWithParam<size_t> {};

// A whole walk, every level, with the reports prepared once and kept: the
// counts equal plain counting at every level.
TEST_P(Poplar1Walk, CountsEqualPlainCounting) {
  const size_t bits = GetParam();
  std::mt19937_64 random(bits);
  auto vdaf = Poplar1::Create(bits);
  ASSERT_TRUE(vdaf);
  // A skewed population: a few popular strings and some unique ones.
  std::vector<BitString> popular = {RandomString(random, bits), RandomString(random, bits),
                                    RandomString(random, bits)};
  std::vector<BitString> measurements;
  for (int i = 0; i < 24; ++i) {
    measurements.push_back(i % 2 == 0 ? popular[random() % 3] : RandomString(random, bits));
  }
  std::vector<Report> reports = MakeReports(**vdaf, measurements, random);
  const std::vector<uint8_t> verify_key = RandomBytes(random, 32);

  std::vector<BitString> candidates = {BitString().Extended(false), BitString().Extended(true)};
  std::shared_ptr<const AggregationParameter> previous;
  std::vector<const AggregationParameter*> history;
  for (size_t level = 0; level < bits; ++level) {
    auto param = (*vdaf)->MakeAggParam(level, candidates, previous.get());
    ASSERT_TRUE(param);
    ASSERT_TRUE((*vdaf)->IsValid(**param, history)) << "level " << level;
    LevelOutcome outcome = RunLevel(**vdaf, reports, **param, verify_key);
    EXPECT_EQ(outcome.rejected, 0u) << "level " << level;
    ASSERT_EQ(outcome.counts, PlainCounts(measurements, candidates)) << "level " << level;
    previous = *param;
    history.push_back(previous.get());
    if (level + 1 < bits) candidates = NextCandidates(candidates, outcome.counts, 16, random);
  }
}

INSTANTIATE_TEST_SUITE_P(Bits, Poplar1Walk, ::testing::Values(1, 2, 8, 16, 64, 256));

// Random prefix sets with skipped levels, checked with freshly prepared
// reports (the draft's stateless verify_init) and with reports kept from the
// previous level: both give the plain counts.
TEST(Poplar1, SkippedLevelsAndFreshReportsAgree) {
  std::mt19937_64 random(99);
  const size_t bits = 32;
  auto vdaf = Poplar1::Create(bits);
  ASSERT_TRUE(vdaf);
  const std::vector<BitString> measurements = RandomStrings(random, 12, bits);
  std::vector<Report> kept = MakeReports(**vdaf, measurements, random);
  const std::vector<uint8_t> verify_key = RandomBytes(random, 32);
  std::shared_ptr<const AggregationParameter> previous;
  for (size_t level : {0, 3, 4, 9, 20, 31}) {
    std::set<BitString> chosen;
    for (const BitString& m : measurements) {
      if (random() % 2) chosen.insert(m.Prefix(level + 1));
    }
    const size_t wanted = level >= 2 ? 6 : size_t{1} << (level + 1);
    while (chosen.size() < wanted) chosen.insert(RandomString(random, level + 1));
    std::vector<BitString> prefixes(chosen.begin(), chosen.end());
    auto param = (*vdaf)->MakeAggParam(level, prefixes, previous.get());
    ASSERT_TRUE(param);
    EXPECT_EQ(RunLevel(**vdaf, kept, **param, verify_key).counts,
              PlainCounts(measurements, prefixes));
    // Fresh reports from the same shares.
    std::vector<Report> fresh;
    for (const Report& report : kept) {
      fresh.push_back(PreparedAgain(**vdaf, report));
    }
    EXPECT_EQ(RunLevel(**vdaf, fresh, **param, verify_key).counts,
              PlainCounts(measurements, prefixes));
    previous = *param;
  }
}

// A LevelSlot in memory, as the aggregator's files behave; it can be made
// to fail its writes or its reads.
class MemorySlot final : public LevelSlot {
 public:
  enum class Fails { kNothing, kWrites, kReads };
  explicit MemorySlot(std::vector<size_t> sizes, Fails fails = Fails::kNothing)
      : sizes_(std::move(sizes)), fails_(fails) {}
  Result<void> Write(size_t first, std::span<const uint8_t> records) override {
    if (fails_ == Fails::kWrites) return MakeError(ErrorCode::kIoError, "disk full");
    EXPECT_EQ(first, 0u);
    bytes_.assign(records.begin(), records.end());
    return {};
  }
  Result<void> Read(size_t first, size_t end, std::span<uint8_t> out) override {
    if (fails_ == Fails::kReads) return MakeError(ErrorCode::kIoError, "unreadable");
    size_t offset = 0;
    for (size_t level = 0; level < first; ++level) offset += sizes_[level];
    size_t size = 0;
    for (size_t level = first; level < end; ++level) size += sizes_[level];
    EXPECT_EQ(out.size(), size);
    std::copy_n(bytes_.begin() + static_cast<ptrdiff_t>(offset), size, out.begin());
    ++reads;
    return {};
  }
  size_t reads = 0;

 private:
  std::vector<size_t> sizes_;
  Fails fails_;
  std::vector<uint8_t> bytes_;
};

// Reports whose levels live in a slot verify exactly as reports that keep
// them in memory, level after level (with skipped levels, a from-root
// evaluation and the leaf), reading back only what each level needs.
TEST(Poplar1, ReportsWithLevelsInASlotVerifyAsInMemory) {
  std::mt19937_64 random(5);
  const size_t bits = 16;
  auto vdaf = Poplar1::Create(bits);
  ASSERT_TRUE(vdaf);
  const std::vector<BitString> measurements = RandomStrings(random, 8, bits);
  std::vector<Report> kept = MakeReports(**vdaf, measurements, random);
  std::vector<Report> slotted;
  std::vector<MemorySlot*> slots;
  for (const Report& report : kept) {
    Report copy = PreparedAgain(**vdaf, report);
    for (int agg = 0; agg < 2; ++agg) {
      const std::vector<size_t> sizes = copy.prepared[agg]->LevelRecordSizes();
      ASSERT_EQ(sizes.size(), bits);
      EXPECT_EQ(sizes[0], 16u + 1 + 16 + 16);
      EXPECT_EQ(sizes[bits - 1], 16u + 1 + 64 + 64);
      auto slot = std::make_unique<MemorySlot>(sizes);
      slots.push_back(slot.get());
      ASSERT_TRUE(copy.prepared[agg]->MoveLevelsTo(std::move(slot)));
      EXPECT_TRUE(copy.prepared[agg]->levels_in_slot());
      // A second move is refused: the levels are no longer in memory.
      EXPECT_FALSE(copy.prepared[agg]->MoveLevelsTo(std::make_unique<MemorySlot>(sizes)));
    }
    slotted.push_back(std::move(copy));
  }
  const std::vector<uint8_t> verify_key = RandomBytes(random, 32);
  std::shared_ptr<const AggregationParameter> previous;
  for (size_t level : {0, 1, 4, 5, 9, 15}) {
    std::set<BitString> chosen;
    for (const BitString& m : measurements) chosen.insert(m.Prefix(level + 1));
    std::vector<BitString> prefixes(chosen.begin(), chosen.end());
    auto param = (*vdaf)->MakeAggParam(level, prefixes, previous.get());
    ASSERT_TRUE(param);
    for (size_t i = 0; i < kept.size(); ++i) {
      for (int agg = 0; agg < 2; ++agg) {
        auto in_memory = (*vdaf)->VerifyInit(verify_key, kCtx, **param, *kept[i].prepared[agg]);
        auto from_slot = (*vdaf)->VerifyInit(verify_key, kCtx, **param, *slotted[i].prepared[agg]);
        ASSERT_TRUE(in_memory && from_slot) << "level " << level;
        EXPECT_EQ(in_memory->verifier_share, from_slot->verifier_share) << "level " << level;
        EXPECT_EQ(EncodeVerifyState(in_memory->state), EncodeVerifyState(from_slot->state));
        slotted[i].prepared[agg]->DropLevelsRead();
      }
    }
    // Verified twice at one level (a redone step): the second evaluation
    // starts from the root and reads every level up to this one.
    EXPECT_EQ(RunLevel(**vdaf, slotted, **param, verify_key).counts,
              PlainCounts(measurements, prefixes));
    for (Report& report : slotted) {
      for (auto& prepared : report.prepared) prepared->DropLevelsRead();
    }
    previous = *param;
  }
  // Each verification read back its levels once: six levels, twice each.
  for (const MemorySlot* slot : slots) EXPECT_EQ(slot->reads, 12u);
}

// A slot that cannot be written leaves the report as it was; one that cannot
// be read fails the verification instead of giving a wrong share.
TEST(Poplar1, FailingLevelSlots) {
  using Fails = MemorySlot::Fails;
  std::mt19937_64 random(6);
  auto vdaf = Poplar1::Create(8);
  ASSERT_TRUE(vdaf);
  std::vector<Report> reports = MakeReports(**vdaf, {RandomString(random, 8)}, random);
  const std::vector<uint8_t> verify_key = RandomBytes(random, 32);
  auto param =
      (*vdaf)->MakeAggParam(0, {BitString().Extended(false), BitString().Extended(true)}, nullptr);
  ASSERT_TRUE(param);

  PreparedReport& leader = *reports[0].prepared[0];
  const std::vector<size_t> sizes = leader.LevelRecordSizes();
  auto not_written = leader.MoveLevelsTo(std::make_unique<MemorySlot>(sizes, Fails::kWrites));
  ASSERT_FALSE(not_written);
  EXPECT_EQ(not_written.error().code(), ErrorCode::kIoError);
  EXPECT_FALSE(leader.levels_in_slot());
  EXPECT_TRUE((*vdaf)->VerifyInit(verify_key, kCtx, **param, leader));

  PreparedReport& helper = *reports[0].prepared[1];
  ASSERT_TRUE(helper.MoveLevelsTo(std::make_unique<MemorySlot>(sizes, Fails::kReads)));
  auto unread = (*vdaf)->VerifyInit(verify_key, kCtx, **param, helper);
  ASSERT_FALSE(unread);
  EXPECT_EQ(unread.error().code(), ErrorCode::kIoError);
}

// The batch form gives, report by report, exactly what the single-report
// form gives: at every level of a walk (inner levels and the leaf), with
// batches that are not a multiple of four, tampered reports that the sketch
// rejects, entries that are not valid reports, and transitions reused from
// the previous level.
TEST(Poplar1, BatchVerifyInitEqualsSingle) {
  std::mt19937_64 random(11);
  const size_t bits = 12;
  auto vdaf = Poplar1::Create(bits);
  ASSERT_TRUE(vdaf);
  const std::vector<BitString> measurements = RandomStrings(random, 11, bits);
  std::vector<Report> single = MakeReports(**vdaf, measurements, random);
  // Tamper with the leader's correlation shares of some levels (bytes 48 on
  // hold two elements per inner level): those reports fail at that level.
  for (size_t r : {2, 7}) {
    single[r].shares.input_shares[0][48 + 16 * (r + 1)] ^= 0x40;
    single[r].prepared[0] = std::move(*(*vdaf)->PrepareReport(
        0, kCtx, single[r].nonce, single[r].shares.public_share, single[r].shares.input_shares[0]));
  }
  // The same reports prepared again, for the batch form (verification
  // advances each report's cache).
  std::vector<Report> batched;
  for (const Report& report : single) {
    batched.push_back(PreparedAgain(**vdaf, report));
  }
  // A report prepared under another context; and a null entry.
  const std::vector<uint8_t> other_ctx = {'o', 't', 'h', 'e', 'r'};
  auto foreign =
      (*vdaf)->PrepareReport(0, other_ctx, single[0].nonce, single[0].shares.public_share,
                             single[0].shares.input_shares[0]);
  ASSERT_TRUE(foreign);
  const std::vector<uint8_t> verify_key = RandomBytes(random, 32);

  std::vector<Result<VerifyTransition>> outs[2];
  std::vector<BitString> candidates = {BitString().Extended(false), BitString().Extended(true)};
  std::shared_ptr<const AggregationParameter> previous;
  for (size_t level = 0; level < bits; ++level) {
    auto param = (*vdaf)->MakeAggParam(level, candidates, previous.get());
    ASSERT_TRUE(param);
    size_t rejected = 0;
    for (int agg = 0; agg < 2; ++agg) {
      // Batch entries: the reports, with the foreign and the null entry mixed in.
      std::vector<PreparedReport*> entries;
      for (size_t r = 0; r < batched.size(); ++r) {
        if (r == 3) entries.push_back(foreign->get());
        if (r == 5) entries.push_back(nullptr);
        entries.push_back(batched[r].prepared[agg].get());
      }
      outs[agg].resize(entries.size());  // Kept from the previous level: reused.
      (*vdaf)->VerifyInitBatch(verify_key, kCtx, **param, entries, outs[agg]);
      size_t next = 0;
      for (size_t e = 0; e < entries.size(); ++e) {
        if (entries[e] == nullptr || entries[e] == foreign->get()) {
          ASSERT_FALSE(outs[agg][e]);
          EXPECT_EQ(outs[agg][e].error().code(), ErrorCode::kInvalidArgument);
          EXPECT_EQ(
              (entries[e] == nullptr
                   ? ErrorCode::kInvalidArgument
                   : (*vdaf)->VerifyInit(verify_key, kCtx, **param, *entries[e]).error().code()),
              ErrorCode::kInvalidArgument);
          continue;
        }
        auto expected = (*vdaf)->VerifyInit(verify_key, kCtx, **param, *single[next].prepared[agg]);
        ASSERT_TRUE(expected);
        ASSERT_TRUE(outs[agg][e]) << outs[agg][e].error().ToString();
        EXPECT_FALSE(outs[agg][e]->finished);
        EXPECT_EQ(outs[agg][e]->verifier_share, expected->verifier_share)
            << "level " << level << " report " << next;
        EXPECT_EQ(EncodeVerifyState(outs[agg][e]->state), EncodeVerifyState(expected->state));
        ++next;
      }
      ASSERT_EQ(next, batched.size());
    }
    // Mixed validity: the tampered reports fail their level in both forms.
    for (size_t e = 0, r = 0; e < outs[0].size(); ++e) {
      if (!outs[0][e] || !outs[1][e]) continue;
      std::vector<std::vector<uint8_t>> round0 = {outs[0][e]->verifier_share,
                                                  outs[1][e]->verifier_share};
      auto message0 = (*vdaf)->VerifierSharesToMessage(kCtx, **param, round0);
      ASSERT_TRUE(message0);
      auto next0 = (*vdaf)->VerifyNext(kCtx, outs[0][e]->state, *message0);
      auto next1 = (*vdaf)->VerifyNext(kCtx, outs[1][e]->state, *message0);
      ASSERT_TRUE(next0 && next1);
      std::vector<std::vector<uint8_t>> round1 = {next0->verifier_share, next1->verifier_share};
      const bool accepted = (*vdaf)->VerifierSharesToMessage(kCtx, **param, round1).has_value();
      const bool tampered = (r == 2 && level == 3) || (r == 7 && level == 8);
      EXPECT_EQ(accepted, !tampered) << "level " << level << " report " << r;
      rejected += !accepted;
      ++r;
    }
    EXPECT_EQ(rejected, level == 3 || level == 8 ? 1u : 0u) << "level " << level;
    previous = *param;
    if (level + 1 < bits) {
      candidates = NextCandidates(candidates, PlainCounts(measurements, candidates), 10, random);
    }
  }
}

// The batch form samples each report's verification randomness in one pass
// when its first squeeze is all kept; a report with a rejected draw
// (probability about 2^-32 each) starts over draw by draw and must draw
// exactly what VerifyInit does. The nonce below was found by a search: at
// level 11 with all 4096 candidates, verify key 0x00..0x1f and this file's
// context, its draw 1976 is at or above p.
TEST(Poplar1, BatchVerifyInitResamplesARejectedRandomnessDraw) {
  std::mt19937_64 random(17);
  const size_t bits = 16, level = 11, rejected_draw = 1976;
  auto vdaf = Poplar1::Create(bits);
  ASSERT_TRUE(vdaf);
  std::vector<uint8_t> verify_key(32);
  for (size_t i = 0; i < verify_key.size(); ++i) verify_key[i] = static_cast<uint8_t>(i);
  const std::vector<uint8_t> rejecting_nonce = {0x8e, 0xe8, 0x2b, 0x00, 0x00, 0x00, 0x00, 0x00,
                                                0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5};
  {
    // The draw really is rejected: the draft's verification-randomness XOF
    // (usage 4), binder nonce || level.
    const std::vector<uint8_t> dst = VdafDomainSeparationTag(Poplar1::kAlgorithmId, 4, kCtx);
    std::vector<uint8_t> binder = rejecting_nonce;
    binder.push_back(static_cast<uint8_t>(level >> 8));
    binder.push_back(static_cast<uint8_t>(level));
    crypto::XofTurboShake128 xof(verify_key, dst, binder);
    std::vector<uint8_t> draws(8 * (rejected_draw + 1));
    xof.Next(draws);
    crypto::Field64 ignored;
    ASSERT_FALSE(crypto::Field64::FromSampledBytes(&draws[8 * rejected_draw], &ignored));
  }
  // Six reports, the third with that nonce: in the batch's first group of
  // four, next to lanes that keep their first squeeze.
  std::vector<Report> reports = MakeReports(**vdaf, RandomStrings(random, 6, bits), random);
  {
    Report& report = reports[2];
    report.nonce = rejecting_nonce;
    auto shares = (*vdaf)->Shard(kCtx, report.measurement, report.nonce, RandomBytes(random, 128));
    ASSERT_TRUE(shares);
    report.shares = std::move(*shares);
    for (int agg = 0; agg < 2; ++agg) {
      report.prepared[agg] = std::move(*(*vdaf)->PrepareReport(
          agg, kCtx, report.nonce, report.shares.public_share, report.shares.input_shares[agg]));
    }
  }
  auto param = (*vdaf)->MakeAggParam(level, testing::Extensions({BitString()}, level + 1), nullptr);
  ASSERT_TRUE(param);
  ASSERT_EQ((*param)->prefixes.size(), 4096u);
  for (int agg = 0; agg < 2; ++agg) {
    std::vector<Report> batched;
    std::vector<PreparedReport*> entries;
    for (const Report& report : reports) batched.push_back(PreparedAgain(**vdaf, report));
    for (Report& report : batched) entries.push_back(report.prepared[agg].get());
    std::vector<Result<VerifyTransition>> outs(entries.size());
    (*vdaf)->VerifyInitBatch(verify_key, kCtx, **param, entries, outs);
    for (size_t r = 0; r < reports.size(); ++r) {
      auto expected = (*vdaf)->VerifyInit(verify_key, kCtx, **param, *reports[r].prepared[agg]);
      ASSERT_TRUE(expected);
      ASSERT_TRUE(outs[r]) << outs[r].error().ToString();
      EXPECT_EQ(outs[r]->verifier_share, expected->verifier_share) << "report " << r;
      EXPECT_EQ(EncodeVerifyState(outs[r]->state), EncodeVerifyState(expected->state));
    }
  }
}

// The first step's state as versions before the (A, B, ID) tail wrote it:
// those three elements first, then the output share, under step 0.
VerifyState WithHeadLayout(VerifyState state) {
  EXPECT_EQ(state.step, 2);
  std::visit(
      [](auto& memory) {
        ASSERT_GE(memory.size(), 3u);
        std::rotate(memory.begin(), memory.end() - 3, memory.end());
      },
      state.memory);
  state.step = 0;
  return state;
}

TEST(Poplar1, StatesInTheEarlierLayoutStillVerify) {
  // A datastore may hold first-step states written before the layout changed:
  // they verify to the same shares, at an inner level and at the leaf, and a
  // tampered report is still rejected through them.
  std::mt19937_64 random(13);
  const size_t bits = 4;
  auto vdaf = Poplar1::Create(bits);
  ASSERT_TRUE(vdaf);
  const std::vector<BitString> measurements = RandomStrings(random, 6, bits);
  std::vector<Report> reports = MakeReports(**vdaf, measurements, random);
  reports[4].shares.input_shares[0][48 + 16 * 2] ^= 0x40;  // Level 2's correlation shares.
  reports[4].prepared[0] =
      std::move(*(*vdaf)->PrepareReport(0, kCtx, reports[4].nonce, reports[4].shares.public_share,
                                        reports[4].shares.input_shares[0]));
  const std::vector<uint8_t> verify_key = RandomBytes(random, 32);
  std::vector<BitString> candidates = {BitString().Extended(false), BitString().Extended(true)};
  std::shared_ptr<const AggregationParameter> previous;
  for (size_t level = 0; level < bits; ++level) {
    auto param = (*vdaf)->MakeAggParam(level, candidates, previous.get());
    ASSERT_TRUE(param);
    for (size_t r = 0; r < reports.size(); ++r) {
      Result<VerifyTransition> init[2];
      for (int agg = 0; agg < 2; ++agg) {
        init[agg] = (*vdaf)->VerifyInit(verify_key, kCtx, **param, *reports[r].prepared[agg]);
        ASSERT_TRUE(init[agg]);
      }
      std::vector<std::vector<uint8_t>> round0 = {init[0]->verifier_share, init[1]->verifier_share};
      auto message0 = (*vdaf)->VerifierSharesToMessage(kCtx, **param, round0);
      ASSERT_TRUE(message0);
      Result<VerifyTransition> current[2], earlier[2];
      for (int agg = 0; agg < 2; ++agg) {
        current[agg] = (*vdaf)->VerifyNext(kCtx, init[agg]->state, *message0);
        // As a datastore holds it: encoded, and decoded again.
        auto stored = DecodeVerifyState(EncodeVerifyState(WithHeadLayout(init[agg]->state)));
        ASSERT_TRUE(stored);
        earlier[agg] = (*vdaf)->VerifyNext(kCtx, *stored, *message0);
        ASSERT_TRUE(current[agg] && earlier[agg]);
        EXPECT_EQ(earlier[agg]->verifier_share, current[agg]->verifier_share);
        EXPECT_EQ(EncodeVerifyState(earlier[agg]->state), EncodeVerifyState(current[agg]->state));
      }
      std::vector<std::vector<uint8_t>> round1 = {earlier[0]->verifier_share,
                                                  earlier[1]->verifier_share};
      auto message1 = (*vdaf)->VerifierSharesToMessage(kCtx, **param, round1);
      EXPECT_EQ(message1.has_value(), !(r == 4 && level == 2)) << "level " << level;
      if (!message1) continue;
      for (int agg = 0; agg < 2; ++agg) {
        auto done = (*vdaf)->VerifyNext(kCtx, earlier[agg]->state, *message1);
        ASSERT_TRUE(done && done->finished);
        EXPECT_EQ(FieldVectorSize(done->out_share), candidates.size());
      }
    }
    previous = *param;
    if (level + 1 < bits) {
      candidates = NextCandidates(candidates, PlainCounts(measurements, candidates), 6, random);
    }
  }
}

TEST(Poplar1, BatchVerifyInitRefusesBadArguments) {
  std::mt19937_64 random(12);
  auto vdaf = Poplar1::Create(4);
  ASSERT_TRUE(vdaf);
  std::vector<Report> reports = MakeReports(**vdaf, {RandomString(random, 4)}, random);
  auto param = (*vdaf)->MakeAggParam(0, {*BitString::Parse("0"), *BitString::Parse("1")}, nullptr);
  ASSERT_TRUE(param);
  PreparedReport* entries[1] = {reports[0].prepared[0].get()};
  // A wrong verify key size fails every entry.
  std::vector<Result<VerifyTransition>> out(1);
  (*vdaf)->VerifyInitBatch(std::vector<uint8_t>(31), kCtx, **param, entries, out);
  ASSERT_FALSE(out[0]);
  EXPECT_EQ(out[0].error().code(), ErrorCode::kInvalidArgument);
  // An output span of the wrong size.
  std::vector<Result<VerifyTransition>> two(2);
  (*vdaf)->VerifyInitBatch(RandomBytes(random, 32), kCtx, **param, entries, two);
  EXPECT_FALSE(two[0]);
  EXPECT_FALSE(two[1]);
  // An empty batch is fine.
  (*vdaf)->VerifyInitBatch(RandomBytes(random, 32), kCtx, **param, {}, {});
}

// A client that tampers with its shares is caught by the sketch.
TEST(Poplar1, TamperedReportsAreRejected) {
  std::mt19937_64 random(7);
  const size_t bits = 8;
  auto vdaf = Poplar1::Create(bits);
  ASSERT_TRUE(vdaf);
  const std::vector<uint8_t> verify_key = RandomBytes(random, 32);
  std::vector<BitString> candidates = {*BitString::Parse("0"), *BitString::Parse("1")};
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<Report> reports = MakeReports(**vdaf, {RandomString(random, bits)}, random);
    Report& report = reports[0];
    // Flip a byte of the leader's input share - the IDPF key (bytes 0-15),
    // the correlation seed (16-47) or the level-0 correlation shares (48-63) -
    // or of the public share's level-0 seed correction (bytes 2-17) or value
    // correction (130-145). Both aggregators see the same tampered report.
    const bool in_public_share = trial % 4 == 3;
    std::vector<uint8_t>& target =
        in_public_share ? report.shares.public_share : report.shares.input_shares[0];
    const size_t offset =
        in_public_share ? (random() % 2 ? 2 + random() % 16 : 130 + random() % 16) : random() % 64;
    target[offset] ^= static_cast<uint8_t>(1 + random() % 255);
    bool refused_at_decoding = false;
    for (int agg = 0; agg < 2; ++agg) {
      auto prepared = (*vdaf)->PrepareReport(agg, kCtx, report.nonce, report.shares.public_share,
                                             report.shares.input_shares[agg]);
      if (!prepared) {
        refused_at_decoding = true;  // A field element pushed out of range.
        break;
      }
      report.prepared[agg] = std::move(*prepared);
    }
    if (refused_at_decoding) continue;
    auto param = (*vdaf)->MakeAggParam(0, candidates, nullptr);
    LevelOutcome outcome = RunLevel(**vdaf, reports, **param, verify_key);
    EXPECT_EQ(outcome.rejected, 1u) << "trial " << trial << ", byte " << offset;
  }
}

TEST(Poplar1, IsValidFollowsTheDraft) {
  auto vdaf = Poplar1::Create(8);
  ASSERT_TRUE(vdaf);
  auto p = [](std::string_view text) { return *BitString::Parse(text); };
  auto param = [&](size_t level, std::vector<BitString> prefixes) {
    return *(*vdaf)->MakeAggParam(level, std::move(prefixes), nullptr);
  };
  auto first = param(1, {p("00"), p("10")});
  std::vector<const AggregationParameter*> history = {first.get()};
  EXPECT_TRUE((*vdaf)->IsValid(*first, {}));
  EXPECT_TRUE((*vdaf)->IsValid(*param(2, {p("001"), p("100"), p("101")}), history));
  EXPECT_TRUE((*vdaf)->IsValid(*param(4, {p("00110")}), history));      // Skipping levels.
  EXPECT_FALSE((*vdaf)->IsValid(*param(1, {p("00")}), history));        // Repeated level.
  EXPECT_FALSE((*vdaf)->IsValid(*param(0, {p("0")}), history));         // Lower level.
  EXPECT_FALSE((*vdaf)->IsValid(*param(2, {p("101"), p("100")}), {}));  // Unsorted.
  EXPECT_FALSE((*vdaf)->IsValid(*param(2, {p("100"), p("100")}), {}));  // Duplicate.
  EXPECT_FALSE(
      (*vdaf)->IsValid(*param(2, {p("001"), p("011")}), history));  // "01" not a candidate.
  // An invalid parameter is refused by verify_init as well.
  std::mt19937_64 random(3);
  std::vector<Report> reports = MakeReports(**vdaf, {RandomString(random, 8)}, random);
  auto unsorted = param(2, {p("101"), p("100")});
  EXPECT_FALSE(
      (*vdaf)->VerifyInit(RandomBytes(random, 32), kCtx, *unsorted, *reports[0].prepared[0]));
}

TEST(Poplar1, RefusesBadBitLengthsAndMeasurements) {
  EXPECT_FALSE(Poplar1::Create(0));
  EXPECT_TRUE(Poplar1::Create(256));
  EXPECT_FALSE(Poplar1::Create(65537));
  auto vdaf = Poplar1::Create(8);
  std::vector<uint8_t> nonce(16), rand(128);
  EXPECT_FALSE((*vdaf)->Shard(kCtx, *BitString::Parse("0101"), nonce, rand));
  EXPECT_FALSE((*vdaf)->Shard(kCtx, uint64_t{3}, nonce, rand));
  EXPECT_FALSE((*vdaf)->Shard(kCtx, *BitString::Parse("01010101"), std::vector<uint8_t>(15), rand));
  EXPECT_FALSE(
      (*vdaf)->Shard(kCtx, *BitString::Parse("01010101"), nonce, std::vector<uint8_t>(127)));
  EXPECT_TRUE((*vdaf)->Shard(kCtx, *BitString::Parse("01010101"), nonce, rand));
}

TEST(Poplar1, RefusesMalformedEncodings) {
  std::mt19937_64 random(5);
  const size_t bits = 5;
  auto vdaf = Poplar1::Create(bits);
  ASSERT_TRUE(vdaf);
  std::vector<Report> reports = MakeReports(**vdaf, {RandomString(random, bits)}, random);
  const ShardOutput& shares = reports[0].shares;
  const std::vector<uint8_t>& nonce = reports[0].nonce;
  EXPECT_EQ(shares.input_shares[0].size(), (*vdaf)->InputShareSize());

  // Input shares: every truncation, one byte too many, an element >= p.
  const std::vector<uint8_t>& input = shares.input_shares[1];
  for (size_t length = 0; length < input.size(); ++length) {
    EXPECT_FALSE((*vdaf)->PrepareReport(1, kCtx, nonce, shares.public_share,
                                        std::span(input).first(length)));
  }
  std::vector<uint8_t> longer = input;
  longer.push_back(0);
  EXPECT_FALSE((*vdaf)->PrepareReport(1, kCtx, nonce, shares.public_share, longer));
  std::vector<uint8_t> out_of_range = input;
  std::fill_n(out_of_range.begin() + 48, 8, 0xff);  // The first Field64 of corr_inner.
  EXPECT_FALSE((*vdaf)->PrepareReport(1, kCtx, nonce, shares.public_share, out_of_range));
  std::vector<uint8_t> leaf_out_of_range = input;
  std::fill(leaf_out_of_range.end() - 32, leaf_out_of_range.end(), 0xff);
  EXPECT_FALSE((*vdaf)->PrepareReport(1, kCtx, nonce, shares.public_share, leaf_out_of_range));
  // Public shares: truncated and overlong (the IDPF tests cover the rest).
  EXPECT_FALSE((*vdaf)->PrepareReport(
      1, kCtx, nonce, std::span(shares.public_share).first(shares.public_share.size() - 1), input));
  EXPECT_FALSE(
      (*vdaf)->PrepareReport(1, kCtx, std::vector<uint8_t>(15), shares.public_share, input));
  EXPECT_FALSE((*vdaf)->PrepareReport(2, kCtx, nonce, shares.public_share, input));

  // Aggregation parameters: "level 1, 2 prefixes, 00 and 10".
  const std::vector<uint8_t> good = {0, 1, 0, 0, 0, 2, 0x00, 0x80};
  auto decoded = (*vdaf)->DecodeAggParam(good, nullptr);
  ASSERT_TRUE(decoded);
  EXPECT_EQ((*vdaf)->EncodeAggParam(**decoded), good);
  for (size_t length = 0; length < good.size(); ++length) {
    EXPECT_FALSE((*vdaf)->DecodeAggParam(std::span(good).first(length), nullptr)) << length;
  }
  std::vector<uint8_t> trailing = good;
  trailing.push_back(0);
  EXPECT_FALSE((*vdaf)->DecodeAggParam(trailing, nullptr));
  std::vector<uint8_t> padding = good;
  padding.back() |= 0x01;  // A bit past the 2-bit prefix.
  EXPECT_FALSE((*vdaf)->DecodeAggParam(padding, nullptr));
  const std::vector<uint8_t> level_too_deep = {0, 5, 0, 0, 0, 1, 0x00};
  EXPECT_FALSE((*vdaf)->DecodeAggParam(level_too_deep, nullptr));
  const std::vector<uint8_t> huge_count = {0, 1, 0xff, 0xff, 0xff, 0xff, 0x00};
  EXPECT_FALSE((*vdaf)->DecodeAggParam(huge_count, nullptr));

  // Verifier shares, messages and aggregate shares of the wrong size.
  const std::vector<uint8_t> bad_share(7, 0);
  std::vector<std::vector<uint8_t>> shares_bad = {bad_share, bad_share};
  EXPECT_FALSE((*vdaf)->VerifierSharesToMessage(kCtx, **decoded, shares_bad));
  std::vector<std::vector<uint8_t>> mismatched = {std::vector<uint8_t>(24),
                                                  std::vector<uint8_t>(8)};
  EXPECT_FALSE((*vdaf)->VerifierSharesToMessage(kCtx, **decoded, mismatched));
  std::vector<std::vector<uint8_t>> over_p = {std::vector<uint8_t>(8, 0xff),
                                              std::vector<uint8_t>(8)};
  EXPECT_FALSE((*vdaf)->VerifierSharesToMessage(kCtx, **decoded, over_p));
  EXPECT_FALSE((*vdaf)->DecodeAggShare(**decoded, std::vector<uint8_t>(8)));
  EXPECT_TRUE((*vdaf)->DecodeAggShare(**decoded, std::vector<uint8_t>(16)));
  EXPECT_FALSE((*vdaf)->DecodeAggShare(**decoded, std::vector<uint8_t>(24)));

  // A round-1 message of the wrong length, and a non-empty round-2 message.
  const std::vector<uint8_t> verify_key(32, 1);
  auto init = (*vdaf)->VerifyInit(verify_key, kCtx, **decoded, *reports[0].prepared[0]);
  ASSERT_TRUE(init);
  EXPECT_FALSE((*vdaf)->VerifyNext(kCtx, init->state, std::vector<uint8_t>(16)));
  EXPECT_FALSE((*vdaf)->VerifyNext(kCtx, init->state, std::vector<uint8_t>()));
  auto next = (*vdaf)->VerifyNext(kCtx, init->state, std::vector<uint8_t>(24));
  ASSERT_TRUE(next);
  EXPECT_FALSE((*vdaf)->VerifyNext(kCtx, next->state, std::vector<uint8_t>(8)));
  EXPECT_FALSE(DecodeVerifyState(std::vector<uint8_t>(5)));
}

}  // namespace
}  // namespace canopy::poplar
