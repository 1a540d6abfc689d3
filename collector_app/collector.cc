#include "collector_app/collector.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "config/config.h"
#include "dap/base64url.h"
#include "dap/problem.h"
#include "dap/report.h"
#include "dap/task.h"

namespace canopy::collector {
namespace {

// "type: detail" of a problem document answer, or its status.
std::string DescribeRefusal(const dap::HttpResponse& response) {
  auto problem =
      dap::ProblemDocument::FromJson(std::string(response.body.begin(), response.body.end()));
  std::string text = "HTTP ";
  text += std::to_string(response.status);
  if (!problem) return text;
  if (std::string_view token = dap::ProblemToken(problem->type); !token.empty()) {
    text += ' ';
    text += token;
  }
  if (!problem->detail.empty()) {
    text += ": ";
    text += problem->detail;
  }
  return text;
}

// The URL of a Location header: absolute, or a path on the leader.
std::string ResolveLocation(const std::string& leader_url, const std::string& location) {
  if (location.starts_with("http://") || location.starts_with("https://")) return location;
  return dap::JoinUrl(leader_url, location.starts_with("/") ? location.substr(1) : location);
}

}  // namespace

struct Collector::State {
  CollectorTask task;
  crypto::hpke::RecipientKey key;
  dap::HpkeConfig hpke_config;
  dap::HttpClient* http = nullptr;
  CollectorOptions options;
  std::string creation_url;
};

Collector::Collector(std::unique_ptr<State> state) : state_(std::move(state)) {}
Collector::Collector(Collector&&) noexcept = default;
Collector& Collector::operator=(Collector&&) noexcept = default;
Collector::~Collector() = default;

const CollectorTask& Collector::task() const { return state_->task; }

Result<Collector> Collector::Create(CollectorTask task, crypto::hpke::RecipientKey key,
                                    dap::HpkeConfig hpke_config, dap::HttpClient& http,
                                    CollectorOptions options) {
  if (task.vdaf == nullptr) return MakeError(ErrorCode::kInvalidArgument, "the task has no VDAF");
  if (task.leader_url.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "the task has no leader URL");
  }
  if (options.collector_token.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "the collector token is empty");
  }
  std::string creation_url = dap::JoinUrl(
      task.leader_url, "tasks/" + dap::Base64UrlEncode(task.task_id) + "/collection_jobs");
  return Collector(
      std::unique_ptr<State>(new State{std::move(task), std::move(key), std::move(hpke_config),
                                       &http, std::move(options), std::move(creation_url)}));
}

Result<std::string> Collector::StartCollection(const dap::CollectionJobReq& request) {
  auto body = dap::Encode(request);
  if (!body) return std::unexpected(body.error());
  // Creation is idempotent on the leader (the job's ID is derived from the
  // request), so a retried POST cannot create a second job; except for "the
  // next batch" of a leader-selected task without a walk ID, where a resent
  // request would take another batch: that one is sent once.
  dap::HttpRequest post;
  post.method = dap::HttpMethod::kPost;
  post.url = state_->creation_url;
  post.content_type = kCollectionJobReqMediaType;
  post.body = *body;
  post.bearer_token = state_->options.collector_token;
  post.idempotent = request.query.batch_mode != dap::BatchMode::kLeaderSelected ||
                    std::any_of(request.extensions.begin(), request.extensions.end(),
                                [](const dap::Extension& extension) {
                                  return extension.type == dap::kWalkIdExtension;
                                });
  auto answer = state_->http->Send(post);
  if (!answer) return std::unexpected(answer.error());
  if (answer->status != 201 && answer->status != 200) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the leader refused the collection job: " + DescribeRefusal(*answer));
  }
  if (answer->location.empty()) {
    return MakeError(ErrorCode::kDecodeError,
                     "the leader created a collection job without a Location header");
  }
  return ResolveLocation(state_->task.leader_url, answer->location);
}

Result<Collection> Collector::FinishCollection(const dap::CollectionJobReq& request,
                                               const std::string& job_url) {
  const auto deadline = std::chrono::steady_clock::now() + state_->options.collection_timeout;
  auto delay = std::min(state_->options.first_poll_delay, state_->options.poll_interval);
  for (int polls = 1;; ++polls) {
    std::this_thread::sleep_for(delay);
    auto answer =
        state_->http->Send(dap::HttpMethod::kGet, job_url, {}, {}, state_->options.collector_token);
    if (!answer) return std::unexpected(answer.error());
    if (answer->status == 200) {
      auto response = dap::Decode<dap::CollectionJobResp>(answer->body);
      if (!response) {
        return MakeError(ErrorCode::kDecodeError,
                         "the leader's collection job response: " + response.error().message());
      }
      auto collection = Decrypt(request, *response);
      if (collection) collection->polls = polls;
      return collection;
    }
    if (answer->status != 202) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "the collection failed: " + DescribeRefusal(*answer));
    }
    if (std::chrono::steady_clock::now() + delay > deadline) {
      return MakeError(
          ErrorCode::kIoError,
          "the collection job is still pending after the collection timeout: " + job_url);
    }
    delay = std::min(state_->options.poll_interval,
                     std::chrono::milliseconds(delay.count() + delay.count() / 4 + 1));
  }
}

Result<Collection> Collector::Collect(const dap::CollectionJobReq& request) {
  auto job_url = StartCollection(request);
  if (!job_url) return std::unexpected(job_url.error());
  return FinishCollection(request, *job_url);
}

Result<Collection> Collector::Decrypt(const dap::CollectionJobReq& request,
                                      const dap::CollectionJobResp& response) const {
  const CollectorTask& task = state_->task;
  auto aad = dap::Encode(dap::AggregateShareAad{task.task_id, task.configuration, request});
  if (!aad) return std::unexpected(aad.error());
  const dap::HpkeCiphertext* ciphertexts[2] = {&response.leader_encrypted_agg_share,
                                               &response.helper_encrypted_agg_share};
  const dap::Role roles[2] = {dap::Role::kLeader, dap::Role::kHelper};
  const char* names[2] = {"leader", "helper"};
  std::vector<std::vector<uint8_t>> shares;
  for (int i = 0; i < 2; ++i) {
    if (ciphertexts[i]->config_id != state_->hpke_config.id) {
      return MakeError(ErrorCode::kVerifyFailed, std::string("the ") + names[i] +
                                                     "'s aggregate share is encrypted to HPKE "
                                                     "config " +
                                                     std::to_string(ciphertexts[i]->config_id) +
                                                     ", not the collector's " +
                                                     std::to_string(state_->hpke_config.id));
    }
    auto share =
        crypto::hpke::Open(dap::SuiteOf(state_->hpke_config), state_->key, ciphertexts[i]->enc,
                           dap::AggregateShareInfo(roles[i]), *aad, ciphertexts[i]->payload);
    if (!share) {
      return MakeError(share.error().code(),
                       std::string("the ") + names[i] +
                           "'s aggregate share does not open: " + share.error().message());
    }
    shares.push_back(std::move(*share));
  }
  auto agg_param = task.vdaf->DecodeAggParam(request.agg_param, nullptr);
  if (!agg_param) return std::unexpected(agg_param.error());
  auto result = task.vdaf->Unshard(**agg_param, shares, response.report_count);
  if (!result) return std::unexpected(result.error());
  Collection collection;
  collection.report_count = response.report_count;
  collection.interval = response.interval;
  collection.result = std::move(*result);
  return collection;
}

}  // namespace canopy::collector
