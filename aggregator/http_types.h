// The aggregator's view of HTTP: plain request and response values and the
// handler interface the server calls. Nothing here depends on Boost, so the
// DAP endpoints can be written and tested without sockets; the Beast server
// (aggregator/http_server.h) converts to and from these types.
#ifndef CANOPY_AGGREGATOR_HTTP_TYPES_H_
#define CANOPY_AGGREGATOR_HTTP_TYPES_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace canopy::aggregator {

// One request as the server received it. The body is complete (the server
// refuses bodies above its limit before calling a handler).
struct ServerRequest {
  std::string method;  // "GET", "POST", "DELETE", ...
  std::string path;    // The target without its query, percent-decoding not applied.
  std::string query;   // What follows '?', without it; empty when none.
  // Header names lower-cased, in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<uint8_t> body;
  std::string remote_address;  // "ip:port" of the peer, for logs.

  // The first header named `name` (lower case), or "" when absent.
  std::string_view Header(std::string_view name) const;
};

// One response. The server adds Content-Length, Date and Server.
struct ServerResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<uint8_t> body;

  ServerResponse& SetHeader(std::string name, std::string value);
  ServerResponse& SetBody(std::string_view content_type, std::vector<uint8_t> body);
  ServerResponse& SetBody(std::string_view content_type, std::string_view text);
};

// Called exactly once with the response to send. May be called from any
// thread, after the handler has returned.
using Responder = std::function<void(ServerResponse)>;

// What the server calls for every complete request. Handle runs on a worker
// thread (never on a network thread), so it may block on the datastore or do
// VDAF work; it must call `respond` exactly once, before or after returning.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  virtual void Handle(ServerRequest request, Responder respond) = 0;
};

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_HTTP_TYPES_H_
