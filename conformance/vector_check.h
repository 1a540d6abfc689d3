// The conformance checker: runs a test vector in the official JSON format of
// VDAF draft-20 (section "Test Vectors") through Canopy and reports, value by
// value, whether Canopy reproduces it byte for byte.
//
// It knows the VDAF vectors (Poplar1 and, as they land, the Prio3 variants),
// the XOF vectors (XofTurboShake128, XofFixedKeyAes128) and the IDPF
// key-generation vector (IdpfBBCGGI21). The kind of a file is the part of its
// name before the first '_', as in the official file names
// ("Poplar1_bad_corr_inner.json" is a Poplar1 vector), unless the caller names
// it. Vectors from any other implementation in the same format can be checked.
#ifndef CANOPY_CONFORMANCE_VECTOR_CHECK_H_
#define CANOPY_CONFORMANCE_VECTOR_CHECK_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace canopy::conformance {

// The outcome of checking one vector file.
struct VectorReport {
  enum class Status {
    kPassed,       // Every value was reproduced and every negative step refused.
    kFailed,       // At least one value differed (see `mismatches`).
    kUnsupported,  // A kind of vector Canopy does not implement.
    kMalformed,    // Not a readable vector: bad JSON, missing or ill-typed fields.
  };
  Status status = Status::kMalformed;
  std::string kind;                     // For example "Poplar1".
  std::string description;              // For example "Poplar1(bits=4)".
  size_t checks = 0;                    // Values compared and refusals confirmed.
  std::vector<std::string> mismatches;  // One line per failed check.
  std::string error;                    // Why the file is unsupported or malformed.
};

// The kind named by a vector file name: its base name up to the first '_'.
std::string KindFromFileName(std::string_view file_name);

// Checks one vector. `kind` is as KindFromFileName gives it.
VectorReport CheckVector(std::string_view kind, std::string_view json_text);

// The kinds CheckVector supports.
std::vector<std::string> SupportedKinds();

// "passed", "FAILED", "unsupported" or "malformed".
std::string_view StatusName(VectorReport::Status status);

}  // namespace canopy::conformance

#endif  // CANOPY_CONFORMANCE_VECTOR_CHECK_H_
