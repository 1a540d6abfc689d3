// Poplar1, the heavy-hitters VDAF of VDAF draft-20 (section "Poplar1"), with
// the caching a prefix-tree walk needs.
//
// A report prepared once (PrepareReport) keeps, across aggregation
// parameters: the decoded shares, the report's two fixed AES keys, the IDPF
// node states the next level starts from (the last round's first level,
// see idpf::EvaluationPlan), and the position of the correlated-randomness
// XOF. Verifying the same report at a deeper level then
// costs only the new tree nodes and the sketch, never a walk from the root.
#ifndef CANOPY_POPLAR_POPLAR1_H_
#define CANOPY_POPLAR_POPLAR1_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "crypto/error.h"
#include "crypto/xof.h"
#include "idpf/bit_string.h"
#include "idpf/idpf.h"
#include "idpf/prefix_set.h"
#include "poplar/vdaf.h"

namespace canopy::poplar {

// Poplar1's aggregation parameter: a level and the candidate prefixes of that
// level (each level + 1 bits long), as decoded. When the prefixes are strictly
// increasing - which is_valid requires before any report is verified - `set`
// and `plan` are filled in: the validated set and the plan that evaluates it
// from the previous parameter's set.
struct Poplar1AggParam final : AggregationParameter {
  size_t level = 0;
  std::vector<idpf::BitString> prefixes;
  std::shared_ptr<const idpf::PrefixSet> set;
  std::shared_ptr<const idpf::EvaluationPlan> plan;
};

class Poplar1 final : public Vdaf {
 public:
  static constexpr uint32_t kAlgorithmId = 0x00000006;
  static constexpr size_t kRandSize = 128;

  // Errors (kInvalidArgument): bits is 0 or above 65536 (the draft encodes a
  // level in 16 bits).
  static Result<std::unique_ptr<Poplar1>> Create(size_t bits);

  size_t bits() const { return idpf_.bits(); }

  // Builds an aggregation parameter from prefixes; `previous` as in
  // DecodeAggParam. Errors (kInvalidArgument): level out of range, a prefix
  // of the wrong length.
  Result<std::shared_ptr<const Poplar1AggParam>> MakeAggParam(
      size_t level, std::vector<idpf::BitString> prefixes,
      const AggregationParameter* previous) const;

  uint32_t algorithm_id() const override { return kAlgorithmId; }
  std::string name() const override;
  size_t rounds() const override { return 2; }
  size_t rand_size() const override { return kRandSize; }

  Result<ShardOutput> Shard(std::span<const uint8_t> ctx, const Measurement& measurement,
                            std::span<const uint8_t> nonce,
                            std::span<const uint8_t> rand) const override;
  Result<std::shared_ptr<const AggregationParameter>> DecodeAggParam(
      std::span<const uint8_t> encoded, const AggregationParameter* previous) const override;
  std::vector<uint8_t> EncodeAggParam(const AggregationParameter& agg_param) const override;
  bool IsValid(const AggregationParameter& agg_param,
               std::span<const AggregationParameter* const> previous) const override;
  Result<std::unique_ptr<PreparedReport>> PrepareReport(
      int agg_id, std::span<const uint8_t> ctx, std::span<const uint8_t> nonce,
      std::span<const uint8_t> public_share, std::span<const uint8_t> input_share) const override;
  Result<VerifyTransition> VerifyInit(std::span<const uint8_t> verify_key,
                                      std::span<const uint8_t> ctx,
                                      const AggregationParameter& agg_param,
                                      PreparedReport& report) const override;
  // Verifies many reports at one level: the parameter is checked once, the
  // verification randomness of four reports is hashed at once (4-way
  // TurboSHAKE128) and scratch space is shared. Gives exactly VerifyInit's
  // results, report by report.
  void VerifyInitBatch(std::span<const uint8_t> verify_key, std::span<const uint8_t> ctx,
                       const AggregationParameter& agg_param,
                       std::span<PreparedReport* const> reports,
                       std::span<Result<VerifyTransition>> out) const override;
  Result<std::vector<uint8_t>> VerifierSharesToMessage(
      std::span<const uint8_t> ctx, const AggregationParameter& agg_param,
      std::span<const std::vector<uint8_t>> verifier_shares) const override;
  Result<VerifyTransition> VerifyNext(std::span<const uint8_t> ctx, VerifyState state,
                                      std::span<const uint8_t> verifier_message) const override;
  FieldVector AggregateInit(const AggregationParameter& agg_param) const override;
  Result<FieldVector> DecodeAggShare(const AggregationParameter& agg_param,
                                     std::span<const uint8_t> encoded) const override;
  Result<AggregateResult> Unshard(const AggregationParameter& agg_param,
                                  std::span<const std::vector<uint8_t>> agg_shares,
                                  uint64_t num_measurements) const override;

  // The size of an encoded input share and public share.
  size_t InputShareSize() const;
  size_t PublicShareSize() const { return idpf_.PublicShareSize(); }

 private:
  explicit Poplar1(idpf::Idpf idpf) : idpf_(idpf) {}

  bool IsLeaf(size_t level) const { return level + 1 == bits(); }
  // The checks VerifyInit makes once per parameter; returns the parameter.
  Result<const Poplar1AggParam*> CheckVerifyParam(std::span<const uint8_t> verify_key,
                                                  const AggregationParameter& agg_param) const;
  // verify_init of one report from its verification randomness, written into
  // `out` (reusing its vectors).
  template <typename F>
  Result<void> VerifyInitWithRand(const Poplar1AggParam& agg_param, class Poplar1Report& report,
                                  std::span<const F> verify_rand, VerifyTransition& out) const;
  template <typename F>
  void VerifyInitBatchAtLevel(std::span<const uint8_t> verify_key, std::span<const uint8_t> ctx,
                              const Poplar1AggParam& agg_param,
                              std::span<PreparedReport* const> reports,
                              std::span<Result<VerifyTransition>> out) const;

  idpf::Idpf idpf_;
};

}  // namespace canopy::poplar

#endif  // CANOPY_POPLAR_POPLAR1_H_
