// The aggregator's HTTP server on 127.0.0.1 (ephemeral ports), driven by the
// project's HTTP client and by raw sockets for what a well-behaved client
// never sends: oversized bodies, malformed requests, stalled requests.
#include "aggregator/http_server.h"

// GCC 12 with the sanitizers reports a maybe-uninitialized boost::optional
// inside Beast's response parser (a false positive, in Boost's code) once it
// is inlined here; it is not about this file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "aggregator/internal/request_body.h"
#include "dap/http_client.h"

namespace canopy::aggregator {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::vector<uint8_t> ToBytes(std::string_view text) { return {text.begin(), text.end()}; }
std::string ToString(const std::vector<uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

// A handler made of a function; it remembers every request it saw.
class TestHandler : public RequestHandler {
 public:
  using Function = std::function<void(ServerRequest&, Responder&)>;
  explicit TestHandler(Function function) : function_(std::move(function)) {}

  ~TestHandler() override {
    for (std::thread& thread : threads_) thread.join();
  }

  void Handle(ServerRequest request, Responder respond) override {
    {
      std::lock_guard lock(mutex_);
      seen_.push_back(request);
    }
    function_(request, respond);
  }

  std::vector<ServerRequest> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

  // Runs `work` on a thread of its own, joined when the handler dies.
  void Spawn(std::function<void()> work) {
    std::lock_guard lock(mutex_);
    threads_.emplace_back(std::move(work));
  }

 private:
  Function function_;
  mutable std::mutex mutex_;
  std::vector<ServerRequest> seen_;
  std::vector<std::thread> threads_;
};

// Answers 200 with the request's body, and its method, path and query in
// headers.
void Echo(ServerRequest& request, Responder& respond) {
  ServerResponse response;
  response.SetHeader("X-Method", request.method);
  response.SetHeader("X-Path", request.path);
  response.SetHeader("X-Query", request.query);
  response.SetBody("application/octet-stream", std::move(request.body));
  respond(std::move(response));
}

HttpServerOptions TestOptions() {
  HttpServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.request_timeout = 5s;
  return options;
}

std::unique_ptr<HttpServer> StartServer(RequestHandler& handler,
                                        HttpServerOptions options = TestOptions()) {
  auto server = HttpServer::Start(std::move(options), handler);
  EXPECT_TRUE(server) << server.error().ToString();
  return server ? std::move(*server) : nullptr;
}

dap::HttpClient MakeClient(int max_attempts = 1) {
  dap::HttpClientOptions options;
  options.request_timeout = 5s;
  options.max_attempts = max_attempts;
  options.initial_backoff = 5ms;
  options.max_backoff = 20ms;
  auto client = dap::HttpClient::Create(options);
  EXPECT_TRUE(client);
  return std::move(*client);
}

std::string Url(const HttpServer& server, std::string_view target) {
  return "http://127.0.0.1:" + std::to_string(server.port()) + std::string(target);
}

// One TCP connection written and read by hand. Every read has a deadline,
// so a misbehaving server fails the test instead of hanging it.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) : stream_(io_) {
    stream_.expires_after(5s);
    stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }

  void Send(std::string_view bytes) {
    boost::system::error_code ec;
    asio::write(stream_.socket(), asio::buffer(bytes.data(), bytes.size()), ec);
    // A server that already answered and closed may reset a late write;
    // the test then checks what it could read.
  }

  // The next response, or nothing when the connection ends first.
  std::optional<http::response<http::string_body>> Read() {
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    boost::system::error_code ec = Run([&](auto done) {
      http::async_read(stream_, buffer_, parser, [done](auto e, size_t) { done(e); });
    });
    if (ec) return std::nullopt;
    return parser.release();
  }

  // True when the server closes the connection (end of stream or reset)
  // within `timeout`, with nothing more to read.
  bool ClosedWithin(std::chrono::milliseconds timeout) {
    if (buffer_.size() != 0) return false;
    char byte;
    boost::system::error_code ec = Run(
        [&](auto done) {
          stream_.async_read_some(asio::buffer(&byte, 1), [done](auto e, size_t) { done(e); });
        },
        timeout);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

 private:
  template <typename Start>
  boost::system::error_code Run(Start start, std::chrono::milliseconds timeout = 5000ms) {
    boost::system::error_code result;
    stream_.expires_after(timeout);
    start([&](boost::system::error_code ec) { result = ec; });
    io_.restart();
    io_.run();
    return result;
  }

  asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

// ---------------------------------------------------------------------------
// Requests and responses.

TEST(HttpServerTest, GetReachesTheHandlerAndTheAnswerComesBack) {
  TestHandler handler([](ServerRequest&, Responder& respond) {
    ServerResponse response;
    response.status = 201;
    response.SetHeader("Location", "/somewhere");
    response.SetBody("text/plain", std::string_view("hello"));
    respond(std::move(response));
  });
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  dap::HttpClient client = MakeClient();
  dap::HttpRequest request;
  request.url = "";
  const std::string url = Url(*server, "/tasks/abc/reports?x=1&y=a?b");
  request.url = url;
  request.accept = "application/json";
  request.bearer_token = "secret-token";
  auto response = client.Send(request);
  ASSERT_TRUE(response) << response.error().ToString();
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->content_type, "text/plain");
  EXPECT_EQ(response->location, "/somewhere");
  EXPECT_EQ(ToString(response->body), "hello");

  const auto seen = handler.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].path, "/tasks/abc/reports");
  EXPECT_EQ(seen[0].query, "x=1&y=a?b");
  EXPECT_EQ(seen[0].Header("authorization"), "Bearer secret-token");
  EXPECT_EQ(seen[0].Header("accept"), "application/json");
  EXPECT_EQ(seen[0].Header("host"), "127.0.0.1:" + std::to_string(server->port()));
  EXPECT_TRUE(seen[0].body.empty());
  EXPECT_TRUE(seen[0].remote_address.starts_with("127.0.0.1:")) << seen[0].remote_address;
}

TEST(HttpServerTest, PostBodyReachesTheHandler) {
  TestHandler handler(Echo);
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  dap::HttpClient client = MakeClient();
  std::vector<uint8_t> body(100000);
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<uint8_t>(i * 7);
  auto response =
      client.Send(dap::HttpMethod::kPost, Url(*server, "/upload"), "application/dap-report", body);
  ASSERT_TRUE(response) << response.error().ToString();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, body);
  const auto seen = handler.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].path, "/upload");
  EXPECT_EQ(seen[0].query, "");
  EXPECT_EQ(seen[0].Header("content-type"), "application/dap-report");
  EXPECT_EQ(seen[0].body, body);
}

TEST(HttpServerTest, HeaderNamesAreLowerCasedInArrivalOrder) {
  TestHandler handler(Echo);
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  RawConnection connection(server->port());
  connection.Send(
      "PUT /a?b HTTP/1.1\r\nHost: x\r\nX-First: 1\r\nX-MiXeD-CaSe: Value Kept\r\n"
      "Content-Length: 3\r\n\r\nabc");
  auto response = connection.Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 200);
  EXPECT_EQ((*response)["X-Method"], "PUT");
  EXPECT_EQ((*response)["X-Path"], "/a");
  EXPECT_EQ((*response)["X-Query"], "b");
  EXPECT_EQ(response->body(), "abc");
  const auto seen = handler.seen();
  ASSERT_EQ(seen.size(), 1u);
  ASSERT_EQ(seen[0].headers.size(), 4u);
  EXPECT_EQ(seen[0].headers[0].first, "host");
  EXPECT_EQ(seen[0].headers[1].first, "x-first");
  EXPECT_EQ(seen[0].headers[2],
            std::make_pair(std::string("x-mixed-case"), std::string("Value Kept")));
  EXPECT_EQ(seen[0].headers[3].first, "content-length");
}

TEST(HttpServerTest, AddsServerDateAndContentLength) {
  TestHandler handler([](ServerRequest&, Responder& respond) {
    ServerResponse response;
    response.SetHeader("Content-Length", "999");  // Ignored: the server frames.
    response.SetHeader("Server", "impostor");
    response.SetBody("text/plain", std::string_view("four"));
    respond(std::move(response));
  });
  HttpServerOptions options = TestOptions();
  options.server_name = "canopy-test";
  auto server = StartServer(handler, options);
  ASSERT_TRUE(server);
  RawConnection connection(server->port());
  connection.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  auto response = connection.Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 200);
  EXPECT_EQ((*response)[http::field::server], "canopy-test");
  EXPECT_EQ((*response)[http::field::content_length], "4");
  const std::string date((*response)[http::field::date]);
  EXPECT_EQ(date.size(), 29u) << date;  // "Sun, 06 Nov 1994 08:49:37 GMT"
  EXPECT_TRUE(date.ends_with(" GMT")) << date;
  EXPECT_EQ(response->body(), "four");
}

TEST(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  TestHandler handler(Echo);
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  RawConnection connection(server->port());
  for (int i = 0; i < 5; ++i) {
    const std::string body = "request " + std::to_string(i);
    connection.Send("POST /k HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body);
    auto response = connection.Read();
    ASSERT_TRUE(response) << "request " << i;
    EXPECT_EQ(response->body(), body);
    EXPECT_TRUE(response->keep_alive());
  }
  // Two pipelined requests are answered in order.
  connection.Send(
      "GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n"
      "Connection: close\r\n\r\n");
  auto first = connection.Read();
  auto second = connection.Read();
  ASSERT_TRUE(first && second);
  EXPECT_EQ((*first)["X-Path"], "/first");
  EXPECT_EQ((*second)["X-Path"], "/second");
  EXPECT_FALSE(second->keep_alive());
  EXPECT_TRUE(connection.ClosedWithin(5000ms));

  std::set<std::string> peers;
  for (const ServerRequest& request : handler.seen()) peers.insert(request.remote_address);
  EXPECT_EQ(peers.size(), 1u);
}

TEST(HttpServerTest, HttpClientReusesItsConnection) {
  TestHandler handler(Echo);
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  dap::HttpClient client = MakeClient();
  for (int i = 0; i < 5; ++i) {
    auto response = client.Send(dap::HttpMethod::kGet, Url(*server, "/again"));
    ASSERT_TRUE(response) << response.error().ToString();
    EXPECT_EQ(response->status, 200);
  }
  std::set<std::string> peers;
  for (const ServerRequest& request : handler.seen()) peers.insert(request.remote_address);
  EXPECT_EQ(peers.size(), 1u);
}

TEST(HttpServerTest, AnswersExpectContinue) {
  TestHandler handler(Echo);
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  RawConnection connection(server->port());
  connection.Send(
      "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  auto interim = connection.Read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->result_int(), 100);
  connection.Send("hello");
  auto response = connection.Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 200);
  EXPECT_EQ(response->body(), "hello");
}

// ---------------------------------------------------------------------------
// Refusals before the handler.

HttpServerOptions SmallBodyOptions() {
  HttpServerOptions options = TestOptions();
  options.max_body_bytes = 1024;
  return options;
}

void ExpectProblem(const http::response<http::string_body>& response, int status) {
  EXPECT_EQ(response.result_int(), status);
  EXPECT_EQ(response[http::field::content_type], "application/problem+json");
  EXPECT_NE(response.body().find("\"type\":\"about:blank\""), std::string::npos) << response.body();
  EXPECT_NE(response.body().find("\"status\":" + std::to_string(status)), std::string::npos)
      << response.body();
  EXPECT_NE(response.body().find("\"title\":"), std::string::npos) << response.body();
  EXPECT_NE(response.body().find("\"detail\":"), std::string::npos) << response.body();
  EXPECT_FALSE(response.keep_alive());
}

TEST(HttpServerTest, BodyAtTheLimitIsAccepted) {
  TestHandler handler(Echo);
  auto server = StartServer(handler, SmallBodyOptions());
  ASSERT_TRUE(server);
  dap::HttpClient client = MakeClient();
  std::vector<uint8_t> body(1024, 'a');
  auto response = client.Send(dap::HttpMethod::kPost, Url(*server, "/"), "text/plain", body);
  ASSERT_TRUE(response) << response.error().ToString();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, body);
}

TEST(HttpServerTest, DeclaredBodyOverTheLimitGets413AndClose) {
  TestHandler handler(Echo);
  auto server = StartServer(handler, SmallBodyOptions());
  ASSERT_TRUE(server);
  RawConnection connection(server->port());
  connection.Send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n");
  connection.Send(std::string(1025, 'b'));
  auto response = connection.Read();
  ASSERT_TRUE(response);
  ExpectProblem(*response, 413);
  EXPECT_TRUE(connection.ClosedWithin(5000ms));
  EXPECT_TRUE(handler.seen().empty());
}

TEST(HttpServerTest, ChunkedBodyOverTheLimitGets413AndClose) {
  TestHandler handler(Echo);
  auto server = StartServer(handler, SmallBodyOptions());
  ASSERT_TRUE(server);
  RawConnection connection(server->port());
  std::string request = "POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) request += "200\r\n" + std::string(512, 'c') + "\r\n";
  request += "0\r\n\r\n";
  connection.Send(request);
  auto response = connection.Read();
  ASSERT_TRUE(response);
  ExpectProblem(*response, 413);
  EXPECT_TRUE(connection.ClosedWithin(5000ms));
  EXPECT_TRUE(handler.seen().empty());
}

TEST(HttpServerTest, ChunkedBodyWithinTheLimitIsAccepted) {
  TestHandler handler(Echo);
  auto server = StartServer(handler, SmallBodyOptions());
  ASSERT_TRUE(server);
  RawConnection connection(server->port());
  connection.Send(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  auto response = connection.Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 200);
  EXPECT_EQ(response->body(), "abcde");
}

TEST(HttpServerTest, MalformedRequestLineGets400AndClose) {
  for (std::string_view garbage :
       {"GARBAGE\r\n\r\n", "GET / HTTP/9\r\n\r\n", "GET  HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header\r\n\r\n"}) {
    TestHandler handler(Echo);
    auto server = StartServer(handler);
    ASSERT_TRUE(server);
    RawConnection connection(server->port());
    connection.Send(garbage);
    auto response = connection.Read();
    ASSERT_TRUE(response) << garbage;
    ExpectProblem(*response, 400);
    EXPECT_TRUE(connection.ClosedWithin(5000ms)) << garbage;
    EXPECT_TRUE(handler.seen().empty());
  }
}

TEST(HttpServerTest, OversizedHeaderGets431) {
  TestHandler handler(Echo);
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  RawConnection connection(server->port());
  connection.Send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(10000, 'h') + "\r\n\r\n");
  auto response = connection.Read();
  ASSERT_TRUE(response);
  ExpectProblem(*response, 431);
  EXPECT_TRUE(connection.ClosedWithin(5000ms));
}

TEST(HttpServerTest, StalledClientIsDisconnectedAfterTheRequestTimeout) {
  TestHandler handler(Echo);
  HttpServerOptions options = TestOptions();
  options.request_timeout = 200ms;
  auto server = StartServer(handler, options);
  ASSERT_TRUE(server);

  RawConnection half(server->port());
  const auto start = Clock::now();
  half.Send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
  EXPECT_TRUE(half.ClosedWithin(5000ms));
  EXPECT_GE(Clock::now() - start, 150ms);

  RawConnection silent(server->port());
  EXPECT_TRUE(silent.ClosedWithin(5000ms));
  EXPECT_TRUE(handler.seen().empty());
}

TEST(HttpServerTest, ASlowHandlerIsNotCutByTheRequestTimeout) {
  TestHandler handler([](ServerRequest& request, Responder& respond) {
    std::this_thread::sleep_for(400ms);
    Echo(request, respond);
  });
  HttpServerOptions options = TestOptions();
  options.request_timeout = 200ms;
  auto server = StartServer(handler, options);
  ASSERT_TRUE(server);
  RawConnection connection(server->port());
  connection.Send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  auto response = connection.Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 200);
}

// ---------------------------------------------------------------------------
// Handlers that answer late, twice, never, or throw.

TEST(HttpServerTest, HandlerMayAnswerLaterFromAnotherThread) {
  TestHandler* self = nullptr;
  TestHandler handler([&self](ServerRequest& request, Responder& respond) {
    self->Spawn([request, respond]() mutable {
      std::this_thread::sleep_for(50ms);
      Echo(request, respond);
      // A second answer is ignored.
      respond(ServerResponse{.status = 500});
    });
  });
  self = &handler;
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  dap::HttpClient client = MakeClient();
  for (int i = 0; i < 3; ++i) {
    const std::string path = "/later/" + std::to_string(i);
    auto response =
        client.Send(dap::HttpMethod::kPost, Url(*server, path), "text/plain", ToBytes(path));
    ASSERT_TRUE(response) << response.error().ToString();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(ToString(response->body), path);
  }
}

TEST(HttpServerTest, HandlerThatThrowsGets500) {
  TestHandler handler([](ServerRequest&, Responder&) { throw std::runtime_error("boom"); });
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  RawConnection connection(server->port());
  for (int i = 0; i < 2; ++i) {  // The connection stays usable.
    connection.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    auto response = connection.Read();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->result_int(), 500);
    EXPECT_EQ((*response)[http::field::content_type], "application/problem+json");
    EXPECT_EQ(response->body().find("boom"), std::string::npos);
  }
}

TEST(HttpServerTest, HandlerThatNeverAnswersGets500) {
  TestHandler handler([](ServerRequest&, Responder&) {});
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  RawConnection connection(server->port());
  connection.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  auto response = connection.Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 500);
}

TEST(HttpServerTest, MalformedAnswersBecome500) {
  TestHandler handler([](ServerRequest& request, Responder& respond) {
    ServerResponse response;
    if (request.path == "/inject") {
      response.SetHeader("X-Bad", "a\r\nSet-Cookie: b");
    } else if (request.path == "/bad-name") {
      response.SetHeader("Bad Name", "x");
    } else {
      response.status = 1000;
    }
    respond(std::move(response));
  });
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  RawConnection connection(server->port());
  for (std::string_view path : {"/inject", "/bad-name", "/bad-status"}) {
    connection.Send("GET " + std::string(path) + " HTTP/1.1\r\nHost: x\r\n\r\n");
    auto response = connection.Read();
    ASSERT_TRUE(response) << path;
    EXPECT_EQ(response->result_int(), 500) << path;
    EXPECT_EQ(response->count(http::field::set_cookie), 0u);
  }
}

TEST(HttpServerTest, NoContentAnswersHaveNoBody) {
  TestHandler handler([](ServerRequest&, Responder& respond) {
    ServerResponse response;
    response.status = 204;
    respond(std::move(response));
  });
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  RawConnection connection(server->port());
  connection.Send("DELETE /x HTTP/1.1\r\nHost: x\r\n\r\nDELETE /y HTTP/1.1\r\nHost: x\r\n\r\n");
  for (int i = 0; i < 2; ++i) {
    auto response = connection.Read();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->result_int(), 204);
    EXPECT_TRUE(response->body().empty());
  }
}

// ---------------------------------------------------------------------------
// Concurrency.

TEST(HttpServerTest, ManyConcurrentClientsGetTheirOwnAnswers) {
  TestHandler handler(Echo);
  HttpServerOptions options = TestOptions();
  options.network_threads = 2;
  options.worker_threads = 2;
  auto server = StartServer(handler, options);
  ASSERT_TRUE(server);
  constexpr int kThreads = 8;
  constexpr int kRequests = 50;
  std::atomic<int> correct{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      dap::HttpClient client = MakeClient();
      for (int i = 0; i < kRequests; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        auto response = client.Send(dap::HttpMethod::kPost, Url(*server, "/c?id=" + id),
                                    "text/plain", ToBytes("body " + id));
        if (response && response->status == 200 && ToString(response->body) == "body " + id) {
          ++correct;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(correct.load(), kThreads * kRequests);
  EXPECT_EQ(handler.seen().size(), static_cast<size_t>(kThreads * kRequests));
}

// ---------------------------------------------------------------------------
// Stop.

TEST(HttpServerTest, StopWaitsForASlowHandler) {
  std::latch entered(1);
  TestHandler handler([&](ServerRequest& request, Responder& respond) {
    entered.count_down();
    std::this_thread::sleep_for(300ms);
    Echo(request, respond);
  });
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  std::optional<Result<dap::HttpResponse>> result;
  std::thread client_thread([&] {
    dap::HttpClient client = MakeClient();
    result = client.Send(dap::HttpMethod::kPost, Url(*server, "/slow"), "text/plain",
                         ToBytes("patience"));
  });
  entered.wait();
  const auto start = Clock::now();
  server->Stop(5000ms);
  const auto elapsed = Clock::now() - start;
  client_thread.join();
  ASSERT_TRUE(result.has_value());
  ASSERT_TRUE(*result) << (*result).error().ToString();
  EXPECT_EQ((*result)->status, 200);
  EXPECT_EQ(ToString((*result)->body), "patience");
  EXPECT_LT(elapsed, 5000ms);
  // Stopped: nothing listens any more.
  dap::HttpClient client = MakeClient();
  EXPECT_FALSE(client.Send(dap::HttpMethod::kGet, Url(*server, "/")));
  server->Stop();  // Idempotent.
}

TEST(HttpServerTest, StopGivesUpAfterTheGraceAndLateAnswersAreDropped) {
  std::mutex mutex;
  std::vector<Responder> parked;
  std::latch entered(1);
  TestHandler handler([&](ServerRequest&, Responder& respond) {
    std::lock_guard lock(mutex);
    parked.push_back(respond);
    entered.count_down();
  });
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  RawConnection connection(server->port());
  connection.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  entered.wait();
  const auto start = Clock::now();
  server->Stop(100ms);
  EXPECT_GE(Clock::now() - start, 80ms);
  EXPECT_FALSE(connection.Read());  // Closed without an answer.
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(parked.size(), 1u);
    parked[0](ServerResponse{});  // After Stop: dropped.
  }
  server.reset();
  std::lock_guard lock(mutex);
  parked[0](ServerResponse{});  // After destruction: still safe.
  parked.clear();               // The last copy dies after the server.
}

TEST(HttpServerTest, ConnectionsBeyondTheLimitAreClosed) {
  TestHandler handler(Echo);
  HttpServerOptions options = TestOptions();
  options.max_connections = 2;
  auto server = StartServer(handler, options);
  ASSERT_TRUE(server);
  const uint16_t port = server->port();
  auto served = [](RawConnection& connection) {
    connection.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    return connection.Read().has_value();
  };
  std::optional<RawConnection> first(std::in_place, port);
  RawConnection second(port);
  ASSERT_TRUE(served(*first));
  ASSERT_TRUE(served(second));
  RawConnection third(port);
  EXPECT_TRUE(third.ClosedWithin(5000ms));
  // Once one of the two has gone, a new connection is served (the server
  // notices the close on its own time: a few tries).
  first.reset();
  bool fourth_served = false;
  for (int attempt = 0; attempt < 50 && !fourth_served; ++attempt) {
    RawConnection fourth(port);
    fourth_served = served(fourth);
    if (!fourth_served) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(fourth_served);
  EXPECT_TRUE(served(second));  // The one kept open still works.
}

TEST(HttpServerTest, StopClosesIdleConnectionsAndStopsAccepting) {
  TestHandler handler(Echo);
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  const uint16_t port = server->port();
  RawConnection connection(port);
  connection.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(connection.Read());
  server->Stop();
  EXPECT_TRUE(connection.ClosedWithin(5000ms));
  asio::io_context io;
  tcp::socket socket(io);
  boost::system::error_code ec;
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  EXPECT_TRUE(ec);
}

TEST(HttpServerTest, StopFromOtherThreadsWhileClientsAreBusy) {
  TestHandler handler([](ServerRequest& request, Responder& respond) {
    std::this_thread::sleep_for(2ms);
    Echo(request, respond);
  });
  HttpServerOptions options = TestOptions();
  options.network_threads = 2;
  auto server = StartServer(handler, options);
  ASSERT_TRUE(server);
  std::atomic<bool> done{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      dap::HttpClient client = MakeClient();
      while (!done.load()) {
        // Errors are expected once the server stops.
        (void)client.Send(dap::HttpMethod::kPost, Url(*server, "/busy"), "text/plain",
                          ToBytes("x"));
      }
    });
  }
  std::this_thread::sleep_for(100ms);
  // Two threads stopping at once, as a signal-handling thread and the main
  // thread might.
  std::thread stopper([&] { server->Stop(1000ms); });
  server->Stop(1000ms);
  stopper.join();
  done = true;
  for (std::thread& client : clients) client.join();
  EXPECT_FALSE(handler.seen().empty());
}

TEST(HttpServerTest, StopCalledFromAHandlerDoesNotDeadlock) {
  HttpServer* server_ptr = nullptr;
  TestHandler handler([&](ServerRequest& request, Responder& respond) {
    server_ptr->Stop();  // Only begins stopping on a server thread.
    Echo(request, respond);
  });
  auto server = StartServer(handler);
  ASSERT_TRUE(server);
  server_ptr = server.get();
  RawConnection connection(server->port());
  connection.Send("GET /stop HTTP/1.1\r\nHost: x\r\n\r\n");
  auto response = connection.Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 200);
  EXPECT_FALSE(response->keep_alive());  // Stopping: the connection closes.
  EXPECT_TRUE(connection.ClosedWithin(5000ms));
  server->Stop();
}

// ---------------------------------------------------------------------------
// Listening addresses and options.

TEST(HttpServerTest, PortZeroBindsAFreePort) {
  TestHandler handler(Echo);
  auto first = StartServer(handler);
  auto second = StartServer(handler);
  ASSERT_TRUE(first && second);
  EXPECT_NE(first->port(), 0);
  EXPECT_NE(second->port(), 0);
  EXPECT_NE(first->port(), second->port());
  dap::HttpClient client = MakeClient();
  for (HttpServer* server : {first.get(), second.get()}) {
    auto response = client.Send(dap::HttpMethod::kGet, Url(*server, "/"));
    ASSERT_TRUE(response) << response.error().ToString();
    EXPECT_EQ(response->status, 200);
  }
}

TEST(HttpServerTest, ListensOnLocalhostAndIpv6) {
  TestHandler handler(Echo);
  HttpServerOptions options = TestOptions();
  options.listen_address = "localhost:0";
  auto server = StartServer(handler, options);
  ASSERT_TRUE(server);
  EXPECT_NE(server->port(), 0);
  dap::HttpClient client = MakeClient();
  auto response = client.Send(dap::HttpMethod::kGet,
                              "http://localhost:" + std::to_string(server->port()) + "/");
  ASSERT_TRUE(response) << response.error().ToString();
  EXPECT_EQ(response->status, 200);

  options.listen_address = "[::1]:0";
  auto v6 = HttpServer::Start(options, handler);
  if (!v6 && v6.error().code() == ErrorCode::kIoError) {
    GTEST_SKIP() << "no IPv6 loopback here: " << v6.error().ToString();
  }
  ASSERT_TRUE(v6) << v6.error().ToString();
  response =
      client.Send(dap::HttpMethod::kGet, "http://[::1]:" + std::to_string((*v6)->port()) + "/v6");
  ASSERT_TRUE(response) << response.error().ToString();
  EXPECT_EQ(response->status, 200);
  const auto seen = handler.seen();
  EXPECT_TRUE(seen.back().remote_address.starts_with("[::1]:")) << seen.back().remote_address;
}

TEST(HttpServerTest, RefusesBadListenAddresses) {
  TestHandler handler(Echo);
  for (std::string_view address :
       {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000", "127.0.0.1:-1",
        "127.0.0.1:123456", ":8080", "::1:8080", "[::1", "[::1]", "[::1]8080", "[]:80",
        "[127.0.0.1]:80", "[not-an-address]:80", "http://127.0.0.1:80", "local host:80"}) {
    HttpServerOptions options = TestOptions();
    options.listen_address = std::string(address);
    auto server = HttpServer::Start(options, handler);
    ASSERT_FALSE(server) << address;
    EXPECT_EQ(server.error().code(), ErrorCode::kInvalidArgument) << address;
    EXPECT_NE(server.error().message().find(std::string(address)), std::string::npos)
        << server.error().message();
  }
}

TEST(HttpServerTest, UnresolvableOrBusyAddressesAreIoErrors) {
  TestHandler handler(Echo);
  HttpServerOptions options = TestOptions();
  options.listen_address = "no-such-host.invalid:80";
  auto server = HttpServer::Start(options, handler);
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code(), ErrorCode::kIoError);

  auto first = StartServer(handler);
  ASSERT_TRUE(first);
  options.listen_address = "127.0.0.1:" + std::to_string(first->port());
  server = HttpServer::Start(options, handler);
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code(), ErrorCode::kIoError);
  EXPECT_NE(server.error().message().find(options.listen_address), std::string::npos)
      << server.error().message();
}

TEST(HttpServerTest, RefusesNonsensicalOptions) {
  TestHandler handler(Echo);
  std::vector<HttpServerOptions> bad(5, TestOptions());
  bad[0].network_threads = 0;
  bad[1].worker_threads = 0;
  bad[2].max_body_bytes = 0;
  bad[3].request_timeout = 0ms;
  bad[4].server_name = "two\r\nlines";
  for (const HttpServerOptions& options : bad) {
    auto server = HttpServer::Start(options, handler);
    ASSERT_FALSE(server);
    EXPECT_EQ(server.error().code(), ErrorCode::kInvalidArgument);
  }
}

// ---------------------------------------------------------------------------
// The request body's memory.

using internal::RequestBody;

// Feeds `bytes` to a RequestBody reader in pieces of `piece` bytes, after
// init with `announced`; checks at each piece that the memory held stays
// within twice what arrived (or the reserve ahead). Returns the body.
std::vector<uint8_t> Receive(const std::vector<uint8_t>& bytes, boost::optional<uint64_t> announced,
                             size_t piece) {
  http::request_header<> header;
  RequestBody::value_type body;
  RequestBody::reader reader(header, body);
  beast::error_code ec;
  reader.init(announced, ec);
  EXPECT_FALSE(ec);
  EXPECT_LE(body.capacity(), RequestBody::kReserveAhead);
  for (size_t at = 0; at < bytes.size(); at += piece) {
    const size_t n = std::min(piece, bytes.size() - at);
    EXPECT_EQ(reader.put(asio::buffer(bytes.data() + at, n), ec), n);
    EXPECT_FALSE(ec);
    EXPECT_LE(body.capacity(), std::max(2 * body.size(), RequestBody::kReserveAhead));
  }
  reader.finish(ec);
  EXPECT_FALSE(ec);
  return body;
}

std::vector<uint8_t> Pattern(size_t size) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(i * 131 + (i >> 8));
  return bytes;
}

TEST(RequestBody, MemoryFollowsTheBytesReceivedNotTheLengthAnnounced) {
  // Announced 32 MiB, nothing sent: at most the reserve ahead is held.
  {
    http::request_header<> header;
    RequestBody::value_type body;
    RequestBody::reader reader(header, body);
    beast::error_code ec;
    reader.init(uint64_t{32} << 20, ec);
    EXPECT_FALSE(ec);
    EXPECT_LE(body.capacity(), RequestBody::kReserveAhead);
  }
  // A body of 3 MiB in pieces, announced or chunked, arrives whole.
  const std::vector<uint8_t> sent = Pattern(3 << 20);
  EXPECT_EQ(Receive(sent, uint64_t{sent.size()}, 100000), sent);
  EXPECT_EQ(Receive(sent, boost::none, 65536), sent);
  // Small bodies in one piece.
  EXPECT_EQ(Receive(Pattern(10), uint64_t{10}, 10), Pattern(10));
  EXPECT_EQ(Receive({}, uint64_t{0}, 1), std::vector<uint8_t>{});
}

TEST(RequestBody, AnAnnouncedLengthIsReservedExactlyOnceReached) {
  const std::vector<uint8_t> sent = Pattern(RequestBody::kReserveAhead + 1000);
  http::request_header<> header;
  RequestBody::value_type body;
  RequestBody::reader reader(header, body);
  beast::error_code ec;
  reader.init(uint64_t{sent.size()}, ec);
  reader.put(asio::buffer(sent), ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(body, sent);
  EXPECT_EQ(body.capacity(), sent.size());
}

}  // namespace
}  // namespace canopy::aggregator
