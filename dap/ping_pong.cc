#include "dap/ping_pong.h"

#include <optional>
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

namespace {

// VerifyInitBatch over the non-null reports; transitions[i] for reports[i]
// (an error for a null one).
std::vector<Result<poplar::VerifyTransition>> InitBatch(
    const poplar::Vdaf& vdaf, std::span<const uint8_t> verify_key, std::span<const uint8_t> ctx,
    const poplar::AggregationParameter& agg_param,
    std::span<poplar::PreparedReport* const> reports) {
  std::vector<poplar::PreparedReport*> present;
  std::vector<size_t> index;
  for (size_t i = 0; i < reports.size(); ++i) {
    if (reports[i] != nullptr) {
      present.push_back(reports[i]);
      index.push_back(i);
    }
  }
  std::vector<Result<poplar::VerifyTransition>> batch(
      present.size(), MakeError(ErrorCode::kInternal, "not verified"));
  vdaf.VerifyInitBatch(verify_key, ctx, agg_param, present, batch);
  std::vector<Result<poplar::VerifyTransition>> transitions(
      reports.size(), MakeError(ErrorCode::kInvalidArgument, "no report"));
  for (size_t k = 0; k < present.size(); ++k) transitions[index[k]] = std::move(batch[k]);
  return transitions;
}

}  // namespace

void PingPongLeaderInitBatch(const poplar::Vdaf& vdaf, std::span<const uint8_t> verify_key,
                             std::span<const uint8_t> ctx,
                             const poplar::AggregationParameter& agg_param,
                             std::span<poplar::PreparedReport* const> reports,
                             std::span<PingPongState> out) {
  if (out.size() != reports.size()) {
    for (PingPongState& state : out) state = Rejected();
    return;
  }
  auto transitions = InitBatch(vdaf, verify_key, ctx, agg_param, reports);
  for (size_t i = 0; i < reports.size(); ++i) {
    auto& init = transitions[i];
    if (!init || init->finished) {
      out[i] = Rejected();
      continue;
    }
    out[i].kind = PingPongState::Kind::kContinued;
    out[i].verify_state = std::move(init->state);
    out[i].round = 0;
    out[i].outbound =
        EncodeOrEmpty({PingPongType::kInitialize, {}, std::move(init->verifier_share)});
  }
}

void PingPongHelperInitBatch(const poplar::Vdaf& vdaf, std::span<const uint8_t> verify_key,
                             std::span<const uint8_t> ctx,
                             const poplar::AggregationParameter& agg_param,
                             std::span<poplar::PreparedReport* const> reports,
                             std::span<const std::span<const uint8_t>> inbound,
                             std::span<PingPongState> out) {
  if (out.size() != reports.size() || inbound.size() != reports.size()) {
    for (PingPongState& state : out) state = Rejected();
    return;
  }
  // Messages that are not "initialize" are refused before any VDAF work.
  std::vector<std::optional<PingPongMessage>> messages(reports.size());
  std::vector<poplar::PreparedReport*> usable(reports.begin(), reports.end());
  for (size_t i = 0; i < reports.size(); ++i) {
    auto message = Decode<PingPongMessage>(inbound[i]);
    if (message && message->type == PingPongType::kInitialize) {
      messages[i] = std::move(*message);
    } else {
      usable[i] = nullptr;
    }
  }
  auto transitions = InitBatch(vdaf, verify_key, ctx, agg_param, usable);
  for (size_t i = 0; i < reports.size(); ++i) {
    auto& init = transitions[i];
    if (!messages[i] || !init || init->finished) {
      out[i] = Rejected();
      continue;
    }
    std::vector<uint8_t> shares[2] = {std::move(messages[i]->verifier_share),
                                      std::move(init->verifier_share)};
    out[i] = Transition(vdaf, ctx, agg_param, shares, std::move(init->state), 0);
  }
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
