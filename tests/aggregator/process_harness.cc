#include "tests/aggregator/process_harness.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <utility>

#include "config/config.h"
#include "crypto/random.h"
#include "dap/base64url.h"
#include "dap/problem.h"
#include "dap/upload_client.h"
#include "tests/testing/local_deployment.h"
#include "tests/testing/temp_folder.h"

#ifndef CANOPY_AGGREGATOR_BINARY
#error "CANOPY_AGGREGATOR_BINARY must name the canopy-aggregator executable"
#endif

namespace canopy::aggregator::testing {
namespace {

constexpr char kPeerToken[] = "process-test-peer-token";
constexpr char kCollectorToken[] = "process-test-collector-token";

crypto::hpke::KeyPair NewKeyPair() {
  auto pair = crypto::hpke::GenerateKeyPair(crypto::hpke::KemId::kX25519HkdfSha256);
  EXPECT_TRUE(pair);
  return std::move(*pair);
}

// A loopback port nobody listens on now (0 when none could be found).
uint16_t FreeLoopbackPort() { return canopy::testing::FreeLoopbackPort().value_or(0); }

Result<void> WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return MakeError(ErrorCode::kIoError, "cannot write " + path);
  return {};
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ProblemTypeOf(const dap::HttpResponse& response) {
  auto problem =
      dap::ProblemDocument::FromJson(std::string(response.body.begin(), response.body.end()));
  return problem ? std::string(dap::ProblemToken(problem->type)) : std::string();
}

}  // namespace

// --- ProcessDeployment.

ProcessDeployment::ProcessDeployment(ProcessDeploymentOptions options)
    : options_(options),
      leader_key_(NewKeyPair()),
      helper_key_(NewKeyPair()),
      collector_key_(NewKeyPair()) {
  folder_ = canopy::testing::MakeTempFolder("canopy-process");
  leader_port_ = FreeLoopbackPort();
  do {
    helper_port_ = FreeLoopbackPort();
  } while (helper_port_ == leader_port_);
  EXPECT_NE(leader_port_, 0);
  EXPECT_NE(helper_port_, 0);
  leader_ = std::make_unique<AggregatorProcess>("leader", CANOPY_AGGREGATOR_BINARY,
                                                folder_ + "/leader.textproto",
                                                folder_ + "/leader.log", leader_port_);
  helper_ = std::make_unique<AggregatorProcess>("helper", CANOPY_AGGREGATOR_BINARY,
                                                folder_ + "/helper.textproto",
                                                folder_ + "/helper.log", helper_port_);
  auto client = dap::HttpClient::Create();
  EXPECT_TRUE(client);
  http_ = std::make_unique<dap::HttpClient>(std::move(*client));
}

ProcessDeployment::~ProcessDeployment() {
  leader_->Kill();
  helper_->Kill();
  if (::testing::Test::HasFailure()) std::cerr << Logs();
  std::error_code ignored;
  std::filesystem::remove_all(folder_, ignored);
}

config::TaskDefinition ProcessDeployment::NewTaskDefinition(uint64_t min_batch_size) const {
  config::TaskDefinition definition;
  std::vector<uint8_t> id(32);
  EXPECT_TRUE(crypto::RandomBytes(id));
  definition.set_task_id(dap::Base64UrlEncode(id));
  definition.set_leader_url(leader_->url());
  definition.set_helper_url(helper_->url());
  definition.set_time_precision_seconds(3600);
  definition.set_min_batch_size(min_batch_size);
  definition.set_batch_mode(config::TaskDefinition::TIME_INTERVAL);
  std::vector<uint8_t> verify_key(32);
  EXPECT_TRUE(crypto::RandomBytes(verify_key));
  config::VerifyKey* key = definition.add_verify_keys();
  key->set_id(0);
  key->set_key(dap::Base64UrlEncode(verify_key));
  config::CollectorHpkeConfig* collector = definition.mutable_collector_hpke_config();
  collector->set_id(9);
  collector->set_public_key(dap::Base64UrlEncode(collector_key_.public_key));
  return definition;
}

Result<dap::TaskId> ProcessDeployment::AddTask(const config::TaskDefinition& definition) {
  auto task = BuildTask(definition);
  if (!task) return std::unexpected(task.error());
  definitions_.push_back(definition);
  tasks_.push_back(*task);
  return (*task)->id;
}

std::shared_ptr<const Task> ProcessDeployment::task(const dap::TaskId& task_id) const {
  for (const auto& task : tasks_) {
    if (task->id == task_id) return task;
  }
  return nullptr;
}

Result<void> ProcessDeployment::Start() {
  // Key files: the raw private keys, base64url.
  const std::string leader_key_file = folder_ + "/leader-hpke.key";
  const std::string helper_key_file = folder_ + "/helper-hpke.key";
  auto written = WriteFile(leader_key_file, dap::Base64UrlEncode(leader_key_.private_key.span()));
  if (!written) return written;
  written = WriteFile(helper_key_file, dap::Base64UrlEncode(helper_key_.private_key.span()));
  if (!written) return written;

  config::TaskList task_list;
  for (const auto& definition : definitions_) *task_list.add_task() = definition;
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(task_list, &text)) {
    return MakeError(ErrorCode::kInternal, "cannot print the task list");
  }
  const std::string task_file = folder_ + "/tasks.textproto";
  written = WriteFile(task_file, text);
  if (!written) return written;

  auto write_config = [&](bool leader) -> Result<void> {
    config::AggregatorConfig config;
    config.set_role(leader ? config::AggregatorConfig::LEADER : config::AggregatorConfig::HELPER);
    config.set_listen_address("127.0.0.1:" + std::to_string(leader ? leader_port_ : helper_port_));
    config.set_database_path(folder_ + (leader ? "/leader.sqlite" : "/helper.sqlite"));
    config.set_peer_token(kPeerToken);
    if (leader) {
      config.set_peer_url(helper_->url());
      config.set_collector_token(kCollectorToken);
      config.set_max_reports_per_aggregation_job(options_.max_reports_per_aggregation_job);
      config.set_max_reports_per_held_aggregation_job(options_.max_reports_per_aggregation_job);
    }
    config::HpkeKeyFiles* key = config.add_hpke_keys();
    key->set_config_id(leader ? 1 : 2);
    key->set_private_key_file(leader ? leader_key_file : helper_key_file);
    config.add_task_files(task_file);
    // Two workers each: the tests run on small machines.
    config.mutable_limits()->set_worker_threads(2);
    std::string config_text;
    if (!google::protobuf::TextFormat::PrintToString(config, &config_text)) {
      return MakeError(ErrorCode::kInternal, "cannot print a configuration");
    }
    return WriteFile(folder_ + (leader ? "/leader.textproto" : "/helper.textproto"), config_text);
  };
  written = write_config(true);
  if (!written) return written;
  written = write_config(false);
  if (!written) return written;
  auto started = helper_->Start();
  if (!started) return started;
  return leader_->Start();
}

dap::Time ProcessDeployment::NowUnits(const dap::TaskId& task_id) const {
  auto found = task(task_id);
  uint64_t now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  return now / std::max<uint64_t>(1, found->configuration.time_precision);
}

Result<void> ProcessDeployment::Upload(const dap::TaskId& task_id,
                                       const std::vector<poplar::Measurement>& measurements,
                                       dap::Time time) {
  auto found = task(task_id);
  if (found == nullptr) return MakeError(ErrorCode::kInvalidArgument, "unknown task");
  dap::UploadTask upload_task{task_id, found->configuration, leader_->url(), helper_->url()};
  auto client = dap::UploadClient::Create(std::move(upload_task), *http_);
  if (!client) return std::unexpected(client.error());
  auto summary = client->Upload(measurements, time);
  if (!summary) return std::unexpected(summary.error());
  if (!summary->rejected.empty() || summary->accepted != measurements.size()) {
    return MakeError(ErrorCode::kIoError, "the leader refused " +
                                              std::to_string(summary->rejected.size()) + " of " +
                                              std::to_string(measurements.size()) + " reports");
  }
  return {};
}

Result<ProcessDeployment::Created> ProcessDeployment::CreateCollectionJob(
    const dap::TaskId& task_id, const dap::CollectionJobReq& request) {
  auto body = dap::Encode(request);
  if (!body) return std::unexpected(body.error());
  auto answer = http_->Send(
      dap::HttpMethod::kPost,
      dap::JoinUrl(leader_->url(), "tasks/" + dap::Base64UrlEncode(task_id) + "/collection_jobs"),
      "application/ppm-dap;message=collection-job-req", *body, kCollectorToken);
  if (!answer) return std::unexpected(answer.error());
  Created created;
  if (answer->status != 201) {
    Collection refused;
    refused.status = answer->status;
    refused.problem_type = ProblemTypeOf(*answer);
    created.refused = std::move(refused);
    return created;
  }
  std::string location = answer->location;
  created.job_url =
      location.starts_with("http")
          ? location
          : dap::JoinUrl(leader_->url(), location.starts_with("/") ? location.substr(1) : location);
  return created;
}

Result<Collection> ProcessDeployment::WaitForCollection(const dap::TaskId& task_id,
                                                        const dap::CollectionJobReq& request,
                                                        const std::string& job_url,
                                                        std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto answer = http_->Send(dap::HttpMethod::kGet, job_url, {}, {}, kCollectorToken);
    if (!answer) return std::unexpected(answer.error());
    if (answer->status != 202) return Decode(task_id, request, *answer);
    if (std::chrono::steady_clock::now() > deadline) {
      return MakeError(ErrorCode::kIoError, "the collection job is still pending: " + job_url);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Result<bool> ProcessDeployment::IsPending(const std::string& job_url) {
  auto answer = http_->Send(dap::HttpMethod::kGet, job_url, {}, {}, kCollectorToken);
  if (!answer) return std::unexpected(answer.error());
  return answer->status == 202;
}

Result<Collection> ProcessDeployment::Collect(const dap::TaskId& task_id,
                                              const dap::CollectionJobReq& request) {
  auto created = CreateCollectionJob(task_id, request);
  if (!created) return std::unexpected(created.error());
  if (created->refused) return *created->refused;
  return WaitForCollection(task_id, request, created->job_url);
}

Result<Collection> ProcessDeployment::Decode(const dap::TaskId& task_id,
                                             const dap::CollectionJobReq& request,
                                             const dap::HttpResponse& answer) {
  Collection collection;
  collection.status = answer.status;
  if (answer.status != 200) {
    collection.problem_type = ProblemTypeOf(answer);
    return collection;
  }
  auto response = dap::Decode<dap::CollectionJobResp>(answer.body);
  if (!response) return std::unexpected(response.error());
  collection.report_count = response->report_count;

  // The collector's side: open both aggregate shares and unshard.
  auto found = task(task_id);
  auto aad = dap::Encode(dap::AggregateShareAad{task_id, found->configuration, request});
  if (!aad) return std::unexpected(aad.error());
  auto key = crypto::hpke::RecipientKey::Create(crypto::hpke::KemId::kX25519HkdfSha256,
                                                collector_key_.private_key.span());
  if (!key) return std::unexpected(key.error());
  std::vector<std::vector<uint8_t>> shares;
  const dap::HpkeCiphertext* ciphertexts[2] = {&response->leader_encrypted_agg_share,
                                               &response->helper_encrypted_agg_share};
  const dap::Role roles[2] = {dap::Role::kLeader, dap::Role::kHelper};
  for (int i = 0; i < 2; ++i) {
    auto share =
        crypto::hpke::Open(dap::SuiteOf(found->collector_hpke_config), *key, ciphertexts[i]->enc,
                           dap::AggregateShareInfo(roles[i]), *aad, ciphertexts[i]->payload);
    if (!share) return std::unexpected(share.error());
    shares.push_back(std::move(*share));
  }
  auto agg_param = found->vdaf->DecodeAggParam(request.agg_param, nullptr);
  if (!agg_param) return std::unexpected(agg_param.error());
  auto result = found->vdaf->Unshard(**agg_param, shares, response->report_count);
  if (!result) return std::unexpected(result.error());
  collection.result = std::move(*result);
  return collection;
}

std::string ProcessDeployment::Logs() const {
  std::string logs;
  for (const AggregatorProcess* process : {leader_.get(), helper_.get()}) {
    logs += "----- " + process->name() + " output (" + process->log_path() + ") -----\n";
    logs += ReadFile(process->log_path());
  }
  return logs;
}

}  // namespace canopy::aggregator::testing
