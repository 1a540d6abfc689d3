// The only translation unit of the HTTP client that includes Boost.Beast.
//
// Every network operation is asynchronous on a per-connection io_context that
// this thread runs until the operation completes or its deadline passes; at
// the deadline the socket is closed, which cancels the operation. This gives
// blocking calls with hard timeouts and no background threads.
#include "dap/http_client.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/vector_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <charconv>
#include <exception>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "dap/problem.h"

namespace canopy::dap {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

constexpr size_t kHeaderLimit = 64 * 1024;

bool IsUnreserved(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

// Visible ASCII without spaces: what a URL, a token or a media type may hold.
bool AllVisibleAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// Header values additionally allow spaces and tabs, never CR, LF or NUL.
bool IsHeaderValue(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\t' || (c > 0x20 && c < 0x7f); });
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::unexpected<Error> BadUrl(std::string_view url, std::string_view why) {
  return MakeError(ErrorCode::kInvalidArgument,
                   "bad URL \"" + std::string(url) + "\": " + std::string(why));
}

// A media type split into its lower-cased type/subtype and parameters.
struct MediaType {
  std::string essence;
  std::map<std::string, std::string> parameters;
};

MediaType ParseMediaType(std::string_view text) {
  MediaType type;
  size_t semicolon = text.find(';');
  type.essence = AsciiLowercase(Trim(text.substr(0, semicolon)));
  while (semicolon != std::string_view::npos) {
    text.remove_prefix(semicolon + 1);
    semicolon = text.find(';');
    std::string_view parameter = Trim(text.substr(0, semicolon));
    size_t equals = parameter.find('=');
    if (equals == std::string_view::npos) continue;
    std::string_view value = Trim(parameter.substr(equals + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    type.parameters[AsciiLowercase(Trim(parameter.substr(0, equals)))] = std::string(value);
  }
  return type;
}

std::string Milliseconds(std::chrono::milliseconds duration) {
  return std::to_string(duration.count()) + " ms";
}

// One keep-alive connection. It owns its io_context so that a thread can run
// it without disturbing other connections.
struct Connection {
  Connection() {
    // Room for Beast's largest read (64 KiB): it reads as much as the
    // buffer has room for, at least 512 bytes, and the buffer does not grow
    // while a body streams through it.
    buffer.reserve(64 * 1024);
  }
  asio::io_context io{1};
  tcp::socket socket{io};
  boost::beast::flat_buffer buffer;
  std::string authority;
  bool reused = false;
};

// Runs `io` until `*done` or `deadline`. On the deadline calls `cancel` and
// waits for the cancelled operation's handler. Returns false on timeout.
template <typename Cancel>
bool RunUntil(asio::io_context& io, const bool& done, Clock::time_point deadline, Cancel cancel) {
  io.restart();
  while (!done && Clock::now() < deadline) {
    if (io.run_one_until(deadline) == 0 && io.stopped()) break;
  }
  if (done) return true;
  cancel();
  io.restart();
  io.run();
  return false;
}

// True when an idle pooled connection still looks usable: nothing to read
// (no unexpected bytes, no end of stream) and no error pending.
bool LooksAlive(Connection& connection) {
  if (!connection.socket.is_open() || connection.buffer.size() != 0) return false;
  error_code ec;
  connection.socket.non_blocking(true, ec);
  if (ec) return false;
  char byte;
  connection.socket.receive(asio::buffer(&byte, 1), tcp::socket::message_peek, ec);
  bool alive = ec == asio::error::would_block;
  connection.socket.non_blocking(false, ec);
  return alive && !ec;
}

// What one attempt produced.
struct Attempt {
  std::optional<HttpResponse> response;
  std::string failure;    // What went wrong, when there is no response.
  bool retryable = true;  // The failure may succeed on another attempt.
  bool stale = false;     // A reused connection died before answering.
};

class JitterSource {
 public:
  std::chrono::milliseconds Draw(std::chrono::milliseconds high) {
    std::lock_guard lock(mutex_);
    if (high.count() <= 1) return high;
    std::uniform_int_distribution<int64_t> uniform(high.count() / 2, high.count());
    return std::chrono::milliseconds(uniform(engine_));
  }

 private:
  std::mutex mutex_;
  std::mt19937_64 engine_{std::random_device{}()};
};

}  // namespace

std::string HttpUrl::Authority() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return out + ":" + std::to_string(port);
}

Result<HttpUrl> HttpUrl::Parse(std::string_view url) {
  if (url.empty()) return BadUrl(url, "empty");
  if (!AllVisibleAscii(url)) return BadUrl(url, "spaces or control characters");
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return BadUrl(url, "no scheme (expected http://)");
  const std::string scheme = AsciiLowercase(url.substr(0, scheme_end));
  if (scheme == "https") {
    return MakeError(ErrorCode::kUnsupported,
                     "URL \"" + std::string(url) + "\": https is not supported yet, use http");
  }
  if (scheme != "http") return BadUrl(url, "scheme \"" + scheme + "\" is not http");
  std::string_view rest = url.substr(scheme_end + 3);
  if (rest.find('#') != std::string_view::npos) return BadUrl(url, "fragments are not allowed");
  const size_t authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return BadUrl(url, "user information is not allowed");
  }
  HttpUrl parsed;
  std::string_view port_text;
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return BadUrl(url, "unterminated IPv6 literal");
    parsed.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return BadUrl(url, "junk after the IPv6 literal");
      port_text = after.substr(1);
      if (port_text.empty()) return BadUrl(url, "empty port");
    }
    const bool hex_and_colons = std::all_of(parsed.host.begin(), parsed.host.end(), [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
    });
    if (parsed.host.empty() || !hex_and_colons) return BadUrl(url, "bad IPv6 literal");
  } else {
    const size_t colon = authority.find(':');
    parsed.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return BadUrl(url, "empty port");
    }
    if (parsed.host.empty()) return BadUrl(url, "no host");
    if (!std::all_of(parsed.host.begin(), parsed.host.end(), IsUnreserved)) {
      return BadUrl(url, "bad host name");
    }
    parsed.host = AsciiLowercase(parsed.host);
  }
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return BadUrl(url, "bad port \"" + std::string(port_text) + "\"");
    }
    parsed.port = static_cast<uint16_t>(port);
  }
  parsed.target = target.empty() ? "/" : std::string(target);
  if (parsed.target.front() == '?') parsed.target.insert(0, "/");
  return parsed;
}

std::string JoinUrl(std::string_view base, std::string_view path) {
  while (base.ends_with('/')) base.remove_suffix(1);
  while (path.starts_with('/')) path.remove_prefix(1);
  return std::string(base) + "/" + std::string(path);
}

std::string AsciiLowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool MediaTypeMatches(std::string_view content_type, std::string_view expected) {
  const MediaType actual = ParseMediaType(content_type);
  const MediaType wanted = ParseMediaType(expected);
  if (actual.essence.empty() || actual.essence != wanted.essence) return false;
  for (const auto& [name, value] : wanted.parameters) {
    auto it = actual.parameters.find(name);
    if (it == actual.parameters.end() || it->second != value) return false;
  }
  return true;
}

std::string_view HttpMethodName(HttpMethod method) {
  switch (method) {
    case HttpMethod::kGet:
      return "GET";
    case HttpMethod::kPost:
      return "POST";
    case HttpMethod::kPut:
      return "PUT";
    case HttpMethod::kDelete:
      return "DELETE";
  }
  return "GET";
}

class HttpClient::Impl {
 public:
  explicit Impl(HttpClientOptions options) : options_(std::move(options)) {}

  Result<HttpResponse> Send(const HttpRequest& request);
  void CloseIdle() {
    std::lock_guard lock(mutex_);
    idle_.clear();
  }
  const HttpClientOptions& options() const { return options_; }

 private:
  using Request = http::request<http::vector_body<uint8_t>>;

  Attempt RunAttempt(const HttpUrl& url, const Request& request, bool idempotent);
  Attempt Exchange(Connection& connection, const Request& request, Clock::time_point deadline);
  // An idle connection to `authority` that still looks alive, or null.
  std::unique_ptr<Connection> TakeIdle(const std::string& authority);
  void ReturnIdle(std::unique_ptr<Connection> connection);
  Result<std::unique_ptr<Connection>> Connect(const HttpUrl& url, Clock::time_point deadline,
                                              std::string& failure);
  std::chrono::milliseconds Backoff(int retry, std::optional<uint64_t> retry_after);

  const HttpClientOptions options_;
  std::mutex mutex_;
  std::map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;
  JitterSource jitter_;
};

std::unique_ptr<Connection> HttpClient::Impl::TakeIdle(const std::string& authority) {
  std::lock_guard lock(mutex_);
  auto it = idle_.find(authority);
  if (it == idle_.end()) return nullptr;
  auto& pool = it->second;
  while (!pool.empty()) {
    std::unique_ptr<Connection> connection = std::move(pool.back());
    pool.pop_back();
    if (LooksAlive(*connection)) {
      connection->reused = true;
      return connection;
    }
  }
  return nullptr;
}

void HttpClient::Impl::ReturnIdle(std::unique_ptr<Connection> connection) {
  std::lock_guard lock(mutex_);
  auto& pool = idle_[connection->authority];
  if (pool.size() < options_.max_idle_connections_per_host) pool.push_back(std::move(connection));
}

Result<std::unique_ptr<Connection>> HttpClient::Impl::Connect(const HttpUrl& url,
                                                              Clock::time_point deadline,
                                                              std::string& failure) {
  auto connection = std::make_unique<Connection>();
  connection->authority = url.Authority();
  const Clock::time_point connect_deadline =
      std::min(deadline, Clock::now() + options_.connect_timeout);

  tcp::resolver resolver(connection->io);
  tcp::resolver::results_type endpoints;
  error_code ec;
  bool done = false;
  resolver.async_resolve(url.host, std::to_string(url.port),
                         [&](const error_code& e, tcp::resolver::results_type results) {
                           ec = e;
                           endpoints = std::move(results);
                           done = true;
                         });
  if (!RunUntil(connection->io, done, connect_deadline, [&] { resolver.cancel(); })) {
    failure = "resolving " + url.host + " timed out";
    return std::unexpected(Error(ErrorCode::kIoError, failure));
  }
  if (ec) {
    failure = "cannot resolve " + url.host + ": " + ec.message();
    return std::unexpected(Error(ErrorCode::kIoError, failure));
  }

  done = false;
  asio::async_connect(connection->socket, endpoints,
                      [&](const error_code& e, const tcp::endpoint&) {
                        ec = e;
                        done = true;
                      });
  if (!RunUntil(connection->io, done, connect_deadline, [&] {
        error_code ignored;
        connection->socket.close(ignored);
      })) {
    failure = "connecting to " + connection->authority + " timed out after " +
              Milliseconds(options_.connect_timeout);
    return std::unexpected(Error(ErrorCode::kIoError, failure));
  }
  if (ec) {
    failure = "cannot connect to " + connection->authority + ": " + ec.message();
    return std::unexpected(Error(ErrorCode::kIoError, failure));
  }
  error_code ignored;
  connection->socket.set_option(tcp::no_delay(true), ignored);
  return connection;
}

Attempt HttpClient::Impl::Exchange(Connection& connection, const Request& request,
                                   Clock::time_point deadline) {
  Attempt attempt;
  auto close = [&] {
    error_code ignored;
    connection.socket.close(ignored);
  };
  const std::string timed_out =
      "no complete answer within " + Milliseconds(options_.request_timeout);

  error_code ec;
  bool done = false;
  http::async_write(connection.socket, request, [&](const error_code& e, size_t) {
    ec = e;
    done = true;
  });
  if (!RunUntil(connection.io, done, deadline, close)) {
    attempt.failure = "sending timed out (" + timed_out + ")";
    return attempt;
  }
  if (ec) {
    attempt.failure = "sending failed: " + ec.message();
    attempt.stale = connection.reused;
    close();
    return attempt;
  }

  // Interim 1xx answers are skipped.
  for (;;) {
    http::response_parser<http::vector_body<uint8_t>> parser;
    parser.header_limit(static_cast<uint32_t>(kHeaderLimit));
    parser.body_limit(options_.max_response_bytes);
    done = false;
    http::async_read(connection.socket, connection.buffer, parser,
                     [&](const error_code& e, size_t) {
                       ec = e;
                       done = true;
                     });
    if (!RunUntil(connection.io, done, deadline, close)) {
      attempt.failure = "receiving timed out (" + timed_out + ")";
      return attempt;
    }
    if (ec) {
      close();
      if (ec == http::error::body_limit) {
        attempt.failure = "the response body exceeds the limit of " +
                          std::to_string(options_.max_response_bytes) + " bytes";
        attempt.retryable = false;
      } else if (ec == http::error::header_limit) {
        attempt.failure = "the response header exceeds " + std::to_string(kHeaderLimit) + " bytes";
        attempt.retryable = false;
      } else {
        attempt.failure = "receiving failed: " + ec.message();
        // A reused connection that the server closed before answering
        // anything: the request was not processed, send it again fresh.
        attempt.stale = connection.reused && !parser.got_some() &&
                        (ec == http::error::end_of_stream || ec == asio::error::eof ||
                         ec == asio::error::connection_reset || ec == asio::error::broken_pipe);
      }
      return attempt;
    }
    const auto& message = parser.get();
    const int status = static_cast<int>(message.result_int());
    if (status >= 100 && status < 200 && status != 101) continue;

    HttpResponse response;
    response.status = status;
    if (auto it = message.find(http::field::content_type); it != message.end()) {
      response.content_type = std::string(it->value());
    }
    if (auto it = message.find(http::field::location); it != message.end()) {
      response.location = std::string(it->value());
    }
    if (auto it = message.find(http::field::retry_after); it != message.end()) {
      std::string_view value = Trim(std::string_view(it->value().data(), it->value().size()));
      uint64_t seconds = 0;
      auto [end, from_ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
      if (from_ec == std::errc() && end == value.data() + value.size()) {
        response.retry_after = seconds;
      }
    }
    if (!message.keep_alive() || status == 101) close();
    response.body = std::move(parser.release().body());
    attempt.response = std::move(response);
    return attempt;
  }
}

Attempt HttpClient::Impl::RunAttempt(const HttpUrl& url, const Request& request, bool idempotent) {
  const Clock::time_point deadline = Clock::now() + options_.request_timeout;
  const std::string authority = url.Authority();
  // A pooled connection may have died unnoticed; then resend on a new one
  // (once), which does not count as a retry.
  for (int fresh_tries = 0;; ++fresh_tries) {
    std::unique_ptr<Connection> connection = fresh_tries == 0 ? TakeIdle(authority) : nullptr;
    if (connection == nullptr) {
      std::string failure;
      auto connected = Connect(url, deadline, failure);
      if (!connected) {
        Attempt attempt;
        attempt.failure = failure;
        return attempt;
      }
      connection = std::move(*connected);
    }
    Attempt attempt = Exchange(*connection, request, deadline);
    if (attempt.stale && idempotent && fresh_tries == 0) continue;
    if (attempt.response && connection->socket.is_open()) ReturnIdle(std::move(connection));
    return attempt;
  }
}

std::chrono::milliseconds HttpClient::Impl::Backoff(int retry,
                                                    std::optional<uint64_t> retry_after) {
  using std::chrono::milliseconds;
  milliseconds high = options_.initial_backoff;
  for (int i = 1; i < retry && high < options_.max_backoff; ++i) high *= 2;
  if (retry_after) {
    const uint64_t seconds = std::min<uint64_t>(*retry_after, 86400);
    high = std::max(high, milliseconds(static_cast<int64_t>(seconds) * 1000));
  }
  return jitter_.Draw(std::min(high, options_.max_backoff));
}

namespace {

// A short summary of a 5xx answer for an error message: its problem
// document's type and detail when it has one.
std::string DescribeServerError(const HttpResponse& response) {
  std::string text = "HTTP " + std::to_string(response.status);
  if (MediaTypeMatches(response.content_type, kProblemMediaType)) {
    std::string_view json(reinterpret_cast<const char*>(response.body.data()),
                          response.body.size());
    if (auto problem = ProblemDocument::FromJson(json)) {
      text += " (problem " + ProblemTypeUri(problem->type);
      if (!problem->detail.empty()) text += ": " + problem->detail;
      text += ")";
    }
  }
  return text;
}

}  // namespace

Result<HttpResponse> HttpClient::Impl::Send(const HttpRequest& request) {
  auto url = HttpUrl::Parse(request.url);
  if (!url) return std::unexpected(url.error());
  const std::string what =
      std::string(HttpMethodName(request.method)) + " " + std::string(request.url);
  if (!AllVisibleAscii(request.bearer_token)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     what + ": the bearer token holds characters a header cannot carry");
  }
  if (!IsHeaderValue(request.content_type) || !IsHeaderValue(request.accept)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     what + ": a media type holds characters a header cannot carry");
  }

  Request message;
  switch (request.method) {
    case HttpMethod::kGet:
      message.method(http::verb::get);
      break;
    case HttpMethod::kPost:
      message.method(http::verb::post);
      break;
    case HttpMethod::kPut:
      message.method(http::verb::put);
      break;
    case HttpMethod::kDelete:
      message.method(http::verb::delete_);
      break;
  }
  message.target(url->target);
  message.version(11);
  const std::string authority = url->Authority();
  message.set(http::field::host,
              url->port == 80 ? authority.substr(0, authority.rfind(':')) : authority);
  message.set(http::field::user_agent, options_.user_agent);
  if (!request.content_type.empty()) message.set(http::field::content_type, request.content_type);
  if (!request.accept.empty()) message.set(http::field::accept, request.accept);
  if (!request.bearer_token.empty()) {
    message.set(http::field::authorization, "Bearer " + std::string(request.bearer_token));
  }
  message.body().assign(request.body.begin(), request.body.end());
  message.prepare_payload();

  const int max_attempts = request.idempotent ? options_.max_attempts : 1;
  std::string last;
  for (int attempt_number = 1;; ++attempt_number) {
    Attempt attempt = RunAttempt(*url, message, request.idempotent);
    std::optional<uint64_t> retry_after;
    if (attempt.response) {
      attempt.response->attempts = attempt_number;
      if (attempt.response->status < 500) return std::move(*attempt.response);
      last = DescribeServerError(*attempt.response);
      retry_after = attempt.response->retry_after;
    } else {
      last = attempt.failure;
      if (!attempt.retryable) {
        return MakeError(ErrorCode::kIoError, what + ": " + last);
      }
    }
    if (attempt_number >= max_attempts) {
      return MakeError(ErrorCode::kIoError,
                       what + ": failed after " + std::to_string(attempt_number) +
                           (attempt_number == 1 ? " attempt" : " attempts") + "; last: " + last);
    }
    std::this_thread::sleep_for(Backoff(attempt_number, retry_after));
  }
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;
HttpClient::~HttpClient() = default;

Result<HttpClient> HttpClient::Create(HttpClientOptions options) {
  if (options.max_attempts < 1) {
    return MakeError(ErrorCode::kInvalidArgument, "HTTP client: max_attempts must be at least 1");
  }
  if (options.connect_timeout.count() <= 0 || options.request_timeout.count() <= 0) {
    return MakeError(ErrorCode::kInvalidArgument, "HTTP client: timeouts must be positive");
  }
  if (options.max_response_bytes == 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "HTTP client: max_response_bytes must be positive");
  }
  if (options.initial_backoff.count() < 0 || options.max_backoff < options.initial_backoff) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "HTTP client: need 0 <= initial_backoff <= max_backoff");
  }
  if (!IsHeaderValue(options.user_agent)) {
    return MakeError(ErrorCode::kInvalidArgument, "HTTP client: bad user_agent");
  }
  return HttpClient(std::make_unique<Impl>(std::move(options)));
}

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  try {
    return impl_->Send(request);
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kInternal, std::string(HttpMethodName(request.method)) + " " +
                                               std::string(request.url) + ": " + e.what());
  }
}

Result<HttpResponse> HttpClient::Send(HttpMethod method, std::string_view url,
                                      std::string_view content_type, std::span<const uint8_t> body,
                                      std::string_view bearer_token) {
  HttpRequest request;
  request.method = method;
  request.url = url;
  request.content_type = content_type;
  request.body = body;
  request.bearer_token = bearer_token;
  return Send(request);
}

void HttpClient::CloseIdleConnections() { impl_->CloseIdle(); }

const HttpClientOptions& HttpClient::options() const { return impl_->options(); }

}  // namespace canopy::dap
