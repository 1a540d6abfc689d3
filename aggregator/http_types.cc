#include "aggregator/http_types.h"

#include <string>
#include <utility>

namespace canopy::aggregator {

std::string_view ServerRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

ServerResponse& ServerResponse::SetHeader(std::string name, std::string value) {
  for (auto& [key, existing] : headers) {
    if (key == name) {
      existing = std::move(value);
      return *this;
    }
  }
  headers.emplace_back(std::move(name), std::move(value));
  return *this;
}

ServerResponse& ServerResponse::SetBody(std::string_view content_type,
                                        std::vector<uint8_t> new_body) {
  SetHeader("Content-Type", std::string(content_type));
  body = std::move(new_body);
  return *this;
}

ServerResponse& ServerResponse::SetBody(std::string_view content_type, std::string_view text) {
  return SetBody(content_type, std::vector<uint8_t>(text.begin(), text.end()));
}

}  // namespace canopy::aggregator
