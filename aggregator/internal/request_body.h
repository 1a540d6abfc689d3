// The body type of the HTTP server's requests: Beast's vector_body, but
// with memory that follows the bytes received rather than the bytes
// announced. vector_body reserves the whole Content-Length as soon as the
// header is read, so a request that announces the largest body allowed and
// then sends nothing holds that much memory until it times out; several
// such connections hold several times that. Here the body reserves at most
// kReserveAhead before its bytes arrive, then grows as they do (doubling,
// never past the announced length), so memory is spent only on what a
// client actually sent: at a cost of about one copy of a large body.
//
// Included only by the server's translation unit and its test (it brings
// Beast's HTTP headers).
#ifndef CANOPY_AGGREGATOR_INTERNAL_REQUEST_BODY_H_
#define CANOPY_AGGREGATOR_INTERNAL_REQUEST_BODY_H_

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional.hpp>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace canopy::aggregator::internal {

struct RequestBody {
  using value_type = std::vector<uint8_t>;

  // Memory reserved for a body before any of it has arrived.
  static constexpr size_t kReserveAhead = size_t{1} << 20;

  static std::uint64_t size(const value_type& body) { return body.size(); }

  class reader {
   public:
    template <bool kIsRequest, class Fields>
    reader(boost::beast::http::header<kIsRequest, Fields>& /*header*/, value_type& body)
        : body_(body) {}

    void init(const boost::optional<std::uint64_t>& length, boost::beast::error_code& ec) {
      ec = {};
      if (!length) return;
      if (*length > body_.max_size()) {
        ec = boost::beast::http::error::buffer_overflow;
        return;
      }
      announced_ = static_cast<size_t>(*length);
      body_.reserve(std::min(announced_, kReserveAhead));
    }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, boost::beast::error_code& ec) {
      const size_t n = boost::asio::buffer_size(buffers);
      const size_t size = body_.size();
      if (n > body_.max_size() - size) {
        ec = boost::beast::http::error::buffer_overflow;
        return 0;
      }
      if (size + n > body_.capacity()) {
        // Doubling keeps the copies to about one of the body; the announced
        // length, once reached, is reserved exactly.
        const size_t wanted = std::max(size + n, 2 * body_.capacity());
        body_.reserve(announced_ >= size + n ? std::min(wanted, announced_) : wanted);
      }
      body_.resize(size + n);
      ec = {};
      return boost::asio::buffer_copy(boost::asio::buffer(body_.data() + size, n), buffers);
    }

    void finish(boost::beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
    size_t announced_ = 0;  // The Content-Length; 0 when chunked.
  };
};

}  // namespace canopy::aggregator::internal

#endif  // CANOPY_AGGREGATOR_INTERNAL_REQUEST_BODY_H_
