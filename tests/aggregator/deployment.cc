#include "tests/aggregator/deployment.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "crypto/random.h"
#include "dap/base64url.h"
#include "dap/problem.h"
#include "dap/task.h"
#include "tests/testing/temp_folder.h"

namespace canopy::aggregator::testing {
namespace {

dap::AggregatorHpkeKey MakeKey(const crypto::hpke::KeyPair& pair, uint8_t id) {
  auto key = crypto::hpke::RecipientKey::Create(crypto::hpke::KemId::kX25519HkdfSha256,
                                                pair.private_key.span());
  EXPECT_TRUE(key);
  dap::HpkeConfig config{id, 0x0020, 0x0001, 0x0001, pair.public_key};
  return {config, std::move(*key)};
}

crypto::hpke::KeyPair NewKeyPair() {
  auto pair = crypto::hpke::GenerateKeyPair(crypto::hpke::KemId::kX25519HkdfSha256);
  EXPECT_TRUE(pair);
  return std::move(*pair);
}

}  // namespace

Deployment::Deployment(DeploymentOptions options)
    : options_(options),
      leader_key_(NewKeyPair()),
      helper_key_(NewKeyPair()),
      collector_key_(NewKeyPair()) {
  folder_ = canopy::testing::MakeTempFolder("canopy-deployment");
  auto client = dap::HttpClient::Create();
  EXPECT_TRUE(client);
  http_ = std::make_unique<dap::HttpClient>(std::move(*client));
  helper_ = StartParty(dap::Role::kHelper, folder_ + "/helper.sqlite", 0);
  leader_ = StartParty(dap::Role::kLeader, folder_ + "/leader.sqlite", 0);
  RestartLeader();  // Creates the drivers.
}

Deployment::~Deployment() {
  drivers_.reset();
  if (leader_) leader_->server->Stop();
  if (helper_) helper_->server->Stop();
  leader_.reset();
  helper_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(folder_, ignored);
}

std::unique_ptr<Party> Deployment::StartParty(dap::Role role, const std::string& database,
                                              uint16_t port) {
  auto party = std::make_unique<Party>();
  SqliteOptions options;
  options.path = database;
  auto datastore = OpenSqliteDatastore(options);
  EXPECT_TRUE(datastore) << datastore.error().ToString();
  party->datastore = std::move(*datastore);
  ServiceOptions service_options;
  service_options.role = role;
  service_options.peer_token = kPeerToken;
  service_options.collector_token = kCollectorToken;
  service_options.admin_token = kAdminToken;
  if (!options_.report_levels_in_memory) {
    auto level_files = LevelFiles::Open(folder_);
    EXPECT_TRUE(level_files) << level_files.error().ToString();
    if (level_files) service_options.level_files = std::move(*level_files);
  }
  std::vector<dap::AggregatorHpkeKey> keys;
  keys.push_back(MakeKey(role == dap::Role::kLeader ? leader_key_ : helper_key_, 1));
  party->service = std::make_unique<AggregatorService>(
      service_options, *party->datastore, party->tasks, std::move(keys), party->metrics);
  auto loaded = party->service->LoadStoredTasks();
  EXPECT_TRUE(loaded);
  HttpServerOptions server_options;
  server_options.listen_address = "127.0.0.1:" + std::to_string(port);
  server_options.worker_threads = 2;
  server_options.max_body_bytes = options_.max_body_bytes;
  auto server = HttpServer::Start(server_options, *party->service);
  EXPECT_TRUE(server) << server.error().ToString();
  party->server = std::move(*server);
  party->url = "http://127.0.0.1:" + std::to_string(party->server->port()) + "/";
  return party;
}

void Deployment::RestartHelper() {
  uint16_t port = helper_->server->port();
  helper_->server->Stop();
  helper_.reset();
  helper_ = StartParty(dap::Role::kHelper, folder_ + "/helper.sqlite", port);
}

void Deployment::RestartLeader() {
  uint16_t port = leader_->server->port();
  drivers_.reset();
  leader_->server->Stop();
  leader_.reset();
  leader_ = StartParty(dap::Role::kLeader, folder_ + "/leader.sqlite", port);
  LeaderDriverOptions options;
  options.peer_token = kPeerToken;
  options.max_reports_per_job = options_.max_reports_per_job;
  options.max_reports_per_held_job = options_.max_reports_per_held_job != 0
                                         ? options_.max_reports_per_held_job
                                         : options_.max_reports_per_job;
  options.jobs_per_pass = options_.jobs_per_pass;
  options.first_pass_jobs = options_.first_pass_jobs;
  options.lease_duration = std::chrono::milliseconds(1000);
  drivers_ = std::make_unique<LeaderDrivers>(
      options, *leader_->datastore, leader_->tasks, leader_->service->hpke_keys(), *http_,
      leader_->metrics, leader_->service->report_cache(), leader_->service->level_claims());
}

config::TaskDefinition Deployment::NewTaskDefinition(uint64_t min_batch_size) {
  config::TaskDefinition definition;
  std::vector<uint8_t> id(32);
  EXPECT_TRUE(crypto::RandomBytes(id));
  definition.set_task_id(dap::Base64UrlEncode(id));
  definition.set_leader_url(leader_->url);
  definition.set_helper_url(helper_->url);
  definition.set_time_precision_seconds(3600);
  definition.set_min_batch_size(min_batch_size);
  definition.set_batch_mode(config::TaskDefinition::TIME_INTERVAL);
  std::vector<uint8_t> verify_key(32);
  EXPECT_TRUE(crypto::RandomBytes(verify_key));
  config::VerifyKey* key = definition.add_verify_keys();
  key->set_id(0);
  key->set_key(dap::Base64UrlEncode(verify_key));
  config::CollectorHpkeConfig* collector = definition.mutable_collector_hpke_config();
  collector->set_id(7);
  collector->set_kem_id(0x0020);
  collector->set_kdf_id(0x0001);
  collector->set_aead_id(0x0001);
  collector->set_public_key(dap::Base64UrlEncode(collector_key_.public_key));
  return definition;
}

dap::TaskId Deployment::AddTask(const config::TaskDefinition& definition) {
  auto added_leader = leader_->service->AddTask(definition, "test");
  EXPECT_TRUE(added_leader) << added_leader.error().ToString();
  auto added_helper = helper_->service->AddTask(definition, "test");
  EXPECT_TRUE(added_helper) << added_helper.error().ToString();
  definitions_.push_back(definition);
  auto task = BuildTask(definition);
  EXPECT_TRUE(task);
  return (*task)->id;
}

dap::Time Deployment::NowUnits(const dap::TaskId& task_id) {
  auto task = leader_->tasks.Find(task_id);
  uint64_t now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  return now / task->configuration.time_precision;
}

std::vector<dap::Report> Deployment::BuildReports(
    const dap::TaskId& task_id, const std::vector<poplar::Measurement>& measurements,
    dap::Time time) {
  auto task = leader_->tasks.Find(task_id);
  dap::UploadTarget target;
  target.task_id = task_id;
  target.task_configuration = task->configuration;
  target.leader_hpke_config = leader_->service->hpke_keys()[0].config;
  target.helper_hpke_config = helper_->service->hpke_keys()[0].config;
  std::vector<dap::Report> reports;
  for (const auto& measurement : measurements) {
    auto report = dap::BuildReport(target, *task->vdaf, measurement, time);
    EXPECT_TRUE(report) << report.error().ToString();
    reports.push_back(std::move(*report));
  }
  return reports;
}

Result<dap::HttpResponse> Deployment::Upload(const dap::TaskId& task_id,
                                             const std::vector<poplar::Measurement>& measurements,
                                             dap::Time time) {
  dap::UploadRequest upload{BuildReports(task_id, measurements, time)};
  auto body = dap::Encode(upload);
  EXPECT_TRUE(body);
  return http_->Send(
      dap::HttpMethod::kPost,
      dap::JoinUrl(leader_->url, "tasks/" + dap::Base64UrlEncode(task_id) + "/reports"),
      "application/ppm-dap;message=upload-req", *body);
}

Result<dap::HttpResponse> Deployment::CreateCollectionJob(const dap::TaskId& task_id,
                                                          const dap::CollectionJobReq& request) {
  auto body = dap::Encode(request);
  EXPECT_TRUE(body);
  return http_->Send(
      dap::HttpMethod::kPost,
      dap::JoinUrl(leader_->url, "tasks/" + dap::Base64UrlEncode(task_id) + "/collection_jobs"),
      "application/ppm-dap;message=collection-job-req", *body, kCollectorToken);
}

void Deployment::DriveLeader() {
  if (options_.create_beside_drivers) {
    EXPECT_TRUE(drivers_->CreateAndDriveAggregationJobs());
  } else {
    EXPECT_TRUE(drivers_->CreateAggregationJobs());
    EXPECT_TRUE(drivers_->DriveAggregationJobs());
  }
  EXPECT_TRUE(drivers_->DriveCollectionJobs());
}

Result<poplar::AggregateResult> Deployment::Unshard(const dap::TaskId& task_id,
                                                    const dap::CollectionJobReq& request,
                                                    const dap::CollectionJobResp& response) {
  auto task = leader_->tasks.Find(task_id);
  auto aad = dap::Encode(dap::AggregateShareAad{task_id, task->configuration, request});
  if (!aad) return std::unexpected(aad.error());
  auto key = crypto::hpke::RecipientKey::Create(crypto::hpke::KemId::kX25519HkdfSha256,
                                                collector_key_.private_key.span());
  if (!key) return std::unexpected(key.error());
  std::vector<std::vector<uint8_t>> shares;
  const dap::HpkeCiphertext* ciphertexts[2] = {&response.leader_encrypted_agg_share,
                                               &response.helper_encrypted_agg_share};
  const dap::Role roles[2] = {dap::Role::kLeader, dap::Role::kHelper};
  for (int i = 0; i < 2; ++i) {
    auto share =
        crypto::hpke::Open(dap::SuiteOf(task->collector_hpke_config), *key, ciphertexts[i]->enc,
                           dap::AggregateShareInfo(roles[i]), *aad, ciphertexts[i]->payload);
    if (!share) return std::unexpected(share.error());
    shares.push_back(std::move(*share));
  }
  auto agg_param = task->vdaf->DecodeAggParam(request.agg_param, nullptr);
  if (!agg_param) return std::unexpected(agg_param.error());
  return task->vdaf->Unshard(**agg_param, shares, response.report_count);
}

Result<Deployment::Collected> Deployment::Collect(const dap::TaskId& task_id,
                                                  const dap::CollectionJobReq& request) {
  auto created = CreateCollectionJob(task_id, request);
  if (!created) return std::unexpected(created.error());
  Collected collected;
  if (created->status != 201) {
    collected.status = created->status;
    auto problem =
        dap::ProblemDocument::FromJson(std::string(created->body.begin(), created->body.end()));
    if (problem) collected.problem_type = dap::ProblemToken(problem->type);
    return collected;
  }
  std::string job_url = dap::JoinUrl(leader_->url, created->location.substr(1));
  for (int round = 0; round < 200; ++round) {
    DriveLeader();
    auto polled = http_->Send(dap::HttpMethod::kGet, job_url, {}, {}, kCollectorToken);
    if (!polled) return std::unexpected(polled.error());
    collected.status = polled->status;
    if (polled->status == 202) continue;
    if (polled->status != 200) {
      auto problem =
          dap::ProblemDocument::FromJson(std::string(polled->body.begin(), polled->body.end()));
      if (problem) collected.problem_type = dap::ProblemToken(problem->type);
      return collected;
    }
    auto response = dap::Decode<dap::CollectionJobResp>(polled->body);
    if (!response) return std::unexpected(response.error());
    collected.report_count = response->report_count;
    auto result = Unshard(task_id, request, *response);
    if (!result) return std::unexpected(result.error());
    collected.result = std::move(*result);
    return collected;
  }
  return MakeError(ErrorCode::kIoError, "collection did not finish");
}

}  // namespace canopy::aggregator::testing
