// The fully linear proof (FLP) of BBCGGI19 as VDAF draft-20 specifies it
// (section "FLP Specification"), with draft-20's Lagrange-basis polynomials:
// validity circuits, their gadgets, and prove / query / decide.
//
// A validity circuit (Circuit) evaluates a measurement to a vector of field
// elements that is all zero exactly when the measurement is valid. Its
// non-affine work happens in gadgets (Gadget), each called a fixed number of
// times. The prover records the inputs of every gadget call as "wire
// polynomials" and proves, with one "gadget polynomial" per gadget, what the
// gadget returned; the verifiers, holding only additive shares of the
// measurement and of the proof, evaluate the circuit linearly and check the
// gadget polynomials at a random point.
//
// Polynomials are held as their values at the roots of unity (the Lagrange
// basis): wire polynomials at the p-th roots, p = next_power_of_2(1 + calls),
// gadget polynomials at the n-th roots, n = next_power_of_2(gadget_poly_len).
// The prover converts with NTTs (O(n log n)); the verifier evaluates in the
// Lagrange basis directly (O(n), no inversions).
//
// Instantiated for Field64 and Field128, the NTT-friendly fields.
#ifndef CANOPY_POPLAR_FLP_H_
#define CANOPY_POPLAR_FLP_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "crypto/error.h"
#include "crypto/field.h"
#include "poplar/internal/ntt.h"
#include "poplar/vdaf.h"

namespace canopy::poplar::flp {

// The next power of two >= value (value >= 1).
size_t NextPowerOfTwo(size_t value);

// A gadget of a validity circuit with the tables its proofs need. The draft
// defines two kinds, and these are all Prio3 uses:
//   ParallelSum(Mul(), count): sum over i < count of x[2i] * x[2i+1]; arity
//     2 * count, degree 2. Mul() itself is the case count = 1.
//   PolyEval(p): p(x[0]) for a fixed polynomial p; arity 1, degree deg(p).
// A gadget knows how many times its circuit calls it, since that fixes the
// sizes of its polynomials. Copyable; immutable once built.
template <typename F>
class Gadget {
 public:
  enum class Kind { kParallelSumMul, kPolyEval };

  // The most gadget calls supported: the wire polynomials then have 2^20
  // values and a proof at least 2^21 elements.
  static constexpr size_t kMaxCalls = (size_t{1} << 20) - 1;

  // ParallelSum(Mul(), count), called `calls` times. Errors
  // (kInvalidArgument): count is 0 or above 2^40, calls is 0 or exceeds
  // kMaxCalls.
  static Result<Gadget> ParallelSumMul(size_t count, size_t calls);

  // PolyEval with `coefficients` (lowest degree first; trailing zeros are
  // dropped as the draft does), called `calls` times. Errors
  // (kInvalidArgument): a polynomial of degree < 1 or > 63, calls is 0 or
  // exceeds kMaxCalls, or a gadget polynomial too large (more than 2^22
  // values, or a verifier extension table of more than 2^22 elements).
  static Result<Gadget> PolyEval(std::vector<int64_t> coefficients, size_t calls);

  Kind kind() const { return kind_; }
  size_t arity() const { return arity_; }
  size_t degree() const { return degree_; }
  size_t calls() const { return calls_; }
  // p: values of each wire polynomial (its seed, then one per call, then zeros).
  size_t wire_poly_len() const { return wire_poly_len_; }
  // The draft's gadget_poly_len: how many values of the gadget polynomial a
  // proof carries, degree * (p - 1) + 1.
  size_t gadget_poly_len() const { return gadget_poly_len_; }
  // n = next_power_of_2(gadget_poly_len): values the verifier extends to.
  size_t eval_len() const { return eval_len_; }

  // The gadget on concrete inputs (arity() of them).
  F Eval(std::span<const F> inputs) const;

  // Prover: the first gadget_poly_len() values of the gadget polynomial,
  // from the wire polynomials (arity() rows of wire_poly_len() values, row
  // j holding wire j), written to `out`.
  void GadgetPoly(std::span<const F> wires, std::span<F> out) const;

  // Verifier: extends the gadget_poly_len() values of a proof to all
  // eval_len() values of the polynomial of degree < gadget_poly_len()
  // through them (the draft's extend_values_to_power_of_2).
  void ExtendGadgetPoly(std::span<const F> proof_values, std::span<F> out) const;

  // Roots of unity and roots / size, for Lagrange-basis evaluation.
  std::span<const F> wire_nodes() const { return wire_nodes_; }
  std::span<const F> wire_scaled_nodes() const { return wire_scaled_nodes_; }
  std::span<const F> poly_nodes() const { return poly_nodes_; }
  std::span<const F> poly_scaled_nodes() const { return poly_scaled_nodes_; }

 private:
  Gadget(Kind kind, size_t arity, size_t degree, size_t calls, std::vector<F> coefficients);

  Kind kind_;
  size_t arity_;
  size_t degree_;
  size_t calls_;
  std::vector<F> coefficients_;  // PolyEval only.
  size_t wire_poly_len_;
  size_t gadget_poly_len_;
  size_t eval_len_;
  std::vector<F> wire_nodes_;
  std::vector<F> wire_scaled_nodes_;
  std::vector<F> poly_nodes_;
  std::vector<F> poly_scaled_nodes_;
  // Row m - gadget_poly_len, for each missing index m in
  // [gadget_poly_len, eval_len): the Lagrange coefficients that give value m
  // from the known values. One row for every gadget Prio3 defines.
  std::vector<F> extension_;
  // Prover tables.
  std::shared_ptr<const internal::Ntt<F>> wire_ntt_;  // Size p.
  std::shared_ptr<const internal::Ntt<F>> poly_ntt_;  // Size n (PolyEval).
  std::vector<F> coset_scale_;  // s^j / p, s a primitive 2p-th root (ParallelSumMul).
};

// How a circuit calls its gadgets. The prover's implementation evaluates the
// gadget and records the inputs; the verifier's records them (linearly) and
// answers from the gadget polynomial in the proof.
template <typename F>
class GadgetCalls {
 public:
  virtual ~GadgetCalls() = default;

  // The next call of gadget `index` on `inputs` (arity() of them); returns
  // its output.
  virtual F Call(size_t index, std::span<const F> inputs) = 0;

  // The verifier only ever needs a weighted sum of each wire's inputs over
  // the calls, with a weight that depends on the call. A circuit that can
  // produce its inputs already multiplied by that weight at no extra cost
  // asks for it here, and passes the products to CallScaled: then
  // CallScaled(i, weight * inputs) has the effect of Call(i, inputs). The
  // prover's weight is 1. CallScaled may take fewer than arity() inputs: the
  // missing trailing ones count as zero.
  virtual F NextCallWeight(size_t index) const = 0;
  virtual F CallScaled(size_t index, std::span<const F> scaled_inputs) = 0;

  // The verifier's running wire checks of gadget `index` (arity() of them),
  // or an empty span for the prover. Where it is not empty, a circuit may
  // add weighted inputs to them directly, in any grouping (the checks are
  // linear): for example one term per wire for a constant input shared by
  // every call, instead of one per call.
  virtual std::span<F> WireChecks(size_t index) = 0;
};

// A validity circuit with its measurement encoding (the draft's Valid).
template <typename F>
class Circuit {
 public:
  virtual ~Circuit() = default;

  size_t meas_len() const { return meas_len_; }
  size_t joint_rand_len() const { return joint_rand_len_; }
  size_t output_len() const { return output_len_; }
  size_t eval_output_len() const { return eval_output_len_; }
  const std::vector<Gadget<F>>& gadgets() const { return gadgets_; }

  // Encodes a measurement. Errors (kInvalidArgument): a measurement of the
  // wrong kind or out of range; the message names the bound.
  virtual Result<std::vector<F>> Encode(const Measurement& measurement) const = 0;

  // Evaluates the circuit on a measurement (or a share of one: the circuit
  // is affine in `meas` apart from its gadget calls) into `out`
  // (eval_output_len() elements). Every gadget must be called exactly its
  // calls() times. The draft passes num_shares; it only ever enters as its
  // inverse, so callers pass that (1 for the prover).
  virtual void Eval(std::span<const F> meas, std::span<const F> joint_rand, F shares_inverse,
                    GadgetCalls<F>& gadgets, std::span<F> out) const = 0;

  // The output share of a measurement share (output_len() elements).
  virtual void Truncate(std::span<const F> meas, std::span<F> out) const = 0;

 protected:
  Circuit(size_t meas_len, size_t joint_rand_len, size_t output_len, size_t eval_output_len,
          std::vector<Gadget<F>> gadgets)
      : meas_len_(meas_len),
        joint_rand_len_(joint_rand_len),
        output_len_(output_len),
        eval_output_len_(eval_output_len),
        gadgets_(std::move(gadgets)) {}

 private:
  size_t meas_len_;
  size_t joint_rand_len_;
  size_t output_len_;
  size_t eval_output_len_;
  std::vector<Gadget<F>> gadgets_;
};

// The FLP for one circuit: the draft's FlpBBCGGI19.
template <typename F>
class Flp {
 public:
  explicit Flp(std::shared_ptr<const Circuit<F>> circuit);

  const Circuit<F>& circuit() const { return *circuit_; }
  size_t meas_len() const { return circuit_->meas_len(); }
  size_t output_len() const { return circuit_->output_len(); }
  size_t joint_rand_len() const { return circuit_->joint_rand_len(); }
  size_t prove_rand_len() const { return prove_rand_len_; }
  size_t query_rand_len() const { return query_rand_len_; }
  size_t proof_len() const { return proof_len_; }
  size_t verifier_len() const { return verifier_len_; }

  // The draft's prove: writes proof_len() elements to `proof`. The spans
  // must have the lengths above.
  void Prove(std::span<const F> meas, std::span<const F> prove_rand, std::span<const F> joint_rand,
             std::span<F> proof) const;

  // The draft's query on shares of a measurement and proof: writes
  // verifier_len() elements to `verifier`. Errors (kVerifyFailed): a query
  // point is a root of unity, where the draft aborts (probability about
  // p / |F|); (kInternal): a circuit that miscounts its gadget calls.
  Result<void> Query(std::span<const F> meas, std::span<const F> proof,
                     std::span<const F> query_rand, std::span<const F> joint_rand, F shares_inverse,
                     std::span<F> verifier) const;

  // Elements of scratch a query needs (see Query below).
  size_t query_scratch_len() const { return query_scratch_len_; }

  // Query with caller-provided scratch of at least query_scratch_len()
  // elements, so that a caller verifying many reports allocates once. The
  // scratch is left holding values derived from the proof share: the caller
  // wipes it when done. Results and errors as Query's.
  Result<void> Query(std::span<const F> meas, std::span<const F> proof,
                     std::span<const F> query_rand, std::span<const F> joint_rand, F shares_inverse,
                     std::span<F> verifier, std::span<F> scratch) const;

  // The draft's decide on a whole verifier (the sum of all shares).
  bool Decide(std::span<const F> verifier) const;

 private:
  std::shared_ptr<const Circuit<F>> circuit_;
  size_t prove_rand_len_ = 0;
  size_t query_rand_len_ = 0;
  size_t proof_len_ = 0;
  size_t verifier_len_ = 0;
  size_t query_scratch_len_ = 0;
};

extern template class Gadget<crypto::Field64>;
extern template class Gadget<crypto::Field128>;
extern template class Flp<crypto::Field64>;
extern template class Flp<crypto::Field128>;

}  // namespace canopy::poplar::flp

#endif  // CANOPY_POPLAR_FLP_H_
