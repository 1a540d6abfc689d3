// Candidate prefixes for tests of heavy-hitters walks.
#ifndef CANOPY_TESTS_TESTING_PREFIXES_H_
#define CANOPY_TESTS_TESTING_PREFIXES_H_

#include <cstddef>
#include <vector>

#include "idpf/bit_string.h"

namespace canopy::testing {

// The `len`-bit extensions of each prefix, in order (sorted when `prefixes`
// is): a walk's next candidates at `len` bits a round.
inline std::vector<idpf::BitString> Extensions(const std::vector<idpf::BitString>& prefixes,
                                               size_t len) {
  std::vector<idpf::BitString> out;
  for (const idpf::BitString& prefix : prefixes) idpf::AppendExtensions(prefix, len, out);
  return out;
}

}  // namespace canopy::testing

#endif  // CANOPY_TESTS_TESTING_PREFIXES_H_
