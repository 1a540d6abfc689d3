// The leader's collection-job endpoints (create, poll, delete); uploads are
// in upload_endpoint.cc. The work behind a collection job is done by the drivers
// (aggregator/leader_drivers.h).
#include <algorithm>
#include <utility>

#include "aggregator/internal/aggregation.h"
#include "aggregator/internal/common.h"
#include "aggregator/service.h"
#include "aggregator/work_signal.h"
#include "crypto/random.h"
#include "dap/base64url.h"
#include "dap/http_client.h"

namespace canopy::aggregator {

using dap::ProblemType;
using dap::ReportError;
using internal::Problem;

ServerResponse AggregatorService::CreateCollectionJob(const Task& task,
                                                      const ServerRequest& request) {
  if (!internal::HasMediaType(request, "collection-job-req")) {
    return internal::WrongMediaType("collection-job-req", task.id);
  }
  auto collection = dap::Decode<dap::CollectionJobReq>(request.body);
  if (!collection) {
    return Problem(ProblemType::kInvalidMessage, collection.error().message(), &task.id);
  }
  // IDs derive from the request, so a repeated request names the same job
  // (a walk's resumed round finds its job again), except for "the next
  // batch" without a walk_id: every such request asks for a new batch.
  const bool next_batch = task.leader_selected() &&
                          std::none_of(collection->extensions.begin(), collection->extensions.end(),
                                       [](const dap::Extension& extension) {
                                         return extension.type == dap::kWalkIdExtension;
                                       });
  JobId job_id = internal::ContentDerivedId(task.id, request.body);
  if (next_batch) {
    auto random = crypto::RandomBytes(job_id);
    if (!random) return Problem(ProblemType::kInternal, "no randomness for a job ID", &task.id);
  }
  const std::string location = "/tasks/" + dap::Base64UrlEncode(task.id) + "/collection_jobs/" +
                               dap::Base64UrlEncode(job_id);
  auto query_ok = dap::CheckQuery(task.configuration, collection->query);
  if (!query_ok) {
    return Problem(query_ok.error().code() == ErrorCode::kDecodeError ? ProblemType::kInvalidMessage
                                                                      : ProblemType::kBatchInvalid,
                   query_ok.error().message(), &task.id);
  }
  if (!dap::ExtensionsStrictlyIncreasing(collection->extensions)) {
    return Problem(ProblemType::kInvalidExtension, "extensions are not strictly increasing",
                   &task.id);
  }
  Bytes walk_id;
  for (const dap::Extension& extension : collection->extensions) {
    if (extension.type != dap::kWalkIdExtension || !task.multi_level()) {
      return Problem(ProblemType::kUnsupportedExtension,
                     "unsupported collection job extension " + std::to_string(extension.type),
                     &task.id);
    }
    if (extension.data.size() != 16) {
      return Problem(ProblemType::kInvalidExtension, "walk_id must be 16 bytes", &task.id);
    }
    walk_id = extension.data;
  }
  auto agg_param = task.vdaf->DecodeAggParam(collection->agg_param, nullptr);
  if (!agg_param) {
    return Problem(ProblemType::kInvalidAggregationParameter, agg_param.error().message(),
                   &task.id);
  }
  // DAP-19 requires is_valid(agg_param, []) of every parameter, also for a
  // batch without history (Poplar1: prefixes distinct and in order).
  if (!task.vdaf->IsValid(**agg_param, {})) {
    return Problem(ProblemType::kInvalidAggregationParameter,
                   "the aggregation parameter is not valid (prefixes must be distinct and sorted)",
                   &task.id);
  }

  CollectionJobRow job;
  job.task_id = task.id;
  job.job_id = job_id;
  job.request = request.body;
  job.agg_param = collection->agg_param;
  job.created_at = static_cast<int64_t>(Now());
  // The batch: a time interval's buckets, or (leader_selected) the batch a
  // walk is bound to; a fresh leader_selected batch is chosen by the driver.
  Bytes batch_key;  // The key the batch's parameter history is kept under.
  Bytes first_key, last_key;
  if (!task.leader_selected()) {
    auto interval = dap::BatchIntervalOf(collection->query);
    if (!interval)
      return Problem(ProblemType::kInvalidMessage, interval.error().message(), &task.id);
    auto keys = internal::IntervalBucketKeys(*interval);
    if (!keys) {
      return Problem(ProblemType::kBatchInvalid,
                     "a batch interval may span at most 2^20 time_precision units", &task.id);
    }
    first_key = internal::FirstBucketKey(*interval);
    last_key = internal::LastBucketKey(*interval);
    batch_key = internal::IntervalBatchKey(*interval);
    job.bucket_keys = std::move(*keys);
  }

  std::optional<ProblemType> refusal;
  std::string detail;
  bool existed = false;
  auto run = datastore_.Run([&](Transaction& tx) -> Result<void> {
    refusal.reset();
    existed = false;
    auto existing = tx.GetCollectionJob(task.id, job_id);
    if (!existing) return std::unexpected(existing.error());
    if (existing->has_value()) {
      existed = true;
      return {};
    }
    if (task.leader_selected() && !walk_id.empty()) {
      auto bound = tx.WalkBatch(task.id, walk_id);
      if (!bound) return std::unexpected(bound.error());
      if (bound->has_value()) {
        batch_key = **bound;
        first_key = last_key = batch_key;
        job.bucket_keys = {batch_key};
      }
    }
    if (!batch_key.empty()) {
      auto history = tx.BucketAggParams(task.id, batch_key);
      if (!history) return std::unexpected(history.error());
      auto collected = tx.AnyBucketCollected(task.id, first_key, last_key);
      if (!collected) return std::unexpected(collected.error());
      const bool repeat =
          std::find(history->begin(), history->end(), collection->agg_param) != history->end();
      if (*collected && (!task.multi_level() || history->empty()) && !repeat) {
        refusal = ProblemType::kBatchOverlap;
        detail = "the batch overlaps a collected batch";
        return {};
      }
      std::string problem =
          internal::CheckAggParamHistory(task, collection->agg_param, **agg_param, *history);
      if (!problem.empty()) {
        refusal = ProblemType::kInvalidAggregationParameter;
        detail = problem;
        return {};
      }
      // Freeze the batch: later uploads into it are refused.
      for (const Bytes& bucket : job.bucket_keys) {
        auto marked = tx.MarkBucketCollected(task.id, bucket);
        if (!marked) return marked;
      }
      if (!repeat) {
        auto appended = tx.AppendBucketAggParam(task.id, batch_key, collection->agg_param);
        if (!appended) return appended;
      }
    }
    return tx.PutCollectionJob(job);
  });
  if (!run) return Problem(ProblemType::kInternal, "datastore: " + run.error().message(), &task.id);
  if (refusal) return Problem(*refusal, detail, &task.id);
  if (!existed) {
    metrics_.CollectionJob(Metrics::JobEvent::kCreated);
    if (options_.work_signal != nullptr) options_.work_signal->Notify();
  }
  ServerResponse response;
  response.status = 201;
  response.SetHeader("Location", location);
  return response;
}

ServerResponse AggregatorService::GetCollectionJob(const Task& task, const JobId& job_id) {
  std::optional<CollectionJobRow> job;
  auto read = datastore_.Run([&](Transaction& tx) -> Result<void> {
    auto found = tx.GetCollectionJob(task.id, job_id);
    if (!found) return std::unexpected(found.error());
    job = std::move(*found);
    return {};
  });
  if (!read)
    return Problem(ProblemType::kInternal, "datastore: " + read.error().message(), &task.id);
  if (!job || job->state == CollectionState::kAbandoned) {
    return internal::NotFound("no such collection job", &task.id);
  }
  switch (job->state) {
    case CollectionState::kFinished:
      return internal::Message(200, "collection-job-resp", job->response);
    case CollectionState::kFailed: {
      size_t space = job->error.find(' ');
      std::string token = job->error.substr(0, space);
      std::string detail = space == std::string::npos ? "" : job->error.substr(space + 1);
      for (int type = 0; type <= static_cast<int>(ProblemType::kInternal); ++type) {
        if (dap::ProblemToken(static_cast<ProblemType>(type)) == token) {
          return Problem(static_cast<ProblemType>(type), detail, &task.id);
        }
      }
      return Problem(ProblemType::kInternal, detail, &task.id);
    }
    default: {
      ServerResponse response;
      response.status = 202;
      response.SetHeader("Retry-After", "1");
      return response;
    }
  }
}

ServerResponse AggregatorService::DeleteCollectionJob(const Task& task, const JobId& job_id) {
  bool found = false;
  auto done = datastore_.Run([&](Transaction& tx) -> Result<void> {
    auto job = tx.GetCollectionJob(task.id, job_id);
    if (!job) return std::unexpected(job.error());
    found = job->has_value();
    if (!found) return {};
    CollectionJobRow row = std::move(**job);
    row.state = CollectionState::kAbandoned;
    return tx.PutCollectionJob(row);
  });
  if (!done)
    return Problem(ProblemType::kInternal, "datastore: " + done.error().message(), &task.id);
  if (!found) {
    return internal::NotFound("no such collection job", &task.id);
  }
  metrics_.CollectionJob(Metrics::JobEvent::kAbandoned);
  ServerResponse response;
  response.status = 204;
  return response;
}

}  // namespace canopy::aggregator
