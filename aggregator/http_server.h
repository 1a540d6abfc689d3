// The aggregator's HTTP/1.1 server: Boost.Beast on a Boost.Asio io_context
// pool, handing every complete request to a RequestHandler on a separate
// worker pool so that VDAF work and datastore waits never stall the network
// threads (DESIGN.md, "Concurrency").
//
// What the server enforces before a handler sees a request:
//   - a body limit: a declared or streamed body above `max_body_bytes` gets
//     413 with a problem document and the connection is closed;
//   - header limits (Beast's defaults, 8 KiB of header fields);
//   - a per-request deadline: a client that takes longer than
//     `request_timeout` to send a request (or to read the answer) is
//     disconnected, so slow clients cannot hold connections forever;
//   - malformed HTTP gets 400 and the connection closed.
// Keep-alive is supported; HTTP pipelining is served in order.
//
// The implementation lives in http_server.cc only (the one Beast translation
// unit of the server), so this header stays light.
#ifndef CANOPY_AGGREGATOR_HTTP_SERVER_H_
#define CANOPY_AGGREGATOR_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "aggregator/http_types.h"
#include "crypto/error.h"

namespace canopy::aggregator {

struct HttpServerOptions {
  // "host:port"; "127.0.0.1:0" picks a free port (see HttpServer::port()).
  // IPv6 literals in brackets: "[::1]:8080".
  std::string listen_address = "127.0.0.1:0";
  size_t max_body_bytes = size_t{32} << 20;
  // Connections open at once; one accepted beyond them is closed at once.
  size_t max_connections = 1024;
  std::chrono::milliseconds request_timeout{30000};
  // Threads running the io_context (accepting, reading, writing).
  int network_threads = 1;
  // Threads running RequestHandler::Handle.
  int worker_threads = 2;
  // Value of the Server header.
  std::string server_name = "canopy";
};

// A running server. Start binds and listens; the destructor (or Stop) stops
// accepting, lets requests being handled finish (up to a grace period) and
// joins every thread.
class HttpServer {
 public:
  // Binds `options.listen_address` and starts serving with `handler`, which
  // must outlive the server. Errors: kInvalidArgument for a malformed listen
  // address or nonsensical options (zero threads, zero limit), kIoError when
  // the address cannot be resolved or bound (the message names it).
  static Result<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                   RequestHandler& handler);

  virtual ~HttpServer() = default;

  // The bound TCP port (useful with port 0).
  virtual uint16_t port() const = 0;

  // Stops accepting new connections, waits up to `grace` for requests being
  // handled to be answered, then closes every connection and joins the
  // threads. Idempotent; called by the destructor.
  virtual void Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000)) = 0;
};

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_HTTP_SERVER_H_
