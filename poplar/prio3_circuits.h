// The validity circuits of Prio3's variants (VDAF draft-20, section
// "Variants"): Count, Sum, SumVec, Histogram, MultihotCountVec, and the
// test-only HigherDegree circuit of the draft's test vectors.
//
// Each circuit also encodes measurements (refusing those out of range, with
// the bound in the message) and truncates measurement shares to output
// shares. Internal to poplar/: Prio3 (poplar/prio3.h) is the public API.
#ifndef CANOPY_POPLAR_PRIO3_CIRCUITS_H_
#define CANOPY_POPLAR_PRIO3_CIRCUITS_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "crypto/error.h"
#include "crypto/field128.h"
#include "crypto/field64.h"
#include "poplar/flp.h"

namespace canopy::poplar::prio3 {

template <typename F>
using CircuitPtr = std::shared_ptr<const flp::Circuit<F>>;

// The most elements an encoded measurement may have (2^26), so that sizes
// never overflow; gadget call counts have their own cap (flp::Gadget).
inline constexpr size_t kMaxMeasLen = size_t{1} << 26;

// Count: the measurement is 0 or 1; the circuit checks m^2 - m = 0 with one
// Mul gadget.
CircuitPtr<crypto::Field64> MakeCountCircuit();

// Sum: the measurement is in [0, max_measurement], encoded as
// bit_length(max_measurement) weighted bits, each checked by a PolyEval
// gadget x^2 - x. Errors (kInvalidArgument): max_measurement is 0 or at
// least 2^63 (the field must hold 2^bits).
Result<CircuitPtr<crypto::Field64>> MakeSumCircuit(uint64_t max_measurement);

// SumVec: `length` elements, each in [0, max_measurement], each encoded as
// Sum encodes it; bits are range-checked with a ParallelSum(Mul,
// chunk_length) gadget under joint randomness. Errors (kInvalidArgument):
// length, max_measurement or chunk_length is 0, 2^bits does not fit below
// the field's modulus, chunk_length exceeds the encoded length
// length * bits, or the encoded measurement is too large.
template <typename F>
Result<CircuitPtr<F>> MakeSumVecCircuit(size_t length, uint64_t max_measurement,
                                        size_t chunk_length);

// Histogram: a bucket index below `length`, encoded one-hot. Errors
// (kInvalidArgument): length or chunk_length is 0, chunk_length > length,
// or length is too large.
Result<CircuitPtr<crypto::Field128>> MakeHistogramCircuit(size_t length, size_t chunk_length);

// MultihotCountVec: `length` zeros and ones, at most max_weight of them
// ones, encoded as the bits and then the weight as Sum encodes it. Errors
// (kInvalidArgument): length or chunk_length is 0, max_weight is not in
// [1, length], chunk_length exceeds the encoded length, or length is too
// large.
Result<CircuitPtr<crypto::Field128>> MakeMultihotCountVecCircuit(size_t length, size_t max_weight,
                                                                 size_t chunk_length);

// HigherDegree (test only, from the draft's test vectors): the measurement
// is 0, 1 or 2, checked by a PolyEval gadget x^3 - 3x^2 + 2x.
CircuitPtr<crypto::Field64> MakeHigherDegreeCircuit();

extern template Result<CircuitPtr<crypto::Field64>> MakeSumVecCircuit<crypto::Field64>(size_t,
                                                                                       uint64_t,
                                                                                       size_t);
extern template Result<CircuitPtr<crypto::Field128>> MakeSumVecCircuit<crypto::Field128>(size_t,
                                                                                         uint64_t,
                                                                                         size_t);

}  // namespace canopy::poplar::prio3

#endif  // CANOPY_POPLAR_PRIO3_CIRCUITS_H_
