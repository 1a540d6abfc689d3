// Hostile input against a real leader and helper (tests/aggregator/deployment.h):
// malformed, oversized, unauthenticated and protocol-violating requests on
// every endpoint must each get the DAP problem document the draft prescribes
// (type and HTTP status), or the report error it prescribes, and must leave
// both servers serving.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "aggregator/internal/common.h"
#include "crypto/hpke.h"
#include "crypto/random.h"
#include "dap/base64url.h"
#include "dap/ping_pong.h"
#include "dap/problem.h"
#include "dap/report.h"
#include "dap/task.h"
#include "idpf/bit_string.h"
#include "poplar/poplar1.h"
#include "tests/aggregator/deployment.h"

namespace canopy::aggregator {
namespace {

using dap::HttpMethod;
using dap::ReportError;
using idpf::BitString;
using testing::Deployment;
using testing::kAdminToken;
using testing::kCollectorToken;
using testing::kPeerToken;

using Response = Result<dap::HttpResponse>;

std::string Media(std::string_view message) {
  return "application/ppm-dap;message=" + std::string(message);
}

std::string TaskPath(const dap::TaskId& task_id, std::string_view rest) {
  return "tasks/" + dap::Base64UrlEncode(task_id) + "/" + std::string(rest);
}

std::vector<uint8_t> Bytes(std::string_view text) { return {text.begin(), text.end()}; }

dap::TaskId RandomTaskId() {
  dap::TaskId id;
  EXPECT_TRUE(crypto::RandomBytes(id));
  return id;
}

JobId RandomJobId() {
  JobId id;
  EXPECT_TRUE(crypto::RandomBytes(id));
  return id;
}

template <typename M>
std::vector<uint8_t> EncodeOrDie(const M& message) {
  auto encoded = dap::Encode(message);
  EXPECT_TRUE(encoded);
  return encoded ? std::move(*encoded) : std::vector<uint8_t>{};
}

// Whether `response` is a problem document with `status` and `token` ("" for
// the non-DAP "about:blank" answers: authentication and HTTP-level
// refusals), naming `task_id` when given.
::testing::AssertionResult IsProblem(const Response& response, int status, std::string_view token,
                                     const dap::TaskId* task_id = nullptr) {
  if (!response) {
    return ::testing::AssertionFailure() << "no response: " << response.error().ToString();
  }
  const std::string body(response->body.begin(), response->body.end());
  if (response->status != status) {
    return ::testing::AssertionFailure()
           << "status " << response->status << ", wanted " << status << "; body: " << body;
  }
  if (!dap::MediaTypeMatches(response->content_type, "application/problem+json")) {
    return ::testing::AssertionFailure() << "Content-Type " << response->content_type;
  }
  if (token.empty()) {
    if (body.find("\"about:blank\"") == std::string::npos) {
      return ::testing::AssertionFailure() << "not about:blank: " << body;
    }
    return ::testing::AssertionSuccess();
  }
  auto document = dap::ProblemDocument::FromJson(body);
  if (!document) return ::testing::AssertionFailure() << "not a DAP problem document: " << body;
  if (dap::ProblemToken(document->type) != token) {
    return ::testing::AssertionFailure() << "type " << dap::ProblemToken(document->type)
                                         << ", wanted " << token << "; body: " << body;
  }
  if (task_id != nullptr && document->task_id != *task_id) {
    return ::testing::AssertionFailure() << "taskid missing or wrong: " << body;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult HasStatus(const Response& response, int status) {
  if (!response) {
    return ::testing::AssertionFailure() << "no response: " << response.error().ToString();
  }
  if (response->status != status) {
    return ::testing::AssertionFailure()
           << "status " << response->status << ", wanted " << status
           << "; body: " << std::string(response->body.begin(), response->body.end());
  }
  return ::testing::AssertionSuccess();
}

// One request and its answer on a fresh TCP connection, for what the HTTP
// client cannot send. Reads until the server closes (or 10 s pass).
std::string RawExchange(uint16_t port, std::string_view request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string answer;
  char buffer[4096];
  for (;;) {
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    answer.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return answer;
}

dap::CollectionJobReq IntervalCollection(dap::Time start, dap::Duration duration,
                                         dap::Bytes agg_param = {}) {
  dap::CollectionJobReq request;
  request.query = dap::TimeIntervalQuery({start, duration});
  request.agg_param = std::move(agg_param);
  return request;
}

// The leader's half of aggregation-job initialisation, done by the test so
// that it can send the helper what a leader would, or anything else.
struct LeaderInit {
  std::vector<dap::VerifyInit> verify_inits;
  std::vector<dap::PingPongState> states;
  std::vector<std::unique_ptr<poplar::PreparedReport>> prepared;
};

class HostileInputTest : public ::testing::Test {
 protected:
  explicit HostileInputTest(testing::DeploymentOptions options = {}) : deployment_(options) {}

  dap::TaskId AddPrio3CountTask(uint64_t min_batch_size = 1) {
    config::TaskDefinition definition = deployment_.NewTaskDefinition(min_batch_size);
    definition.mutable_prio3_count();
    return deployment_.AddTask(definition);
  }

  dap::TaskId AddPoplar1Task(bool multi_level) {
    config::TaskDefinition definition = deployment_.NewTaskDefinition(1);
    definition.mutable_poplar1()->set_bits(4);
    if (multi_level) {
      definition.mutable_multi_level_collection()->set_max_collections_per_batch(4);
    }
    return deployment_.AddTask(definition);
  }

  const Task& LeaderTask(const dap::TaskId& task_id) {
    task_holder_ = deployment_.leader().tasks.Find(task_id);
    return *task_holder_;
  }

  std::string LeaderUrl(std::string_view path) {
    return dap::JoinUrl(deployment_.leader().url, path);
  }
  std::string HelperUrl(std::string_view path) {
    return dap::JoinUrl(deployment_.helper().url, path);
  }

  Response Send(HttpMethod method, const std::string& url, std::string_view content_type,
                std::span<const uint8_t> body, std::string_view token) {
    dap::HttpRequest request;
    request.method = method;
    request.url = url;
    request.content_type = content_type;
    request.body = body;
    request.bearer_token = token;
    return deployment_.http().Send(request);
  }

  Response Post(const std::string& url, std::string_view message, std::span<const uint8_t> body,
                std::string_view token = {}) {
    return Send(HttpMethod::kPost, url, Media(message), body, token);
  }

  // A request every healthy aggregator answers: both still serve.
  void ExpectServing() {
    for (const std::string& url : {LeaderUrl("hpke_config"), HelperUrl("hpke_config")}) {
      auto response = deployment_.http().Send(HttpMethod::kGet, url);
      ASSERT_TRUE(HasStatus(response, 200)) << url;
      EXPECT_TRUE(dap::Decode<dap::HpkeConfigList>(response->body)) << url;
    }
  }

  std::vector<uint8_t> UploadBody(const dap::TaskId& /*task_id*/,
                                  const std::vector<dap::Report>& reports) {
    return EncodeOrDie(dap::UploadRequest{reports});
  }

  Response Upload(const dap::TaskId& task_id, const std::vector<dap::Report>& reports) {
    return Post(LeaderUrl(TaskPath(task_id, "reports")), "upload-req",
                UploadBody(task_id, reports));
  }

  // Uploads `reports` and returns the upload errors (empty when all were
  // accepted).
  std::vector<dap::ReportUploadStatus> UploadErrors(const dap::TaskId& task_id,
                                                    const std::vector<dap::Report>& reports) {
    auto response = Upload(task_id, reports);
    EXPECT_TRUE(HasStatus(response, 200));
    if (!response || response->body.empty()) return {};
    EXPECT_TRUE(dap::MediaTypeMatches(response->content_type, Media("upload-errors")));
    auto errors = dap::Decode<dap::UploadErrors>(response->body);
    EXPECT_TRUE(errors);
    return errors ? errors->statuses : std::vector<dap::ReportUploadStatus>{};
  }

  std::vector<dap::Report> Reports(const dap::TaskId& task_id, size_t count, dap::Time time) {
    std::vector<poplar::Measurement> measurements;
    const Task& task = LeaderTask(task_id);
    for (size_t i = 0; i < count; ++i) {
      if (task.configuration.vdaf_type == poplar::Poplar1::kAlgorithmId) {
        measurements.push_back(*BitString::Parse(i % 2 == 0 ? "0110" : "1001"));
      } else {
        measurements.push_back(uint64_t{i % 2});
      }
    }
    return deployment_.BuildReports(task_id, measurements, time);
  }

  // Opens the leader's input shares and runs the leader's ping-pong init.
  LeaderInit PlayLeaderInit(const dap::TaskId& task_id, const std::vector<dap::Report>& reports,
                            const poplar::AggregationParameter& agg_param) {
    const Task& task = LeaderTask(task_id);
    const auto& keys = deployment_.leader().service->hpke_keys();
    const dap::AggregatorHpkeKey* key_pointers[] = {&keys[0]};
    LeaderInit init;
    for (const dap::Report& report : reports) {
      auto opened = dap::OpenInputShare(task.id, task.configuration, report.metadata,
                                        report.public_share, report.leader_encrypted_input_share,
                                        dap::Role::kLeader, key_pointers);
      EXPECT_TRUE(std::holds_alternative<dap::PlaintextInputShare>(opened));
      auto prepared = task.vdaf->PrepareReport(0, task.vdaf_context, report.metadata.report_id,
                                               report.public_share,
                                               std::get<dap::PlaintextInputShare>(opened).payload);
      EXPECT_TRUE(prepared);
      init.prepared.push_back(std::move(*prepared));
      dap::PingPongState state =
          dap::PingPongLeaderInit(*task.vdaf, task.verify_keys.at(0).span(), task.vdaf_context,
                                  agg_param, *init.prepared.back());
      EXPECT_EQ(state.kind, dap::PingPongState::Kind::kContinued);
      init.verify_inits.push_back(
          {{report.metadata, report.public_share, report.helper_encrypted_input_share},
           state.outbound});
      init.states.push_back(std::move(state));
    }
    return init;
  }

  // The leader's continuation of a job after the helper's answer to its
  // init: every report must continue at the helper and finish at the leader
  // with a message for the helper (nullopt, with a test failure, otherwise).
  std::optional<dap::AggregationJobContinueReq> PlayLeaderContinue(
      const dap::TaskId& task_id, const std::vector<dap::Report>& reports,
      const poplar::AggregationParameter& agg_param, LeaderInit& leader,
      const dap::AggregationJobResp& init_resp) {
    const Task& task = LeaderTask(task_id);
    if (init_resp.verify_resps.size() != reports.size()) {
      ADD_FAILURE() << "the helper answered for " << init_resp.verify_resps.size() << " of "
                    << reports.size() << " reports";
      return std::nullopt;
    }
    dap::AggregationJobContinueReq request{1, {}};
    for (size_t i = 0; i < reports.size(); ++i) {
      if (init_resp.verify_resps[i].type != dap::VerifyRespType::kContinue) {
        ADD_FAILURE() << "report " << i << " does not continue at the helper";
        return std::nullopt;
      }
      dap::PingPongState next = dap::PingPongContinued(
          *task.vdaf, true, task.vdaf_context, agg_param, std::move(leader.states[i].verify_state),
          leader.states[i].round, init_resp.verify_resps[i].payload);
      if (next.kind != dap::PingPongState::Kind::kFinishedWithOutbound) {
        ADD_FAILURE() << "report " << i << " does not finish at the leader";
        return std::nullopt;
      }
      request.verify_continues.push_back({reports[i].metadata.report_id, next.outbound});
    }
    return request;
  }

  std::shared_ptr<const poplar::AggregationParameter> AggParam(const dap::TaskId& task_id,
                                                               const dap::Bytes& encoded) {
    auto decoded = LeaderTask(task_id).vdaf->DecodeAggParam(encoded, nullptr);
    EXPECT_TRUE(decoded);
    return *decoded;
  }

  dap::Bytes Poplar1Param(const dap::TaskId& task_id, size_t level,
                          const std::vector<std::string>& prefixes) {
    // Encoded by hand so that invalid parameters (unsorted, repeated
    // prefixes) can be built too: level (u16), count (u32), prefixes.
    dap::Bytes out = {static_cast<uint8_t>(level >> 8),     static_cast<uint8_t>(level), 0, 0, 0,
                      static_cast<uint8_t>(prefixes.size())};
    for (const std::string& text : prefixes) {
      auto prefix = BitString::Parse(text);
      EXPECT_TRUE(prefix);
      EXPECT_EQ(prefix->size(), level + 1);
      out.insert(out.end(), prefix->bytes().begin(), prefix->bytes().end());
    }
    (void)task_id;
    return out;
  }

  Response PostInit(const dap::TaskId& task_id, const dap::AggregationJobInitReq& init) {
    return Post(HelperUrl(TaskPath(task_id, "aggregation_jobs")), "aggregation-job-init-req",
                EncodeOrDie(init), kPeerToken);
  }

  // Both rounds of a Poplar1 aggregation job, as the leader would drive
  // them; every report must finish.
  void AggregatePoplar1(const dap::TaskId& task_id, const std::vector<dap::Report>& reports,
                        const dap::Bytes& param) {
    auto agg_param = AggParam(task_id, param);
    LeaderInit leader = PlayLeaderInit(task_id, reports, *agg_param);
    auto created = PostInit(task_id, {0, param, {}, leader.verify_inits});
    ASSERT_TRUE(HasStatus(created, 201));
    auto init_resp = dap::Decode<dap::AggregationJobResp>(created->body);
    ASSERT_TRUE(init_resp);
    auto continue_req = PlayLeaderContinue(task_id, reports, *agg_param, leader, *init_resp);
    ASSERT_TRUE(continue_req);
    auto continued = Post(HelperUrl(created->location.substr(1)), "aggregation-job-continue-req",
                          EncodeOrDie(*continue_req), kPeerToken);
    ASSERT_TRUE(HasStatus(continued, 200));
    auto resp = dap::Decode<dap::AggregationJobResp>(continued->body);
    ASSERT_TRUE(resp);
    for (const auto& verify_resp : resp->verify_resps) {
      EXPECT_EQ(verify_resp.type, dap::VerifyRespType::kFinish);
    }
  }

  Response PostCollection(const dap::TaskId& task_id, const dap::CollectionJobReq& request) {
    return deployment_.CreateCollectionJob(task_id, request);
  }

  Deployment deployment_;
  std::shared_ptr<const Task> task_holder_;
};

// Truncated, extended and garbage versions of a valid body.
std::vector<std::pair<std::string, std::vector<uint8_t>>> Malformed(
    const std::vector<uint8_t>& valid, bool empty_is_valid) {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> bodies;
  bodies.push_back({"truncated", {valid.begin(), valid.end() - 1}});
  // Not a multiple of anything (an upload of two equal reports cut in half
  // is one valid report).
  bodies.push_back({"cut", {valid.begin(), valid.begin() + valid.size() / 2 + 3}});
  std::vector<uint8_t> trailing = valid;
  trailing.push_back(0);
  bodies.push_back({"trailing byte", trailing});
  trailing.insert(trailing.end(), {1, 2, 3, 4, 5, 6, 7});
  bodies.push_back({"trailing bytes", trailing});
  bodies.push_back({"garbage", Bytes("this is not a DAP message at all, not even close")});
  bodies.push_back({"lengths", std::vector<uint8_t>(64, 0xff)});
  if (!empty_is_valid) bodies.push_back({"empty", {}});
  return bodies;
}

// `text` in upper case (ASCII).
std::string ToUpper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

TEST_F(HostileInputTest, MalformedBodiesOnEveryPostEndpoint) {
  const dap::TaskId prio3 = AddPrio3CountTask();
  const dap::TaskId poplar1 = AddPoplar1Task(false);
  const dap::Time now = deployment_.NowUnits(prio3);

  // A Poplar1 job in progress, to continue.
  const dap::Bytes level0 = Poplar1Param(poplar1, 0, {"0", "1"});
  auto poplar_reports = Reports(poplar1, 2, now);
  LeaderInit leader = PlayLeaderInit(poplar1, poplar_reports, *AggParam(poplar1, level0));
  auto created = PostInit(poplar1, {0, level0, {}, leader.verify_inits});
  ASSERT_TRUE(HasStatus(created, 201));
  const std::string job_url = HelperUrl(created->location.substr(1));
  auto helper_resp = dap::Decode<dap::AggregationJobResp>(created->body);
  ASSERT_TRUE(helper_resp);
  dap::AggregationJobContinueReq continue_req{1, {}};
  const Task& poplar_task = LeaderTask(poplar1);
  for (size_t i = 0; i < leader.states.size(); ++i) {
    dap::PingPongState next =
        dap::PingPongContinued(*poplar_task.vdaf, true, poplar_task.vdaf_context,
                               *AggParam(poplar1, level0), std::move(leader.states[i].verify_state),
                               leader.states[i].round, helper_resp->verify_resps[i].payload);
    ASSERT_EQ(next.kind, dap::PingPongState::Kind::kFinishedWithOutbound);
    continue_req.verify_continues.push_back({poplar_reports[i].metadata.report_id, next.outbound});
  }

  auto prio3_reports = Reports(prio3, 2, now);
  LeaderInit prio3_init = PlayLeaderInit(prio3, prio3_reports, *AggParam(prio3, {}));
  dap::AggregateShareReq share_req{
      IntervalCollection(now, 1), dap::TimeIntervalQuery({now, 1}), 2, {}};

  struct Endpoint {
    std::string url;
    std::string message;
    std::string token;
    std::vector<uint8_t> valid;
    bool empty_is_valid;
    const dap::TaskId* task_id;
  };
  const std::vector<Endpoint> endpoints = {
      {LeaderUrl(TaskPath(prio3, "reports")), "upload-req", "",
       UploadBody(prio3, Reports(prio3, 2, now)), true, &prio3},
      {LeaderUrl(TaskPath(prio3, "collection_jobs")), "collection-job-req", kCollectorToken,
       EncodeOrDie(IntervalCollection(now, 1)), false, &prio3},
      {HelperUrl(TaskPath(prio3, "aggregation_jobs")), "aggregation-job-init-req", kPeerToken,
       EncodeOrDie(dap::AggregationJobInitReq{0, {}, {}, prio3_init.verify_inits}), false, &prio3},
      {job_url, "aggregation-job-continue-req", kPeerToken, EncodeOrDie(continue_req), false,
       &poplar1},
      {HelperUrl(TaskPath(prio3, "aggregate_shares")), "aggregate-share-req", kPeerToken,
       EncodeOrDie(share_req), false, &prio3},
  };
  for (const Endpoint& endpoint : endpoints) {
    for (const auto& [name, body] : Malformed(endpoint.valid, endpoint.empty_is_valid)) {
      EXPECT_TRUE(IsProblem(Post(endpoint.url, endpoint.message, body, endpoint.token), 400,
                            "invalidMessage", endpoint.task_id))
          << endpoint.message << ", " << name;
      ExpectServing();
    }
  }
  // The valid bodies still work after all that.
  EXPECT_TRUE(HasStatus(Post(endpoints[0].url, "upload-req", endpoints[0].valid), 200));
  EXPECT_TRUE(HasStatus(
      Post(endpoints[1].url, "collection-job-req", endpoints[1].valid, kCollectorToken), 201));
  EXPECT_TRUE(HasStatus(
      Post(endpoints[2].url, "aggregation-job-init-req", endpoints[2].valid, kPeerToken), 201));
  auto continued =
      Post(endpoints[3].url, "aggregation-job-continue-req", endpoints[3].valid, kPeerToken);
  ASSERT_TRUE(HasStatus(continued, 200));
  auto finished = dap::Decode<dap::AggregationJobResp>(continued->body);
  ASSERT_TRUE(finished);
  ASSERT_EQ(finished->verify_resps.size(), 2u);
  for (const auto& resp : finished->verify_resps) {
    EXPECT_EQ(resp.type, dap::VerifyRespType::kFinish);
  }
}

TEST_F(HostileInputTest, WrongOrMissingContentTypeIs415) {
  const dap::TaskId task_id = AddPrio3CountTask();
  const dap::Time now = deployment_.NowUnits(task_id);
  const std::vector<uint8_t> upload = UploadBody(task_id, Reports(task_id, 1, now));
  struct Endpoint {
    std::string url;
    std::string message;
    std::string token;
  };
  const std::vector<Endpoint> endpoints = {
      {LeaderUrl(TaskPath(task_id, "reports")), "upload-req", ""},
      {LeaderUrl(TaskPath(task_id, "collection_jobs")), "collection-job-req", kCollectorToken},
      {HelperUrl(TaskPath(task_id, "aggregation_jobs")), "aggregation-job-init-req", kPeerToken},
      {HelperUrl(TaskPath(task_id, "aggregation_jobs/" + dap::Base64UrlEncode(RandomJobId()))),
       "aggregation-job-continue-req", kPeerToken},
      {HelperUrl(TaskPath(task_id, "aggregate_shares")), "aggregate-share-req", kPeerToken},
  };
  const std::vector<std::string> wrong_types = {
      "",  // No Content-Type header at all.
      "application/octet-stream",
      "application/ppm-dap",
      "application/ppm-dap;message=hpke-config-list",
      "text/plain;message=upload-req",
  };
  for (const Endpoint& endpoint : endpoints) {
    for (const std::string& content_type : wrong_types) {
      EXPECT_TRUE(
          IsProblem(Send(HttpMethod::kPost, endpoint.url, content_type, upload, endpoint.token),
                    415, "invalidMessage", &task_id))
          << endpoint.message << " sent as \"" << content_type << "\"";
      ExpectServing();
    }
  }
  // Media type parameters are case-insensitive in their names and may carry
  // a version hint.
  EXPECT_TRUE(HasStatus(Send(HttpMethod::kPost, endpoints[0].url,
                             "Application/PPM-DAP; message=upload-req; version=19", upload, {}),
                        200));
}

class OversizedBodyTest : public HostileInputTest {
 protected:
  static testing::DeploymentOptions SmallBodies() {
    testing::DeploymentOptions options;
    options.max_body_bytes = 16 * 1024;
    return options;
  }
  OversizedBodyTest() : HostileInputTest(SmallBodies()) {}
};

TEST_F(OversizedBodyTest, BodiesAboveTheLimitAre413) {
  const dap::TaskId task_id = AddPrio3CountTask();
  const dap::Time now = deployment_.NowUnits(task_id);
  // Declared sizes above the limit are refused before any body byte is read.
  for (uint16_t port : {deployment_.leader().server->port(), deployment_.helper().server->port()}) {
    for (const char* path : {"/tasks/x/reports", "/tasks/x/aggregation_jobs"}) {
      std::string request = std::string("POST ") + path +
                            " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            "Content-Type: application/ppm-dap;message=upload-req\r\n"
                            "Content-Length: 1000000000\r\n\r\n";
      std::string answer = RawExchange(port, request);
      EXPECT_TRUE(answer.starts_with("HTTP/1.1 413")) << answer;
      EXPECT_NE(answer.find("application/problem+json"), std::string::npos) << answer;
      ExpectServing();
    }
  }
  // A body that is actually sent: many reports in one upload.
  std::vector<dap::Report> reports = Reports(task_id, 1, now);
  std::vector<uint8_t> body = UploadBody(task_id, reports);
  std::vector<uint8_t> big;
  while (big.size() <= 16 * 1024) big.insert(big.end(), body.begin(), body.end());
  std::string request = "POST /" + TaskPath(task_id, "reports") +
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: application/ppm-dap;message=upload-req\r\n"
                        "Content-Length: " +
                        std::to_string(big.size()) + "\r\n\r\n" +
                        std::string(big.begin(), big.end());
  std::string answer = RawExchange(deployment_.leader().server->port(), request);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413")) << answer.substr(0, 200);
  ExpectServing();
  // A chunked body is counted as it streams.
  std::string chunked = "POST /" + TaskPath(task_id, "reports") +
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: application/ppm-dap;message=upload-req\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 5; ++i) chunked += "1000\r\n" + std::string(0x1000, 'x') + "\r\n";
  chunked += "0\r\n\r\n";
  answer = RawExchange(deployment_.leader().server->port(), chunked);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413")) << answer.substr(0, 200);
  ExpectServing();
  // Within the limit, the same reports are accepted.
  EXPECT_TRUE(UploadErrors(task_id, reports).empty());
}

TEST_F(HostileInputTest, MalformedHttpIs400AndTheServerKeepsServing) {
  for (uint16_t port : {deployment_.leader().server->port(), deployment_.helper().server->port()}) {
    std::string answer = RawExchange(port, "NOT HTTP AT ALL\r\n\r\n");
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 400")) << answer;
    answer = RawExchange(port, "POST /hpke_config HTTP/1.1\r\nContent-Length: nope\r\n\r\n");
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 400")) << answer;
    ExpectServing();
  }
}

TEST_F(HostileInputTest, WrongOrMissingBearerTokens) {
  const dap::TaskId task_id = AddPrio3CountTask();
  const dap::Time now = deployment_.NowUnits(task_id);
  const std::vector<uint8_t> collection = EncodeOrDie(IntervalCollection(now, 1));
  const std::string job = dap::Base64UrlEncode(RandomJobId());
  struct Endpoint {
    HttpMethod method;
    std::string url;
    std::string message;
    std::string right_token;
  };
  const std::vector<Endpoint> endpoints = {
      {HttpMethod::kPost, LeaderUrl(TaskPath(task_id, "collection_jobs")), "collection-job-req",
       kCollectorToken},
      {HttpMethod::kGet, LeaderUrl(TaskPath(task_id, "collection_jobs/" + job)), "",
       kCollectorToken},
      {HttpMethod::kDelete, LeaderUrl(TaskPath(task_id, "collection_jobs/" + job)), "",
       kCollectorToken},
      {HttpMethod::kPost, HelperUrl(TaskPath(task_id, "aggregation_jobs")),
       "aggregation-job-init-req", kPeerToken},
      {HttpMethod::kPost, HelperUrl(TaskPath(task_id, "aggregation_jobs/" + job)),
       "aggregation-job-continue-req", kPeerToken},
      {HttpMethod::kGet, HelperUrl(TaskPath(task_id, "aggregation_jobs/" + job + "?step=0")), "",
       kPeerToken},
      {HttpMethod::kDelete, HelperUrl(TaskPath(task_id, "aggregation_jobs/" + job)), "",
       kPeerToken},
      {HttpMethod::kPost, HelperUrl(TaskPath(task_id, "aggregate_shares")), "aggregate-share-req",
       kPeerToken},
      {HttpMethod::kGet, HelperUrl(TaskPath(task_id, "aggregate_shares/" + job)), "", kPeerToken},
      {HttpMethod::kGet, LeaderUrl("admin/tasks"), "", kAdminToken},
      {HttpMethod::kPost, LeaderUrl("admin/tasks"), "", kAdminToken},
      {HttpMethod::kDelete, HelperUrl("admin/tasks/" + dap::Base64UrlEncode(task_id)), "",
       kAdminToken},
  };
  for (const Endpoint& endpoint : endpoints) {
    const std::string content_type = endpoint.message.empty() ? "" : Media(endpoint.message);
    std::vector<std::string> wrong = {"", "wrong-token", endpoint.right_token + "x",
                                      endpoint.right_token.substr(1)};
    // Another party's token is no better.
    for (const char* other : {kPeerToken, kCollectorToken, kAdminToken}) {
      if (other != endpoint.right_token) wrong.push_back(other);
    }
    for (const std::string& token : wrong) {
      EXPECT_TRUE(
          IsProblem(Send(endpoint.method, endpoint.url, content_type, collection, token), 403, ""))
          << endpoint.url << " with token \"" << token << "\"";
      ExpectServing();
    }
  }
  // The token must follow the Bearer scheme and one space; other schemes are
  // refused.
  for (const std::string& header_value :
       {std::string("Basic ") + kCollectorToken, std::string("Bearer") + kCollectorToken,
        std::string(kCollectorToken)}) {
    std::string request = "POST /" + TaskPath(task_id, "collection_jobs") +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                          "Content-Type: application/ppm-dap;message=collection-job-req\r\n"
                          "Authorization: " +
                          header_value +
                          "\r\nContent-Length: " + std::to_string(collection.size()) + "\r\n\r\n" +
                          std::string(collection.begin(), collection.end());
    std::string answer = RawExchange(deployment_.leader().server->port(), request);
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 403")) << header_value << ": " << answer;
  }
  // The scheme's name is case-insensitive (RFC 9110); the token is not.
  for (const auto& [header_value, status] :
       {std::pair{std::string("bearer ") + kAdminToken, "200"},
        std::pair{std::string("BEARER ") + kAdminToken, "200"},
        std::pair{std::string("Bearer ") + ToUpper(kAdminToken), "403"}}) {
    std::string answer = RawExchange(deployment_.leader().server->port(),
                                     "GET /admin/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                     "Connection: close\r\nAuthorization: " +
                                         header_value + "\r\n\r\n");
    EXPECT_TRUE(answer.starts_with(std::string("HTTP/1.1 ") + status))
        << header_value << ": " << answer;
  }
  // The right tokens work; the task is still there.
  EXPECT_TRUE(
      HasStatus(Post(endpoints[0].url, "collection-job-req", collection, kCollectorToken), 201));
  auto listed = Send(HttpMethod::kGet, LeaderUrl("admin/tasks"), {}, {}, kAdminToken);
  ASSERT_TRUE(HasStatus(listed, 200));
  EXPECT_NE(
      std::string(listed->body.begin(), listed->body.end()).find(dap::Base64UrlEncode(task_id)),
      std::string::npos);
}

TEST_F(HostileInputTest, AdminRefusalsAreProblemDocuments) {
  const dap::TaskId task_id = AddPrio3CountTask();
  EXPECT_TRUE(IsProblem(Send(HttpMethod::kPost, LeaderUrl("admin/tasks"), "text/plain",
                             Bytes("task_id: \"not a task"), kAdminToken),
                        400, "invalidMessage"));
  ExpectServing();
  EXPECT_TRUE(
      IsProblem(Send(HttpMethod::kDelete, LeaderUrl("admin/tasks/not-an-id"), {}, {}, kAdminToken),
                400, "invalidMessage"));
  const dap::TaskId unknown = RandomTaskId();
  EXPECT_TRUE(
      IsProblem(Send(HttpMethod::kDelete, LeaderUrl("admin/tasks/" + dap::Base64UrlEncode(unknown)),
                     {}, {}, kAdminToken),
                404, "unrecognizedTask", &unknown));
  ExpectServing();
  EXPECT_TRUE(
      HasStatus(Send(HttpMethod::kDelete, LeaderUrl("admin/tasks/" + dap::Base64UrlEncode(task_id)),
                     {}, {}, kAdminToken),
                204));
}

TEST_F(HostileInputTest, UnknownAndMalformedTaskIds) {
  const dap::TaskId known = AddPrio3CountTask();
  const dap::Time now = deployment_.NowUnits(known);
  const dap::TaskId unknown = RandomTaskId();
  const std::vector<uint8_t> upload = UploadBody(known, Reports(known, 1, now));
  const std::string job = dap::Base64UrlEncode(RandomJobId());
  struct Endpoint {
    HttpMethod method;
    bool leader;
    std::string rest;
    std::string message;
    std::string token;
  };
  const std::vector<Endpoint> endpoints = {
      {HttpMethod::kPost, true, "reports", "upload-req", ""},
      {HttpMethod::kPost, true, "collection_jobs", "collection-job-req", kCollectorToken},
      {HttpMethod::kGet, true, "collection_jobs/" + job, "", kCollectorToken},
      {HttpMethod::kPost, false, "aggregation_jobs", "aggregation-job-init-req", kPeerToken},
      {HttpMethod::kPost, false, "aggregation_jobs/" + job, "aggregation-job-continue-req",
       kPeerToken},
      {HttpMethod::kPost, false, "aggregate_shares", "aggregate-share-req", kPeerToken},
  };
  const std::vector<std::string> malformed_ids = {
      "AAAA",                                          // Too short.
      dap::Base64UrlEncode(std::vector<uint8_t>(33)),  // Too long.
      "not*base64*at*all*not*base64*at*all*not*ba",    // 43 characters, wrong alphabet.
      dap::Base64UrlEncode(unknown) + "=",             // Padded.
  };
  for (const Endpoint& endpoint : endpoints) {
    auto url = [&](const std::string& task) {
      std::string path = "tasks/" + task + "/" + endpoint.rest;
      return endpoint.leader ? LeaderUrl(path) : HelperUrl(path);
    };
    const std::string content_type = endpoint.message.empty() ? "" : Media(endpoint.message);
    EXPECT_TRUE(IsProblem(Send(endpoint.method, url(dap::Base64UrlEncode(unknown)), content_type,
                               upload, endpoint.token),
                          404, "unrecognizedTask", &unknown))
        << endpoint.rest;
    ExpectServing();
    for (const std::string& id : malformed_ids) {
      EXPECT_TRUE(IsProblem(Send(endpoint.method, url(id), content_type, upload, endpoint.token),
                            400, "invalidMessage"))
          << endpoint.rest << " for task " << id;
      ExpectServing();
    }
  }
  // Each role serves only its own resources (not found: about:blank, 404).
  EXPECT_TRUE(IsProblem(Post(HelperUrl(TaskPath(known, "reports")), "upload-req", upload), 404, "",
                        &known));
  EXPECT_TRUE(IsProblem(Post(LeaderUrl(TaskPath(known, "aggregation_jobs")),
                             "aggregation-job-init-req", upload, kPeerToken),
                        404, "", &known));
  // Paths that are not resources at all, and methods a resource does not
  // allow, get problem documents too.
  EXPECT_TRUE(IsProblem(Send(HttpMethod::kGet, LeaderUrl("no/such/path"), {}, {}, ""), 404, ""));
  EXPECT_TRUE(IsProblem(Send(HttpMethod::kGet, LeaderUrl("tasks/x"), {}, {}, ""), 404, ""));
  auto wrong_method = Send(HttpMethod::kPost, LeaderUrl("hpke_config"), {}, {}, "");
  EXPECT_TRUE(IsProblem(wrong_method, 405, ""));
  EXPECT_TRUE(HasStatus(Post(LeaderUrl(TaskPath(known, "reports")), "upload-req", upload), 200));
}

TEST_F(HostileInputTest, UnknownAggregationJob) {
  const dap::TaskId task_id = AddPoplar1Task(false);
  const std::string job = dap::Base64UrlEncode(RandomJobId());
  const std::string url = HelperUrl(TaskPath(task_id, "aggregation_jobs/" + job));
  dap::ReportId report_id{};
  const std::vector<uint8_t> continue_body =
      EncodeOrDie(dap::AggregationJobContinueReq{1, {{report_id, {0}}}});
  EXPECT_TRUE(IsProblem(Post(url, "aggregation-job-continue-req", continue_body, kPeerToken), 404,
                        "unrecognizedAggregationJob", &task_id));
  // The job is looked up before the request is looked at (DAP-19's order).
  const std::vector<uint8_t> step0 = EncodeOrDie(dap::AggregationJobContinueReq{0, {}});
  EXPECT_TRUE(IsProblem(Post(url, "aggregation-job-continue-req", step0, kPeerToken), 404,
                        "unrecognizedAggregationJob", &task_id));
  EXPECT_TRUE(IsProblem(Send(HttpMethod::kGet, url + "?step=0", {}, {}, kPeerToken), 404,
                        "unrecognizedAggregationJob", &task_id));
  EXPECT_TRUE(IsProblem(Send(HttpMethod::kDelete, url, {}, {}, kPeerToken), 404,
                        "unrecognizedAggregationJob", &task_id));
  ExpectServing();
  // A malformed job ID.
  EXPECT_TRUE(
      IsProblem(Send(HttpMethod::kDelete, HelperUrl(TaskPath(task_id, "aggregation_jobs/short")),
                     {}, {}, kPeerToken),
                400, "invalidMessage", &task_id));
  ExpectServing();
}

// Reports that builds before schema 7 stored as uploaded (the leader's
// share still encrypted) are still aggregated, their share opened then; a
// retry of one is recognized across the two forms.
TEST_F(HostileInputTest, ReportsStoredAsUploadedAreOpenedWhenAggregated) {
  const dap::TaskId task_id = AddPrio3CountTask();
  const dap::Time now = deployment_.NowUnits(task_id);
  const std::vector<dap::Report> reports = Reports(task_id, 12, now);  // Six ones.
  auto stored = deployment_.leader().datastore->Run([&](Transaction& tx) -> Result<void> {
    for (size_t i = 0; i < 4; ++i) {
      ClientReportRow row;
      row.task_id = task_id;
      row.report_id = reports[i].metadata.report_id;
      row.time = reports[i].metadata.time;
      row.encoded_report = EncodeOrDie(reports[i]);
      row.form = StoredReportForm::kAsUploaded;
      auto inserted = tx.InsertClientReport(row);
      if (!inserted) return std::unexpected(inserted.error());
      EXPECT_TRUE(*inserted);
    }
    return {};
  });
  ASSERT_TRUE(stored) << stored.error().ToString();
  const Metrics& metrics = deployment_.leader().metrics;
  const uint64_t opened_before = metrics.input_shares_opened();

  EXPECT_TRUE(UploadErrors(task_id, {reports.begin() + 4, reports.end()}).empty());
  EXPECT_TRUE(UploadErrors(task_id, {reports[0]}).empty());  // A retry, byte for byte.
  dap::Report changed = reports[1];
  changed.helper_encrypted_input_share.payload[0] ^= 1;
  auto errors = UploadErrors(task_id, {changed});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].error, ReportError::kReportReplayed);
  // Opened at upload: the eight new reports, the retry and the changed one.
  EXPECT_EQ(metrics.input_shares_opened(), opened_before + 10);

  auto collected = deployment_.Collect(task_id, IntervalCollection(now, 1));
  ASSERT_TRUE(collected) << collected.error().ToString();
  ASSERT_EQ(collected->status, 200) << collected->problem_type;
  EXPECT_EQ(collected->report_count, 12u);
  EXPECT_EQ(collected->result[0], 6u);
  // Only the four stored as uploaded were opened by the aggregation.
  EXPECT_EQ(metrics.input_shares_opened(), opened_before + 14);
}

// The leader opens its share at upload: a plaintext with private extensions
// (Canopy defines none) or one that is not a PlaintextInputShare is refused
// then, and nothing is stored.
TEST_F(HostileInputTest, UploadRefusesLeaderSharesThatOpenToBadPlaintexts) {
  const dap::TaskId task_id = AddPrio3CountTask();
  const Task& task = LeaderTask(task_id);
  const dap::Time now = deployment_.NowUnits(task_id);
  const auto& keys = deployment_.leader().service->hpke_keys();
  const dap::AggregatorHpkeKey* key_pointers[] = {&keys[0]};
  // A report whose leader share is `plaintext`, sealed as a client would.
  auto with_leader_plaintext = [&](dap::Report report, const dap::Bytes& plaintext) {
    const dap::Bytes aad = EncodeOrDie(
        dap::InputShareAad{task.id, task.configuration, report.metadata, report.public_share});
    auto sealed = crypto::hpke::Seal(dap::SuiteOf(keys[0].config), keys[0].config.public_key,
                                     dap::InputShareInfo(dap::Role::kLeader), aad, plaintext);
    EXPECT_TRUE(sealed);
    report.leader_encrypted_input_share = {keys[0].config.id, sealed->enc, sealed->ciphertext};
    return report;
  };
  std::vector<dap::Report> reports = Reports(task_id, 2, now);
  auto opened = dap::OpenInputShare(
      task.id, task.configuration, reports[0].metadata, reports[0].public_share,
      reports[0].leader_encrypted_input_share, dap::Role::kLeader, key_pointers);
  ASSERT_TRUE(std::holds_alternative<dap::PlaintextInputShare>(opened));
  dap::PlaintextInputShare plaintext = std::get<dap::PlaintextInputShare>(opened);
  plaintext.private_extensions = {{0x4242, {1}}};
  const dap::Report extended = with_leader_plaintext(reports[0], EncodeOrDie(plaintext));
  const dap::Report garbled = with_leader_plaintext(reports[1], {1, 2, 3});
  auto errors = UploadErrors(task_id, {extended, garbled});
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].report_id, extended.metadata.report_id);
  EXPECT_EQ(errors[0].error, ReportError::kUnsupportedExtension);
  EXPECT_EQ(errors[1].report_id, garbled.metadata.report_id);
  EXPECT_EQ(errors[1].error, ReportError::kInvalidMessage);
  // Nothing was stored: the reports as the client built them are accepted.
  EXPECT_TRUE(UploadErrors(task_id, reports).empty());
}

TEST_F(HostileInputTest, UploadReportErrors) {
  const dap::TaskId task_id = AddPrio3CountTask();
  const dap::Time now = deployment_.NowUnits(task_id);
  std::vector<dap::Report> reports = Reports(task_id, 2, now);

  // Accepted, then accepted again byte for byte: uploads are idempotent.
  EXPECT_TRUE(UploadErrors(task_id, {reports[0]}).empty());
  EXPECT_TRUE(UploadErrors(task_id, {reports[0]}).empty());
  ExpectServing();

  // The same ID with other content is a replay: here another helper share
  // (the leader's share still opens: its AAD is the metadata and the
  // public share).
  dap::Report replay = reports[0];
  replay.helper_encrypted_input_share.payload[0] ^= 1;
  auto errors = UploadErrors(task_id, {replay});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].report_id, reports[0].metadata.report_id);
  EXPECT_EQ(errors[0].error, ReportError::kReportReplayed);

  // The leader opens its share at upload: one that does not open is refused
  // then (here another report's share under this ID, which its AAD binds).
  dap::Report foreign = Reports(task_id, 1, now)[0];
  foreign.metadata.report_id = reports[1].metadata.report_id;
  errors = UploadErrors(task_id, {foreign});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].report_id, reports[1].metadata.report_id);
  EXPECT_EQ(errors[0].error, ReportError::kHpkeDecryptError);
  // Nothing was stored: the report itself is accepted afterwards.
  EXPECT_TRUE(UploadErrors(task_id, {reports[1]}).empty());

  // One request, several faults: only the bad reports are listed, in order.
  std::vector<dap::Report> mixed = Reports(task_id, 5, now);
  mixed[1].metadata.time = now + 1000;  // Far beyond the tolerated clock skew.
  mixed[2].leader_encrypted_input_share.config_id = 42;
  mixed[3].metadata.public_extensions = {{0x4242, {1, 2}}};
  mixed.push_back(replay);
  errors = UploadErrors(task_id, mixed);
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_EQ(errors[0].report_id, mixed[1].metadata.report_id);
  EXPECT_EQ(errors[0].error, ReportError::kReportTooEarly);
  EXPECT_EQ(errors[1].report_id, mixed[2].metadata.report_id);
  EXPECT_EQ(errors[1].error, ReportError::kHpkeUnknownConfigId);
  EXPECT_EQ(errors[2].report_id, mixed[3].metadata.report_id);
  EXPECT_EQ(errors[2].error, ReportError::kUnsupportedExtension);
  EXPECT_EQ(errors[3].report_id, replay.metadata.report_id);
  EXPECT_EQ(errors[3].error, ReportError::kReportReplayed);
  ExpectServing();

  // Extensions out of order are malformed.
  dap::Report unordered = Reports(task_id, 1, now)[0];
  unordered.metadata.public_extensions = {{9, {}}, {3, {}}};
  errors = UploadErrors(task_id, {unordered});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].error, ReportError::kInvalidMessage);

  // A report for a batch that is collected (frozen at the collection job's
  // creation) is refused.
  ASSERT_TRUE(HasStatus(PostCollection(task_id, IntervalCollection(now, 1)), 201));
  dap::Report late = Reports(task_id, 1, now)[0];
  errors = UploadErrors(task_id, {late, Reports(task_id, 1, now - 1)[0]});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].report_id, late.metadata.report_id);
  EXPECT_EQ(errors[0].error, ReportError::kBatchCollected);
  ExpectServing();
}

TEST_F(HostileInputTest, UploadOutsideTheTaskIntervalIsDropped) {
  config::TaskDefinition definition = deployment_.NewTaskDefinition(1);
  definition.mutable_prio3_count();
  const uint64_t precision = definition.time_precision_seconds();
  const uint64_t now_seconds = internal::NowSeconds();
  // A task that ran for a day, two days ago.
  definition.mutable_task_interval()->set_start_seconds((now_seconds / precision - 48) * precision);
  definition.mutable_task_interval()->set_duration_seconds(24 * precision);
  const dap::TaskId task_id = deployment_.AddTask(definition);
  const dap::Time now = deployment_.NowUnits(task_id);
  std::vector<dap::Report> reports = Reports(task_id, 1, now);
  std::vector<dap::Report> inside = Reports(task_id, 1, now - 40);
  reports.push_back(inside[0]);
  auto errors = UploadErrors(task_id, reports);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].report_id, reports[0].metadata.report_id);
  EXPECT_EQ(errors[0].error, ReportError::kReportDropped);
  ExpectServing();
}

TEST_F(HostileInputTest, HelperInitRefusals) {
  const dap::TaskId task_id = AddPrio3CountTask();
  const dap::Time now = deployment_.NowUnits(task_id);
  std::vector<dap::Report> reports = Reports(task_id, 3, now);
  const LeaderInit leader = PlayLeaderInit(task_id, reports, *AggParam(task_id, {}));
  const dap::AggregationJobInitReq good{0, {}, {}, leader.verify_inits};

  // Requests refused as a whole: nothing is committed, so the same reports
  // serve again below.
  dap::AggregationJobInitReq duplicate = good;
  duplicate.verify_inits.push_back(good.verify_inits[0]);
  EXPECT_TRUE(IsProblem(PostInit(task_id, duplicate), 400, "invalidMessage", &task_id));
  ExpectServing();
  dap::AggregationJobInitReq unknown_extension = good;
  unknown_extension.extensions = {{0x7777, {}}};
  EXPECT_TRUE(
      IsProblem(PostInit(task_id, unknown_extension), 400, "unsupportedExtension", &task_id));
  ExpectServing();
  dap::AggregationJobInitReq unordered = good;
  unordered.extensions = {{0x9000, {}}, {0x8000, {}}};
  EXPECT_TRUE(IsProblem(PostInit(task_id, unordered), 400, "invalidMessage", &task_id));
  dap::AggregationJobInitReq repeated = good;
  repeated.extensions = {{0x9000, {}}, {0x9000, {}}};
  EXPECT_TRUE(IsProblem(PostInit(task_id, repeated), 400, "invalidMessage", &task_id));
  ExpectServing();
  // A batch ID in a time_interval task.
  dap::AggregationJobInitReq batch_id = good;
  batch_id.extensions = {{dap::kLeaderSelectedBatchIdExtension, dap::Bytes(32, 1)}};
  EXPECT_TRUE(IsProblem(PostInit(task_id, batch_id), 400, "invalidMessage", &task_id));
  dap::AggregationJobInitReq bad_param = good;
  bad_param.agg_param = {1, 2, 3};
  EXPECT_TRUE(
      IsProblem(PostInit(task_id, bad_param), 400, "invalidAggregationParameter", &task_id));
  ExpectServing();

  // An unknown verification key: every report is rejected, and may be sent
  // again later under a known key.
  dap::AggregationJobInitReq unknown_key = good;
  unknown_key.verification_key_id = 9;
  auto rejected = PostInit(task_id, unknown_key);
  ASSERT_TRUE(HasStatus(rejected, 201));
  auto resp = dap::Decode<dap::AggregationJobResp>(rejected->body);
  ASSERT_TRUE(resp);
  ASSERT_EQ(resp->verify_resps.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(resp->verify_resps[i].report_id, reports[i].metadata.report_id);
    EXPECT_EQ(resp->verify_resps[i].type, dap::VerifyRespType::kReject);
    EXPECT_EQ(resp->verify_resps[i].report_error, ReportError::kUnknownVerificationKeyId);
  }

  // A tampered helper input share fails to decrypt; a tampered leader
  // verifier share fails verification; the third report is fine.
  dap::AggregationJobInitReq tampered = good;
  tampered.verify_inits[0].report_share.encrypted_input_share.payload[3] ^= 1;
  tampered.verify_inits[1].payload.back() ^= 1;
  auto answered = PostInit(task_id, tampered);
  ASSERT_TRUE(HasStatus(answered, 201));
  EXPECT_FALSE(answered->location.empty());
  resp = dap::Decode<dap::AggregationJobResp>(answered->body);
  ASSERT_TRUE(resp);
  ASSERT_EQ(resp->verify_resps.size(), 3u);
  EXPECT_EQ(resp->verify_resps[0].type, dap::VerifyRespType::kReject);
  EXPECT_EQ(resp->verify_resps[0].report_error, ReportError::kHpkeDecryptError);
  EXPECT_EQ(resp->verify_resps[1].type, dap::VerifyRespType::kReject);
  EXPECT_EQ(resp->verify_resps[1].report_error, ReportError::kVdafVerifyError);
  EXPECT_EQ(resp->verify_resps[2].type, dap::VerifyRespType::kContinue);
  ExpectServing();

  // The identical request again: the same job, the same answer.
  auto again = PostInit(task_id, tampered);
  ASSERT_TRUE(HasStatus(again, 201));
  EXPECT_EQ(again->location, answered->location);
  EXPECT_EQ(again->body, answered->body);

  // The rejected reports stay rejected in a new job; the one aggregated is a
  // replay now.
  dap::AggregationJobInitReq retry = good;
  auto retried = PostInit(task_id, retry);
  ASSERT_TRUE(HasStatus(retried, 201));
  resp = dap::Decode<dap::AggregationJobResp>(retried->body);
  ASSERT_TRUE(resp);
  ASSERT_EQ(resp->verify_resps.size(), 3u);
  for (const auto& verify_resp : resp->verify_resps) {
    EXPECT_EQ(verify_resp.type, dap::VerifyRespType::kReject);
    EXPECT_EQ(verify_resp.report_error, ReportError::kReportReplayed);
  }

  // A time in the future and a public extension, checked by the helper too.
  std::vector<dap::Report> more = Reports(task_id, 2, now);
  more[0].metadata.time = now + 1000;
  more[1].metadata.public_extensions = {{0x4242, {}}};
  dap::AggregationJobInitReq odd{0, {}, {}, {}};
  for (const dap::Report& report : more) {
    odd.verify_inits.push_back(
        {{report.metadata, report.public_share, report.helper_encrypted_input_share},
         leader.verify_inits[0].payload});
  }
  auto odd_answer = PostInit(task_id, odd);
  ASSERT_TRUE(HasStatus(odd_answer, 201));
  resp = dap::Decode<dap::AggregationJobResp>(odd_answer->body);
  ASSERT_TRUE(resp);
  ASSERT_EQ(resp->verify_resps.size(), 2u);
  EXPECT_EQ(resp->verify_resps[0].report_error, ReportError::kReportTooEarly);
  EXPECT_EQ(resp->verify_resps[1].report_error, ReportError::kUnsupportedExtension);
}

TEST_F(HostileInputTest, HelperInitRefusesInvalidPoplar1Parameters) {
  const dap::TaskId task_id = AddPoplar1Task(true);
  const dap::Time now = deployment_.NowUnits(task_id);
  std::vector<dap::Report> reports = Reports(task_id, 2, now);
  const dap::Bytes valid = Poplar1Param(task_id, 1, {"01", "10"});
  const LeaderInit leader = PlayLeaderInit(task_id, reports, *AggParam(task_id, valid));
  for (const dap::Bytes& param :
       {dap::Bytes{0, 1, 0}, Poplar1Param(task_id, 1, {"10", "01"}),
        Poplar1Param(task_id, 1, {"01", "01"}), Poplar1Param(task_id, 9, {}),
        dap::Bytes{0, 1, 0, 0, 0, 2, 0x40}}) {
    EXPECT_TRUE(IsProblem(PostInit(task_id, {0, param, {}, leader.verify_inits}), 400,
                          "invalidAggregationParameter", &task_id));
    ExpectServing();
  }
  // held_reports at a batch's first level has nothing to refer to.
  EXPECT_TRUE(IsProblem(
      PostInit(task_id, {0, valid, {{dap::kHeldReportsExtension, {}}}, leader.verify_inits}), 400,
      "invalidMessage", &task_id));
  auto created = PostInit(task_id, {0, valid, {}, leader.verify_inits});
  ASSERT_TRUE(HasStatus(created, 201));
  // After level 1, a lower or equal level is invalid for this batch.
  std::vector<dap::Report> other = Reports(task_id, 1, now);
  const dap::Bytes level0 = Poplar1Param(task_id, 0, {"0", "1"});
  const LeaderInit lower = PlayLeaderInit(task_id, other, *AggParam(task_id, level0));
  EXPECT_TRUE(IsProblem(PostInit(task_id, {0, level0, {}, lower.verify_inits}), 400,
                        "invalidAggregationParameter", &task_id));
  ExpectServing();
}

TEST_F(HostileInputTest, HelperContinueRefusals) {
  const dap::TaskId task_id = AddPoplar1Task(false);
  const dap::Time now = deployment_.NowUnits(task_id);
  std::vector<dap::Report> reports = Reports(task_id, 4, now);
  const dap::Bytes param = Poplar1Param(task_id, 0, {"0", "1"});
  auto agg_param = AggParam(task_id, param);
  LeaderInit leader = PlayLeaderInit(task_id, reports, *agg_param);
  // The last report is refused at init (an unknown HPKE configuration):
  // its row is not waiting, and a continuation may not name it.
  leader.verify_inits[3].report_share.encrypted_input_share.config_id ^= 0xff;
  auto created = PostInit(task_id, {0, param, {}, leader.verify_inits});
  ASSERT_TRUE(HasStatus(created, 201));
  const std::string url = HelperUrl(created->location.substr(1));
  auto init_resp = dap::Decode<dap::AggregationJobResp>(created->body);
  ASSERT_TRUE(init_resp);
  ASSERT_EQ(init_resp->verify_resps.size(), 4u);
  EXPECT_EQ(init_resp->verify_resps[3].type, dap::VerifyRespType::kReject);
  init_resp->verify_resps.pop_back();
  const std::vector<dap::Report> continued_reports(reports.begin(), reports.begin() + 3);
  auto continuation =
      PlayLeaderContinue(task_id, continued_reports, *agg_param, leader, *init_resp);
  ASSERT_TRUE(continuation);
  const dap::AggregationJobContinueReq good = *continuation;
  auto post = [&](const dap::AggregationJobContinueReq& request) {
    return Post(url, "aggregation-job-continue-req", EncodeOrDie(request), kPeerToken);
  };

  dap::AggregationJobContinueReq step0 = good;
  step0.step = 0;
  EXPECT_TRUE(IsProblem(post(step0), 400, "invalidMessage", &task_id));
  dap::AggregationJobContinueReq step2 = good;
  step2.step = 2;
  EXPECT_TRUE(IsProblem(post(step2), 400, "stepMismatch", &task_id));
  ExpectServing();
  dap::AggregationJobContinueReq unknown_report = good;
  unknown_report.verify_continues[1].report_id[0] ^= 1;
  EXPECT_TRUE(IsProblem(post(unknown_report), 400, "invalidMessage", &task_id));
  dap::AggregationJobContinueReq repeated = good;
  repeated.verify_continues[2] = repeated.verify_continues[1];
  EXPECT_TRUE(IsProblem(post(repeated), 400, "invalidMessage", &task_id));
  dap::AggregationJobContinueReq reordered = good;
  std::swap(reordered.verify_continues[0], reordered.verify_continues[1]);
  EXPECT_TRUE(IsProblem(post(reordered), 400, "invalidMessage", &task_id));
  ASSERT_EQ(good.verify_continues.size(), 3u);
  dap::AggregationJobContinueReq not_waiting = good;
  not_waiting.verify_continues.push_back(
      {reports[3].metadata.report_id, good.verify_continues[2].payload});
  EXPECT_TRUE(IsProblem(post(not_waiting), 400, "invalidMessage", &task_id));
  ExpectServing();
  // Polling reports the job where it is.
  EXPECT_TRUE(HasStatus(Send(HttpMethod::kGet, url + "?step=0", {}, {}, kPeerToken), 200));

  // The good continuation, then the same again: the same answer, no new work.
  auto continued = post(good);
  ASSERT_TRUE(HasStatus(continued, 200));
  auto resp = dap::Decode<dap::AggregationJobResp>(continued->body);
  ASSERT_TRUE(resp);
  ASSERT_EQ(resp->verify_resps.size(), 3u);
  for (const auto& verify_resp : resp->verify_resps) {
    EXPECT_EQ(verify_resp.type, dap::VerifyRespType::kFinish);
  }
  for (int i = 0; i < 3; ++i) {
    auto replayed = post(good);
    ASSERT_TRUE(HasStatus(replayed, 200));
    EXPECT_EQ(replayed->body, continued->body);
  }
  // A leader that crashed between the steps redoes the job from its init:
  // the same init gets the first answer, also now that the job has moved
  // on, and the continuation after it the stored one.
  auto init_again = PostInit(task_id, {0, param, {}, leader.verify_inits});
  ASSERT_TRUE(HasStatus(init_again, 201));
  EXPECT_EQ(init_again->body, created->body);
  EXPECT_EQ(init_again->location, created->location);
  auto continued_again = post(good);
  ASSERT_TRUE(HasStatus(continued_again, 200));
  EXPECT_EQ(continued_again->body, continued->body);
  // A different request for the same step is not a replay.
  dap::AggregationJobContinueReq changed = good;
  changed.verify_continues.pop_back();
  EXPECT_TRUE(IsProblem(post(changed), 400, "stepMismatch", &task_id));
  // The job is finished: nothing follows.
  step2.step = 2;
  EXPECT_TRUE(IsProblem(post(step2), 400, "stepMismatch", &task_id));
  auto polled = Send(HttpMethod::kGet, url + "?step=1", {}, {}, kPeerToken);
  ASSERT_TRUE(HasStatus(polled, 200));
  EXPECT_EQ(polled->body, continued->body);
  ExpectServing();
}

// A multi-level helper keeps its states between a job's steps in memory. A
// restart in between loses them: the continuation computes them again from
// the held shares and the leader's first messages, and verifies for real (a
// tampered message is still caught).
TEST_F(HostileInputTest, HelperContinuesAJobAcrossARestart) {
  const dap::TaskId task_id = AddPoplar1Task(true);
  const dap::Time now = deployment_.NowUnits(task_id);
  std::vector<dap::Report> reports = Reports(task_id, 4, now);
  const dap::Bytes param = Poplar1Param(task_id, 0, {"0", "1"});
  auto agg_param = AggParam(task_id, param);
  LeaderInit leader = PlayLeaderInit(task_id, reports, *agg_param);
  auto created = PostInit(task_id, {0, param, {}, leader.verify_inits});
  ASSERT_TRUE(HasStatus(created, 201));
  auto init_resp = dap::Decode<dap::AggregationJobResp>(created->body);
  ASSERT_TRUE(init_resp);
  auto continuation = PlayLeaderContinue(task_id, reports, *agg_param, leader, *init_resp);
  ASSERT_TRUE(continuation);
  dap::AggregationJobContinueReq request = *continuation;
  request.verify_continues[2].payload.back() ^= 1;  // Tampered with.

  deployment_.RestartHelper();
  const std::string url = HelperUrl(created->location.substr(1));
  auto continued = Post(url, "aggregation-job-continue-req", EncodeOrDie(request), kPeerToken);
  ASSERT_TRUE(HasStatus(continued, 200));
  auto resp = dap::Decode<dap::AggregationJobResp>(continued->body);
  ASSERT_TRUE(resp);
  ASSERT_EQ(resp->verify_resps.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(resp->verify_resps[i].type,
              i == 2 ? dap::VerifyRespType::kReject : dap::VerifyRespType::kFinish)
        << "report " << i;
  }
  ExpectServing();
}

// The same continuation sent twice at once (a client's retry while the first
// attempt still runs): both get the one answer, never a step mismatch that
// would make the leader abandon a job the helper counted.
TEST_F(HostileInputTest, ConcurrentCopiesOfAContinuationGetTheSameAnswer) {
  const dap::TaskId task_id = AddPoplar1Task(true);
  const dap::Time now = deployment_.NowUnits(task_id);
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::vector<dap::Report> reports = Reports(task_id, 60, now);
    const dap::Bytes param = Poplar1Param(task_id, 0, {"0", "1"});
    auto agg_param = AggParam(task_id, param);
    LeaderInit leader = PlayLeaderInit(task_id, reports, *agg_param);
    auto created = PostInit(task_id, {0, param, {}, leader.verify_inits});
    ASSERT_TRUE(HasStatus(created, 201));
    auto init_resp = dap::Decode<dap::AggregationJobResp>(created->body);
    ASSERT_TRUE(init_resp && init_resp->verify_resps.size() == reports.size());
    auto request = PlayLeaderContinue(task_id, reports, *agg_param, leader, *init_resp);
    ASSERT_TRUE(request);
    const std::string url = HelperUrl(created->location.substr(1));
    const dap::Bytes body = EncodeOrDie(*request);
    Response answers[2];
    std::thread other(
        [&] { answers[1] = Post(url, "aggregation-job-continue-req", body, kPeerToken); });
    answers[0] = Post(url, "aggregation-job-continue-req", body, kPeerToken);
    other.join();
    ASSERT_TRUE(HasStatus(answers[0], 200));
    ASSERT_TRUE(HasStatus(answers[1], 200));
    EXPECT_EQ(answers[0]->body, answers[1]->body);
  }
  ExpectServing();
}

TEST_F(HostileInputTest, AggregateShareMismatches) {
  const dap::TaskId task_id = AddPrio3CountTask(2);
  const dap::Time now = deployment_.NowUnits(task_id);
  std::vector<dap::Report> reports = Reports(task_id, 3, now);
  const LeaderInit leader = PlayLeaderInit(task_id, reports, *AggParam(task_id, {}));
  auto created = PostInit(task_id, {0, {}, {}, leader.verify_inits});
  ASSERT_TRUE(HasStatus(created, 201));
  Checksum checksum{};
  for (const dap::Report& report : reports) {
    internal::UpdateChecksum(checksum, report.metadata.report_id);
  }
  const std::string url = HelperUrl(TaskPath(task_id, "aggregate_shares"));
  auto post = [&](const dap::AggregateShareReq& request) {
    return Post(url, "aggregate-share-req", EncodeOrDie(request), kPeerToken);
  };
  const dap::AggregateShareReq good{IntervalCollection(now, 1), dap::TimeIntervalQuery({now, 1}), 3,
                                    checksum};

  dap::AggregateShareReq wrong_count = good;
  wrong_count.report_count = 4;
  EXPECT_TRUE(IsProblem(post(wrong_count), 400, "batchMismatch", &task_id));
  dap::AggregateShareReq wrong_checksum = good;
  wrong_checksum.checksum[0] ^= 1;
  EXPECT_TRUE(IsProblem(post(wrong_checksum), 400, "batchMismatch", &task_id));
  ExpectServing();
  // A selector that is not the query's batch, or of the wrong mode.
  dap::AggregateShareReq other_interval = good;
  other_interval.batch_selector = dap::TimeIntervalQuery({now - 1, 1});
  EXPECT_TRUE(IsProblem(post(other_interval), 400, "batchInvalid", &task_id));
  dap::AggregateShareReq wrong_mode = good;
  wrong_mode.batch_selector = dap::LeaderSelectedBatchSelector(dap::BatchId{});
  EXPECT_TRUE(IsProblem(post(wrong_mode), 400, "invalidMessage", &task_id));
  dap::AggregateShareReq bad_param = good;
  bad_param.collection_job_req.agg_param = {7};
  EXPECT_TRUE(IsProblem(post(bad_param), 400, "invalidAggregationParameter", &task_id));
  // An empty batch interval (no bucket) is no batch.
  dap::AggregateShareReq empty = good;
  empty.collection_job_req = IntervalCollection(now, 0);
  empty.batch_selector = dap::TimeIntervalQuery({now, 0});
  EXPECT_TRUE(IsProblem(post(empty), 400, "batchInvalid", &task_id));
  // Below min_batch_size (2): a batch holding nothing.
  dap::AggregateShareReq small = good;
  small.collection_job_req = IntervalCollection(now - 5, 1);
  small.batch_selector = dap::TimeIntervalQuery({now - 5, 1});
  small.report_count = 0;
  small.checksum = {};
  EXPECT_TRUE(IsProblem(post(small), 400, "invalidBatchSize", &task_id));
  ExpectServing();

  auto shared = post(good);
  ASSERT_TRUE(HasStatus(shared, 201));
  EXPECT_TRUE(dap::Decode<dap::AggregateShare>(shared->body));
  EXPECT_TRUE(HasStatus(post(good), 201));  // Idempotent.
  // The batch is collected now: another collection of it overlaps.
  EXPECT_TRUE(IsProblem(post(wrong_count), 400, "batchOverlap", &task_id));
  ExpectServing();
}

TEST_F(HostileInputTest, HelperRefusesOverlappingMultiLevelBatches) {
  const dap::TaskId task_id = AddPoplar1Task(true);
  const dap::Time now = deployment_.NowUnits(task_id);
  std::vector<dap::Report> reports = Reports(task_id, 2, now);
  const dap::Bytes level0 = Poplar1Param(task_id, 0, {"0", "1"});
  AggregatePoplar1(task_id, reports, level0);
  Checksum checksum{};
  for (const dap::Report& report : reports) {
    internal::UpdateChecksum(checksum, report.metadata.report_id);
  }
  const std::string url = HelperUrl(TaskPath(task_id, "aggregate_shares"));
  auto share = [&](dap::Time start, dap::Duration duration, const dap::Bytes& param) {
    dap::AggregateShareReq request{IntervalCollection(start, duration, param),
                                   dap::TimeIntervalQuery({start, duration}), 2, checksum};
    return Post(url, "aggregate-share-req", EncodeOrDie(request), kPeerToken);
  };
  ASSERT_TRUE(HasStatus(share(now, 1, level0), 201));
  // The same reports under a wider interval: the batch is not the one
  // collected, and answering would release a difference of two batches.
  EXPECT_TRUE(IsProblem(share(now - 1, 2, level0), 400, "batchOverlap", &task_id));
  EXPECT_TRUE(IsProblem(share(now, 2, level0), 400, "batchOverlap", &task_id));
  // The collected batch again, with a parameter not valid after level 0.
  EXPECT_TRUE(IsProblem(share(now, 1, Poplar1Param(task_id, 0, {"1"})), 400,
                        "invalidAggregationParameter", &task_id));
  ExpectServing();
  // The next level of the same batch is fine.
  const dap::Bytes level1 = Poplar1Param(task_id, 1, {"00", "01", "10", "11"});
  AggregatePoplar1(task_id, reports, level1);
  EXPECT_TRUE(HasStatus(share(now, 1, level1), 201));
}

// Each report is verified at most once per level: a second job naming a
// report that the level took already is refused as a replay, whether the
// report is held or sent in full, and also after a restart (the helper then
// reads the level's claims back from its jobs' records).
TEST_F(HostileInputTest, HelperRefusesAReportTwiceAtOneLevelAlsoAfterARestart) {
  const dap::TaskId task_id = AddPoplar1Task(true);
  const dap::Time now = deployment_.NowUnits(task_id);
  const std::vector<dap::Report> reports = Reports(task_id, 3, now);
  const dap::Bytes level0 = Poplar1Param(task_id, 0, {"0", "1"});
  AggregatePoplar1(task_id, reports, level0);
  const dap::Bytes level1 = Poplar1Param(task_id, 1, {"00", "01", "10", "11"});
  // The helper's first answer for each of the chosen reports in a new job:
  // "continue", or the report error.
  auto answers = [&](const dap::Bytes& param, const std::vector<size_t>& chosen, bool held) {
    std::vector<dap::Report> job_reports;
    for (size_t i : chosen) job_reports.push_back(reports[i]);
    LeaderInit leader = PlayLeaderInit(task_id, job_reports, *AggParam(task_id, param));
    dap::AggregationJobInitReq init{0, param, {}, leader.verify_inits};
    if (held) {
      init.extensions = {{dap::kHeldReportsExtension, {}}};
      for (dap::VerifyInit& verify_init : init.verify_inits) {
        verify_init.report_share.public_share.clear();
        verify_init.report_share.encrypted_input_share = {0, {0}, {0}};
      }
    }
    std::vector<std::string> out;
    auto answer = PostInit(task_id, init);
    EXPECT_TRUE(HasStatus(answer, 201));
    if (!answer) return out;
    auto resp = dap::Decode<dap::AggregationJobResp>(answer->body);
    EXPECT_TRUE(resp);
    if (!resp) return out;
    for (const dap::VerifyResp& verify_resp : resp->verify_resps) {
      out.push_back(verify_resp.type == dap::VerifyRespType::kContinue
                        ? "continue"
                        : std::string(dap::ReportErrorName(verify_resp.report_error)));
    }
    return out;
  };
  // A replayed report is also recorded as rejected, which would refuse it
  // anyway: each check below names reports never replayed before.
  using Answers = std::vector<std::string>;
  EXPECT_EQ(answers(level1, {0, 1}, true), (Answers{"continue", "continue"}));
  EXPECT_EQ(answers(level1, {1, 2}, true), (Answers{"report_replayed", "continue"}));

  deployment_.RestartHelper();
  EXPECT_EQ(answers(level0, {2}, false), Answers{"report_replayed"});
  EXPECT_EQ(answers(level1, {0}, true), Answers{"report_replayed"});
  ExpectServing();
}

// Garbage collection deletes reports after report_expiry_seconds (a week
// here), and old jobs with the records that stop a report from being
// verified twice at one level: the helper refuses a report that old
// (report_dropped) instead of verifying it without them.
TEST_F(HostileInputTest, HelperDropsReportsOlderThanTheExpiry) {
  const dap::TaskId task_id = AddPoplar1Task(true);
  const dap::Time now = deployment_.NowUnits(task_id);
  const uint64_t precision = LeaderTask(task_id).configuration.time_precision;
  const dap::Time eight_days = 8 * 24 * 3600 / precision;
  const std::vector<dap::Report> reports = {Reports(task_id, 1, now - eight_days)[0],
                                            Reports(task_id, 1, now)[0]};
  const dap::Bytes param = Poplar1Param(task_id, 0, {"0", "1"});
  LeaderInit leader = PlayLeaderInit(task_id, reports, *AggParam(task_id, param));
  auto answer = PostInit(task_id, {0, param, {}, leader.verify_inits});
  ASSERT_TRUE(HasStatus(answer, 201));
  auto resp = dap::Decode<dap::AggregationJobResp>(answer->body);
  ASSERT_TRUE(resp);
  ASSERT_EQ(resp->verify_resps.size(), 2u);
  EXPECT_EQ(resp->verify_resps[0].type, dap::VerifyRespType::kReject);
  EXPECT_EQ(resp->verify_resps[0].report_error, ReportError::kReportDropped);
  EXPECT_EQ(resp->verify_resps[1].type, dap::VerifyRespType::kContinue);
}

TEST_F(HostileInputTest, CollectionQueryRefusals) {
  const dap::TaskId task_id = AddPrio3CountTask();
  const dap::Time now = deployment_.NowUnits(task_id);
  dap::CollectionJobReq wrong_mode;
  wrong_mode.query = dap::LeaderSelectedQuery();
  EXPECT_TRUE(IsProblem(PostCollection(task_id, wrong_mode), 400, "invalidMessage", &task_id));
  dap::CollectionJobReq bad_config = IntervalCollection(now, 1);
  bad_config.query.config.push_back(0);
  EXPECT_TRUE(IsProblem(PostCollection(task_id, bad_config), 400, "invalidMessage", &task_id));
  EXPECT_TRUE(IsProblem(PostCollection(task_id, IntervalCollection(now, 0)), 400, "batchInvalid",
                        &task_id));
  EXPECT_TRUE(IsProblem(PostCollection(task_id, IntervalCollection(now, 1, {1})), 400,
                        "invalidAggregationParameter", &task_id));
  dap::CollectionJobReq extension = IntervalCollection(now, 1);
  extension.extensions = {{0x5555, {}}};
  EXPECT_TRUE(IsProblem(PostCollection(task_id, extension), 400, "unsupportedExtension", &task_id));
  extension.extensions = {{0x5555, {}}, {0x5554, {}}};
  EXPECT_TRUE(IsProblem(PostCollection(task_id, extension), 400, "invalidExtension", &task_id));
  ExpectServing();

  auto first = PostCollection(task_id, IntervalCollection(now, 1));
  ASSERT_TRUE(HasStatus(first, 201));
  // The identical request names the same job.
  auto again = PostCollection(task_id, IntervalCollection(now, 1));
  ASSERT_TRUE(HasStatus(again, 201));
  EXPECT_EQ(again->location, first->location);
  // Any other batch that touches the collected bucket overlaps it.
  for (const auto& [start, duration] :
       std::vector<std::pair<dap::Time, dap::Duration>>{{now - 1, 2}, {now, 2}, {now - 3, 10}}) {
    EXPECT_TRUE(IsProblem(PostCollection(task_id, IntervalCollection(start, duration)), 400,
                          "batchOverlap", &task_id))
        << "[" << start << ", +" << duration << ")";
    ExpectServing();
  }
  // Batches next to it are fine.
  EXPECT_TRUE(HasStatus(PostCollection(task_id, IntervalCollection(now + 1, 2)), 201));
  EXPECT_TRUE(HasStatus(PostCollection(task_id, IntervalCollection(now - 2, 2)), 201));
}

TEST_F(HostileInputTest, CollectionBelowMinBatchSizeFails) {
  const dap::TaskId task_id = AddPrio3CountTask(5);
  const dap::Time now = deployment_.NowUnits(task_id);
  EXPECT_TRUE(UploadErrors(task_id, Reports(task_id, 2, now)).empty());
  auto collected = deployment_.Collect(task_id, IntervalCollection(now, 1));
  ASSERT_TRUE(collected) << collected.error().ToString();
  EXPECT_EQ(collected->status, 400);
  EXPECT_EQ(collected->problem_type, "invalidBatchSize");
  ExpectServing();
}

TEST_F(HostileInputTest, MultiLevelCollectionParameterRefusals) {
  const dap::TaskId task_id = AddPoplar1Task(true);
  const dap::Time now = deployment_.NowUnits(task_id);
  std::vector<dap::Report> reports = Reports(task_id, 4, now);
  EXPECT_TRUE(UploadErrors(task_id, reports).empty());
  auto refused = [&](const dap::Bytes& param, const char* why) {
    EXPECT_TRUE(IsProblem(PostCollection(task_id, IntervalCollection(now, 1, param)), 400,
                          "invalidAggregationParameter", &task_id))
        << why;
    ExpectServing();
  };
  // Invalid on their own, before the batch has any history.
  refused(Poplar1Param(task_id, 1, {"01", "00"}), "unsorted prefixes");
  refused(Poplar1Param(task_id, 1, {"01", "01"}), "a repeated prefix");
  refused(dap::Bytes{0, 0, 0}, "truncated");
  refused(Poplar1Param(task_id, 4, {}), "a level beyond the string length");

  // Each level is collected to the end before the next is asked for, as a
  // walk does (the next level's candidates come from this one's counts).
  const dap::Bytes level0 = Poplar1Param(task_id, 0, {"0"});
  auto first = deployment_.Collect(task_id, IntervalCollection(now, 1, level0));
  ASSERT_TRUE(first) << first.error().ToString();
  ASSERT_EQ(first->status, 200) << first->problem_type;
  EXPECT_EQ(first->report_count, 4u);
  EXPECT_EQ(first->result, poplar::AggregateResult({2}));
  refused(Poplar1Param(task_id, 0, {"1"}), "the same level again");
  refused(Poplar1Param(task_id, 1, {"10"}), "a parent that was not a candidate");
  refused(Poplar1Param(task_id, 1, {"01", "10"}), "one parent that was not a candidate");
  refused(Poplar1Param(task_id, 2, {"001", "000"}), "unsorted prefixes");
  const dap::Bytes level2 = Poplar1Param(task_id, 2, {"000", "011"});
  auto second = deployment_.Collect(task_id, IntervalCollection(now, 1, level2));
  ASSERT_TRUE(second) << second.error().ToString();
  ASSERT_EQ(second->status, 200) << second->problem_type;
  EXPECT_EQ(second->result, poplar::AggregateResult({0, 2}));
  refused(Poplar1Param(task_id, 1, {"00", "01"}), "a lower level");
  refused(Poplar1Param(task_id, 2, {"011"}), "a repeated level");
  refused(Poplar1Param(task_id, 3, {"0100"}), "a parent that was not a candidate");
  // The batch is this interval exactly: a wider one overlaps it.
  EXPECT_TRUE(IsProblem(PostCollection(task_id, IntervalCollection(now, 2, level0)), 400,
                        "batchOverlap", &task_id));
  EXPECT_TRUE(IsProblem(PostCollection(task_id, IntervalCollection(now - 1, 2, level2)), 400,
                        "batchOverlap", &task_id));
  // Asking again for a collected level names the existing job.
  auto again = deployment_.Collect(task_id, IntervalCollection(now, 1, level0));
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->status, 200) << again->problem_type;
  EXPECT_EQ(again->result, poplar::AggregateResult({2}));
}

}  // namespace
}  // namespace canopy::aggregator
