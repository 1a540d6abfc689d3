// The only translation unit of the aggregator's HTTP server that includes
// Boost.Beast.
//
// Threads and ownership. The network threads run one io_context. Every
// connection is a Session, kept alive by the shared_ptr that its pending
// operations hold and serialised on its own strand. A complete request is
// posted to the worker pool together with a Responder. The Responder holds
// only a weak reference to its Session and a shared Gate, never the server:
// an answer that arrives after the connection died, or after Stop, is
// dropped without touching freed memory. Stop closes the Gate under its
// mutex, which every Responder holds while it posts onto the io_context, so
// no post can race with the io_context's destruction.
#include "aggregator/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/vector_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <exception>
#include <mutex>
#include <optional>
#include <string_view>
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
using boost::system::error_code;

// Beast's default, stated here because the header promises it.
constexpr uint32_t kHeaderLimit = 8 * 1024;
// Beast's largest read of a request's body, and so the room a session's
// buffer keeps for a large body (once, for the connection's life).
constexpr uint64_t kBodyReadBytes = 64 * 1024;

// After an error answer the client may still be sending (the rest of an
// oversized body). Closing a socket with unread data makes the kernel reset
// the connection, which can destroy the answer before the client reads it,
// so the server half-closes and discards input for a moment first.
constexpr std::chrono::milliseconds kMaxLinger{1000};
constexpr size_t kMaxLingerBytes = size_t{4} << 20;

// Waiting between accept attempts after a failure such as running out of
// file descriptors, so that the accept loop does not spin.
constexpr std::chrono::milliseconds kAcceptRetryDelay{50};

constexpr std::string_view kProblemMediaType = "application/problem+json";

// Which server, if any, owns the current thread: Stop cannot join the
// thread it runs on.
thread_local const void* tls_current_server = nullptr;

class ScopedServerThread {
 public:
  explicit ScopedServerThread(const void* server) : previous_(tls_current_server) {
    tls_current_server = server;
  }
  ~ScopedServerThread() { tls_current_server = previous_; }
  ScopedServerThread(const ScopedServerThread&) = delete;
  ScopedServerThread& operator=(const ScopedServerThread&) = delete;

 private:
  const void* previous_;
};

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), IsTokenChar);
}

// A header value may hold visible characters, spaces and tabs; never CR, LF
// or NUL, which would let a value inject headers.
bool IsFieldValue(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return c == ' ' || c == '\t' || (u > 0x20 && u != 0x7f);
  });
}

// The IMF-fixdate of RFC 9110, written by hand because strftime's day and
// month names follow the locale.
std::string HttpDate(std::chrono::system_clock::time_point when) {
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  std::snprintf(text, sizeof(text), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                kDays[static_cast<size_t>(utc.tm_wday) % 7], utc.tm_mday,
                kMonths[static_cast<size_t>(utc.tm_mon) % 12], utc.tm_year + 1900, utc.tm_hour,
                utc.tm_min, utc.tm_sec);
  return text;
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// An RFC 9457 problem document for refusals that happen before (or instead
// of) a handler: they are HTTP-level, not DAP errors, hence "about:blank".
ServerResponse ProblemResponse(int status, std::string_view title, std::string_view detail) {
  ServerResponse response;
  response.status = status;
  const std::string json = "{\"type\":\"about:blank\",\"title\":" + JsonString(title) +
                           ",\"status\":" + std::to_string(status) +
                           ",\"detail\":" + JsonString(detail) + "}";
  response.SetBody(kProblemMediaType, json);
  return response;
}

ServerResponse InternalErrorResponse(std::string_view detail) {
  return ProblemResponse(500, "Internal Server Error", detail);
}

// Headers the server writes itself; a handler's copies are ignored so that
// framing cannot be broken.
bool IsServerOwnedHeader(std::string_view name) {
  const std::string lower = dap::AsciiLowercase(name);
  return lower == "content-length" || lower == "transfer-encoding" || lower == "connection" ||
         lower == "date" || lower == "server" || lower == "keep-alive" || lower == "upgrade";
}

// Why a handler's answer cannot be sent as it is, or "" when it can.
std::string_view FindResponseFault(const ServerResponse& response) {
  if (response.status < 200 || response.status > 599) return "the handler set a bad status";
  for (const auto& [name, value] : response.headers) {
    if (!IsToken(name) || !IsFieldValue(value)) return "the handler set a malformed header";
  }
  return {};
}

std::string FormatEndpoint(const tcp::endpoint& endpoint) {
  const std::string address = endpoint.address().to_string();
  const std::string port = std::to_string(endpoint.port());
  return endpoint.address().is_v6() ? "[" + address + "]:" + port : address + ":" + port;
}

// What responders share with the server and may outlive it: whether the
// io_context may still be posted to, and how many requests are in flight.
struct Gate {
  std::mutex mutex;  // Held by a responder while it posts onto the io_context.
  bool closed = false;

  std::mutex in_flight_mutex;
  std::condition_variable in_flight_changed;
  int in_flight = 0;
};

// Counts one request from its dispatch to the handler until its answer is
// written or can no longer be: what Stop's grace period waits for.
class InFlight {
 public:
  explicit InFlight(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) {
    std::lock_guard lock(gate_->in_flight_mutex);
    ++gate_->in_flight;
  }
  ~InFlight() {
    {
      std::lock_guard lock(gate_->in_flight_mutex);
      --gate_->in_flight;
    }
    gate_->in_flight_changed.notify_all();
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::shared_ptr<Gate> gate_;
};

// What sessions need from the server. Sessions are destroyed with the
// io_context inside Stop, so a reference is safe.
struct ServerState {
  HttpServerOptions options;
  RequestHandler& handler;
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  std::atomic<bool> stopping{false};
  // Sessions alive (HttpServerOptions::max_connections bounds them).
  std::atomic<size_t> connections{0};
  std::optional<asio::thread_pool> workers;
  const void* owner = nullptr;  // The server, for tls_current_server.
};

class Session;

// The single answer to one request. Responder copies share it; the first
// call wins. If every copy is dropped unanswered (a handler bug), the client
// still gets a 500 rather than a connection that hangs until Stop.
class ResponseSlot {
 public:
  ResponseSlot(std::weak_ptr<Session> session, std::shared_ptr<Gate> gate,
               std::unique_ptr<InFlight> in_flight)
      : session_(std::move(session)), gate_(std::move(gate)), in_flight_(std::move(in_flight)) {}

  ~ResponseSlot() {
    if (!answered_.exchange(true)) {
      try {
        Post(InternalErrorResponse("the handler did not answer"));
      } catch (...) {
        // Nothing more can be done for this request; the connection closes at Stop or timeout.
      }
    }
  }
  ResponseSlot(const ResponseSlot&) = delete;
  ResponseSlot& operator=(const ResponseSlot&) = delete;

  void Deliver(ServerResponse response) {
    if (answered_.exchange(true)) return;
    Post(std::move(response));
  }

 private:
  void Post(ServerResponse response);

  std::weak_ptr<Session> session_;
  std::shared_ptr<Gate> gate_;
  std::unique_ptr<InFlight> in_flight_;
  std::atomic<bool> answered_{false};
};

// One connection. Every member function runs on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  // The caller has counted the session in `state.connections`.
  Session(tcp::socket socket, ServerState& state)
      : state_(state), stream_(std::move(socket)), hold_(stream_.get_executor()) {
    error_code ec;
    const tcp::endpoint peer = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_address_ = FormatEndpoint(peer);
  }
  ~Session() { state_.connections.fetch_sub(1); }

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadRequest(); });
  }

  auto executor() { return stream_.get_executor(); }

  // The handler's answer, back on the strand.
  void Answer(ServerResponse answer, std::unique_ptr<InFlight> in_flight) {
    hold_.cancel();
    in_flight_ = std::move(in_flight);
    if (std::string_view fault = FindResponseFault(answer); !fault.empty()) {
      answer = InternalErrorResponse(fault);
    }
    const bool keep_alive = request_keep_alive_ && !state_.stopping.load();
    Write(std::move(answer), request_version_,
          keep_alive ? AfterWrite::kReadNext : AfterWrite::kClose);
  }

 private:
  enum class AfterWrite { kReadNext, kClose, kLinger };
  using Parser = http::request_parser<internal::RequestBody>;

  void ReadRequest() {
    if (state_.stopping.load()) return Close();
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(static_cast<uint64_t>(state_.options.max_body_bytes));
    // One deadline for the whole request, headers and body: a client that
    // trickles bytes cannot extend it.
    stream_.expires_after(state_.options.request_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(error_code ec, size_t /*bytes*/) {
    if (ec) return OnReadError(ec);
    if (parser_->is_done()) return Dispatch();
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = shared_from_this()](error_code write_ec, size_t) {
                          if (write_ec) return;
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    // Beast reads as much as the buffer has room for (at least 512 bytes,
    // at most 64 KiB a call), and the buffer does not grow while a body
    // streams through it: without room made here, a first round's request
    // of megabytes took a system call every 512 bytes, 14 % of the helper's
    // time in that round.
    if (const auto length = parser_->content_length(); length && *length > buffer_.capacity()) {
      buffer_.reserve(static_cast<size_t>(std::min<uint64_t>(*length, kBodyReadBytes)));
    }
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->Dispatch();
                     });
  }

  void OnReadError(error_code ec) {
    if (ec == http::error::body_limit) {
      return WriteRefusal(
          413, "Content Too Large",
          "the request body exceeds " + std::to_string(state_.options.max_body_bytes) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return WriteRefusal(431, "Request Header Fields Too Large",
                          "the request header exceeds " + std::to_string(kHeaderLimit) + " bytes");
    }
    // The peer went away (end_of_stream, partial_message), timed out (the
    // stream is already closed) or the socket failed: nobody to answer.
    const bool parse_error =
        ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message;
    if (parse_error) return WriteRefusal(400, "Bad Request", "the request is not valid HTTP/1.1");
    Close();
  }

  void WriteRefusal(int status, std::string_view title, const std::string& detail) {
    Write(ProblemResponse(status, title, detail), 11, AfterWrite::kLinger);
  }

  void Dispatch() {
    http::request<internal::RequestBody> message = parser_->release();
    parser_.reset();
    request_version_ = message.version();
    request_keep_alive_ = message.keep_alive();

    ServerRequest request;
    request.method = std::string(message.method_string());
    const std::string_view target = message.target();
    const size_t question = target.find('?');
    request.path = std::string(target.substr(0, question));
    if (question != std::string_view::npos)
      request.query = std::string(target.substr(question + 1));
    for (const auto& field : message) {
      request.headers.emplace_back(dap::AsciiLowercase(field.name_string()),
                                   std::string(field.value()));
    }
    request.body = std::move(message.body());
    request.remote_address = remote_address_;

    // A handler may take as long as it needs; the deadline applies again to
    // writing the answer.
    stream_.expires_never();
    // No socket operation is pending while the handler runs, and responders
    // hold the session weakly, so a wait on the io_context keeps it alive
    // until the answer comes (or until Stop destroys the io_context).
    hold_.expires_at(asio::steady_timer::time_point::max());
    hold_.async_wait([self = shared_from_this()](error_code) {});
    auto slot = std::make_shared<ResponseSlot>(weak_from_this(), state_.gate,
                                               std::make_unique<InFlight>(state_.gate));
    Responder respond = [slot](ServerResponse response) { slot->Deliver(std::move(response)); };
    asio::post(*state_.workers, [&state = state_, request = std::move(request),
                                 respond = std::move(respond)]() mutable {
      ScopedServerThread scope(state.owner);
      try {
        state.handler.Handle(std::move(request), respond);
      } catch (...) {
        // The exception's text may quote request data, so it is not logged;
        // an answer already given stands (Deliver ignores a second one).
        try {
          respond(InternalErrorResponse("the request handler failed"));
        } catch (...) {
        }
      }
    });
  }

  void Write(ServerResponse answer, unsigned version, AfterWrite after) {
    response_ = {};
    response_.version(version);
    response_.result(static_cast<unsigned>(answer.status));
    for (auto& [name, value] : answer.headers) {
      if (!IsServerOwnedHeader(name)) response_.insert(name, value);
    }
    response_.set(http::field::server, state_.options.server_name);
    response_.set(http::field::date, HttpDate(std::chrono::system_clock::now()));
    if (answer.status != 204 && answer.status != 304) response_.body() = std::move(answer.body);
    response_.keep_alive(after == AfterWrite::kReadNext);
    response_.prepare_payload();
    stream_.expires_after(state_.options.request_timeout);
    http::async_write(
        stream_, response_,
        [self = shared_from_this(), after](error_code ec, size_t) { self->OnWrite(ec, after); });
  }

  void OnWrite(error_code ec, AfterWrite after) {
    in_flight_.reset();
    response_ = {};
    if (ec) return Close();
    switch (after) {
      case AfterWrite::kReadNext:
        return ReadRequest();
      case AfterWrite::kClose:
        return Close();
      case AfterWrite::kLinger:
        return Linger();
    }
  }

  void Close() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  void Linger() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return stream_.close();
    drain_.resize(16 * 1024);
    stream_.expires_after(
        std::min<std::chrono::milliseconds>(kMaxLinger, state_.options.request_timeout));
    Drain();
  }

  void Drain() {
    stream_.async_read_some(asio::buffer(drain_),
                            [self = shared_from_this()](error_code ec, size_t bytes) {
                              self->drained_ += bytes;
                              if (ec || self->drained_ > kMaxLingerBytes)
                                return self->stream_.close();
                              self->Drain();
                            });
  }

  ServerState& state_;
  beast::tcp_stream stream_;
  asio::steady_timer hold_;
  beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  http::response<http::vector_body<uint8_t>> response_;  // Alive while being written.
  std::string remote_address_;
  unsigned request_version_ = 11;
  bool request_keep_alive_ = false;
  std::unique_ptr<InFlight> in_flight_;
  std::vector<char> drain_;
  size_t drained_ = 0;
};

void ResponseSlot::Post(ServerResponse response) {
  // Declared before the lock so that, when the answer cannot be posted, the
  // count drops after the gate's mutex is released.
  std::unique_ptr<InFlight> in_flight = std::move(in_flight_);
  std::lock_guard lock(gate_->mutex);
  if (gate_->closed) return;
  std::shared_ptr<Session> session = session_.lock();
  if (!session) return;
  asio::post(session->executor(),
             [session, response = std::move(response), in_flight = std::move(in_flight)]() mutable {
               session->Answer(std::move(response), std::move(in_flight));
             });
}

struct HostPort {
  std::string host;
  uint16_t port = 0;
  bool bracketed = false;
};

std::unexpected<Error> BadListenAddress(std::string_view address, std::string_view why) {
  return MakeError(ErrorCode::kInvalidArgument, "bad listen address \"" + std::string(address) +
                                                    "\": " + std::string(why) +
                                                    " (expected host:port or [ipv6]:port)");
}

Result<HostPort> ParseListenAddress(std::string_view address) {
  if (address.empty()) return BadListenAddress(address, "empty");
  const bool visible = std::all_of(address.begin(), address.end(), [](char c) {
    return c > 0x20 && c < 0x7f && c != '/' && c != '@';
  });
  if (!visible) return BadListenAddress(address, "spaces, control characters, '/' or '@'");
  HostPort parsed;
  std::string_view port_text;
  if (address.starts_with('[')) {
    const size_t close = address.find(']');
    if (close == std::string_view::npos) return BadListenAddress(address, "unterminated '['");
    parsed.host = std::string(address.substr(1, close - 1));
    parsed.bracketed = true;
    const std::string_view after = address.substr(close + 1);
    if (!after.starts_with(':')) return BadListenAddress(address, "no port after ']'");
    port_text = after.substr(1);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) return BadListenAddress(address, "no port");
    parsed.host = std::string(address.substr(0, colon));
    if (parsed.host.find(':') != std::string::npos) {
      return BadListenAddress(address, "IPv6 literals need brackets");
    }
    port_text = address.substr(colon + 1);
  }
  if (parsed.host.empty()) return BadListenAddress(address, "no host");
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || port_text.size() > 5 || ec != std::errc() ||
      end != port_text.data() + port_text.size() || port > 65535) {
    return BadListenAddress(address, "bad port \"" + std::string(port_text) + "\"");
  }
  parsed.port = static_cast<uint16_t>(port);
  return parsed;
}

// The endpoints to try binding, IPv4 first so that "localhost" means the
// address most clients try first.
Result<std::vector<tcp::endpoint>> ResolveListenAddress(std::string_view address,
                                                        const HostPort& host_port) {
  error_code ec;
  const asio::ip::address literal = asio::ip::make_address(host_port.host, ec);
  if (!ec) {
    if (host_port.bracketed && !literal.is_v6()) {
      return BadListenAddress(address, "brackets hold an IPv6 literal only");
    }
    return std::vector<tcp::endpoint>{tcp::endpoint(literal, host_port.port)};
  }
  if (host_port.bracketed) return BadListenAddress(address, "bad IPv6 literal");
  asio::io_context io;
  tcp::resolver resolver(io);
  const auto results = resolver.resolve(host_port.host, std::to_string(host_port.port),
                                        tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return MakeError(ErrorCode::kIoError, "cannot resolve listen address \"" +
                                              std::string(address) +
                                              "\": " + (ec ? ec.message() : "no addresses"));
  }
  std::vector<tcp::endpoint> endpoints;
  for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  std::stable_partition(endpoints.begin(), endpoints.end(),
                        [](const tcp::endpoint& e) { return e.address().is_v4(); });
  return endpoints;
}

Result<void> CheckOptions(const HttpServerOptions& options) {
  auto bad = [](std::string why) {
    return MakeError(ErrorCode::kInvalidArgument, "HTTP server options: " + why);
  };
  if (options.network_threads < 1) return bad("network_threads must be at least 1");
  if (options.worker_threads < 1) return bad("worker_threads must be at least 1");
  if (options.max_body_bytes == 0) return bad("max_body_bytes must not be zero");
  if (options.max_connections == 0) return bad("max_connections must not be zero");
  if (options.request_timeout <= std::chrono::milliseconds::zero()) {
    return bad("request_timeout must be positive");
  }
  if (options.server_name.empty() || !IsFieldValue(options.server_name)) {
    return bad("server_name must be a non-empty header value");
  }
  return {};
}

class BeastServer final : public HttpServer {
 public:
  BeastServer(HttpServerOptions options, RequestHandler& handler)
      : state_{.options = std::move(options), .handler = handler} {
    state_.owner = this;
    io_.emplace(state_.options.network_threads);
  }

  ~BeastServer() override { Stop(std::chrono::milliseconds(5000)); }

  uint16_t port() const override { return port_; }

  Result<void> Listen(std::string_view address, const std::vector<tcp::endpoint>& endpoints) {
    acceptor_strand_.emplace(asio::make_strand(*io_));
    std::string failure;
    for (const tcp::endpoint& endpoint : endpoints) {
      tcp::acceptor acceptor(*acceptor_strand_);
      error_code ec;
      acceptor.open(endpoint.protocol(), ec);
      if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) acceptor.bind(endpoint, ec);
      if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
      const tcp::endpoint bound = ec ? tcp::endpoint() : acceptor.local_endpoint(ec);
      if (ec) {
        failure = FormatEndpoint(endpoint) + ": " + ec.message();
        continue;
      }
      port_ = bound.port();
      acceptor_.emplace(std::move(acceptor));
      retry_timer_.emplace(*acceptor_strand_);
      return {};
    }
    return MakeError(ErrorCode::kIoError,
                     "cannot listen on \"" + std::string(address) + "\": " + failure);
  }

  void Run() {
    state_.workers.emplace(static_cast<size_t>(state_.options.worker_threads));
    asio::dispatch(*acceptor_strand_, [this] { Accept(); });
    for (int i = 0; i < state_.options.network_threads; ++i) {
      network_threads_.emplace_back([this] { RunNetworkThread(); });
    }
  }

  void Stop(std::chrono::milliseconds grace) override {
    BeginStop();
    // On one of this server's threads the rest would join that very thread;
    // the owner's later Stop (or the destructor) finishes the job.
    if (tls_current_server == this) return;
    std::lock_guard stop_lock(stop_mutex_);
    if (stopped_) return;
    {
      std::unique_lock lock(state_.gate->in_flight_mutex);
      state_.gate->in_flight_changed.wait_for(lock, grace,
                                              [&] { return state_.gate->in_flight == 0; });
    }
    {
      std::lock_guard lock(state_.gate->mutex);
      state_.gate->closed = true;
    }
    if (io_) io_->stop();
    for (std::thread& thread : network_threads_) thread.join();
    network_threads_.clear();
    // Destroying the io_context destroys its pending handlers, and with them
    // every Session, whose sockets close. Nothing posts to it any more.
    retry_timer_.reset();
    acceptor_.reset();
    acceptor_strand_.reset();
    io_.reset();
    // Handlers still running finish; queued ones are dropped (their
    // responders find the gate closed).
    if (state_.workers) {
      state_.workers->stop();
      state_.workers->join();
      state_.workers.reset();
    }
    stopped_ = true;
  }

 private:
  void BeginStop() {
    if (state_.stopping.exchange(true)) return;
    // Under the gate's mutex: once the gate is closed, Stop may be resetting
    // the strand and the io_context.
    std::lock_guard lock(state_.gate->mutex);
    if (state_.gate->closed || !acceptor_strand_) return;
    asio::post(*acceptor_strand_, [this] {
      error_code ec;
      if (acceptor_) acceptor_->close(ec);
      if (retry_timer_) retry_timer_->cancel();
    });
  }

  void RunNetworkThread() {
    ScopedServerThread scope(this);
    // Session code does not throw by design; should Boost throw anyway, the
    // thread goes back to serving rather than taking the process down.
    for (;;) {
      try {
        io_->run();
        return;
      } catch (...) {
      }
    }
  }

  // Runs on the acceptor's strand.
  void Accept() {
    if (state_.stopping.load() || !acceptor_->is_open()) return;
    acceptor_->async_accept(
        asio::make_strand(*io_),
        asio::bind_executor(*acceptor_strand_, [this](error_code ec, tcp::socket socket) {
          OnAccept(ec, std::move(socket));
        }));
  }

  void OnAccept(error_code ec, tcp::socket socket) {
    if (state_.stopping.load() || ec == asio::error::operation_aborted) return;
    if (ec) {
      retry_timer_->expires_after(kAcceptRetryDelay);
      retry_timer_->async_wait([this](error_code wait_ec) {
        if (!wait_ec) Accept();
      });
      return;
    }
    error_code ignored;
    if (state_.connections.fetch_add(1) >= state_.options.max_connections) {
      // Over the limit: closed before a byte is read, so that open
      // connections (each may hold a request body) stay bounded.
      state_.connections.fetch_sub(1);
      socket.close(ignored);
      return Accept();
    }
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<Session>(std::move(socket), state_)->Start();
    Accept();
  }

  ServerState state_;
  std::optional<asio::io_context> io_;
  std::optional<asio::strand<asio::io_context::executor_type>> acceptor_strand_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::steady_timer> retry_timer_;
  std::vector<std::thread> network_threads_;
  uint16_t port_ = 0;
  std::mutex stop_mutex_;
  bool stopped_ = false;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                      RequestHandler& handler) {
  if (auto checked = CheckOptions(options); !checked) return std::unexpected(checked.error());
  auto host_port = ParseListenAddress(options.listen_address);
  if (!host_port) return std::unexpected(host_port.error());
  auto endpoints = ResolveListenAddress(options.listen_address, *host_port);
  if (!endpoints) return std::unexpected(endpoints.error());
  try {
    const std::string address = options.listen_address;
    auto server = std::make_unique<BeastServer>(std::move(options), handler);
    if (auto listening = server->Listen(address, *endpoints); !listening) {
      return std::unexpected(listening.error());
    }
    server->Run();
    return server;
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kInternal,
                     std::string("cannot start the HTTP server: ") + e.what());
  }
}

}  // namespace canopy::aggregator
