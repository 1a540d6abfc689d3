#include "dap/ping_pong.h"

#include <utility>

#include "dap/messages.h"

namespace canopy::dap {
namespace {

PingPongState Rejected() { return PingPongState{}; }

std::vector<uint8_t> EncodeOrEmpty(const PingPongMessage& message) {
  auto encoded = Encode(message);
  return encoded ? std::move(*encoded) : std::vector<uint8_t>();
}

// The draft's ping_pong_transition: combine both verifier shares (leader's
// first) into a message, run verify_next, and say what to send.
PingPongState Transition(const poplar::Vdaf& vdaf, std::span<const uint8_t> ctx,
                         const poplar::AggregationParameter& agg_param,
                         std::span<const std::vector<uint8_t>> verifier_shares,
                         poplar::VerifyState verify_state, uint8_t round) {
  auto message = vdaf.VerifierSharesToMessage(ctx, agg_param, verifier_shares);
  if (!message) return Rejected();
  auto next = vdaf.VerifyNext(ctx, std::move(verify_state), *message);
  if (!next) return Rejected();
  PingPongState state;
  if (static_cast<size_t>(round) + 1 == vdaf.rounds()) {
    if (!next->finished) return Rejected();
    state.kind = PingPongState::Kind::kFinishedWithOutbound;
    state.out_share = std::move(next->out_share);
    state.outbound = EncodeOrEmpty({PingPongType::kFinish, std::move(*message), {}});
    return state;
  }
  if (next->finished) return Rejected();
  state.kind = PingPongState::Kind::kContinued;
  state.verify_state = std::move(next->state);
  state.round = static_cast<uint8_t>(round + 1);
  state.outbound = EncodeOrEmpty(
      {PingPongType::kContinue, std::move(*message), std::move(next->verifier_share)});
  return state;
}

}  // namespace

PingPongState PingPongLeaderInit(const poplar::Vdaf& vdaf, std::span<const uint8_t> verify_key,
                                 std::span<const uint8_t> ctx,
                                 const poplar::AggregationParameter& agg_param,
                                 poplar::PreparedReport& report) {
  auto init = vdaf.VerifyInit(verify_key, ctx, agg_param, report);
  if (!init || init->finished) return Rejected();
  PingPongState state;
  state.kind = PingPongState::Kind::kContinued;
  state.verify_state = std::move(init->state);
  state.round = 0;
  state.outbound = EncodeOrEmpty({PingPongType::kInitialize, {}, std::move(init->verifier_share)});
  return state;
}

PingPongState PingPongHelperInit(const poplar::Vdaf& vdaf, std::span<const uint8_t> verify_key,
                                 std::span<const uint8_t> ctx,
                                 const poplar::AggregationParameter& agg_param,
                                 poplar::PreparedReport& report, std::span<const uint8_t> inbound) {
  auto message = Decode<PingPongMessage>(inbound);
  if (!message || message->type != PingPongType::kInitialize) return Rejected();
  auto init = vdaf.VerifyInit(verify_key, ctx, agg_param, report);
  if (!init || init->finished) return Rejected();
  std::vector<uint8_t> shares[2] = {std::move(message->verifier_share),
                                    std::move(init->verifier_share)};
  return Transition(vdaf, ctx, agg_param, shares, std::move(init->state), 0);
}

PingPongState PingPongContinued(const poplar::Vdaf& vdaf, bool is_leader,
                                std::span<const uint8_t> ctx,
                                const poplar::AggregationParameter& agg_param,
                                poplar::VerifyState verify_state, uint8_t round,
                                std::span<const uint8_t> inbound) {
  auto message = Decode<PingPongMessage>(inbound);
  if (!message || message->type == PingPongType::kInitialize) return Rejected();
  auto next = vdaf.VerifyNext(ctx, std::move(verify_state), message->verifier_message);
  if (!next) return Rejected();
  const bool last_round = static_cast<size_t>(round) + 1 == vdaf.rounds();
  if (!last_round && message->type == PingPongType::kContinue && !next->finished) {
    std::vector<uint8_t> shares[2];
    shares[is_leader ? 0 : 1] = std::move(next->verifier_share);
    shares[is_leader ? 1 : 0] = std::move(message->verifier_share);
    return Transition(vdaf, ctx, agg_param, shares, std::move(next->state),
                      static_cast<uint8_t>(round + 1));
  }
  if (last_round && message->type == PingPongType::kFinish && next->finished) {
    PingPongState state;
    state.kind = PingPongState::Kind::kFinished;
    state.out_share = std::move(next->out_share);
    return state;
  }
  return Rejected();
}

}  // namespace canopy::dap
