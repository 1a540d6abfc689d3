// IdpfBBCGGI21: the official key-generation vector, the point-function
// property, agreement of the cached evaluator with evaluation from the root,
// and refusal of malformed public shares and arguments.
#include "idpf/idpf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <set>

#include "crypto/aes.h"
#include "crypto/xof.h"
#include "idpf/internal/level_xofs.h"
#include "tests/testing/prefixes.h"
#include "tests/testing/vectors.h"

namespace canopy::idpf {
namespace {

using ::canopy::testing::BytesToHex;
using ::canopy::testing::Extensions;
using ::canopy::testing::JsonHex;
using ::canopy::testing::JsonString;
using ::canopy::testing::JsonUint;

const std::vector<uint8_t> kCtx = {'t', 'e', 's', 't'};

Field64 ParseField64(const boost::json::value& value) {
  return Field64::FromUint64(std::stoull(std::string(value.as_string())));
}

// Random inputs of one IDPF instance.
struct RandomInstance {
  BitString alpha;
  std::vector<InnerValue> beta_inner;
  LeafValue beta_leaf;
  std::array<uint8_t, kNonceSize> nonce;
  std::array<uint8_t, kRandSize> rand;
};

RandomInstance MakeInstance(size_t bits, std::mt19937_64& random) {
  RandomInstance instance;
  for (size_t i = 0; i < bits; ++i) instance.alpha = instance.alpha.Extended(random() & 1);
  instance.beta_inner.resize(bits - 1);
  for (InnerValue& beta : instance.beta_inner) {
    beta = {Field64::FromUint64(random()), Field64::FromUint64(random())};
  }
  instance.beta_leaf = {Field255::FromUint64(random()), Field255::FromUint64(random())};
  for (uint8_t& byte : instance.nonce) byte = static_cast<uint8_t>(random());
  for (uint8_t& byte : instance.rand) byte = static_cast<uint8_t>(random());
  return instance;
}

GeneratedKeys Generate(const Idpf& idpf, const RandomInstance& instance) {
  Result<GeneratedKeys> keys = idpf.Gen(instance.alpha, instance.beta_inner, instance.beta_leaf,
                                        kCtx, instance.nonce, instance.rand);
  EXPECT_TRUE(keys.has_value()) << keys.error().ToString();
  return *keys;
}

TEST(Idpf, OfficialGenVector) {
  CANOPY_LOAD_VECTOR(vector, "vdaf/IdpfBBCGGI21_0.json");
  const size_t bits = JsonUint(vector, "bits");
  Result<Idpf> idpf = Idpf::Create(bits);
  ASSERT_TRUE(idpf);
  BitString alpha;
  for (const auto& bit : vector.at("alpha").as_array()) alpha = alpha.Extended(bit.as_bool());
  std::vector<InnerValue> beta_inner;
  for (const auto& pair : vector.at("beta_inner").as_array()) {
    beta_inner.push_back({ParseField64(pair.at(0)), ParseField64(pair.at(1))});
  }
  const auto& leaf = vector.at("beta_leaf").as_array();
  LeafValue beta_leaf = {Field255::FromUint64(std::stoull(std::string(leaf.at(0).as_string()))),
                         Field255::FromUint64(std::stoull(std::string(leaf.at(1).as_string())))};
  std::vector<uint8_t> ctx = JsonHex(vector, "ctx");
  std::vector<uint8_t> nonce = JsonHex(vector, "nonce");
  ASSERT_EQ(nonce.size(), kNonceSize);
  // The draft's generator draws rand as key0 || key1.
  std::vector<uint8_t> rand;
  for (const auto& key : vector.at("keys").as_array()) {
    std::vector<uint8_t> bytes = ::canopy::testing::HexToBytes(key.as_string());
    rand.insert(rand.end(), bytes.begin(), bytes.end());
  }
  ASSERT_EQ(rand.size(), kRandSize);

  Result<GeneratedKeys> keys =
      idpf->Gen(alpha, beta_inner, beta_leaf, ctx, Nonce(nonce.data(), 16),
                std::span<const uint8_t, kRandSize>(rand.data(), kRandSize));
  ASSERT_TRUE(keys) << keys.error().ToString();
  std::vector<uint8_t> encoded = idpf->EncodePublicShare(keys->public_share);
  EXPECT_EQ(BytesToHex(encoded), JsonString(vector, "public_share"));
  EXPECT_EQ(encoded.size(), idpf->PublicShareSize());
  EXPECT_EQ(BytesToHex(keys->keys[0]), std::string(vector.at("keys").at(0).as_string()));
  EXPECT_EQ(BytesToHex(keys->keys[1]), std::string(vector.at("keys").at(1).as_string()));

  Result<PublicShare> decoded = idpf->DecodePublicShare(encoded);
  ASSERT_TRUE(decoded) << decoded.error().ToString();
  EXPECT_EQ(idpf->EncodePublicShare(*decoded), encoded);

  // The vector has no evaluation outputs; check the point function instead.
  for (size_t level = 0; level + 1 < bits; ++level) {
    std::vector<BitString> prefixes = {BitString::FromUint64(0, level + 1),
                                       BitString::FromUint64(1, level + 1)};
    auto share0 =
        idpf->EvalInner(0, *decoded, keys->keys[0], level, prefixes, ctx, Nonce(nonce.data(), 16));
    auto share1 =
        idpf->EvalInner(1, *decoded, keys->keys[1], level, prefixes, ctx, Nonce(nonce.data(), 16));
    ASSERT_TRUE(share0 && share1);
    for (size_t j = 0; j < kValueLen; ++j) {
      EXPECT_EQ((*share0)[0][j] + (*share1)[0][j], beta_inner[level][j]) << "level " << level;
      EXPECT_EQ((*share0)[1][j] + (*share1)[1][j], Field64::Zero()) << "level " << level;
    }
  }
}

// Both shares sum to beta on alpha's prefix at every level, zero elsewhere.
TEST(Idpf, SharesSumToThePointFunction) {
  std::mt19937_64 random(1);
  for (size_t bits : {1, 2, 3, 8, 13, 64, 129}) {
    Result<Idpf> idpf = Idpf::Create(bits);
    ASSERT_TRUE(idpf);
    RandomInstance instance = MakeInstance(bits, random);
    GeneratedKeys keys = Generate(*idpf, instance);
    for (size_t level = 0; level < bits; ++level) {
      std::set<BitString> chosen = {instance.alpha.Prefix(level + 1)};
      for (int i = 0; i < 4; ++i) {
        BitString other = instance.alpha.Prefix(level + 1);
        size_t flip = random() % (level + 1);
        BitString flipped = other.Prefix(flip).Extended(!other.Bit(flip));
        for (size_t b = flip + 1; b <= level; ++b) flipped = flipped.Extended(random() & 1);
        chosen.insert(flipped);
      }
      std::vector<BitString> prefixes(chosen.begin(), chosen.end());
      if (level + 1 < bits) {
        auto s0 = idpf->EvalInner(0, keys.public_share, keys.keys[0], level, prefixes, kCtx,
                                  instance.nonce);
        auto s1 = idpf->EvalInner(1, keys.public_share, keys.keys[1], level, prefixes, kCtx,
                                  instance.nonce);
        ASSERT_TRUE(s0 && s1);
        for (size_t i = 0; i < prefixes.size(); ++i) {
          bool on_path = prefixes[i] == instance.alpha.Prefix(level + 1);
          for (size_t j = 0; j < kValueLen; ++j) {
            EXPECT_EQ((*s0)[i][j] + (*s1)[i][j],
                      on_path ? instance.beta_inner[level][j] : Field64::Zero())
                << "bits " << bits << " level " << level << " prefix " << prefixes[i].ToString();
          }
        }
      } else {
        auto s0 =
            idpf->EvalLeaf(0, keys.public_share, keys.keys[0], prefixes, kCtx, instance.nonce);
        auto s1 =
            idpf->EvalLeaf(1, keys.public_share, keys.keys[1], prefixes, kCtx, instance.nonce);
        ASSERT_TRUE(s0 && s1);
        for (size_t i = 0; i < prefixes.size(); ++i) {
          bool on_path = prefixes[i] == instance.alpha;
          for (size_t j = 0; j < kValueLen; ++j) {
            EXPECT_EQ((*s0)[i][j] + (*s1)[i][j], on_path ? instance.beta_leaf[j] : Field255::Zero())
                << "bits " << bits << " leaf prefix " << prefixes[i].ToString();
          }
        }
      }
    }
  }
}

// A walk's candidate sets: at each level a random subset of the children of
// the previous level's candidates (always keeping alpha's path), sometimes
// skipping levels, sometimes a fresh unrelated set (which must fall back to
// evaluation from the root).
std::vector<BitString> NextCandidates(const std::vector<BitString>& previous, size_t level,
                                      const BitString& alpha, std::mt19937_64& random,
                                      bool unrelated) {
  std::set<BitString> chosen = {alpha.Prefix(level + 1)};
  if (unrelated || previous.empty()) {
    for (int i = 0; i < 5; ++i) {
      BitString fresh;
      for (size_t b = 0; b <= level; ++b) fresh = fresh.Extended(random() & 1);
      chosen.insert(fresh);
    }
  } else {
    for (const BitString& parent : previous) {
      BitString extended = parent;
      // Extend to the new level with random bits; keep a few.
      while (extended.size() < level + 1) extended = extended.Extended(random() & 1);
      if (random() % 3 != 0) chosen.insert(extended);
      BitString sibling = parent;
      while (sibling.size() < level + 1) sibling = sibling.Extended(random() & 1);
      if (random() % 2 == 0) chosen.insert(sibling);
    }
  }
  std::vector<BitString> out(chosen.begin(), chosen.end());
  if (out.size() > 12) {
    // Keep the walk small but always keep alpha's prefix.
    std::vector<BitString> trimmed = {alpha.Prefix(level + 1)};
    for (const BitString& p : out) {
      if (trimmed.size() < 12 && !(p == trimmed[0])) trimmed.push_back(p);
    }
    std::sort(trimmed.begin(), trimmed.end());
    out = trimmed;
  }
  return out;
}

TEST(CachedEvaluator, AgreesWithEvaluationFromTheRootForEveryBitLength) {
  std::mt19937_64 random(2);
  for (size_t bits = 1; bits <= 256; ++bits) {
    Result<Idpf> idpf = Idpf::Create(bits);
    ASSERT_TRUE(idpf);
    RandomInstance instance = MakeInstance(bits, random);
    GeneratedKeys keys = Generate(*idpf, instance);
    for (int agg_id = 0; agg_id < 2; ++agg_id) {
      auto evaluator = CachedEvaluator::Create(*idpf, agg_id, keys.public_share, keys.keys[agg_id],
                                               kCtx, instance.nonce);
      ASSERT_TRUE(evaluator) << evaluator.error().ToString();
      std::vector<BitString> candidates;
      size_t level = 0;
      // Visit levels with occasional skips; long strings sample fewer levels.
      while (level < bits) {
        bool unrelated = random() % 10 == 0;
        candidates = NextCandidates(candidates, level, instance.alpha, random, unrelated);
        if (level + 1 < bits) {
          auto cached = evaluator->EvaluateInner(level, candidates);
          auto reference = idpf->EvalInner(agg_id, keys.public_share, keys.keys[agg_id], level,
                                           candidates, kCtx, instance.nonce);
          ASSERT_TRUE(cached && reference);
          ASSERT_EQ(*cached, *reference) << "bits " << bits << " level " << level;
        } else {
          auto cached = evaluator->EvaluateLeaf(candidates);
          auto reference = idpf->EvalLeaf(agg_id, keys.public_share, keys.keys[agg_id], candidates,
                                          kCtx, instance.nonce);
          ASSERT_TRUE(cached && reference);
          ASSERT_EQ(*cached, *reference) << "bits " << bits << " leaf";
        }
        EXPECT_EQ(evaluator->cached_level(), static_cast<long>(level));
        EXPECT_EQ(evaluator->cached_nodes(), candidates.size());
        size_t step = 1 + (random() % 4 == 0 ? random() % 3 : 0);
        if (bits > 64) step += random() % 8;
        if (level + 1 < bits && level + step >= bits) step = bits - 1 - level;
        level += step;
      }
    }
  }
}

// A batch evaluates many reports one after another under a
// DeferredScratchWipe, so each walk starts with working buffers that hold
// the previous report's nodes (of another size) instead of zeros: the
// values must not depend on that. Reports are interleaved level by level,
// as a batch of a heavy-hitters walk visits them.
TEST(CachedEvaluator, ReportsOfOneBatchShareUnwipedBuffers) {
  std::mt19937_64 random(23);
  const size_t bits = 20;
  Result<Idpf> idpf = Idpf::Create(bits);
  ASSERT_TRUE(idpf);
  struct Report {
    RandomInstance instance;
    GeneratedKeys keys;
    std::optional<CachedEvaluator> evaluator;
    std::vector<BitString> candidates;
  };
  std::vector<Report> reports(6);
  for (Report& report : reports) {
    report.instance = MakeInstance(bits, random);
    report.keys = Generate(*idpf, report.instance);
    auto evaluator = CachedEvaluator::Create(*idpf, 1, report.keys.public_share,
                                             report.keys.keys[1], kCtx, report.instance.nonce);
    ASSERT_TRUE(evaluator);
    report.evaluator.emplace(std::move(*evaluator));
  }
  DeferredScratchWipe batch;
  for (size_t level = 0; level < bits; level += 1 + random() % 3) {
    DeferredScratchWipe nested;  // Nesting defers to the outermost.
    for (Report& report : reports) {
      report.candidates =
          NextCandidates(report.candidates, level, report.instance.alpha, random, false);
      if (level + 1 < bits) {
        auto cached = report.evaluator->EvaluateInner(level, report.candidates);
        auto reference = idpf->EvalInner(1, report.keys.public_share, report.keys.keys[1], level,
                                         report.candidates, kCtx, report.instance.nonce);
        ASSERT_TRUE(cached && reference);
        ASSERT_EQ(*cached, *reference) << "level " << level;
      } else {
        auto cached = report.evaluator->EvaluateLeaf(report.candidates);
        auto reference = idpf->EvalLeaf(1, report.keys.public_share, report.keys.keys[1],
                                        report.candidates, kCtx, report.instance.nonce);
        ASSERT_TRUE(cached && reference);
        ASSERT_EQ(*cached, *reference) << "leaf";
      }
    }
  }
}

// A walk whose every level extends the previous level's candidates computes
// each candidate's node exactly once, and a walk that skips levels computes
// the skipped ancestors once each.
TEST(CachedEvaluator, ComputesEachNodeOnce) {
  std::mt19937_64 random(5);
  const size_t bits = 16;
  Result<Idpf> idpf = Idpf::Create(bits);
  ASSERT_TRUE(idpf);
  RandomInstance instance = MakeInstance(bits, random);
  GeneratedKeys keys = Generate(*idpf, instance);
  auto evaluator =
      CachedEvaluator::Create(*idpf, 1, keys.public_share, keys.keys[1], kCtx, instance.nonce);
  ASSERT_TRUE(evaluator);
  std::vector<BitString> candidates = {*BitString::Parse("0"), *BitString::Parse("1")};
  uint64_t expected_nodes = 0;
  for (size_t level = 0; level + 1 < bits; ++level) {
    if (level > 0) {
      std::vector<BitString> children;
      for (const BitString& parent : candidates) {
        if (children.size() < 40) {
          children.push_back(parent.Extended(false));
          children.push_back(parent.Extended(true));
        }
      }
      candidates = children;
    }
    ASSERT_TRUE(evaluator->EvaluateInner(level, candidates));
    expected_nodes += candidates.size();
    EXPECT_EQ(evaluator->nodes_computed(), expected_nodes) << "level " << level;
  }
  // Skipping from level 14 to the leaf at 15 reuses the cache as well.
  std::vector<BitString> leaves = {candidates[0].Extended(true)};
  ASSERT_TRUE(evaluator->EvaluateLeaf(leaves));
  EXPECT_EQ(evaluator->nodes_computed(), expected_nodes + 1);
}

TEST(CachedEvaluator, SkippedLevelsAreComputedOncePerAncestor) {
  std::mt19937_64 random(6);
  Result<Idpf> idpf = Idpf::Create(10);
  ASSERT_TRUE(idpf);
  RandomInstance instance = MakeInstance(10, random);
  GeneratedKeys keys = Generate(*idpf, instance);
  auto evaluator =
      CachedEvaluator::Create(*idpf, 0, keys.public_share, keys.keys[0], kCtx, instance.nonce);
  ASSERT_TRUE(evaluator);
  std::vector<BitString> first = {*BitString::Parse("01")};
  ASSERT_TRUE(evaluator->EvaluateInner(1, first));  // From the root: 2 nodes.
  EXPECT_EQ(evaluator->nodes_computed(), 2u);
  // Level 4 under "01": shared ancestors 010 and 0101 are computed once.
  std::vector<BitString> second = {*BitString::Parse("01010"), *BitString::Parse("01011")};
  ASSERT_TRUE(evaluator->EvaluateInner(4, second));
  EXPECT_EQ(evaluator->nodes_computed(), 2u + 1 + 1 + 2);
}

// A walk of four levels a round keeps each round's first level (two nodes
// per survivor instead of sixteen): the values are still those from the
// root, and the next round, starting from the kept set, computes the levels
// in between again on its survivors' paths only.
TEST(CachedEvaluator, KeepsTheNodesOfAnIntermediateLevel) {
  std::mt19937_64 random(11);
  const size_t bits = 16;
  Result<Idpf> idpf = Idpf::Create(bits);
  ASSERT_TRUE(idpf);
  RandomInstance instance = MakeInstance(bits, random);
  GeneratedKeys keys = Generate(*idpf, instance);
  auto evaluator =
      CachedEvaluator::Create(*idpf, 1, keys.public_share, keys.keys[1], kCtx, instance.nonce);
  ASSERT_TRUE(evaluator);
  auto set_of = [](size_t level, std::vector<BitString> prefixes) {
    std::sort(prefixes.begin(), prefixes.end());
    return *PrefixSet::Create(level, std::move(prefixes));
  };
  auto evaluate = [&](const EvaluationPlan& plan) {
    const PrefixSet& target = *plan.target();
    std::vector<InnerValue> values(target.size());
    ASSERT_TRUE(evaluator->EvaluateInner(plan, values));
    auto reference = idpf->EvalInner(1, keys.public_share, keys.keys[1], target.level(),
                                     target.prefixes(), kCtx, instance.nonce);
    ASSERT_TRUE(reference);
    EXPECT_EQ(values, *reference) << "level " << target.level();
  };
  auto nodes_of = [](const EvaluationPlan& plan) {
    size_t nodes = 0;
    for (const EvaluationPlan::Step& step : plan.steps()) nodes += step.parent.size();
    return nodes;
  };

  // Round 1, from the root: all sixteen 4-bit strings, kept as they are.
  auto first = EvaluationPlan::Create(set_of(3, Extensions({BitString()}, 4)), nullptr);
  EXPECT_EQ(first->cache_set(), first->target());
  evaluate(*first);
  EXPECT_EQ(evaluator->cached_level(), 3);

  // Round 2: two survivors, extended by four bits; level 4 (the round's
  // first) is kept: two nodes per survivor.
  // The other survivor starts with the other first bit than alpha's.
  const std::string other = instance.alpha.Bit(0) ? "0101" : "1010";
  const std::vector<BitString> survivors = {instance.alpha.Prefix(4), *BitString::Parse(other)};
  auto second = EvaluationPlan::Create(set_of(7, Extensions(survivors, 4)), first->cache_set(), 4);
  ASSERT_NE(second->source(), nullptr);
  EXPECT_EQ(second->cache_set()->level(), 4u);
  EXPECT_EQ(second->cache_set()->size(), 4u);
  EXPECT_EQ(second->FromRoot().cache_set(), second->cache_set());  // The same set, shared.
  EXPECT_EQ(second->steps()[second->cache_step()].depth, 4u);
  uint64_t before = evaluator->nodes_computed();
  evaluate(*second);
  EXPECT_EQ(evaluator->nodes_computed() - before, 4u + 8 + 16 + 32);
  EXPECT_EQ(evaluator->cached_level(), 4);
  EXPECT_EQ(evaluator->cached_nodes(), 4u);

  // Round 3 starts from the level-4 nodes: levels 5 to 7 again for its two
  // survivors' paths only (two nodes each), then 4, 8, 16 and 32.
  const std::vector<BitString> next = {instance.alpha.Prefix(8), *BitString::Parse(other + "0110")};
  auto third = EvaluationPlan::Create(set_of(11, Extensions(next, 4)), second->cache_set(), 8);
  ASSERT_NE(third->source(), nullptr);
  EXPECT_EQ(nodes_of(*third), 2u + 2 + 2 + 4 + 8 + 16 + 32);
  // The paths take one child of each node; the levels below the survivors
  // take both, which evaluators correct in place. From the root, every
  // level of round 1 takes both.
  auto every_child_of = [](const EvaluationPlan& plan) {
    std::vector<bool> flags;
    for (const EvaluationPlan::Step& step : plan.steps()) flags.push_back(step.every_child);
    return flags;
  };
  EXPECT_EQ(every_child_of(*third),
            (std::vector<bool>{false, false, false, true, true, true, true}));
  EXPECT_EQ(every_child_of(*first), (std::vector<bool>{true, true, true, true}));
  before = evaluator->nodes_computed();
  evaluate(*third);
  EXPECT_EQ(evaluator->nodes_computed() - before, nodes_of(*third));  // Not from the root.
  EXPECT_EQ(evaluator->cached_level(), 8);

  // A level the plan does not compute keeps the target.
  EXPECT_EQ(EvaluationPlan::Create(third->target(), second->cache_set(), 3)->cache_set(),
            third->target());
  EXPECT_EQ(EvaluationPlan::Create(third->target(), nullptr, 11)->cache_set(), third->target());
  EXPECT_EQ(EvaluationPlan::Create(third->target(), nullptr, 40)->cache_set(), third->target());
}

// An evaluator that holds only some levels' corrections evaluates a level
// whose reads it holds exactly as one that holds all, and refuses one that
// reads a level it dropped; exported levels imported again are the same.
TEST(CachedEvaluator, EvaluatesFromTheLevelsItHolds) {
  std::mt19937_64 random(9);
  const size_t bits = 12;
  Result<Idpf> idpf = Idpf::Create(bits);
  ASSERT_TRUE(idpf);
  RandomInstance instance = MakeInstance(bits, random);
  GeneratedKeys keys = Generate(*idpf, instance);
  auto whole =
      CachedEvaluator::Create(*idpf, 0, keys.public_share, keys.keys[0], kCtx, instance.nonce);
  auto part =
      CachedEvaluator::Create(*idpf, 0, keys.public_share, keys.keys[0], kCtx, instance.nonce);
  ASSERT_TRUE(whole && part);
  EXPECT_EQ(part->levels_first(), 0u);
  EXPECT_EQ(part->levels_end(), bits);
  std::vector<std::vector<uint8_t>> exported(bits);
  for (size_t level = 0; level < bits; ++level) {
    exported[level].resize(part->LevelBytes(level));
    part->ExportLevel(level, exported[level]);
  }
  EXPECT_EQ(exported[0].size(), 16u + 1 + 16);
  EXPECT_EQ(exported[bits - 1].size(), 16u + 1 + 64);

  std::vector<BitString> level2 = {*BitString::Parse("000"), instance.alpha.Prefix(3)};
  std::sort(level2.begin(), level2.end());
  level2.erase(std::unique(level2.begin(), level2.end()), level2.end());
  auto expected2 = whole->EvaluateInner(2, level2);
  ASSERT_TRUE(expected2);
  part->HoldLevels(0, 3);
  for (size_t level = 0; level < 3; ++level) ASSERT_TRUE(part->ImportLevel(level, exported[level]));
  auto got2 = part->EvaluateInner(2, level2);
  ASSERT_TRUE(got2);
  EXPECT_EQ(*got2, *expected2);

  // Level 6 from the cached level 2 reads levels 3 to 6.
  std::vector<BitString> level6;
  for (const BitString& prefix : level2) {
    level6.push_back(prefix.Extended(true).Extended(false).Extended(true).Extended(true));
  }
  std::sort(level6.begin(), level6.end());
  auto expected6 = whole->EvaluateInner(6, level6);
  ASSERT_TRUE(expected6);
  auto refused = part->EvaluateInner(6, level6);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
  part->HoldLevels(3, 7);
  EXPECT_EQ(part->levels_first(), 3u);
  EXPECT_EQ(part->levels_end(), 7u);
  for (size_t level = 3; level < 7; ++level) ASSERT_TRUE(part->ImportLevel(level, exported[level]));
  auto got6 = part->EvaluateInner(6, level6);
  ASSERT_TRUE(got6);
  EXPECT_EQ(*got6, *expected6);

  // The leaf from the root needs every level.
  std::vector<BitString> leaf = {instance.alpha};
  auto expected_leaf = whole->EvaluateLeaf(leaf);
  ASSERT_TRUE(expected_leaf);
  EXPECT_FALSE(part->EvaluateLeaf(leaf));
  part->HoldLevels(0, bits);
  for (size_t level = 0; level < bits; ++level)
    ASSERT_TRUE(part->ImportLevel(level, exported[level]));
  auto got_leaf = part->EvaluateLeaf(leaf);
  ASSERT_TRUE(got_leaf);
  EXPECT_EQ(*got_leaf, *expected_leaf);
}

TEST(CachedEvaluator, RefusesBadPrefixSets) {
  std::mt19937_64 random(3);
  Result<Idpf> idpf = Idpf::Create(8);
  ASSERT_TRUE(idpf);
  RandomInstance instance = MakeInstance(8, random);
  GeneratedKeys keys = Generate(*idpf, instance);
  auto evaluator =
      CachedEvaluator::Create(*idpf, 0, keys.public_share, keys.keys[0], kCtx, instance.nonce);
  ASSERT_TRUE(evaluator);
  auto p = [](std::string_view text) { return *BitString::Parse(text); };
  std::vector<BitString> unsorted = {p("11"), p("01")};
  std::vector<BitString> repeated = {p("01"), p("01")};
  std::vector<BitString> wrong_length = {p("011")};
  EXPECT_FALSE(evaluator->EvaluateInner(1, unsorted));
  EXPECT_FALSE(evaluator->EvaluateInner(1, repeated));
  EXPECT_FALSE(evaluator->EvaluateInner(1, wrong_length));
  EXPECT_FALSE(evaluator->EvaluateInner(7, std::vector<BitString>{p("00000000")}));  // The leaf.
  EXPECT_FALSE(evaluator->EvaluateInner(9, std::vector<BitString>{}));
  EXPECT_FALSE(
      CachedEvaluator::Create(*idpf, 2, keys.public_share, keys.keys[0], kCtx, instance.nonce));
  EXPECT_FALSE(
      idpf->EvalInner(0, keys.public_share, keys.keys[0], 1, repeated, kCtx, instance.nonce));
  Result<Idpf> other = Idpf::Create(9);
  ASSERT_TRUE(other);
  EXPECT_FALSE(
      CachedEvaluator::Create(*other, 0, keys.public_share, keys.keys[0], kCtx, instance.nonce));
}

// The batch convert samples each value where its AES block lands and takes
// a fast path when every draw is below p; a draw at or above p (probability
// about 2^-32 each) must be resampled from the stream exactly as the
// one-seed convert does. The rejecting seed was found by a search over
// seeds for this context and nonce.
TEST(LevelXofs, BatchConvertResamplesARejectedDraw) {
  std::array<uint8_t, kNonceSize> nonce;
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<uint8_t>(i);
  const Seed rejecting = {0x83, 0xed, 0x87, 0x5f, 0x00, 0x00, 0x00, 0x00,
                          0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a};
  {
    // The seed's value block (block 1 of its convert stream) really holds a
    // word at or above p: VDAF's convert DST (version 18, IDPF, usage 1).
    std::vector<uint8_t> dst = {18, 1, 0, 0, 0, 0, 0, 1};
    dst.insert(dst.end(), kCtx.begin(), kCtx.end());
    const crypto::FixedKeyAes128 cipher = crypto::XofFixedKeyAes128::DeriveFixedKey(dst, nonce);
    std::array<uint8_t, 16> block;
    cipher.HashCounterBlocks(rejecting.data(), 1, 1, block.data(), 1);
    uint64_t first_word = 0;
    for (int b = 7; b >= 0; --b) first_word = first_word << 8 | block[static_cast<size_t>(b)];
    ASSERT_GE(first_word, Field64::kModulus);
  }
  const internal::LevelXofs xofs(16, kCtx, nonce);
  std::mt19937_64 random(13);
  std::vector<Seed> seeds(9);
  for (Seed& seed : seeds) {
    for (uint8_t& byte : seed) byte = static_cast<uint8_t>(random());
  }
  seeds[4] = rejecting;
  std::vector<Seed> next_seeds(seeds.size());
  std::vector<InnerValue> values(seeds.size()), values_alone(seeds.size());
  xofs.ConvertInnerBatch(seeds, next_seeds.data(), values.data());
  xofs.ConvertInnerBatch(seeds, nullptr, values_alone.data());
  for (size_t i = 0; i < seeds.size(); ++i) {
    Seed expected_seed;
    InnerValue expected_value;
    xofs.ConvertInner(seeds[i], &expected_seed, &expected_value);
    EXPECT_EQ(next_seeds[i], expected_seed) << i;
    EXPECT_EQ(values[i], expected_value) << i;
    EXPECT_EQ(values_alone[i], expected_value) << i;
  }
}

TEST(Idpf, RefusesBadBitLengths) {
  EXPECT_FALSE(Idpf::Create(0));
  EXPECT_TRUE(Idpf::Create(1));
  EXPECT_TRUE(Idpf::Create(kMaxBits));
  EXPECT_FALSE(Idpf::Create(kMaxBits + 1));
}

TEST(Idpf, DecodeRefusesMalformedPublicShares) {
  std::mt19937_64 random(4);
  for (size_t bits : {1, 3, 4, 5, 16}) {
    Result<Idpf> idpf = Idpf::Create(bits);
    ASSERT_TRUE(idpf);
    RandomInstance instance = MakeInstance(bits, random);
    std::vector<uint8_t> encoded = idpf->EncodePublicShare(Generate(*idpf, instance).public_share);
    ASSERT_TRUE(idpf->DecodePublicShare(encoded));

    // Every truncation and one extra byte.
    for (size_t length = 0; length < encoded.size(); ++length) {
      EXPECT_FALSE(idpf->DecodePublicShare(std::span(encoded).first(length))) << length;
    }
    std::vector<uint8_t> longer = encoded;
    longer.push_back(0);
    EXPECT_FALSE(idpf->DecodePublicShare(longer));

    // A padding bit in the control-bit bytes (only when there is padding).
    const size_t control_bytes = (2 * bits + 7) / 8;
    if ((2 * bits) % 8 != 0) {
      std::vector<uint8_t> padded = encoded;
      padded[control_bytes - 1] |= 0x80;
      EXPECT_FALSE(idpf->DecodePublicShare(padded)) << "bits " << bits;
    }
    // An inner payload element >= p (when there is an inner level).
    if (bits > 1) {
      std::vector<uint8_t> out_of_range = encoded;
      std::fill_n(out_of_range.begin() + static_cast<ptrdiff_t>(control_bytes + 16 * bits), 8,
                  0xff);
      EXPECT_FALSE(idpf->DecodePublicShare(out_of_range));
    }
    // A leaf payload element >= p.
    std::vector<uint8_t> leaf_out_of_range = encoded;
    std::fill(leaf_out_of_range.end() - 32, leaf_out_of_range.end(), 0xff);
    EXPECT_FALSE(idpf->DecodePublicShare(leaf_out_of_range));
  }
}

TEST(BitString, OrdersLikeTuplesOfBools) {
  auto p = [](std::string_view text) { return *BitString::Parse(text); };
  EXPECT_LT(p("0"), p("1"));
  EXPECT_LT(p("0"), p("00"));
  EXPECT_LT(p("1"), p("10"));
  EXPECT_LT(p("01"), p("1"));
  EXPECT_LT(p("0111111111"), p("1"));
  EXPECT_LT(p("00000000"), p("000000000"));
  EXPECT_EQ(p("1010").ToString(), "1010");
  EXPECT_TRUE(p("10110").StartsWith(p("101")));
  EXPECT_FALSE(p("10110").StartsWith(p("100")));
  EXPECT_FALSE(BitString::Parse("012"));
}

TEST(BitString, FromBytesChecksLengthAndPadding) {
  std::vector<uint8_t> one = {0x80};
  EXPECT_TRUE(BitString::FromBytes(one, 1));
  EXPECT_EQ(BitString::FromBytes(one, 1)->ToString(), "1");
  std::vector<uint8_t> padded = {0xc0};
  EXPECT_FALSE(BitString::FromBytes(padded, 1));
  EXPECT_FALSE(BitString::FromBytes(one, 9));
  std::vector<uint8_t> two = {0xff, 0x80};
  EXPECT_EQ(BitString::FromBytes(two, 9)->ToString(), "111111111");
}

}  // namespace
}  // namespace canopy::idpf
