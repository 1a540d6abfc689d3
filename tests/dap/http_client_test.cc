// The HTTP client and the upload client against small in-process Boost.Beast
// servers on 127.0.0.1 (ephemeral ports, one thread each, stopped at the end
// of every test).
#include "dap/http_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/vector_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "crypto/hpke.h"
#include "dap/base64url.h"
#include "dap/problem.h"
#include "dap/report.h"
#include "dap/task.h"
#include "dap/upload_client.h"

namespace canopy::dap {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// The in-process server.

struct ServerRequest {
  std::string method;
  std::string target;
  std::string content_type;
  std::string authorization;
  Bytes body;
  int index_on_connection = 0;  // 0 for a connection's first request.
};

struct ServerReply {
  int status = 200;
  std::string content_type;
  Bytes body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool hang = false;         // Never answer (until the server stops).
  bool drop = false;         // Close the connection without answering.
  bool close_after = false;  // Answer as keep-alive, then close anyway.
};

ServerReply TextReply(int status, std::string_view text) {
  ServerReply reply;
  reply.status = status;
  reply.content_type = "text/plain";
  reply.body.assign(text.begin(), text.end());
  return reply;
}

ServerReply ProblemReply(const ProblemDocument& problem) {
  ServerReply reply = TextReply(problem.status(), problem.ToJson());
  reply.content_type = std::string(kProblemMediaType);
  return reply;
}

class TestServer {
 public:
  using Handler = std::function<ServerReply(const ServerRequest&)>;

  explicit TestServer(Handler handler)
      : handler_(std::move(handler)),
        acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, Accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  ~TestServer() {
    io_.stop();
    thread_.join();
  }

  std::string Url(std::string_view path = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  int connections() const { return connections_; }
  std::vector<ServerRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket =
          co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      ++connections_;
      asio::co_spawn(io_, Session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> Session(tcp::socket socket) {
    boost::beast::flat_buffer buffer;
    boost::system::error_code ec;
    for (int index = 0;; ++index) {
      http::request_parser<http::vector_body<uint8_t>> parser;
      parser.body_limit(size_t{16} << 20);
      co_await http::async_read(socket, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      const auto& request = parser.get();
      ServerRequest seen;
      seen.method = std::string(request.method_string());
      seen.target = std::string(request.target());
      if (auto it = request.find(http::field::content_type); it != request.end()) {
        seen.content_type = std::string(it->value());
      }
      if (auto it = request.find(http::field::authorization); it != request.end()) {
        seen.authorization = std::string(it->value());
      }
      seen.body = request.body();
      seen.index_on_connection = index;
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(seen);
      }
      ServerReply reply = handler_(seen);
      if (reply.hang) {
        asio::steady_timer timer(io_, 60s);
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        co_return;
      }
      if (reply.drop) co_return;  // The socket closes with the frame.
      http::response<http::vector_body<uint8_t>> response(static_cast<http::status>(reply.status),
                                                          request.version());
      if (!reply.content_type.empty()) response.set(http::field::content_type, reply.content_type);
      for (const auto& [name, value] : reply.headers) response.set(name, value);
      response.body() = std::move(reply.body);
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      co_await http::async_write(socket, response, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || reply.close_after || !request.keep_alive()) co_return;
    }
  }

  Handler handler_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  mutable std::mutex mutex_;
  std::vector<ServerRequest> requests_;
  std::thread thread_;
};

HttpClient MakeClient(HttpClientOptions options = {}) {
  options.initial_backoff = 5ms;
  options.max_backoff = 20ms;
  if (options.request_timeout == HttpClientOptions{}.request_timeout) options.request_timeout = 5s;
  auto client = HttpClient::Create(std::move(options));
  EXPECT_TRUE(client);
  return std::move(*client);
}

Bytes ToBytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

// ---------------------------------------------------------------------------
// URLs and media types.

TEST(HttpUrlTest, ParsesHttpUrls) {
  auto url = HttpUrl::Parse("http://Example.COM:8080/dap/prefix?x=1");
  ASSERT_TRUE(url) << url.error().ToString();
  EXPECT_EQ(url->host, "example.com");
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(url->target, "/dap/prefix?x=1");
  url = HttpUrl::Parse("HTTP://127.0.0.1");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->port, 80);
  EXPECT_EQ(url->target, "/");
  url = HttpUrl::Parse("http://[::1]:9000/x");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->Authority(), "[::1]:9000");
}

TEST(HttpUrlTest, RefusesHttpsAsUnsupported) {
  auto url = HttpUrl::Parse("https://leader.example/");
  ASSERT_FALSE(url);
  EXPECT_EQ(url.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(url.error().message().find("https"), std::string::npos);
}

TEST(HttpUrlTest, RefusesMalformedUrlsNamingThem) {
  for (const char* bad :
       {"", "leader.example", "ftp://host/", "http://", "http:///path", "http://host:/",
        "http://host:0/", "http://host:65536/", "http://host:8a/", "http://user@host/",
        "http://host/a#frag", "http://ho st/", "http://host/\r\nX: y", "http://[::1/",
        "http://[zz]/", "http://ho$t/"}) {
    auto url = HttpUrl::Parse(bad);
    ASSERT_FALSE(url) << bad;
    EXPECT_EQ(url.error().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(url.error().message().find(std::string("\"") + bad + "\""), std::string::npos)
        << url.error().message();
  }
}

TEST(HttpUrlTest, JoinsPathsWithOneSlash) {
  EXPECT_EQ(JoinUrl("http://h/leader/", "/hpke_config"), "http://h/leader/hpke_config");
  EXPECT_EQ(JoinUrl("http://h/leader", "hpke_config"), "http://h/leader/hpke_config");
  EXPECT_EQ(JoinUrl("http://h", "tasks/x/reports"), "http://h/tasks/x/reports");
}

TEST(HttpUrlTest, MatchesMediaTypes) {
  EXPECT_TRUE(MediaTypeMatches("application/ppm-dap;message=upload-errors",
                               "application/ppm-dap;message=upload-errors"));
  EXPECT_TRUE(MediaTypeMatches("Application/PPM-DAP; message=\"upload-errors\"; version=19",
                               "application/ppm-dap;message=upload-errors"));
  EXPECT_FALSE(MediaTypeMatches("application/ppm-dap;message=upload-req",
                                "application/ppm-dap;message=upload-errors"));
  EXPECT_FALSE(
      MediaTypeMatches("application/ppm-dap", "application/ppm-dap;message=upload-errors"));
  EXPECT_TRUE(MediaTypeMatches("application/problem+json; charset=utf-8", kProblemMediaType));
  EXPECT_FALSE(MediaTypeMatches("", kProblemMediaType));
}

TEST(HttpClientTest, CreateRefusesBadOptions) {
  HttpClientOptions options;
  options.max_attempts = 0;
  EXPECT_FALSE(HttpClient::Create(options));
  options = {};
  options.request_timeout = 0ms;
  EXPECT_FALSE(HttpClient::Create(options));
  options = {};
  options.max_response_bytes = 0;
  EXPECT_FALSE(HttpClient::Create(options));
}

// ---------------------------------------------------------------------------
// The HTTP client.

TEST(HttpClientTest, GetAndPostRoundTrip) {
  TestServer server([](const ServerRequest& request) {
    if (request.method == "GET" && request.target == "/base/hello") {
      ServerReply reply = TextReply(200, "hello");
      reply.headers = {{"Location", "/base/jobs/1"}, {"Retry-After", "7"}};
      return reply;
    }
    if (request.method == "POST" && request.target == "/base/echo") {
      ServerReply reply;
      reply.status = 201;
      reply.content_type = request.content_type;
      reply.body = request.body;
      return reply;
    }
    return TextReply(404, "not found");
  });
  HttpClient client = MakeClient();

  auto get = client.Send(HttpMethod::kGet, server.Url("/base/hello"));
  ASSERT_TRUE(get) << get.error().ToString();
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->content_type, "text/plain");
  EXPECT_EQ(get->body, ToBytes("hello"));
  EXPECT_EQ(get->location, "/base/jobs/1");
  EXPECT_EQ(get->retry_after, 7u);
  EXPECT_EQ(get->attempts, 1);

  Bytes payload(100000);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 7);
  auto post = client.Send(HttpMethod::kPost, JoinUrl(server.Url("/base/"), "echo"),
                          "application/ppm-dap;message=upload-req", payload);
  ASSERT_TRUE(post) << post.error().ToString();
  EXPECT_EQ(post->status, 201);
  EXPECT_EQ(post->content_type, "application/ppm-dap;message=upload-req");
  EXPECT_EQ(post->body, payload);
  EXPECT_FALSE(post->retry_after);

  // A 4xx is an answer, not an error, and is not retried.
  auto missing = client.Send(HttpMethod::kGet, server.Url("/nothing"));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(HttpClientTest, ReusesKeepAliveConnections) {
  TestServer server([](const ServerRequest&) { return TextReply(200, "ok"); });
  HttpClient client = MakeClient();
  for (int i = 0; i < 5; ++i) {
    auto response = client.Send(HttpMethod::kGet, server.Url("/x"));
    ASSERT_TRUE(response) << response.error().ToString();
  }
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(server.requests().size(), 5u);
  client.CloseIdleConnections();
  ASSERT_TRUE(client.Send(HttpMethod::kGet, server.Url("/x")));
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpClientTest, ReconnectsWhenTheServerClosedAnIdleConnection) {
  TestServer server([](const ServerRequest& request) {
    ServerReply reply = TextReply(200, "ok");
    reply.close_after = request.target == "/close";
    return reply;
  });
  HttpClient client = MakeClient();
  ASSERT_TRUE(client.Send(HttpMethod::kGet, server.Url("/close")));
  std::this_thread::sleep_for(20ms);  // Let the FIN arrive.
  auto again = client.Send(HttpMethod::kGet, server.Url("/x"));
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->attempts, 1);
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpClientTest, ResendsOnAFreshConnectionWhenAReusedOneDiesUnanswered) {
  // The server drops the second request of a connection without answering,
  // as a server closing an idle connection at the wrong moment does.
  TestServer server([](const ServerRequest& request) {
    ServerReply reply = TextReply(200, "ok");
    reply.drop = request.index_on_connection > 0;
    return reply;
  });
  HttpClient client = MakeClient();
  ASSERT_TRUE(client.Send(HttpMethod::kGet, server.Url("/first")));
  auto second = client.Send(HttpMethod::kGet, server.Url("/second"));
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(second->attempts, 1);  // The resend is not a retry.
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(HttpClientTest, RetriesServiceUnavailableThenSucceeds) {
  std::atomic<int> calls{0};
  TestServer server([&](const ServerRequest&) {
    return ++calls <= 2 ? TextReply(503, "busy") : TextReply(200, "done");
  });
  HttpClient client = MakeClient();
  auto response = client.Send(HttpMethod::kPost, server.Url("/r"), "text/plain", ToBytes("x"));
  ASSERT_TRUE(response) << response.error().ToString();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->attempts, 3);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  for (const ServerRequest& request : requests) EXPECT_EQ(request.body, ToBytes("x"));
}

TEST(HttpClientTest, GivesUpAfterTheAttemptCap) {
  TestServer server([](const ServerRequest&) {
    return ProblemReply({ProblemType::kInternal, "database is on fire", std::nullopt});
  });
  HttpClientOptions options;
  options.max_attempts = 3;
  HttpClient client = MakeClient(options);
  auto response = client.Send(HttpMethod::kGet, server.Url("/r"));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code(), ErrorCode::kIoError);
  EXPECT_NE(response.error().message().find(server.Url("/r")), std::string::npos);
  EXPECT_NE(response.error().message().find("3 attempts"), std::string::npos);
  EXPECT_NE(response.error().message().find("HTTP 500"), std::string::npos);
  EXPECT_NE(response.error().message().find("database is on fire"), std::string::npos);
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(HttpClientTest, NeverRetriesANonIdempotentRequest) {
  TestServer server([](const ServerRequest&) { return TextReply(503, "busy"); });
  HttpClient client = MakeClient();
  HttpRequest request;
  request.method = HttpMethod::kPost;
  const std::string url = server.Url("/once");
  request.url = url;
  request.idempotent = false;
  auto response = client.Send(request);
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code(), ErrorCode::kIoError);
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(HttpClientTest, ConnectionRefusedIsAnIoErrorNamingTheUrl) {
  uint16_t port;
  {
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = acceptor.local_endpoint().port();
  }
  HttpClientOptions options;
  options.max_attempts = 2;
  HttpClient client = MakeClient(options);
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/hpke_config";
  auto response = client.Send(HttpMethod::kGet, url);
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code(), ErrorCode::kIoError);
  EXPECT_NE(response.error().message().find(url), std::string::npos) << response.error().message();
  EXPECT_NE(response.error().message().find("2 attempts"), std::string::npos);
}

TEST(HttpClientTest, TimesOutOnAServerThatNeverAnswers) {
  TestServer server([](const ServerRequest&) {
    ServerReply reply;
    reply.hang = true;
    return reply;
  });
  HttpClientOptions options;
  options.request_timeout = 200ms;
  options.max_attempts = 2;
  HttpClient client = MakeClient(options);
  const auto start = std::chrono::steady_clock::now();
  auto response = client.Send(HttpMethod::kGet, server.Url("/slow"));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code(), ErrorCode::kIoError);
  EXPECT_NE(response.error().message().find("timed out"), std::string::npos)
      << response.error().message();
  EXPECT_GE(elapsed, 400ms);
  EXPECT_LT(elapsed, 2s);
  EXPECT_EQ(server.requests().size(), 2u);  // Timeouts are retried.
}

TEST(HttpClientTest, SendsTheBearerToken) {
  TestServer server([](const ServerRequest&) { return TextReply(200, "ok"); });
  HttpClient client = MakeClient();
  ASSERT_TRUE(client.Send(HttpMethod::kGet, server.Url("/a"), {}, {}, "s3cr3t-token"));
  ASSERT_TRUE(client.Send(HttpMethod::kGet, server.Url("/b")));
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].authorization, "Bearer s3cr3t-token");
  EXPECT_EQ(requests[1].authorization, "");
  // A token that would inject a header is refused before anything is sent.
  auto injected = client.Send(HttpMethod::kGet, server.Url("/c"), {}, {}, "x\r\nX-Evil: 1");
  ASSERT_FALSE(injected);
  EXPECT_EQ(injected.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(HttpClientTest, RefusesResponsesOverTheSizeLimit) {
  constexpr size_t kLimit = 1 << 20;
  TestServer server([](const ServerRequest& request) {
    ServerReply reply;
    reply.body.assign(request.target == "/big" ? kLimit + 1 : kLimit, 0xab);
    return reply;
  });
  HttpClientOptions options;
  options.max_response_bytes = kLimit;
  HttpClient client = MakeClient(options);
  auto fits = client.Send(HttpMethod::kGet, server.Url("/fits"));
  ASSERT_TRUE(fits) << fits.error().ToString();
  EXPECT_EQ(fits->body.size(), kLimit);
  auto big = client.Send(HttpMethod::kGet, server.Url("/big"));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code(), ErrorCode::kIoError);
  EXPECT_NE(big.error().message().find("limit"), std::string::npos) << big.error().message();
  EXPECT_EQ(server.requests().size(), 2u);  // Not retried.
}

TEST(HttpClientTest, RefusesBadUrlsBeforeConnecting) {
  HttpClient client = MakeClient();
  auto https = client.Send(HttpMethod::kGet, "https://127.0.0.1:1/");
  ASSERT_FALSE(https);
  EXPECT_EQ(https.error().code(), ErrorCode::kUnsupported);
  auto bad = client.Send(HttpMethod::kGet, "http://127.0.0.1:notaport/");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("http://127.0.0.1:notaport/"), std::string::npos);
}

// ---------------------------------------------------------------------------
// The upload client against a fake leader and helper.

std::unique_ptr<AggregatorHpkeKey> MakeKey(uint8_t config_id) {
  auto pair = crypto::hpke::GenerateKeyPair(crypto::hpke::KemId::kX25519HkdfSha256);
  EXPECT_TRUE(pair);
  HpkeConfig config{config_id, 0x0020, 0x0001, 0x0001, pair->public_key};
  auto key =
      crypto::hpke::RecipientKey::Create(crypto::hpke::KemId::kX25519HkdfSha256, pair->private_key);
  EXPECT_TRUE(key);
  return std::make_unique<AggregatorHpkeKey>(AggregatorHpkeKey{config, std::move(*key)});
}

// An aggregator that serves its HPKE configurations and, as the leader,
// accepts uploads of the reports its keys open.
class FakeAggregator {
 public:
  FakeAggregator(Role role, std::string prefix) : role_(role), prefix_(std::move(prefix)) {
    keys_.push_back(MakeKey(role == Role::kLeader ? 1 : 2));
    keys_.push_back(MakeKey(role == Role::kLeader ? 11 : 12));
    served_ = {keys_[0].get()};
    accepted_ = {keys_[0].get()};
    server_ = std::make_unique<TestServer>(
        [this](const ServerRequest& request) { return Handle(request); });
  }

  // The task the leader opens reports for (its configuration names the
  // servers' URLs, so it is set once they run).
  void SetTask(const TaskId& task_id, const TaskConfiguration& configuration) {
    std::lock_guard lock(mutex_);
    task_id_ = task_id;
    configuration_ = configuration;
  }

  std::string BaseUrl() const { return server_->Url(prefix_); }
  const AggregatorHpkeKey& key(size_t i) const { return *keys_[i]; }

  // Which keys /hpke_config lists and which the leader can open.
  void Serve(std::vector<size_t> served, std::vector<size_t> accepted) {
    std::lock_guard lock(mutex_);
    served_.clear();
    accepted_.clear();
    for (size_t i : served) served_.push_back(keys_[i].get());
    for (size_t i : accepted) accepted_.push_back(keys_[i].get());
  }
  // Overrides the answer to uploads (after the leader opened the reports).
  void OnUpload(std::function<std::optional<ServerReply>(const UploadRequest&)> hook) {
    std::lock_guard lock(mutex_);
    upload_hook_ = std::move(hook);
  }

  int config_fetches() const { return config_fetches_; }
  std::vector<UploadRequest> uploads() const {
    std::lock_guard lock(mutex_);
    return uploads_;
  }
  std::vector<Report> accepted_reports() const {
    std::lock_guard lock(mutex_);
    return accepted_reports_;
  }
  std::vector<std::string> failures() const {
    std::lock_guard lock(mutex_);
    return failures_;
  }

 private:
  ServerReply Handle(const ServerRequest& request) {
    std::lock_guard lock(mutex_);
    if (request.method == "GET" && request.target == prefix_ + "hpke_config") {
      ++config_fetches_;
      HpkeConfigList list;
      for (const AggregatorHpkeKey* key : served_) list.configs.push_back(key->config);
      ServerReply reply;
      reply.content_type = std::string(kHpkeConfigListMediaType);
      // Encode refuses an empty list: write its (invalid) encoding by hand.
      reply.body = list.configs.empty() ? Bytes{0, 0} : *Encode(list);
      reply.headers = {{"Cache-Control", "max-age=86400"}};
      return reply;
    }
    const std::string reports = prefix_ + "tasks/" + Base64UrlEncode(task_id_) + "/reports";
    if (role_ == Role::kLeader && request.method == "POST" && request.target == reports) {
      return HandleUpload(request);
    }
    failures_.push_back("unexpected " + request.method + " " + request.target);
    return ProblemReply({ProblemType::kUnrecognizedTask, "no such resource", std::nullopt});
  }

  ServerReply HandleUpload(const ServerRequest& request) {
    if (!MediaTypeMatches(request.content_type, kUploadRequestMediaType)) {
      failures_.push_back("content type " + request.content_type);
      return ProblemReply({ProblemType::kInvalidMessage, "bad content type", task_id_});
    }
    auto upload = Decode<UploadRequest>(request.body);
    if (!upload) {
      failures_.push_back(upload.error().ToString());
      return ProblemReply({ProblemType::kInvalidMessage, "undecodable", task_id_});
    }
    uploads_.push_back(*upload);
    if (upload_hook_) {
      if (auto reply = upload_hook_(*upload)) return *reply;
    }
    UploadErrors errors;
    for (const Report& report : upload->reports) {
      auto opened = OpenInputShare(task_id_, configuration_, report.metadata, report.public_share,
                                   report.leader_encrypted_input_share, Role::kLeader, accepted_);
      if (auto* error = std::get_if<ReportError>(&opened)) {
        errors.statuses.push_back({report.metadata.report_id, *error});
      } else {
        accepted_reports_.push_back(report);
      }
    }
    ServerReply reply;
    if (!errors.statuses.empty()) {
      reply.content_type = std::string(kUploadErrorsMediaType);
      reply.body = *Encode(errors);
    }
    return reply;
  }

  const Role role_;
  const std::string prefix_;
  std::vector<std::unique_ptr<AggregatorHpkeKey>> keys_;
  TaskId task_id_{};
  TaskConfiguration configuration_;
  mutable std::mutex mutex_;
  std::vector<const AggregatorHpkeKey*> served_;
  std::vector<const AggregatorHpkeKey*> accepted_;
  std::function<std::optional<ServerReply>(const UploadRequest&)> upload_hook_;
  std::atomic<int> config_fetches_{0};
  std::vector<UploadRequest> uploads_;
  std::vector<Report> accepted_reports_;
  std::vector<std::string> failures_;
  std::unique_ptr<TestServer> server_;  // Last: stops before the state it uses goes.
};

class UploadClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    task_id_.fill(0x5a);
    task_id_[0] = 0xfb;  // Base64url of this needs '-' or '_'.
    configuration_.time_precision = 60;
    configuration_.min_batch_size = 1;
    configuration_.vdaf_type = static_cast<uint32_t>(VdafType::kPrio3Count);
    configuration_.leader_aggregator_endpoint = ToBytes(leader_.BaseUrl());
    configuration_.helper_aggregator_endpoint = ToBytes(helper_.BaseUrl());
    leader_.SetTask(task_id_, configuration_);
    helper_.SetTask(task_id_, configuration_);
  }

  // The leader's URL comes from the task configuration (with a trailing
  // slash), the helper's is given (without one).
  UploadClient MakeUploadClient(size_t reports_per_request) {
    UploadTask task;
    task.task_id = task_id_;
    task.task_configuration = configuration_;
    const std::string helper_url = helper_.BaseUrl();
    task.helper_url = helper_url.substr(0, helper_url.size() - 1);
    UploadClientOptions options;
    options.reports_per_request = reports_per_request;
    auto client = UploadClient::Create(std::move(task), http_, options);
    EXPECT_TRUE(client) << client.error().ToString();
    return std::move(*client);
  }

  static std::vector<poplar::Measurement> Measurements(size_t count) {
    std::vector<poplar::Measurement> measurements;
    for (size_t i = 0; i < count; ++i) measurements.emplace_back(uint64_t{i % 2});
    return measurements;
  }

  TaskId task_id_{};
  TaskConfiguration configuration_;
  FakeAggregator leader_{Role::kLeader, "/leader/"};
  FakeAggregator helper_{Role::kHelper, "/helper/"};
  HttpClient http_ = MakeClient();
};

TEST_F(UploadClientTest, UploadsInChunksThatBothAggregatorsOpen) {
  UploadClient client = MakeUploadClient(2);
  const auto measurements = Measurements(5);
  auto summary = client.Upload(measurements, 1000);
  ASSERT_TRUE(summary) << summary.error().ToString();
  EXPECT_EQ(summary->accepted, 5u);
  EXPECT_TRUE(summary->rejected.empty());
  EXPECT_EQ(summary->requests, 3u);
  EXPECT_FALSE(summary->refetched_hpke_configs);
  EXPECT_TRUE(leader_.failures().empty()) << leader_.failures()[0];
  EXPECT_TRUE(helper_.failures().empty()) << helper_.failures()[0];
  EXPECT_EQ(leader_.config_fetches(), 1);
  EXPECT_EQ(helper_.config_fetches(), 1);

  auto uploads = leader_.uploads();
  ASSERT_EQ(uploads.size(), 3u);
  EXPECT_EQ(uploads[0].reports.size(), 2u);
  EXPECT_EQ(uploads[1].reports.size(), 2u);
  EXPECT_EQ(uploads[2].reports.size(), 1u);
  // The helper's key opens the helper's shares too.
  const AggregatorHpkeKey* helper_keys[] = {&helper_.key(0)};
  std::set<ReportId> ids;
  for (const Report& report : leader_.accepted_reports()) {
    EXPECT_EQ(report.metadata.time, 1000u);
    ids.insert(report.metadata.report_id);
    auto opened = OpenInputShare(task_id_, configuration_, report.metadata, report.public_share,
                                 report.helper_encrypted_input_share, Role::kHelper, helper_keys);
    EXPECT_TRUE(std::holds_alternative<PlaintextInputShare>(opened));
  }
  EXPECT_EQ(ids.size(), 5u);

  // The configurations are cached across uploads.
  ASSERT_TRUE(client.Upload(Measurements(1), 1001));
  EXPECT_EQ(leader_.config_fetches(), 1);
}

TEST_F(UploadClientTest, ReportsPerReportRejections) {
  UploadClient client = MakeUploadClient(2);
  // The leader refuses the second report of every request.
  leader_.OnUpload([](const UploadRequest& request) -> std::optional<ServerReply> {
    if (request.reports.size() < 2) return std::nullopt;
    UploadErrors errors;
    errors.statuses.push_back(
        {request.reports[1].metadata.report_id, ReportError::kReportReplayed});
    ServerReply reply;
    reply.content_type = "application/ppm-dap; message=upload-errors";
    reply.body = *Encode(errors);
    return reply;
  });
  auto summary = client.Upload(Measurements(5), 1000);
  ASSERT_TRUE(summary) << summary.error().ToString();
  EXPECT_EQ(summary->accepted, 3u);
  ASSERT_EQ(summary->rejected.size(), 2u);
  auto uploads = leader_.uploads();
  ASSERT_EQ(uploads.size(), 3u);
  EXPECT_EQ(summary->rejected[0], (RejectedReport{1, uploads[0].reports[1].metadata.report_id,
                                                  ReportError::kReportReplayed}));
  EXPECT_EQ(summary->rejected[1], (RejectedReport{3, uploads[1].reports[1].metadata.report_id,
                                                  ReportError::kReportReplayed}));
}

TEST_F(UploadClientTest, ProblemDocumentsBecomeErrors) {
  UploadClient client = MakeUploadClient(1000);
  leader_.OnUpload([this](const UploadRequest&) -> std::optional<ServerReply> {
    return ProblemReply({ProblemType::kUnrecognizedTask, "task not known here", task_id_});
  });
  auto summary = client.Upload(Measurements(3), 1000);
  ASSERT_FALSE(summary);
  EXPECT_EQ(summary.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(summary.error().message().find("unrecognizedTask"), std::string::npos)
      << summary.error().message();
  EXPECT_NE(summary.error().message().find("task not known here"), std::string::npos);
  EXPECT_NE(summary.error().message().find("HTTP 404"), std::string::npos);
}

TEST_F(UploadClientTest, RefusesAnAnswerNamingUnknownReports) {
  UploadClient client = MakeUploadClient(1000);
  leader_.OnUpload([](const UploadRequest&) -> std::optional<ServerReply> {
    UploadErrors errors;
    errors.statuses.push_back({ReportId{}, ReportError::kReportDropped});
    ServerReply reply;
    reply.content_type = std::string(kUploadErrorsMediaType);
    reply.body = *Encode(errors);
    return reply;
  });
  auto summary = client.Upload(Measurements(2), 1000);
  ASSERT_FALSE(summary);
  EXPECT_EQ(summary.error().code(), ErrorCode::kDecodeError);
}

TEST_F(UploadClientTest, RefetchesConfigsOnceAfterUnknownConfigId) {
  UploadClient client = MakeUploadClient(1000);
  ASSERT_TRUE(client.Target());  // Caches the leader's config 1.
  leader_.Serve({1}, {1});       // The leader rotated to config 11.
  auto summary = client.Upload(Measurements(3), 1000);
  ASSERT_TRUE(summary) << summary.error().ToString();
  EXPECT_EQ(summary->accepted, 3u);
  EXPECT_TRUE(summary->rejected.empty());
  EXPECT_TRUE(summary->refetched_hpke_configs);
  EXPECT_EQ(summary->requests, 2u);
  EXPECT_EQ(leader_.config_fetches(), 2);
  EXPECT_EQ(helper_.config_fetches(), 2);
  auto uploads = leader_.uploads();
  ASSERT_EQ(uploads.size(), 2u);
  std::set<ReportId> first_ids;
  for (const Report& report : uploads[0].reports) {
    EXPECT_EQ(report.leader_encrypted_input_share.config_id, 1);
    first_ids.insert(report.metadata.report_id);
  }
  for (const Report& report : uploads[1].reports) {
    EXPECT_EQ(report.leader_encrypted_input_share.config_id, 11);
    EXPECT_FALSE(first_ids.contains(report.metadata.report_id));  // New report IDs.
  }
  EXPECT_EQ(leader_.accepted_reports().size(), 3u);
}

TEST_F(UploadClientTest, RefetchesOnlyOnce) {
  UploadClient client = MakeUploadClient(2);
  leader_.Serve({0}, {1});  // Serves config 1 but only opens config 11.
  auto summary = client.Upload(Measurements(3), 1000);
  ASSERT_TRUE(summary) << summary.error().ToString();
  EXPECT_EQ(summary->accepted, 0u);
  ASSERT_EQ(summary->rejected.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(summary->rejected[i].measurement_index, i);
    EXPECT_EQ(summary->rejected[i].error, ReportError::kHpkeUnknownConfigId);
  }
  EXPECT_EQ(summary->requests, 3u);  // Chunk, its one retry, the last chunk.
  EXPECT_EQ(leader_.config_fetches(), 2);
}

TEST_F(UploadClientTest, RefusesAnUndecodableConfigListNamingTheAggregator) {
  UploadClient client = MakeUploadClient(1000);
  helper_.Serve({}, {});  // An empty list is not a valid HpkeConfigList.
  auto target = client.Target();
  ASSERT_FALSE(target);
  EXPECT_EQ(target.error().code(), ErrorCode::kDecodeError);
  EXPECT_NE(target.error().message().find("helper"), std::string::npos);
  EXPECT_NE(target.error().message().find("/helper/hpke_config"), std::string::npos);
}

TEST_F(UploadClientTest, CreateRefusesBadUrls) {
  UploadTask task;
  task.task_id = task_id_;
  task.task_configuration = configuration_;
  task.leader_url = "https://leader.example/";
  EXPECT_EQ(UploadClient::Create(task, http_).error().code(), ErrorCode::kUnsupported);
  task.leader_url = "leader.example";
  EXPECT_EQ(UploadClient::Create(task, http_).error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace canopy::dap
