// The helper's endpoints: aggregation jobs (init, continue, poll, delete) and
// aggregate shares (DAP-19, "Aggregating" and "Collecting"), with the
// multi-level collection extension (docs/multi-level-collection.md).
//
// Each request runs in three phases so that no cryptography happens while
// the datastore is locked: read what the request depends on (one
// transaction), verify (HPKE, VDAF) without the datastore, then commit
// everything in one transaction that re-checks replay and collection state,
// so a concurrent request can never make a report count twice.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "aggregator/internal/aggregation.h"
#include "aggregator/internal/common.h"
#include "aggregator/service.h"
#include "crypto/secure_wipe.h"
#include "dap/base64url.h"
#include "dap/http_client.h"
#include "dap/ping_pong.h"
#include "dap/report.h"

namespace canopy::aggregator {

using dap::ProblemType;
using dap::ReportError;
using internal::Problem;

namespace {

using PingKind = dap::PingPongState::Kind;

// The outcome of one report in a job, before commit.
struct ReportOutcome {
  dap::ReportId report_id{};
  dap::Time time = 0;
  Bytes bucket_key;
  std::optional<ReportError> error;
  dap::PingPongState state;
  // Multi-level: the decrypted input share to hold, when first seen.
  std::optional<HeldReportRow> to_hold;
  std::unique_ptr<poplar::PreparedReport> prepared;
};

bool RetryableError(ReportError error) {
  return error == ReportError::kReportDropped || error == ReportError::kReportTooEarly ||
         error == ReportError::kUnknownVerificationKeyId;
}

std::string JobLocation(const Task& task, std::string_view resource, const JobId& id) {
  return "/tasks/" + dap::Base64UrlEncode(task.id) + "/" + std::string(resource) + "/" +
         dap::Base64UrlEncode(id);
}

// What the helper knows, before verifying, about the reports of a job.
struct ReportFacts {
  bool rejected = false;
  bool aggregated_with_param = false;
  bool aggregated_before = false;  // With any parameter.
  bool held = false;               // The helper holds the report's shares.
  // The held shares, read only when the report is not prepared in memory.
  std::optional<HeldReportRow> held_shares;
};

// Prepared reports taken out of the report cache for one request; those not
// used up are put back when the request ends, whichever way it ends.
class CacheLoan {
 public:
  CacheLoan(ReportCache& cache, const dap::TaskId& task_id) : cache_(cache), task_id_(task_id) {}
  ~CacheLoan() { cache_.PutMany(task_id_, ids_, reports_); }
  CacheLoan(const CacheLoan&) = delete;
  CacheLoan& operator=(const CacheLoan&) = delete;

  // Takes the reports with these IDs (null entries for those absent).
  void TakeAll(std::span<const dap::VerifyInit> verify_inits) {
    for (const dap::VerifyInit& verify_init : verify_inits) {
      ids_.push_back(verify_init.report_share.metadata.report_id);
    }
    reports_.resize(ids_.size());
    cache_.TakeMany(task_id_, ids_, reports_);
  }
  bool Has(size_t i) const { return i < reports_.size() && reports_[i] != nullptr; }
  std::unique_ptr<poplar::PreparedReport> Release(size_t i) {
    return i < reports_.size() ? std::move(reports_[i]) : nullptr;
  }

 private:
  ReportCache& cache_;
  dap::TaskId task_id_;
  std::vector<dap::ReportId> ids_;
  std::vector<std::unique_ptr<poplar::PreparedReport>> reports_;
};

// Whether two of a request's reports have the same ID. The IDs are sorted as
// pairs of integers: a std::set of thousands of them, compared byte by byte,
// was 2 % of the helper's time in a walk.
bool HasRepeatedReportId(std::span<const dap::VerifyInit> verify_inits) {
  std::vector<std::pair<uint64_t, uint64_t>> ids(verify_inits.size());
  for (size_t i = 0; i < verify_inits.size(); ++i) {
    const dap::ReportId& id = verify_inits[i].report_share.metadata.report_id;
    static_assert(sizeof(dap::ReportId) == 2 * sizeof(uint64_t));
    std::memcpy(&ids[i].first, id.data(), sizeof(uint64_t));
    std::memcpy(&ids[i].second, id.data() + sizeof(uint64_t), sizeof(uint64_t));
  }
  std::sort(ids.begin(), ids.end());
  return std::adjacent_find(ids.begin(), ids.end()) != ids.end();
}

}  // namespace

ServerResponse AggregatorService::InitAggregationJob(const Task& task,
                                                     const ServerRequest& request) {
  if (!internal::HasMediaType(request, "aggregation-job-init-req")) {
    return internal::WrongMediaType("aggregation-job-init-req", task.id);
  }
  auto init = dap::Decode<dap::AggregationJobInitReq>(request.body);
  if (!init) return Problem(ProblemType::kInvalidMessage, init.error().message(), &task.id);
  // The job's ID and the request's hash (which a retry must match) from one
  // digest: one pass over a first round's megabytes of body.
  const std::array<uint8_t, 32> content_digest = internal::ContentDigest(task.id, request.body);
  const JobId job_id = internal::IdOfContentDigest(content_digest);
  const Bytes request_hash_bytes(content_digest.begin(), content_digest.end());
  const std::string location = JobLocation(task, "aggregation_jobs", job_id);

  // Extensions: strictly increasing; the batch ID (leader_selected) and
  // held_reports (multi-level) are the ones Canopy knows.
  if (!dap::ExtensionsStrictlyIncreasing(init->extensions)) {
    return Problem(ProblemType::kInvalidMessage, "extensions are not strictly increasing",
                   &task.id);
  }
  Bytes batch_id;
  bool held_reports = false;
  for (const dap::Extension& extension : init->extensions) {
    if (extension.type == dap::kLeaderSelectedBatchIdExtension) {
      if (!task.leader_selected() || extension.data.size() != 32) {
        return Problem(ProblemType::kInvalidMessage, "unexpected or malformed batch ID extension",
                       &task.id);
      }
      batch_id = extension.data;
    } else if (extension.type == dap::kHeldReportsExtension) {
      if (!task.multi_level() || !extension.data.empty()) {
        return Problem(ProblemType::kInvalidMessage,
                       "held_reports needs a multi-level task and empty data", &task.id);
      }
      held_reports = true;
    } else {
      return Problem(ProblemType::kUnsupportedExtension,
                     "unsupported aggregation job extension " + std::to_string(extension.type),
                     &task.id);
    }
  }
  if (task.leader_selected() && batch_id.empty()) {
    return Problem(ProblemType::kInvalidMessage, "leader_selected task without a batch ID",
                   &task.id);
  }
  if (HasRepeatedReportId(init->verify_inits)) {
    return Problem(ProblemType::kInvalidMessage, "a report ID appears twice", &task.id);
  }
  auto bucket_of = [&](const dap::ReportMetadata& metadata) {
    return task.leader_selected() ? batch_id : TimeBucketKey(metadata.time);
  };

  // Reports of a held_reports job still prepared in memory from an earlier
  // level: their shares need not be read from the datastore.
  CacheLoan cached(report_cache_, task.id);
  if (held_reports) cached.TakeAll(init->verify_inits);

  // Phase 1: the existing job, the batch history and what is known of each report.
  std::optional<AggregationJobRow> existing;
  std::map<Bytes, std::vector<Bytes>> histories;
  std::map<Bytes, bool> collected;
  std::vector<ReportFacts> facts(init->verify_inits.size());
  // A lookup or more per report, outside the writer's lock: phase 3
  // re-checks what matters under it.
  auto read = datastore_.Read([&](Transaction& tx) -> Result<void> {
    auto job = tx.GetAggregationJob(task.id, job_id);
    if (!job) return std::unexpected(job.error());
    existing = std::move(*job);
    if (existing) return {};
    histories.clear();
    collected.clear();
    for (size_t i = 0; i < init->verify_inits.size(); ++i) {
      const dap::ReportMetadata& metadata = init->verify_inits[i].report_share.metadata;
      Bytes bucket = bucket_of(metadata);
      if (!histories.contains(bucket)) {
        auto history = tx.BucketAggParams(task.id, bucket);
        if (!history) return std::unexpected(history.error());
        histories[bucket] = std::move(*history);
        auto is_collected = tx.IsBucketCollected(task.id, bucket);
        if (!is_collected) return std::unexpected(is_collected.error());
        collected[bucket] = *is_collected;
      }
      ReportFacts& fact = facts[i];
      if (held_reports) {
        // Held means aggregated at an earlier level; whether it is a replay
        // of this level is for the commit to find (it checks every report
        // anyway, and replays are rare), which saves a lookup per report
        // and level. Reports whose shares must be opened are checked here,
        // so that a replay costs no HPKE.
        fact.aggregated_before = true;
      } else {
        auto history = tx.GetReportHistory(task.id, metadata.report_id, init->agg_param);
        if (!history) return std::unexpected(history.error());
        fact = {history->rejected, history->aggregated_with_param, history->aggregated_before,
                false, std::nullopt};
      }
      if (held_reports && cached.Has(i)) {
        // Prepared in memory from its held share: held, without a lookup.
        fact.held = true;
      } else if (held_reports) {
        auto held = tx.GetHeldReport(task.id, metadata.report_id);
        if (!held) return std::unexpected(held.error());
        fact.held = held->has_value();
        fact.held_shares = std::move(*held);
      }
    }
    return {};
  });
  if (!read)
    return Problem(ProblemType::kInternal, "datastore: " + read.error().message(), &task.id);
  if (existing) {
    // The same init again (a retry, or a leader redoing the job from its
    // start after a crash, also once the job has moved on): the same answer.
    if (const Bytes* answer =
            internal::StoredInitAnswer(*existing, request_hash_bytes, request.body)) {
      ServerResponse response = internal::Message(201, "aggregation-job-resp", *answer);
      response.SetHeader("Location", location);
      return response;
    }
    return Problem(ProblemType::kStepMismatch,
                   "the aggregation job exists with another init request", &task.id);
  }

  // The aggregation parameter, checked against each bucket's history.
  // The batch's parameters before this one plan Poplar1's evaluation.
  std::span<const Bytes> earlier;
  for (const auto& [bucket, history] : histories) {
    if (history.empty()) continue;
    auto at = std::find(history.begin(), history.end(), init->agg_param);
    earlier = std::span<const Bytes>(history).first(static_cast<size_t>(at - history.begin()));
    break;
  }
  auto agg_param = agg_params_.Decode(task, init->agg_param, earlier);
  if (!agg_param) {
    return Problem(ProblemType::kInvalidAggregationParameter, agg_param.error().message(),
                   &task.id);
  }
  // DAP-19 requires is_valid(agg_param, []) of every parameter, also in a
  // batch without history (Poplar1: prefixes distinct and in order).
  if (!task.vdaf->IsValid(**agg_param, {})) {
    return Problem(ProblemType::kInvalidAggregationParameter,
                   "the aggregation parameter is not valid (prefixes must be distinct and sorted)",
                   &task.id);
  }
  for (const auto& [bucket, history] : histories) {
    std::string problem =
        internal::CheckAggParamHistory(task, init->agg_param, **agg_param, history);
    if (!problem.empty()) {
      return Problem(ProblemType::kInvalidAggregationParameter, problem, &task.id);
    }
    if (held_reports && history.empty()) {
      return Problem(ProblemType::kInvalidMessage,
                     "held_reports in the first aggregation of a batch", &task.id);
    }
  }
  if (task.multi_level() && !held_reports) {
    // Which reports the level took is in memory (LevelClaims): a replay is
    // found here, before its share is decrypted. The commit checks again.
    std::vector<ReportId> ids;
    ids.reserve(init->verify_inits.size());
    for (const dap::VerifyInit& verify_init : init->verify_inits) {
      ids.push_back(verify_init.report_share.metadata.report_id);
    }
    auto claimed =
        level_claims_.Claimed(task.id, init->agg_param, ids, LevelLoader(task.id, init->agg_param));
    if (!claimed) {
      return Problem(ProblemType::kInternal, "datastore: " + claimed.error().message(), &task.id);
    }
    for (size_t i = 0; i < facts.size(); ++i) {
      if ((*claimed)[i]) facts[i].aggregated_with_param = true;
    }
  }

  // Phase 2: verify each report.
  auto verify_key = task.verify_keys.find(init->verification_key_id);
  const uint64_t now = Now();
  std::vector<ReportOutcome> outcomes(init->verify_inits.size());
  const dap::AggregatorHpkeKey* key_pointers[8];
  size_t key_count = std::min<size_t>(hpke_keys_.size(), 8);
  for (size_t k = 0; k < key_count; ++k) key_pointers[k] = &hpke_keys_[k];
  for (size_t i = 0; i < init->verify_inits.size(); ++i) {
    const dap::VerifyInit& verify_init = init->verify_inits[i];
    const dap::ReportShare& share = verify_init.report_share;
    ReportOutcome& outcome = outcomes[i];
    outcome.report_id = share.metadata.report_id;
    outcome.time = share.metadata.time;
    outcome.bucket_key = bucket_of(share.metadata);
    const ReportFacts& fact = facts[i];
    auto reject = [&](ReportError error) { outcome.error = error; };
    if (verify_key == task.verify_keys.end()) {
      reject(ReportError::kUnknownVerificationKeyId);
      continue;
    }
    if (auto time_error = dap::CheckReportTime(task.configuration, task.rules, share.metadata.time,
                                               now, options_.tolerable_clock_skew_seconds)) {
      reject(*time_error);
      continue;
    }
    if (Expired(task, share.metadata.time, now)) {
      reject(ReportError::kReportDropped);
      continue;
    }
    const bool repeat = task.multi_level() ? fact.aggregated_with_param : fact.aggregated_before;
    if (fact.rejected || repeat) {
      reject(ReportError::kReportReplayed);
      continue;
    }
    if (collected[outcome.bucket_key] && !(task.multi_level() && fact.aggregated_before)) {
      reject(ReportError::kBatchCollected);
      continue;
    }
    if (!dap::ExtensionsStrictlyIncreasing(share.metadata.public_extensions)) {
      reject(ReportError::kInvalidMessage);
      continue;
    }
    if (!share.metadata.public_extensions.empty()) {
      reject(ReportError::kUnsupportedExtension);
      continue;
    }
    // The report's input share: held from an earlier level, or decrypted now.
    std::span<const uint8_t> public_share = share.public_share;
    // The input share decrypted now: wiped when this report's turn ends,
    // unless it moved into the held row (which wipes it in turn).
    std::vector<uint8_t> opened_payload;
    crypto::WipeOnExit wipe_opened_payload(opened_payload);
    std::span<const uint8_t> input_share;
    if (held_reports) {
      if (!fact.held) {
        reject(ReportError::kReportDropped);
        continue;
      }
      if (cached.Has(i)) {
        outcome.prepared = cached.Release(i);
      } else {
        public_share = fact.held_shares->public_share;
        input_share = fact.held_shares->input_share;
      }
    } else {
      auto opened = internal::OpenInputSharePayload(
          task.id, task.configuration, share.metadata, share.public_share,
          share.encrypted_input_share, dap::Role::kHelper,
          std::span<const dap::AggregatorHpkeKey* const>(key_pointers, key_count));
      if (auto* error = std::get_if<ReportError>(&opened)) {
        reject(*error);
        continue;
      }
      metrics_.InputShareOpened();
      opened_payload = std::move(std::get<Bytes>(opened));
      input_share = opened_payload;
    }
    if (task.multi_level() && outcome.prepared == nullptr) {
      outcome.prepared = report_cache_.Take(task.id, outcome.report_id);
    }
    if (outcome.prepared == nullptr) {
      auto prepared = task.vdaf->PrepareReport(1, task.vdaf_context, share.metadata.report_id,
                                               public_share, input_share);
      if (!prepared) {
        reject(ReportError::kInvalidMessage);
        continue;
      }
      outcome.prepared = std::move(*prepared);
    }
    if (task.multi_level() && !held_reports) {
      outcome.to_hold = HeldReportRow{task.id,
                                      outcome.report_id,
                                      outcome.time,
                                      outcome.bucket_key,
                                      Bytes(share.public_share.begin(), share.public_share.end()),
                                      std::move(opened_payload)};
    }
  }
  // The helper's first VDAF step, for every report still standing at once
  // (the VDAF shares per-parameter work and hashes four reports together).
  {
    std::vector<poplar::PreparedReport*> reports(outcomes.size(), nullptr);
    std::vector<std::span<const uint8_t>> inbound(outcomes.size());
    size_t verified = 0;
    for (size_t i = 0; i < outcomes.size(); ++i) {
      if (outcomes[i].error || outcomes[i].prepared == nullptr) continue;
      reports[i] = outcomes[i].prepared.get();
      inbound[i] = init->verify_inits[i].payload;
      ++verified;
    }
    std::vector<dap::PingPongState> states(outcomes.size());
    auto start = std::chrono::steady_clock::now();
    if (verified > 0) {  // Else the verification key may be unknown.
      dap::PingPongHelperInitBatch(*task.vdaf, verify_key->second.span(), task.vdaf_context,
                                   **agg_param, reports, inbound, states);
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (size_t i = 0; i < outcomes.size(); ++i) {
      if (reports[i] == nullptr) continue;
      metrics_.Verified(seconds / static_cast<double>(verified));
      outcomes[i].state = std::move(states[i]);
      if (outcomes[i].state.kind == PingKind::kRejected) {
        outcomes[i].error = ReportError::kVdafVerifyError;
        outcomes[i].to_hold.reset();
      }
    }
  }

  // Multi-level: the level's claims on the reports still standing, kept
  // for those the commit accepts once it has committed (the job's record is
  // then their durable form), given back otherwise.
  std::optional<LevelClaims::Reservation> reservation;
  std::vector<size_t> claim_of(outcomes.size(), SIZE_MAX);  // Index into the reservation.
  std::vector<bool> accepted;
  if (task.multi_level()) {
    std::vector<ReportId> ids;
    for (size_t i = 0; i < outcomes.size(); ++i) {
      if (outcomes[i].error) continue;
      claim_of[i] = ids.size();
      ids.push_back(outcomes[i].report_id);
    }
    auto reserved =
        level_claims_.Reserve(task.id, init->agg_param, ids, LevelLoader(task.id, init->agg_param));
    if (!reserved) {
      return Problem(ProblemType::kInternal, "datastore: " + reserved.error().message(), &task.id);
    }
    reservation.emplace(std::move(*reserved));
  }

  // Phase 3: commit, re-checking what a concurrent job could have changed.
  dap::AggregationJobResp response;
  Bytes encoded_response;
  bool raced = false;
  std::optional<std::string> history_refusal;  // Set when the history re-check fails.
  auto commit = datastore_.Run([&](Transaction& tx) -> Result<void> {
    raced = false;
    history_refusal.reset();
    auto job = tx.GetAggregationJob(task.id, job_id);
    if (!job) return std::unexpected(job.error());
    if (job->has_value()) {
      existing = std::move(*job);
      raced = true;
      return {};
    }
    response.verify_resps.clear();
    if (reservation) accepted.assign(claim_of.size(), false);
    internal::OutputAccumulator accumulator(task, **agg_param, init->agg_param);
    AggregationJobRow row;
    row.task_id = task.id;
    row.job_id = job_id;
    row.agg_param = init->agg_param;
    row.batch_key = batch_id;
    row.held_reports = held_reports;
    row.created_at = static_cast<int64_t>(now);
    row.last_request_hash = request_hash_bytes;
    bool waiting = false;
    std::set<Bytes> buckets_used;
    std::map<Bytes, bool> collected_now;  // Per bucket, as this transaction sees it.
    std::vector<ReportAggregationRow> report_rows;
    // A held report rejected at an earlier level stays out: asked for the
    // whole job at once.
    std::vector<bool> rejected_before(outcomes.size(), false);
    if (held_reports) {
      std::vector<ReportId> ids;
      std::vector<size_t> index_of;
      for (size_t i = 0; i < outcomes.size(); ++i) {
        if (outcomes[i].error) continue;
        ids.push_back(outcomes[i].report_id);
        index_of.push_back(i);
      }
      auto rejected = tx.WhichRejected(task.id, ids);
      if (!rejected) return std::unexpected(rejected.error());
      for (size_t k = 0; k < ids.size(); ++k) rejected_before[index_of[k]] = (*rejected)[k];
    }
    for (size_t i = 0; i < outcomes.size(); ++i) {
      ReportOutcome& outcome = outcomes[i];
      std::optional<ReportError> error = outcome.error;
      // Multi-level: whether this job's reservation took the report for
      // the level (false: another job has it, a replay).
      const bool claimed_here =
          reservation && claim_of[i] != SIZE_MAX && reservation->taken(claim_of[i]);
      if (!error && held_reports) {
        // A held report was aggregated at an earlier level, so a collected
        // batch takes it. It was recorded as seen at that earlier level.
        if (rejected_before[i] || !claimed_here) error = ReportError::kReportReplayed;
      } else if (!error) {
        auto history = tx.GetReportHistory(task.id, outcome.report_id, init->agg_param);
        if (!history) return std::unexpected(history.error());
        auto bucket_collected = collected_now.find(outcome.bucket_key);
        if (bucket_collected == collected_now.end()) {
          auto is_collected = tx.IsBucketCollected(task.id, outcome.bucket_key);
          if (!is_collected) return std::unexpected(is_collected.error());
          bucket_collected = collected_now.emplace(outcome.bucket_key, *is_collected).first;
        }
        const bool repeat = task.multi_level() ? history->aggregated_with_param || !claimed_here
                                               : history->aggregated_before;
        if (history->rejected || repeat) {
          error = ReportError::kReportReplayed;
        } else if (bucket_collected->second &&
                   !(task.multi_level() && history->aggregated_before)) {
          error = ReportError::kBatchCollected;
        } else {
          if (!task.multi_level()) {
            auto recorded = tx.RecordAggregatedReport(task.id, outcome.report_id, init->agg_param);
            if (!recorded) return std::unexpected(recorded.error());
          }
          if (!history->aggregated_before) {
            auto seen = tx.RecordSeenReport(task.id, outcome.report_id);
            if (!seen) return seen;
          }
        }
      }
      if (!error && claimed_here) accepted[claim_of[i]] = true;
      ReportAggregationRow report_row;
      report_row.task_id = task.id;
      report_row.job_id = job_id;
      report_row.ord = static_cast<uint32_t>(i);
      report_row.report_id = outcome.report_id;
      report_row.time = outcome.time;
      report_row.bucket_key = outcome.bucket_key;
      dap::VerifyResp verify_resp;
      verify_resp.report_id = outcome.report_id;
      if (error) {
        verify_resp.type = dap::VerifyRespType::kReject;
        verify_resp.report_error = *error;
        report_row.state = ReportAggregationState::kFailed;
        report_row.error = *error;
        if (!RetryableError(*error)) {
          auto recorded = tx.RecordRejectedReport(task.id, outcome.report_id, *error);
          if (!recorded) return recorded;
        }
      } else {
        verify_resp.type = dap::VerifyRespType::kContinue;
        verify_resp.payload = outcome.state.outbound;
        buckets_used.insert(outcome.bucket_key);
        if (outcome.to_hold) {
          auto held = tx.PutHeldReport(*outcome.to_hold);
          if (!held) return held;
        }
        if (outcome.state.kind == PingKind::kContinued) {
          report_row.state = ReportAggregationState::kWaiting;
          if (task.multi_level()) {
            // The state stays in memory; the report's share is held, so the
            // leader's message is all it takes to compute it again.
            report_row.init_payload = init->verify_inits[i].payload;
            report_row.verification_key_id = init->verification_key_id;
          } else {
            report_row.verify_state =
                internal::EncodeContinuedState(outcome.state.round, outcome.state.verify_state);
          }
          waiting = true;
        } else {
          report_row.state = ReportAggregationState::kFinished;
          auto added = accumulator.Add(outcome.bucket_key, outcome.time, outcome.report_id,
                                       outcome.state.out_share);
          if (!added) return added;
        }
      }
      response.verify_resps.push_back(std::move(verify_resp));
      report_rows.push_back(std::move(report_row));
    }
    // The history as it is now, not as phase 1 read it: jobs of the same
    // level may be initialised concurrently, and only the first appends.
    for (const Bytes& bucket : buckets_used) {
      auto history = tx.BucketAggParams(task.id, bucket);
      if (!history) return std::unexpected(history.error());
      if (std::find(history->begin(), history->end(), init->agg_param) != history->end()) {
        continue;
      }
      std::string problem =
          internal::CheckAggParamHistory(task, init->agg_param, **agg_param, *history);
      if (!problem.empty()) {
        history_refusal = problem;
        return MakeError(ErrorCode::kInvalidArgument, problem);
      }
      auto appended = tx.AppendBucketAggParam(task.id, bucket, init->agg_param);
      if (!appended) return appended;
    }
    auto committed = accumulator.Commit(tx);
    if (!committed) return committed;
    auto encoded = dap::Encode(response);
    if (!encoded) return std::unexpected(encoded.error());
    encoded_response = std::move(*encoded);
    row.state = waiting ? JobState::kInProgress : JobState::kFinished;
    row.last_response = encoded_response;
    auto put = tx.PutAggregationJob(row);
    if (!put) return put;
    return tx.PutJobReports(task.id, job_id, report_rows);
  });
  if (!commit && history_refusal) {
    // Another job of the batch moved its history on meanwhile.
    return Problem(ProblemType::kInvalidAggregationParameter, *history_refusal, &task.id);
  }
  if (!commit) {
    return Problem(ProblemType::kInternal, "datastore: " + commit.error().message(), &task.id);
  }
  // Committed: the claims of the reports the job counts stay (the others,
  // and all of them when the job was there already, are given back).
  if (reservation && !raced) reservation->Keep(accepted);
  if (raced) {
    const Bytes* answer = internal::StoredInitAnswer(*existing, request_hash_bytes, request.body);
    if (answer == nullptr) {
      return Problem(ProblemType::kStepMismatch,
                     "the aggregation job exists with another init request", &task.id);
    }
    ServerResponse again = internal::Message(201, "aggregation-job-resp", *answer);
    again.SetHeader("Location", location);
    return again;
  }
  StepStateCache::States states;
  std::vector<dap::ReportId> put_ids;
  std::vector<std::unique_ptr<poplar::PreparedReport>> put_reports;
  for (ReportOutcome& outcome : outcomes) {
    if (outcome.error) metrics_.ReportRejected(*outcome.error);
    if (task.multi_level() && outcome.prepared) {
      put_ids.push_back(outcome.report_id);
      put_reports.push_back(std::move(outcome.prepared));
    }
    if (task.multi_level()) {
      // Only the waiting reports' states are used (and only then valid).
      states.push_back(outcome.error ? dap::PingPongState{} : std::move(outcome.state));
    }
  }
  report_cache_.PutMany(task.id, put_ids, put_reports);
  if (task.multi_level()) step_states_.Put(task.id, job_id, std::move(states));
  metrics_.AggregationJob(Metrics::JobEvent::kCreated);
  ServerResponse created = internal::Message(201, "aggregation-job-resp", encoded_response);
  created.SetHeader("Location", location);
  return created;
}

ServerResponse AggregatorService::ContinueAggregationJob(const Task& task, const JobId& job_id,
                                                         const ServerRequest& request) {
  if (!internal::HasMediaType(request, "aggregation-job-continue-req")) {
    return internal::WrongMediaType("aggregation-job-continue-req", task.id);
  }
  const auto request_hash = internal::Sha256(request.body);
  const Bytes request_hash_bytes(request_hash.begin(), request_hash.end());

  std::optional<AggregationJobRow> job;
  std::vector<ReportAggregationRow> rows;
  auto read = datastore_.Read([&](Transaction& tx) -> Result<void> {
    auto found = tx.GetAggregationJob(task.id, job_id);
    if (!found) return std::unexpected(found.error());
    job = std::move(*found);
    if (!job) return {};
    auto reports = tx.GetJobReports(task.id, job_id);
    if (!reports) return std::unexpected(reports.error());
    rows = std::move(*reports);
    return {};
  });
  if (!read)
    return Problem(ProblemType::kInternal, "datastore: " + read.error().message(), &task.id);
  if (!job || job->state == JobState::kAbandoned) {
    return Problem(ProblemType::kUnrecognizedAggregationJob, "no such aggregation job", &task.id);
  }
  // DAP-19 checks the job before the request: an unknown job is
  // unrecognizedAggregationJob whatever the body holds.
  auto continue_req = dap::Decode<dap::AggregationJobContinueReq>(request.body);
  if (!continue_req) {
    return Problem(ProblemType::kInvalidMessage, continue_req.error().message(), &task.id);
  }
  if (continue_req->step == 0) {
    return Problem(ProblemType::kInvalidMessage, "step 0 is not a continuation", &task.id);
  }
  if (continue_req->step == job->step && job->last_request_hash == request_hash_bytes) {
    return internal::Message(200, "aggregation-job-resp", job->last_response);
  }
  if (continue_req->step != job->step + 1 || job->state != JobState::kInProgress) {
    return Problem(ProblemType::kStepMismatch, "expected step " + std::to_string(job->step + 1),
                   &task.id);
  }
  // The continued reports must be waiting ones, in the job's order: each
  // is the next waiting row with its ID after the last one's (found in one
  // pass over the rows; a map of thousands of IDs was 2 % of the helper).
  std::vector<size_t> order;
  order.reserve(continue_req->verify_continues.size());
  size_t next_row = 0;
  for (const dap::VerifyContinue& verify_continue : continue_req->verify_continues) {
    while (next_row < rows.size() && (rows[next_row].state != ReportAggregationState::kWaiting ||
                                      rows[next_row].report_id != verify_continue.report_id)) {
      ++next_row;
    }
    if (next_row == rows.size()) {
      return Problem(ProblemType::kInvalidMessage,
                     "a report is unknown, not waiting, repeated or out of order", &task.id);
    }
    order.push_back(next_row++);
  }
  auto agg_param = agg_params_.Decode(task, job->agg_param);
  if (!agg_param) return Problem(ProblemType::kInternal, "stored aggregation parameter", &task.id);

  // The states the first step left: stored with the job, kept in memory, or
  // computed again.
  auto states = ContinuedStates(task, job_id, **agg_param, rows, order);
  if (!states) {
    return Problem(ProblemType::kInternal, "verification states: " + states.error().message(),
                   &task.id);
  }

  // Verify.
  dap::AggregationJobResp response;
  internal::OutputAccumulator accumulator(task, **agg_param, job->agg_param);
  std::vector<bool> continued(rows.size(), false);
  bool still_waiting = false;
  for (size_t k = 0; k < order.size(); ++k) {
    ReportAggregationRow& row = rows[order[k]];
    continued[order[k]] = true;
    dap::VerifyResp verify_resp;
    verify_resp.report_id = row.report_id;
    dap::PingPongState& state = (*states)[order[k]];
    dap::PingPongState next;
    if (state.kind == PingKind::kContinued) {
      auto start = std::chrono::steady_clock::now();
      next = dap::PingPongContinued(*task.vdaf, false, task.vdaf_context, **agg_param,
                                    std::move(state.verify_state), state.round,
                                    continue_req->verify_continues[k].payload);
      metrics_.Verified(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    switch (next.kind) {
      case PingKind::kFinished:
      case PingKind::kFinishedWithOutbound: {
        auto added = accumulator.Add(row.bucket_key, row.time, row.report_id, next.out_share);
        if (!added) return Problem(ProblemType::kInternal, "output share", &task.id);
        row.state = ReportAggregationState::kFinished;
        row.verify_state.clear();
        row.init_payload.clear();
        if (next.kind == PingKind::kFinished) {
          verify_resp.type = dap::VerifyRespType::kFinish;
        } else {
          verify_resp.type = dap::VerifyRespType::kContinue;
          verify_resp.payload = next.outbound;
        }
        break;
      }
      case PingKind::kContinued:
        row.state = ReportAggregationState::kWaiting;
        row.verify_state = internal::EncodeContinuedState(next.round, next.verify_state);
        row.init_payload.clear();
        verify_resp.type = dap::VerifyRespType::kContinue;
        verify_resp.payload = next.outbound;
        still_waiting = true;
        break;
      case PingKind::kRejected:
        row.state = ReportAggregationState::kFailed;
        row.error = ReportError::kVdafVerifyError;
        row.verify_state.clear();
        row.init_payload.clear();
        verify_resp.type = dap::VerifyRespType::kReject;
        verify_resp.report_error = ReportError::kVdafVerifyError;
        metrics_.ReportRejected(ReportError::kVdafVerifyError);
        break;
    }
    response.verify_resps.push_back(std::move(verify_resp));
  }
  // Waiting reports the leader left out were rejected on its side.
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].state == ReportAggregationState::kWaiting && !continued[i]) {
      rows[i].state = ReportAggregationState::kFailed;
      rows[i].error = ReportError::kVdafVerifyError;
      rows[i].verify_state.clear();
      rows[i].init_payload.clear();
    }
  }
  auto encoded = dap::Encode(response);
  if (!encoded) return Problem(ProblemType::kInternal, "cannot encode the response", &task.id);

  bool stale = false;
  std::optional<AggregationJobRow> moved_on;  // The job as it is, when stale.
  auto commit = datastore_.Run([&](Transaction& tx) -> Result<void> {
    auto current = tx.GetAggregationJob(task.id, job_id);
    if (!current) return std::unexpected(current.error());
    stale = !current->has_value() || (*current)->step != job->step ||
            (*current)->state != JobState::kInProgress;
    if (stale) {
      moved_on = std::move(*current);
      return {};
    }
    for (size_t i = 0; i < rows.size(); ++i) {
      if (rows[i].state == ReportAggregationState::kFinished && !task.multi_level()) {
        auto collected = tx.IsBucketCollected(task.id, rows[i].bucket_key);
        if (!collected) return std::unexpected(collected.error());
        if (*collected) {
          return MakeError(ErrorCode::kInvalidArgument, "batch collected");
        }
      }
      if (rows[i].state == ReportAggregationState::kFailed) {
        auto recorded = tx.RecordRejectedReport(task.id, rows[i].report_id, rows[i].error);
        if (!recorded) return recorded;
      }
    }
    auto stored = tx.PutJobReports(task.id, job_id, rows);
    if (!stored) return stored;
    auto committed = accumulator.Commit(tx);
    if (!committed) return committed;
    AggregationJobRow updated = **current;
    if (updated.step == 0) {
      // The init's answer stays for a leader that redoes the job.
      updated.init_request_hash = updated.last_request_hash;
      updated.init_response = updated.last_response;
    }
    updated.step = continue_req->step;
    updated.state = still_waiting ? JobState::kInProgress : JobState::kFinished;
    updated.last_request_hash = request_hash_bytes;
    updated.last_response = *encoded;
    return tx.PutAggregationJob(updated);
  });
  if (!commit) {
    if (commit.error().code() == ErrorCode::kInvalidArgument) {
      return Problem(ProblemType::kBatchOverlap,
                     "a report's batch was collected while the job was in progress", &task.id);
    }
    return Problem(ProblemType::kInternal, "datastore: " + commit.error().message(), &task.id);
  }
  if (stale) {
    // The same request, handled meanwhile by a concurrent copy of it (a
    // client's retry while the first attempt was still running): its answer.
    if (moved_on && moved_on->step == continue_req->step &&
        moved_on->last_request_hash == request_hash_bytes) {
      return internal::Message(200, "aggregation-job-resp", moved_on->last_response);
    }
    return Problem(ProblemType::kStepMismatch, "the job moved on concurrently", &task.id);
  }
  metrics_.AggregationJob(still_waiting ? Metrics::JobEvent::kStepped
                                        : Metrics::JobEvent::kFinished);
  return internal::Message(200, "aggregation-job-resp", std::move(*encoded));
}

bool AggregatorService::Expired(const Task& task, dap::Time report_time, uint64_t now) const {
  if (options_.report_expiry_seconds == 0) return false;
  // A report accepted at time c has a time of at most c + skew, and its jobs
  // are deleted once c < now - expiry: so once its time is below
  // now - expiry + skew, they may be.
  const uint64_t precision = std::max<uint64_t>(1, task.configuration.time_precision);
  const uint64_t oldest_kept =
      now + options_.tolerable_clock_skew_seconds - std::min(now, options_.report_expiry_seconds);
  // In time_precision units, rounded up; a later time cannot overflow (it
  // was checked against now + skew already).
  return report_time < (oldest_kept + precision - 1) / precision;
}

LevelClaims::Loader AggregatorService::LevelLoader(const TaskId& task_id, const Bytes& agg_param) {
  return [this, task_id, agg_param] {
    return LoadLevelClaims(datastore_, task_id, agg_param, HelperRowHoldsClaim);
  };
}

Result<std::vector<dap::PingPongState>> AggregatorService::ContinuedStates(
    const Task& task, const JobId& job_id, const poplar::AggregationParameter& agg_param,
    const std::vector<ReportAggregationRow>& rows, const std::vector<size_t>& continued) {
  std::vector<dap::PingPongState> states(rows.size());
  std::unique_ptr<StepStateCache::States> kept = step_states_.Take(task.id, job_id);
  std::vector<size_t> missing;
  for (size_t i : continued) {
    const ReportAggregationRow& row = rows[i];
    if (!row.verify_state.empty()) {
      // Stored with the job (tasks without held shares). A state that does
      // not decode leaves the report rejected.
      auto stored = internal::DecodeContinuedState(row.verify_state);
      if (stored) {
        states[i].kind = PingKind::kContinued;
        states[i].verify_state = std::move(stored->state);
        states[i].round = stored->round;
      }
    } else if (kept && i < kept->size() && (*kept)[i].kind == PingKind::kContinued) {
      states[i] = std::move((*kept)[i]);
    } else {
      missing.push_back(i);
    }
  }
  if (missing.empty()) return states;

  // Computed again, as the first step did: from the held share (prepared in
  // memory, or read), the leader's first message and the same key.
  std::vector<std::unique_ptr<poplar::PreparedReport>> prepared(missing.size());
  std::vector<std::optional<HeldReportRow>> held(missing.size());
  for (size_t m = 0; m < missing.size(); ++m) {
    prepared[m] = report_cache_.Take(task.id, rows[missing[m]].report_id);
  }
  auto read = datastore_.Read([&](Transaction& tx) -> Result<void> {
    for (size_t m = 0; m < missing.size(); ++m) {
      if (prepared[m] != nullptr) continue;
      auto found = tx.GetHeldReport(task.id, rows[missing[m]].report_id);
      if (!found) return std::unexpected(found.error());
      held[m] = std::move(*found);
    }
    return {};
  });
  if (!read) return std::unexpected(read.error());
  // One batch per verification key (a task has one, or a few while keys
  // rotate).
  std::map<uint8_t, std::vector<size_t>> by_key;
  for (size_t m = 0; m < missing.size(); ++m) {
    const ReportAggregationRow& row = rows[missing[m]];
    if (prepared[m] == nullptr && held[m]) {
      auto decoded = task.vdaf->PrepareReport(1, task.vdaf_context, row.report_id,
                                              held[m]->public_share, held[m]->input_share);
      if (decoded) prepared[m] = std::move(*decoded);
    }
    // A report that cannot be prepared again stays rejected.
    if (prepared[m] != nullptr) by_key[row.verification_key_id].push_back(m);
  }
  for (const auto& [key_id, members] : by_key) {
    auto key = task.verify_keys.find(key_id);
    if (key == task.verify_keys.end()) continue;
    std::vector<poplar::PreparedReport*> reports;
    std::vector<std::span<const uint8_t>> inbound;
    for (size_t m : members) {
      reports.push_back(prepared[m].get());
      inbound.push_back(rows[missing[m]].init_payload);
    }
    std::vector<dap::PingPongState> again(members.size());
    dap::PingPongHelperInitBatch(*task.vdaf, key->second.span(), task.vdaf_context, agg_param,
                                 reports, inbound, again);
    for (size_t j = 0; j < members.size(); ++j) states[missing[members[j]]] = std::move(again[j]);
  }
  for (size_t m = 0; m < missing.size(); ++m) {
    if (prepared[m]) report_cache_.Put(task.id, rows[missing[m]].report_id, std::move(prepared[m]));
  }
  return states;
}

ServerResponse AggregatorService::GetAggregationJob(const Task& task, const JobId& job_id,
                                                    const ServerRequest& request) {
  std::optional<AggregationJobRow> job;
  auto read = datastore_.Run([&](Transaction& tx) -> Result<void> {
    auto found = tx.GetAggregationJob(task.id, job_id);
    if (!found) return std::unexpected(found.error());
    job = std::move(*found);
    return {};
  });
  if (!read)
    return Problem(ProblemType::kInternal, "datastore: " + read.error().message(), &task.id);
  if (!job || job->state == JobState::kAbandoned) {
    return Problem(ProblemType::kUnrecognizedAggregationJob, "no such aggregation job", &task.id);
  }
  // Jobs are handled synchronously, so the only step to poll is the last.
  std::string expected = "step=" + std::to_string(job->step);
  if (request.query != expected) {
    return Problem(ProblemType::kStepMismatch, "the job is at " + expected, &task.id);
  }
  return internal::Message(200, "aggregation-job-resp", job->last_response);
}

ServerResponse AggregatorService::DeleteAggregationJob(const Task& task, const JobId& job_id) {
  step_states_.Erase(task.id, job_id);
  bool found = false;
  auto done = datastore_.Run([&](Transaction& tx) -> Result<void> {
    auto job = tx.GetAggregationJob(task.id, job_id);
    if (!job) return std::unexpected(job.error());
    found = job->has_value();
    if (!found) return {};
    // Replay and collection state stay (DAP-19): only the job is abandoned.
    AggregationJobRow row = **job;
    row.state = JobState::kAbandoned;
    return tx.PutAggregationJob(row);
  });
  if (!done)
    return Problem(ProblemType::kInternal, "datastore: " + done.error().message(), &task.id);
  if (!found) {
    return Problem(ProblemType::kUnrecognizedAggregationJob, "no such aggregation job", &task.id);
  }
  metrics_.AggregationJob(Metrics::JobEvent::kAbandoned);
  ServerResponse response;
  response.status = 204;
  return response;
}

ServerResponse AggregatorService::CreateAggregateShare(const Task& task,
                                                       const ServerRequest& request) {
  if (!internal::HasMediaType(request, "aggregate-share-req")) {
    return internal::WrongMediaType("aggregate-share-req", task.id);
  }
  auto share_req = dap::Decode<dap::AggregateShareReq>(request.body);
  if (!share_req)
    return Problem(ProblemType::kInvalidMessage, share_req.error().message(), &task.id);
  const JobId share_id = internal::ContentDerivedId(task.id, request.body);
  const auto request_hash = internal::Sha256(request.body);
  const std::string location = JobLocation(task, "aggregate_shares", share_id);
  const dap::CollectionJobReq& collection = share_req->collection_job_req;

  auto selector_ok =
      dap::CheckBatchSelector(task.configuration, collection.query, share_req->batch_selector);
  if (!selector_ok) {
    return Problem(selector_ok.error().code() == ErrorCode::kDecodeError
                       ? ProblemType::kInvalidMessage
                       : ProblemType::kBatchInvalid,
                   selector_ok.error().message(), &task.id);
  }
  if (!dap::ExtensionsStrictlyIncreasing(collection.extensions)) {
    return Problem(ProblemType::kInvalidExtension, "extensions are not strictly increasing",
                   &task.id);
  }
  for (const dap::Extension& extension : collection.extensions) {
    if (extension.type != dap::kWalkIdExtension || !task.multi_level()) {
      return Problem(ProblemType::kUnsupportedExtension,
                     "unsupported collection job extension " + std::to_string(extension.type),
                     &task.id);
    }
  }
  auto agg_param = task.vdaf->DecodeAggParam(collection.agg_param, nullptr);
  if (!agg_param) {
    return Problem(ProblemType::kInvalidAggregationParameter, agg_param.error().message(),
                   &task.id);
  }
  // The batch's buckets, and the key its collection history is kept under.
  Bytes first_key, last_key, history_key;
  std::vector<Bytes> buckets;
  if (task.leader_selected()) {
    auto batch_id = dap::BatchIdOf(share_req->batch_selector);
    if (!batch_id)
      return Problem(ProblemType::kInvalidMessage, batch_id.error().message(), &task.id);
    first_key = last_key = history_key = Bytes(batch_id->begin(), batch_id->end());
    buckets.push_back(first_key);
  } else {
    auto interval = dap::BatchIntervalOf(share_req->batch_selector);
    if (!interval)
      return Problem(ProblemType::kInvalidMessage, interval.error().message(), &task.id);
    auto keys = internal::IntervalBucketKeys(*interval);
    if (!keys) {
      return Problem(ProblemType::kBatchInvalid,
                     "a batch interval may span at most 2^20 time_precision units", &task.id);
    }
    first_key = internal::FirstBucketKey(*interval);
    last_key = internal::LastBucketKey(*interval);
    history_key = internal::IntervalBatchKey(*interval);
    buckets = std::move(*keys);
  }

  std::optional<ProblemType> refusal;
  std::string refusal_detail;
  Bytes encoded_share;
  auto run = datastore_.Run([&](Transaction& tx) -> Result<void> {
    refusal.reset();
    auto existing = tx.GetAggregateShare(task.id, share_id);
    if (!existing) return std::unexpected(existing.error());
    if (existing->has_value()) {
      encoded_share = (*existing)->response;
      return {};
    }
    auto collected = tx.AnyBucketCollected(task.id, first_key, last_key);
    if (!collected) return std::unexpected(collected.error());
    // A multi-level batch may be collected again, but only as exactly the
    // same batch (docs/multi-level-collection.md, rules 2 and 3), and the
    // helper checks that itself rather than trusting the leader: anything
    // else could release the difference of two overlapping batches.
    std::vector<Bytes> history;
    if (task.multi_level()) {
      auto stored = tx.BucketAggParams(task.id, history_key);
      if (!stored) return std::unexpected(stored.error());
      history = std::move(*stored);
    }
    if (*collected && (!task.multi_level() || history.empty())) {
      refusal = ProblemType::kBatchOverlap;
      refusal_detail = "the batch overlaps a collected batch";
      return {};
    }
    if (task.multi_level()) {
      std::string problem =
          internal::CheckAggParamHistory(task, collection.agg_param, **agg_param, history);
      if (!problem.empty()) {
        refusal = ProblemType::kInvalidAggregationParameter;
        refusal_detail = problem;
        return {};
      }
    }
    auto total =
        internal::SumBatch(tx, task, **agg_param, collection.agg_param, first_key, last_key);
    if (!total) return std::unexpected(total.error());
    if (total->count < task.configuration.min_batch_size) {
      refusal = ProblemType::kInvalidBatchSize;
      refusal_detail =
          "the batch holds " + std::to_string(total->count) + " reports, fewer than min_batch_size";
      return {};
    }
    if (total->count != share_req->report_count || total->checksum != share_req->checksum) {
      refusal = ProblemType::kBatchMismatch;
      refusal_detail =
          "report count or checksum differ: the helper counted " + std::to_string(total->count);
      return {};
    }
    for (const Bytes& bucket : buckets) {
      auto marked = tx.MarkBucketCollected(task.id, bucket);
      if (!marked) return marked;
    }
    if (task.multi_level() &&
        std::find(history.begin(), history.end(), collection.agg_param) == history.end()) {
      auto appended = tx.AppendBucketAggParam(task.id, history_key, collection.agg_param);
      if (!appended) return appended;
    }
    dap::AggregateShareAad aad{task.id, task.configuration, collection};
    auto aad_bytes = dap::Encode(aad);
    if (!aad_bytes) return std::unexpected(aad_bytes.error());
    Bytes plaintext = poplar::EncodeFieldVector(total->aggregate);
    auto sealed = crypto::hpke::Seal(
        dap::SuiteOf(task.collector_hpke_config), task.collector_hpke_config.public_key,
        dap::AggregateShareInfo(dap::Role::kHelper), *aad_bytes, plaintext);
    if (!sealed) return std::unexpected(sealed.error());
    dap::AggregateShare share{
        {task.collector_hpke_config.id, std::move(sealed->enc), std::move(sealed->ciphertext)}};
    auto encoded = dap::Encode(share);
    if (!encoded) return std::unexpected(encoded.error());
    encoded_share = std::move(*encoded);
    return tx.PutAggregateShare(
        {task.id, share_id, Bytes(request_hash.begin(), request_hash.end()), encoded_share});
  });
  if (!run)
    return Problem(ProblemType::kInternal, "aggregate share: " + run.error().message(), &task.id);
  if (refusal) return Problem(*refusal, refusal_detail, &task.id);
  ServerResponse response = internal::Message(201, "aggregate-share", std::move(encoded_share));
  response.SetHeader("Location", location);
  return response;
}

ServerResponse AggregatorService::GetAggregateShare(const Task& task, const JobId& share_id) {
  std::optional<AggregateShareRow> row;
  auto read = datastore_.Run([&](Transaction& tx) -> Result<void> {
    auto found = tx.GetAggregateShare(task.id, share_id);
    if (!found) return std::unexpected(found.error());
    row = std::move(*found);
    return {};
  });
  if (!read)
    return Problem(ProblemType::kInternal, "datastore: " + read.error().message(), &task.id);
  if (!row) {
    return internal::NotFound("no such aggregate share", &task.id);
  }
  return internal::Message(200, "aggregate-share", row->response);
}

}  // namespace canopy::aggregator
