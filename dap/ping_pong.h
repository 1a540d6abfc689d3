// The VDAF ping-pong topology (VDAF draft-20, "The Ping-Pong Topology (Only
// Two Aggregators)"): how the leader and the helper exchange verifier shares
// and messages, as encoded PingPongMessages, until both hold an output share.
// DAP carries these messages in VerifyInit, VerifyResp and VerifyContinue.
//
// Every function returns the party's next state; a report that fails
// verification, or a message that does not fit the state, is `kRejected`
// (the draft's Rejected), never an error.
#ifndef CANOPY_DAP_PING_PONG_H_
#define CANOPY_DAP_PING_PONG_H_

#include <cstdint>
#include <span>
#include <vector>

#include "poplar/vdaf.h"

namespace canopy::dap {

struct PingPongState {
  enum class Kind {
    kContinued,             // `verify_state`, `round` and `outbound` are set.
    kFinishedWithOutbound,  // `out_share` and `outbound` are set.
    kFinished,              // `out_share` is set.
    kRejected,
  };
  Kind kind = Kind::kRejected;
  poplar::VerifyState verify_state;
  uint8_t round = 0;
  std::vector<uint8_t> outbound;  // An encoded PingPongMessage.
  poplar::FieldVector out_share;
};

// The leader's first step: verify_init on its prepared report, then an
// "initialize" message carrying its verifier share.
PingPongState PingPongLeaderInit(const poplar::Vdaf& vdaf, std::span<const uint8_t> verify_key,
                                 std::span<const uint8_t> ctx,
                                 const poplar::AggregationParameter& agg_param,
                                 poplar::PreparedReport& report);

// The helper's first step, given the leader's "initialize" message.
PingPongState PingPongHelperInit(const poplar::Vdaf& vdaf, std::span<const uint8_t> verify_key,
                                 std::span<const uint8_t> ctx,
                                 const poplar::AggregationParameter& agg_param,
                                 poplar::PreparedReport& report, std::span<const uint8_t> inbound);

// PingPongLeaderInit for many reports at one parameter, sharing the VDAF's
// per-parameter work (Vdaf::VerifyInitBatch): out[i] is what
// PingPongLeaderInit would give for *reports[i]; a null report is rejected.
// out.size() must equal reports.size().
void PingPongLeaderInitBatch(const poplar::Vdaf& vdaf, std::span<const uint8_t> verify_key,
                             std::span<const uint8_t> ctx,
                             const poplar::AggregationParameter& agg_param,
                             std::span<poplar::PreparedReport* const> reports,
                             std::span<PingPongState> out);

// PingPongHelperInit for many reports, as above; inbound[i] is the leader's
// message for reports[i].
void PingPongHelperInitBatch(const poplar::Vdaf& vdaf, std::span<const uint8_t> verify_key,
                             std::span<const uint8_t> ctx,
                             const poplar::AggregationParameter& agg_param,
                             std::span<poplar::PreparedReport* const> reports,
                             std::span<const std::span<const uint8_t>> inbound,
                             std::span<PingPongState> out);

// A later step of either party from a kContinued state (moved in), given the
// peer's message.
PingPongState PingPongContinued(const poplar::Vdaf& vdaf, bool is_leader,
                                std::span<const uint8_t> ctx,
                                const poplar::AggregationParameter& agg_param,
                                poplar::VerifyState verify_state, uint8_t round,
                                std::span<const uint8_t> inbound);

}  // namespace canopy::dap

#endif  // CANOPY_DAP_PING_PONG_H_
