// The synchronous HTTP/1.1 client that the DAP parties share: the client
// (upload), the leader (to the helper) and the collector (to the leader).
//
// Plain HTTP over TCP only, for now: https URLs are refused (kUnsupported).
// Connections are kept alive and reused per host:port; a pooled connection
// that the server has closed is replaced transparently. Each request has a
// connect timeout and a total timeout per attempt. Connection failures,
// timeouts and 5xx answers are retried with exponential back-off and jitter,
// up to a maximum number of attempts, unless the caller marks the request
// non-idempotent (DAP's requests are all idempotent, so retrying is the
// default). Response bodies beyond a size limit are refused.
//
// The implementation (Boost.Beast on Boost.Asio) lives in http_client.cc only,
// so that this header stays light.
#ifndef CANOPY_DAP_HTTP_CLIENT_H_
#define CANOPY_DAP_HTTP_CLIENT_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/error.h"

namespace canopy::dap {

// A parsed "http://host[:port][/path][?query]" URL.
struct HttpUrl {
  std::string host;  // A name or an IP literal, without IPv6 brackets.
  uint16_t port = 80;
  std::string target;  // The path and query, "/" at least.

  // "host:port", with brackets around an IPv6 literal: the pool key and the
  // Host header.
  std::string Authority() const;

  // Parses an absolute http URL. Errors: kUnsupported for https (TLS is not
  // implemented yet); kInvalidArgument, naming the URL, for anything else
  // that is not "http://host[:port][/path][?query]" (another scheme, no
  // host, a bad port, user information, a fragment, spaces or control
  // characters).
  static Result<HttpUrl> Parse(std::string_view url);
};

// `base` followed by `path`, with exactly one '/' between them, as DAP joins
// "{leader}" and "tasks/{task-id}/reports" (a base URL may have a path
// prefix, with or without a trailing slash).
std::string JoinUrl(std::string_view base, std::string_view path);

// `text` with its ASCII letters in lower case (header names, URL schemes and
// hosts, and whatever else HTTP compares without case).
std::string AsciiLowercase(std::string_view text);

// True when the media type `content_type` (as received, for example
// "application/ppm-dap; message=upload-errors; version=19") is `expected`:
// the same type/subtype (case-insensitive) and every parameter of `expected`
// present with the same value. Extra parameters are allowed.
bool MediaTypeMatches(std::string_view content_type, std::string_view expected);

enum class HttpMethod { kGet, kPost, kPut, kDelete };

// The name on the wire: "GET", "POST", ...
std::string_view HttpMethodName(HttpMethod method);

struct HttpClientOptions {
  // Resolving the host and opening the TCP connection.
  std::chrono::milliseconds connect_timeout{5000};
  // One attempt, from connecting to the last byte of the response.
  std::chrono::milliseconds request_timeout{30000};
  // Attempts per request, the first included (at least 1).
  int max_attempts = 4;
  // The back-off before retry n (n = 1, 2, ...) is drawn uniformly from
  // [d/2, d] with d = min(max_backoff, initial_backoff * 2^(n-1)). A
  // Retry-After in seconds on a 5xx answer raises d, up to max_backoff.
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
  // Larger response bodies are refused (kIoError) and not retried.
  size_t max_response_bytes = size_t{64} << 20;
  // Idle connections kept per host:port.
  size_t max_idle_connections_per_host = 4;
  std::string user_agent = "canopy/0.1";
};

struct HttpRequest {
  HttpMethod method = HttpMethod::kGet;
  std::string_view url;
  // Content-Type; no header when empty.
  std::string_view content_type;
  std::span<const uint8_t> body;
  // Accept; no header when empty.
  std::string_view accept;
  // Sent as "Authorization: Bearer <token>" when not empty.
  std::string_view bearer_token;
  // False forbids every retry (and every resend on a fresh connection after
  // a stale one failed): the request is sent at most once.
  bool idempotent = true;
};

struct HttpResponse {
  int status = 0;
  std::string content_type;  // Empty when the header is missing.
  std::vector<uint8_t> body;
  std::string location;                 // Empty when missing.
  std::optional<uint64_t> retry_after;  // Seconds; only the delta form is parsed.
  int attempts = 0;                     // How many attempts it took.
};

// A synchronous HTTP/1.1 client. Send may be called from several threads at
// once: each call uses its own connection, taken from or returned to a
// shared pool. Move-only.
class HttpClient {
 public:
  // Errors (kInvalidArgument): max_attempts < 1, a zero timeout or a zero
  // response limit.
  static Result<HttpClient> Create(HttpClientOptions options = {});

  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  ~HttpClient();

  // Sends `request` and returns the response, whatever its status below 500
  // (1xx interim answers are skipped; redirects are not followed). A 5xx
  // answer is retried like a connection failure, and is an error when it is
  // the last permitted attempt's. Errors:
  //   kInvalidArgument: a malformed URL (named), or a bearer token or media
  //     type with characters a header cannot carry;
  //   kUnsupported: an https URL;
  //   kIoError: the network failed (resolve, connect, send, receive,
  //     timeout) or the server answered 5xx on every permitted attempt (the
  //     message names the method, URL, the attempts, what happened last and,
  //     for a problem document, its type and detail), or the response is
  //     larger than max_response_bytes or is not valid HTTP;
  //   kInternal: an unexpected failure inside Boost.
  Result<HttpResponse> Send(const HttpRequest& request);

  // Shorthand for Send with an idempotent request.
  Result<HttpResponse> Send(HttpMethod method, std::string_view url,
                            std::string_view content_type = {}, std::span<const uint8_t> body = {},
                            std::string_view bearer_token = {});

  // Closes every idle connection.
  void CloseIdleConnections();

  const HttpClientOptions& options() const;

 private:
  class Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace canopy::dap

#endif  // CANOPY_DAP_HTTP_CLIENT_H_
