// The one VDAF interface that the DAP layer drives without knowing which VDAF
// a task uses (VDAF draft-20, section "Definition of VDAFs"), and the value
// types that cross it.
//
// Everything that travels between parties crosses this interface as encoded
// bytes in the draft's wire format. What stays inside one aggregator - the
// decoded report, the verification state, output and aggregate shares - has a
// typed form here, so that the aggregator can keep it in memory or encode it
// for its datastore.
//
// Flow for one report at one aggregator (DAP runs two aggregators; Prio3
// allows up to 255, and the interface takes shares() of them throughout):
//   PrepareReport           decode the public share and this aggregator's input share
//   VerifyInit              -> state, verifier share (round 0)
//   VerifierSharesToMessage (leader, with every aggregator's share) -> verifier message
//   VerifyNext              -> state and next verifier share, or the output share
//   ... ROUNDS rounds in all; then Aggregate the output shares, Unshard at the collector.
#ifndef CANOPY_POPLAR_VDAF_H_
#define CANOPY_POPLAR_VDAF_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "crypto/error.h"
#include "crypto/field128.h"
#include "crypto/field255.h"
#include "crypto/field64.h"
#include "idpf/bit_string.h"

namespace canopy::poplar {

using crypto::Field128;
using crypto::Field255;
using crypto::Field64;

// A client's measurement. Poplar1 takes a BitString of exactly BITS bits;
// Prio3Count and Prio3Sum a number; Prio3Histogram a bucket index (a number);
// Prio3SumVec and Prio3MultihotCountVec a vector of numbers.
using Measurement = std::variant<idpf::BitString, uint64_t, std::vector<uint64_t>>;

// A vector of elements of one of the VDAF fields: output and aggregate shares,
// verification memory.
using FieldVector =
    std::variant<std::vector<Field64>, std::vector<Field128>, std::vector<Field255>>;

// Number of elements of a FieldVector.
size_t FieldVectorSize(const FieldVector& vector);

// The draft's encoding of a FieldVector: its elements, concatenated.
std::vector<uint8_t> EncodeFieldVector(const FieldVector& vector);

// Adds `addend` into `sum` element-wise: the draft's agg_update (adding an
// output share) and merge (adding aggregate shares). Errors
// (kInvalidArgument): different fields or lengths.
Result<void> AddFieldVector(FieldVector& sum, const FieldVector& addend);

// The aggregate result: one integer per output element. Values are below
// 2^128 for every VDAF here; Unshard refuses larger ones.
using AggregateResult = std::vector<unsigned __int128>;

// Decimal text of a 128-bit count.
std::string ToDecimal(unsigned __int128 value);

// The output of Shard: the public share and one input share per aggregator,
// each in its wire encoding.
struct ShardOutput {
  std::vector<uint8_t> public_share;
  std::vector<std::vector<uint8_t>> input_shares;
};

// A decoded aggregation parameter. Prio3's is empty; Poplar1's is a level and
// its candidate prefixes.
class AggregationParameter {
 public:
  virtual ~AggregationParameter() = default;
};

// Storage outside memory for one prepared report's per-level data (Poplar1:
// each level's correction words and correlated-randomness shares, about 50
// bytes a level), so that a cache of many reports keeps in memory only the
// levels the next verification reads. The aggregator implements it with
// files; the VDAF knows nothing of them. Destroying a slot frees it.
class LevelSlot {
 public:
  virtual ~LevelSlot() = default;
  // Stores the records of levels [first, first + n), back to back, each of
  // the size PreparedReport::LevelRecordSizes gives. Errors (kIoError).
  virtual Result<void> Write(size_t first, std::span<const uint8_t> records) = 0;
  // Reads the records of levels [first, end), back to back, into `out`.
  // Errors (kIoError).
  virtual Result<void> Read(size_t first, size_t end, std::span<uint8_t> out) = 0;
};

// One report, decoded for one aggregator, with whatever the VDAF can reuse
// across aggregation parameters (Poplar1 keeps the IDPF node states and the
// correlated-randomness position here). Move-only; wipes its secrets.
//
// A report with per-level data (Poplar1) can move it to a LevelSlot between
// verifications; a verification then reads back the levels it needs and the
// holder drops them again. A VDAF without per-level data keeps the defaults.
class PreparedReport {
 public:
  virtual ~PreparedReport() = default;

  // The size of each level's record in a LevelSlot; empty when the report
  // has no per-level data.
  virtual std::vector<size_t> LevelRecordSizes() const { return {}; }

  // Writes every level's record to `slot`, keeps the slot and frees the
  // levels held in memory. Errors (kUnsupported): no per-level data, or
  // already in a slot; the slot's write errors, after which the report
  // keeps its levels in memory and has no slot.
  virtual Result<void> MoveLevelsTo(std::unique_ptr<LevelSlot> /*slot*/) {
    return MakeError(ErrorCode::kUnsupported, "the report has no per-level data");
  }

  // Whether the levels live in a slot (MoveLevelsTo succeeded).
  virtual bool levels_in_slot() const { return false; }

  // Frees the levels a verification read back from the slot.
  virtual void DropLevelsRead() {}
};

// The verification state an aggregator keeps between rounds. `step` and
// `level` are VDAF-specific (Prio3 leaves level at 0); `memory` holds the field elements (for
// Poplar1 the sketch correlation and the output share); `seed` holds any bytes (for Prio3 the
// corrected joint-randomness seed).
struct VerifyState {
  uint8_t step = 0;
  uint32_t level = 0;
  int agg_id = 0;
  FieldVector memory;
  std::vector<uint8_t> seed;
};

// Encodes a VerifyState for storage (not a wire format of the draft).
std::vector<uint8_t> EncodeVerifyState(const VerifyState& state);
// Errors (kDecodeError): malformed bytes.
Result<VerifyState> DecodeVerifyState(std::span<const uint8_t> encoded);

// The result of VerifyInit or VerifyNext: either the next state and this
// aggregator's verifier share, or (when finished) the output share.
struct VerifyTransition {
  bool finished = false;
  VerifyState state;                    // When !finished.
  std::vector<uint8_t> verifier_share;  // When !finished, encoded.
  FieldVector out_share;                // When finished.
};

// A VDAF: Poplar1 (two aggregators) or Prio3 (two to 255).
class Vdaf {
 public:
  virtual ~Vdaf() = default;

  // The draft's algorithm identifier (Poplar1: 0x00000006).
  virtual uint32_t algorithm_id() const = 0;
  // A short name with parameters, for example "Poplar1(bits=256)".
  virtual std::string name() const = 0;
  virtual size_t shares() const { return 2; }
  virtual size_t rounds() const = 0;
  virtual size_t verify_key_size() const { return 32; }
  virtual size_t nonce_size() const { return 16; }
  virtual size_t rand_size() const = 0;

  // The draft's shard. Errors (kInvalidArgument): a measurement of the wrong
  // kind or out of range (the message names the bound), a nonce or rand of
  // the wrong size.
  virtual Result<ShardOutput> Shard(std::span<const uint8_t> ctx, const Measurement& measurement,
                                    std::span<const uint8_t> nonce,
                                    std::span<const uint8_t> rand) const = 0;

  // Decodes an aggregation parameter. `previous` is the last parameter this
  // batch was already aggregated with, if any: Poplar1 uses it to plan
  // incremental evaluation. Errors (kDecodeError): malformed bytes.
  virtual Result<std::shared_ptr<const AggregationParameter>> DecodeAggParam(
      std::span<const uint8_t> encoded, const AggregationParameter* previous) const = 0;
  virtual std::vector<uint8_t> EncodeAggParam(const AggregationParameter& agg_param) const = 0;

  // The draft's is_valid: may a batch aggregated with `previous` (oldest
  // first) be aggregated with `agg_param` too?
  virtual bool IsValid(const AggregationParameter& agg_param,
                       std::span<const AggregationParameter* const> previous) const = 0;

  // Decodes the public share and this aggregator's input share. Errors
  // (kDecodeError): malformed shares; (kInvalidArgument): bad agg_id or nonce.
  virtual Result<std::unique_ptr<PreparedReport>> PrepareReport(
      int agg_id, std::span<const uint8_t> ctx, std::span<const uint8_t> nonce,
      std::span<const uint8_t> public_share, std::span<const uint8_t> input_share) const = 0;

  // The draft's verify_init on a prepared report (which may keep state for
  // later aggregation parameters). Errors: kInvalidArgument for a parameter
  // this report cannot be verified with (for example one that is not valid).
  virtual Result<VerifyTransition> VerifyInit(std::span<const uint8_t> verify_key,
                                              std::span<const uint8_t> ctx,
                                              const AggregationParameter& agg_param,
                                              PreparedReport& report) const = 0;

  // verify_init for many reports at one aggregation parameter: out[i]
  // receives exactly what VerifyInit(verify_key, ctx, agg_param, *reports[i])
  // would return, so one bad report fails only its own entry. Transitions
  // already in `out` may have their vectors reused, which saves allocations
  // when a caller verifies batch after batch. out.size() must equal
  // reports.size(); otherwise every entry of `out` gets kInvalidArgument.
  // This default calls VerifyInit once per report; a VDAF overrides it to
  // share the per-parameter work (Poplar1 also hashes the verification
  // randomness of four reports at once).
  virtual void VerifyInitBatch(std::span<const uint8_t> verify_key, std::span<const uint8_t> ctx,
                               const AggregationParameter& agg_param,
                               std::span<PreparedReport* const> reports,
                               std::span<Result<VerifyTransition>> out) const;

  // The draft's verifier_shares_to_message over every aggregator's encoded
  // share; returns the encoded message (empty for "none"). Errors
  // (kVerifyFailed): the report is invalid; (kDecodeError): malformed shares.
  virtual Result<std::vector<uint8_t>> VerifierSharesToMessage(
      std::span<const uint8_t> ctx, const AggregationParameter& agg_param,
      std::span<const std::vector<uint8_t>> verifier_shares) const = 0;

  // The draft's verify_next. Takes the state by value so that callers done
  // with it can move it in. Errors (kVerifyFailed or kDecodeError): a message
  // that does not fit the state.
  virtual Result<VerifyTransition> VerifyNext(std::span<const uint8_t> ctx, VerifyState state,
                                              std::span<const uint8_t> verifier_message) const = 0;

  // The draft's agg_init: an all-zero aggregate share for `agg_param`.
  virtual FieldVector AggregateInit(const AggregationParameter& agg_param) const = 0;

  // Decodes an encoded aggregate (or output) share for `agg_param`. Errors
  // (kDecodeError): wrong length or elements out of range.
  virtual Result<FieldVector> DecodeAggShare(const AggregationParameter& agg_param,
                                             std::span<const uint8_t> encoded) const = 0;

  // The draft's unshard over the aggregators' encoded aggregate shares.
  // Errors: kDecodeError for malformed shares, kVerifyFailed when a result
  // does not fit 128 bits (only possible if an aggregator misbehaved).
  virtual Result<AggregateResult> Unshard(const AggregationParameter& agg_param,
                                          std::span<const std::vector<uint8_t>> agg_shares,
                                          uint64_t num_measurements) const = 0;

  // The verify_init of the draft's signature: PrepareReport, then VerifyInit.
  Result<VerifyTransition> VerifyInitFromShares(std::span<const uint8_t> verify_key,
                                                std::span<const uint8_t> ctx, int agg_id,
                                                const AggregationParameter& agg_param,
                                                std::span<const uint8_t> nonce,
                                                std::span<const uint8_t> public_share,
                                                std::span<const uint8_t> input_share) const;
};

// VDAF draft-20's domain-separation tag for a VDAF:
// version (18) || algorithm class 0 || algorithm id (4 bytes BE) || usage (2 bytes BE) || ctx.
std::vector<uint8_t> VdafDomainSeparationTag(uint32_t algorithm_id, uint16_t usage,
                                             std::span<const uint8_t> ctx);

}  // namespace canopy::poplar

#endif  // CANOPY_POPLAR_VDAF_H_
