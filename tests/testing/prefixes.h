// Candidate prefixes for tests of heavy-hitters walks.
#ifndef CANOPY_TESTS_TESTING_PREFIXES_H_
#define CANOPY_TESTS_TESTING_PREFIXES_H_

#include <cstddef>
#include <utility>
#include <vector>

#include "idpf/bit_string.h"

namespace canopy::testing {

// The `len`-bit extensions of each prefix, in order (sorted when `prefixes`
// is): a walk's next candidates at `len` bits a round.
inline std::vector<idpf::BitString> Extensions(const std::vector<idpf::BitString>& prefixes,
                                               size_t len) {
  std::vector<idpf::BitString> out = prefixes;
  for (size_t i = 0; i < len; ++i) {
    std::vector<idpf::BitString> longer;
    longer.reserve(2 * out.size());
    for (const idpf::BitString& prefix : out) {
      longer.push_back(prefix.Extended(false));
      longer.push_back(prefix.Extended(true));
    }
    out = std::move(longer);
  }
  return out;
}

}  // namespace canopy::testing

#endif  // CANOPY_TESTS_TESTING_PREFIXES_H_
