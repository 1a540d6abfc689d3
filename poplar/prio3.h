// Prio3, the VDAF of VDAF draft-20 (section "Prio3") for sums, counts,
// histograms and vectors, behind the common Vdaf interface.
//
// A client splits its encoded measurement into additive shares, one per
// aggregator (2 to 255 of them), and proves in zero knowledge, with the FLP
// of poplar/flp.h, that the measurement is valid. The leader (aggregator 0)
// receives its shares in full; each helper receives a 32-byte seed from
// which it expands them. Verification takes one round: every aggregator
// queries its shares of the measurement and proof(s); the verifier shares
// add up to a verifier that decides validity. Variants whose circuits use
// joint randomness (SumVec, Histogram, MultihotCountVec) also check that the
// client derived it honestly: the verifier message is the joint-randomness
// seed the aggregators recompute, compared in verify_next.
//
// Wire formats are the draft's, byte for byte (section "Message
// Serialization").
#ifndef CANOPY_POPLAR_PRIO3_H_
#define CANOPY_POPLAR_PRIO3_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "crypto/error.h"
#include "poplar/vdaf.h"

namespace canopy::poplar {

// Prio3's aggregation parameter: there is none. It encodes as the empty
// string, and a report is aggregated once.
struct Prio3AggParam final : AggregationParameter {};

class Prio3 final : public Vdaf {
 public:
  // The draft's algorithm identifiers; 0xFFFFFFFF is reserved for testing
  // and used by the non-standard instances (multiproof SumVec, HigherDegree).
  static constexpr uint32_t kCountId = 0x00000001;
  static constexpr uint32_t kSumId = 0x00000002;
  static constexpr uint32_t kSumVecId = 0x00000003;
  static constexpr uint32_t kHistogramId = 0x00000004;
  static constexpr uint32_t kMultihotCountVecId = 0x00000005;
  static constexpr uint32_t kTestId = 0xFFFFFFFF;

  static constexpr size_t kSeedSize = 32;
  static constexpr size_t kNonceSize = 16;
  static constexpr size_t kVerifyKeySize = 32;
  // The longest application context: the XOFs' domain-separation tags (8
  // bytes and ctx) are at most 65535 bytes. Every method taking a ctx refuses
  // a longer one (kInvalidArgument).
  static constexpr size_t kMaxCtxSize = 65535 - 8;
  static constexpr size_t kMinShares = 2;
  static constexpr size_t kMaxShares = 255;
  static constexpr size_t kMaxProofs = 255;

  // The field an instance computes in.
  enum class FieldKind { kField64, kField128 };

  // Every factory refuses (kInvalidArgument) shares outside [2, 255].

  // Prio3Count: measurements 0 or 1 (Field64).
  static Result<std::unique_ptr<Prio3>> Count(size_t shares);

  // Prio3Sum: measurements in [0, max_measurement] (Field64). Errors
  // (kInvalidArgument): max_measurement is 0 or at least 2^63.
  static Result<std::unique_ptr<Prio3>> Sum(uint64_t max_measurement, size_t shares);

  // Prio3SumVec: vectors of `length` integers in [0, max_measurement]
  // (Field128). With proofs > 1 it is SumVecWithMultiproof over Field128.
  // Errors (kInvalidArgument): length, max_measurement or chunk_length is 0,
  // chunk_length exceeds the encoded length (length * bit_length(max)), the
  // measurement is too large, or proofs is not in [1, 255].
  static Result<std::unique_ptr<Prio3>> SumVec(size_t length, uint64_t max_measurement,
                                               size_t chunk_length, size_t shares,
                                               size_t proofs = 1);

  // The draft's experimental Prio3SumVecWithMultiproof (algorithm id
  // 0xFFFFFFFF): SumVec with `proofs` proofs over `field`; the official
  // vectors use Field64 and 3 proofs. Errors as SumVec's; with Field64,
  // max_measurement must be below 2^63.
  static Result<std::unique_ptr<Prio3>> SumVecWithMultiproof(FieldKind field, size_t proofs,
                                                             size_t length,
                                                             uint64_t max_measurement,
                                                             size_t chunk_length, size_t shares);

  // Prio3Histogram: a bucket index below `length` (Field128). Errors
  // (kInvalidArgument): length or chunk_length is 0, chunk_length > length.
  static Result<std::unique_ptr<Prio3>> Histogram(size_t length, size_t chunk_length,
                                                  size_t shares);

  // Prio3MultihotCountVec: `length` zeros and ones with at most max_weight
  // ones (Field128). Errors (kInvalidArgument): length or chunk_length is 0,
  // max_weight is not in [1, length], chunk_length exceeds the encoded length
  // (length + bit_length(max_weight)).
  static Result<std::unique_ptr<Prio3>> MultihotCountVec(size_t length, size_t max_weight,
                                                         size_t chunk_length, size_t shares);

  // The test-only Prio3HigherDegree of the draft's test vectors (algorithm id
  // 0xFFFFFFFF): measurements 0, 1 or 2, checked by a degree-3 gadget.
  static Result<std::unique_ptr<Prio3>> HigherDegree(size_t shares);

  // The draft's recommended chunk_length for an encoded measurement of
  // `meas_len` elements: the integer nearest its square root (at least 1).
  static size_t RecommendedChunkLength(size_t meas_len);

  ~Prio3() override;

  FieldKind field() const { return field_; }
  size_t proofs() const { return proofs_; }
  bool uses_joint_rand() const;
  // The FLP's lengths, per proof where the draft has them per proof.
  size_t meas_len() const;
  size_t output_len() const;
  size_t proof_len() const;
  size_t verifier_len() const;

  // Sizes of the encodings, in bytes.
  size_t PublicShareSize() const;
  size_t InputShareSize(int agg_id) const;
  size_t VerifierShareSize() const;
  size_t VerifierMessageSize() const;
  size_t AggShareSize() const;

  uint32_t algorithm_id() const override { return algorithm_id_; }
  std::string name() const override { return name_; }
  size_t shares() const override { return shares_; }
  size_t rounds() const override { return 1; }
  size_t verify_key_size() const override { return kVerifyKeySize; }
  size_t nonce_size() const override { return kNonceSize; }
  size_t rand_size() const override;

  Result<ShardOutput> Shard(std::span<const uint8_t> ctx, const Measurement& measurement,
                            std::span<const uint8_t> nonce,
                            std::span<const uint8_t> rand) const override;

  // Errors (kDecodeError): any non-empty encoding.
  Result<std::shared_ptr<const AggregationParameter>> DecodeAggParam(
      std::span<const uint8_t> encoded, const AggregationParameter* previous) const override;
  std::vector<uint8_t> EncodeAggParam(const AggregationParameter& agg_param) const override;
  // True only for a Prio3 parameter and no previous aggregation.
  bool IsValid(const AggregationParameter& agg_param,
               std::span<const AggregationParameter* const> previous) const override;

  // Errors (kInvalidArgument): agg_id outside [0, shares()), a nonce of the
  // wrong size; (kDecodeError): a public or input share of the wrong length,
  // or a field element >= p.
  Result<std::unique_ptr<PreparedReport>> PrepareReport(
      int agg_id, std::span<const uint8_t> ctx, std::span<const uint8_t> nonce,
      std::span<const uint8_t> public_share, std::span<const uint8_t> input_share) const override;

  // Returns the state (memory: the output share; seed: the corrected
  // joint-randomness seed, or empty) and the encoded verifier share. Errors
  // (kInvalidArgument): not a Prio3 parameter or report of this instance, a
  // verify key that is not 32 bytes, a ctx other than the report's;
  // (kVerifyFailed): a query point that is a root of unity (the draft aborts;
  // probability below 2^-40).
  Result<VerifyTransition> VerifyInit(std::span<const uint8_t> verify_key,
                                      std::span<const uint8_t> ctx,
                                      const AggregationParameter& agg_param,
                                      PreparedReport& report) const override;

  // VerifyInit for many reports, with VerifyInit's results and errors
  // report by report (a rejected report fails only its own entry). The XOF
  // work of four reports at a time (a helper's share expansion, the
  // joint-randomness hashing of the measurement share, the query and joint
  // randomness) runs in the four lanes of one 4-way TurboSHAKE128; the
  // scratch is allocated once per call. Fastest with the reports of one
  // aggregator and a multiple of four of them.
  void VerifyInitBatch(std::span<const uint8_t> verify_key, std::span<const uint8_t> ctx,
                       const AggregationParameter& agg_param,
                       std::span<PreparedReport* const> reports,
                       std::span<Result<VerifyTransition>> out) const override;

  // Takes all shares() verifier shares, in aggregator order, and returns the
  // verifier message: the 32-byte joint-randomness seed, or empty when the
  // circuit uses no joint randomness. Errors (kVerifyFailed): a proof is
  // rejected; (kDecodeError): a share of the wrong length or with an element
  // >= p; (kInvalidArgument): the wrong number of shares.
  Result<std::vector<uint8_t>> VerifierSharesToMessage(
      std::span<const uint8_t> ctx, const AggregationParameter& agg_param,
      std::span<const std::vector<uint8_t>> verifier_shares) const override;

  // Finishes with the output share. Errors (kVerifyFailed): the message is
  // not the state's joint-randomness seed (or, without joint randomness, not
  // empty); (kDecodeError): a state that is not a Prio3 state of this
  // instance.
  Result<VerifyTransition> VerifyNext(std::span<const uint8_t> ctx, VerifyState state,
                                      std::span<const uint8_t> verifier_message) const override;

  FieldVector AggregateInit(const AggregationParameter& agg_param) const override;
  // Errors (kDecodeError): not exactly output_len() elements, or an element
  // >= p.
  Result<FieldVector> DecodeAggShare(const AggregationParameter& agg_param,
                                     std::span<const uint8_t> encoded) const override;
  // One value for Count, Sum and HigherDegree; output_len() values for the
  // vector variants. Errors (kInvalidArgument): not shares() aggregate
  // shares; (kDecodeError): a malformed share.
  Result<AggregateResult> Unshard(const AggregationParameter& agg_param,
                                  std::span<const std::vector<uint8_t>> agg_shares,
                                  uint64_t num_measurements) const override;

  // FOR TESTS ONLY: shards an already encoded measurement (meas_len()
  // elements, each reduced mod p) with honest proofs, skipping the encoding
  // and its range checks, as a cheating client would. Errors
  // (kInvalidArgument): a wrong length, nonce or rand size.
  Result<ShardOutput> ShardEncodedForTesting(std::span<const uint8_t> ctx,
                                             std::span<const uint64_t> encoded,
                                             std::span<const uint8_t> nonce,
                                             std::span<const uint8_t> rand) const;

  class Engine;  // The field-specific implementation (prio3.cc).

 private:
  Prio3(uint32_t algorithm_id, std::string name, size_t shares, size_t proofs, FieldKind field,
        std::unique_ptr<const Engine> engine);

  uint32_t algorithm_id_;
  std::string name_;
  size_t shares_;
  size_t proofs_;
  FieldKind field_;
  std::unique_ptr<const Engine> engine_;
};

}  // namespace canopy::poplar

#endif  // CANOPY_POPLAR_PRIO3_H_
