#include "poplar/flp.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <utility>

#include "crypto/secure_wipe.h"

namespace canopy::poplar::flp {

using crypto::WipeOnExit;

size_t NextPowerOfTwo(size_t value) { return std::bit_ceil(std::max<size_t>(value, 1)); }

namespace {

std::string Str(size_t value) { return std::to_string(value); }

// values[i] <- 1 / values[i] for non-zero values, with one inversion
// (Montgomery's trick). Construction-time only.
template <typename F>
void BatchInvert(std::span<F> values) {
  if (values.empty()) return;
  std::vector<F> prefix(values.size());
  F product = F::One();
  for (size_t i = 0; i < values.size(); ++i) {
    prefix[i] = product;
    product *= values[i];
  }
  F inverse = product.Inverse();
  for (size_t i = values.size(); i-- > 0;) {
    const F value = values[i];
    values[i] = inverse * prefix[i];
    inverse *= value;
  }
}

// x^(2^log2_exponent).
template <typename F>
F PowerOfTwoPower(F x, int log2_exponent) {
  for (int i = 0; i < log2_exponent; ++i) x *= x;
  return x;
}

}  // namespace

// ---- Gadget ------------------------------------------------------------------

template <typename F>
Result<Gadget<F>> Gadget<F>::ParallelSumMul(size_t count, size_t calls) {
  if (count == 0 || count > (size_t{1} << 40)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a ParallelSum gadget needs a count in [1, 2^40], got " + Str(count));
  }
  if (calls == 0 || calls > kMaxCalls) {
    return MakeError(ErrorCode::kInvalidArgument, "a gadget must be called 1 to " + Str(kMaxCalls) +
                                                      " times, got " + Str(calls));
  }
  return Gadget(Kind::kParallelSumMul, 2 * count, 2, calls, {});
}

template <typename F>
Result<Gadget<F>> Gadget<F>::PolyEval(std::vector<int64_t> coefficients, size_t calls) {
  while (!coefficients.empty() && coefficients.back() == 0) coefficients.pop_back();
  if (coefficients.size() < 2 || coefficients.size() > 64) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a PolyEval gadget needs a polynomial of degree 1 to 63");
  }
  if (calls == 0 || calls > kMaxCalls) {
    return MakeError(ErrorCode::kInvalidArgument, "a gadget must be called 1 to " + Str(kMaxCalls) +
                                                      " times, got " + Str(calls));
  }
  const size_t degree = coefficients.size() - 1;
  const size_t wire_len = NextPowerOfTwo(1 + calls);
  const size_t poly_len = degree * (wire_len - 1) + 1;
  const size_t eval_len = NextPowerOfTwo(poly_len);
  // The verifier's extension table has (eval_len - poly_len) * poly_len
  // elements; degree 2 (Sum) needs one row, higher degrees more.
  if (eval_len > (size_t{1} << std::min(internal::kTwoAdicity<F>, 22)) ||
      (eval_len - poly_len) * poly_len > (size_t{1} << 22)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the PolyEval gadget polynomial is too large (degree " + Str(degree) + ", " +
                         Str(calls) + " calls)");
  }
  std::vector<F> field_coefficients;
  for (int64_t coefficient : coefficients) {
    const F magnitude = F::FromUint64(coefficient < 0 ? 0 - static_cast<uint64_t>(coefficient)
                                                      : static_cast<uint64_t>(coefficient));
    field_coefficients.push_back(coefficient < 0 ? -magnitude : magnitude);
  }
  return Gadget(Kind::kPolyEval, 1, degree, calls, std::move(field_coefficients));
}

template <typename F>
Gadget<F>::Gadget(Kind kind, size_t arity, size_t degree, size_t calls, std::vector<F> coefficients)
    : kind_(kind),
      arity_(arity),
      degree_(degree),
      calls_(calls),
      coefficients_(std::move(coefficients)),
      wire_poly_len_(NextPowerOfTwo(1 + calls)),
      gadget_poly_len_(degree * (wire_poly_len_ - 1) + 1),
      eval_len_(NextPowerOfTwo(gadget_poly_len_)) {
  const int log_p = std::countr_zero(wire_poly_len_);
  const int log_n = std::countr_zero(eval_len_);
  wire_nodes_ = internal::Powers(internal::RootOfUnity<F>(log_p), wire_poly_len_);
  poly_nodes_ = internal::Powers(internal::RootOfUnity<F>(log_n), eval_len_);
  const F inverse_p = F::FromUint64(wire_poly_len_).Inverse();
  const F inverse_n = F::FromUint64(eval_len_).Inverse();
  for (const F& node : wire_nodes_) wire_scaled_nodes_.push_back(node * inverse_p);
  for (const F& node : poly_nodes_) poly_scaled_nodes_.push_back(node * inverse_n);

  // Extension to the missing values m in [L, n). With x_i the n-th roots,
  // the Lagrange basis of the known nodes {x_i : i < L} gives
  //   y_m = sum_{i<L} y_i * Q_m / (x_m - x_i) * D_i,
  //   Q_m = prod_{i<L} (x_m - x_i) = (n / x_m) / prod_{j missing, j != m} (x_m - x_j),
  //   D_i = 1 / prod_{j<L, j != i} (x_i - x_j) = x_i prod_{j missing} (x_i - x_j) / n,
  // using prod_{j != i, j < n} (x_i - x_j) = n / x_i.
  const size_t known = gadget_poly_len_;
  const size_t missing = eval_len_ - known;
  if (missing > 0) {
    std::vector<F> d(known);
    for (size_t i = 0; i < known; ++i) {
      F product = poly_scaled_nodes_[i];
      for (size_t j = known; j < eval_len_; ++j) product *= poly_nodes_[i] - poly_nodes_[j];
      d[i] = product;
    }
    extension_.resize(missing * known);
    const F n_field = F::FromUint64(eval_len_);
    for (size_t m = known; m < eval_len_; ++m) {
      const F x_m = poly_nodes_[m];
      F others = F::One();
      for (size_t j = known; j < eval_len_; ++j) {
        if (j != m) others *= x_m - poly_nodes_[j];
      }
      const F q = n_field * (x_m * others).Inverse();
      std::span<F> row(extension_.data() + (m - known) * known, known);
      for (size_t i = 0; i < known; ++i) row[i] = x_m - poly_nodes_[i];
      BatchInvert(row);
      for (size_t i = 0; i < known; ++i) row[i] *= q * d[i];
    }
  }

  // Prover tables.
  wire_ntt_ = std::make_shared<internal::Ntt<F>>(log_p);
  if (kind_ == Kind::kPolyEval) {
    poly_ntt_ = std::make_shared<internal::Ntt<F>>(log_n);
  } else {
    // Values at s w^k come from the coefficients scaled by s^j; the 1/p of
    // the inverse NTT folds into the same scale.
    coset_scale_ = internal::Powers(internal::RootOfUnity<F>(log_p + 1), wire_poly_len_);
    for (F& scale : coset_scale_) scale *= inverse_p;
  }
}

template <typename F>
F Gadget<F>::Eval(std::span<const F> inputs) const {
  if (kind_ == Kind::kParallelSumMul) {
    F sum = F::Zero();
    for (size_t i = 0; i + 1 < arity_; i += 2) sum += inputs[i] * inputs[i + 1];
    return sum;
  }
  F result = coefficients_.back();
  for (size_t i = coefficients_.size() - 1; i-- > 0;)
    result = result * inputs[0] + coefficients_[i];
  return result;
}

template <typename F>
void Gadget<F>::GadgetPoly(std::span<const F> wires, std::span<F> out) const {
  const size_t p = wire_poly_len_;
  if (kind_ == Kind::kPolyEval) {
    // Composition p(I(x)) at the n-th roots: the wire polynomial's
    // coefficients, zero-padded, transformed at size n.
    std::vector<F> values(eval_len_);
    WipeOnExit wipe(values);
    std::copy_n(wires.begin(), p, values.begin());
    wire_ntt_->Inverse(std::span<F>(values.data(), p));
    poly_ntt_->Forward(values);
    for (size_t i = 0; i < gadget_poly_len_; ++i) {
      out[i] = Eval(std::span<const F>(&values[i], 1));
    }
    return;
  }
  // ParallelSum(Mul): the product polynomials have degree <= 2p - 2, so
  // their values at the 2p-th roots determine them. The even roots are the
  // p-th roots, where the wire values are known; the odd ones are s w^k,
  // s = w_2p, reached by an inverse NTT, a scaling by s^j and an NTT.
  std::vector<F> sums(2 * p);
  std::vector<F> left(p), right(p);
  WipeOnExit wipe_sums(sums), wipe_left(left), wipe_right(right);
  auto coset_values = [&](std::span<const F> wire, std::vector<F>& out_values) {
    std::copy_n(wire.begin(), p, out_values.begin());
    wire_ntt_->Forward(out_values);
    // Inverse NTT without its 1/p: coefficient j is the forward value at -j.
    if (p > 2) std::reverse(out_values.begin() + 1, out_values.end());
    for (size_t j = 0; j < p; ++j) out_values[j] *= coset_scale_[j];
    wire_ntt_->Forward(out_values);
  };
  for (size_t pair = 0; pair < arity_ / 2; ++pair) {
    std::span<const F> a = wires.subspan(2 * pair * p, p);
    std::span<const F> b = wires.subspan((2 * pair + 1) * p, p);
    for (size_t k = 0; k < p; ++k) sums[2 * k] += a[k] * b[k];
    coset_values(a, left);
    coset_values(b, right);
    for (size_t k = 0; k < p; ++k) sums[2 * k + 1] += left[k] * right[k];
  }
  std::copy_n(sums.begin(), gadget_poly_len_, out.begin());
}

template <typename F>
void Gadget<F>::ExtendGadgetPoly(std::span<const F> proof_values, std::span<F> out) const {
  const size_t known = gadget_poly_len_;
  std::copy_n(proof_values.begin(), known, out.begin());
  for (size_t m = known; m < eval_len_; ++m) {
    const F* row = extension_.data() + (m - known) * known;
    internal::ProductSum<F> value;
    for (size_t i = 0; i < known; ++i) value.Add(row[i], proof_values[i]);
    out[m] = value.Reduce();
    crypto::SecureWipeObject(value);
  }
}

// ---- Prover and verifier gadget calls ------------------------------------------

namespace {

// The prover's gadgets: record each call's inputs as the next value of each
// wire polynomial, and evaluate.
template <typename F>
class ProveCalls final : public GadgetCalls<F> {
 public:
  ProveCalls(const std::vector<Gadget<F>>& gadgets, std::span<const F> prove_rand)
      : gadgets_(gadgets), wires_(gadgets.size()), calls_made_(gadgets.size(), 0) {
    for (size_t g = 0; g < gadgets.size(); ++g) {
      const size_t p = gadgets[g].wire_poly_len();
      wires_[g].assign(gadgets[g].arity() * p, F::Zero());
      // Each wire starts with its seed, so that the wire polynomials are
      // random and the verifiers' evaluations of them reveal nothing.
      for (size_t j = 0; j < gadgets[g].arity(); ++j) wires_[g][j * p] = prove_rand[j];
      prove_rand = prove_rand.subspan(gadgets[g].arity());
    }
  }
  ~ProveCalls() override {
    for (auto& wires : wires_) crypto::SecureWipeVector(wires);
  }

  F Call(size_t index, std::span<const F> inputs) override {
    const Gadget<F>& gadget = gadgets_[index];
    const size_t k = ++calls_made_[index];
    if (k <= gadget.calls()) {
      const size_t p = gadget.wire_poly_len();
      for (size_t j = 0; j < gadget.arity(); ++j) wires_[index][j * p + k] = inputs[j];
    }
    return gadget.Eval(inputs);
  }
  F NextCallWeight(size_t) const override { return F::One(); }
  F CallScaled(size_t index, std::span<const F> scaled_inputs) override {
    const size_t arity = gadgets_[index].arity();
    if (scaled_inputs.size() >= arity) return Call(index, scaled_inputs.first(arity));
    // Fewer inputs: the rest are zero.
    std::vector<F> padded(arity);
    WipeOnExit wipe(padded);
    std::copy(scaled_inputs.begin(), scaled_inputs.end(), padded.begin());
    return Call(index, padded);
  }
  std::span<F> WireChecks(size_t) override { return {}; }

  bool AllCallsMade() const {
    for (size_t g = 0; g < gadgets_.size(); ++g) {
      if (calls_made_[g] != gadgets_[g].calls()) return false;
    }
    return true;
  }
  std::span<const F> wires(size_t index) const { return wires_[index]; }

 private:
  const std::vector<Gadget<F>>& gadgets_;
  std::vector<std::vector<F>> wires_;
  std::vector<size_t> calls_made_;
};

// The verifier's gadgets: accumulate each wire polynomial's value at the
// query point t, sum_k c_k * wire[k] with the Lagrange weights c_k of t, and
// answer call k with the gadget polynomial's value at w_p^k (index k * n / p
// of its values at the n-th roots).
template <typename F>
class QueryCalls final : public GadgetCalls<F> {
 public:
  struct PerGadget {
    const Gadget<F>* gadget = nullptr;
    std::span<F> values;       // The gadget polynomial at the n-th roots.
    std::span<F> weights;      // c_0 .. c_calls.
    std::span<F> wire_checks;  // In the verifier output.
    size_t step = 0;           // n / p.
    size_t calls_made = 0;
  };

  // Every circuit here has one gadget: keep its state inline.
  explicit QueryCalls(size_t gadget_count)
      : more_gadgets_(gadget_count > kInline ? gadget_count : 0),
        gadgets_(gadget_count > kInline ? more_gadgets_.data() : inline_gadgets_.data(),
                 gadget_count) {}

  PerGadget& gadget(size_t index) { return gadgets_[index]; }

  F Call(size_t index, std::span<const F> inputs) override {
    PerGadget& state = gadgets_[index];
    const size_t k = ++state.calls_made;
    if (k > state.gadget->calls()) return F::Zero();  // Reported by AllCallsMade.
    const F weight = state.weights[k];
    for (size_t j = 0; j < state.wire_checks.size(); ++j)
      state.wire_checks[j] += weight * inputs[j];
    return state.values[k * state.step];
  }
  F NextCallWeight(size_t index) const override {
    const PerGadget& state = gadgets_[index];
    const size_t k = state.calls_made + 1;
    return k < state.weights.size() ? state.weights[k] : F::Zero();
  }
  F CallScaled(size_t index, std::span<const F> scaled_inputs) override {
    PerGadget& state = gadgets_[index];
    const size_t k = ++state.calls_made;
    if (k > state.gadget->calls()) return F::Zero();
    F* checks = state.wire_checks.data();
    const size_t count = std::min(scaled_inputs.size(), state.wire_checks.size());
    for (size_t j = 0; j < count; ++j) checks[j] += scaled_inputs[j];
    return state.values[k * state.step];
  }
  std::span<F> WireChecks(size_t index) override { return gadgets_[index].wire_checks; }

  bool AllCallsMade() const {
    for (const PerGadget& state : gadgets_) {
      if (state.calls_made != state.gadget->calls()) return false;
    }
    return true;
  }

 private:
  static constexpr size_t kInline = 2;
  std::array<PerGadget, kInline> inline_gadgets_;
  std::vector<PerGadget> more_gadgets_;
  std::span<PerGadget> gadgets_;
};

}  // namespace

// ---- Flp -------------------------------------------------------------------------

template <typename F>
Flp<F>::Flp(std::shared_ptr<const Circuit<F>> circuit) : circuit_(std::move(circuit)) {
  const auto& gadgets = circuit_->gadgets();
  query_rand_len_ = gadgets.size();
  if (circuit_->eval_output_len() > 1) query_rand_len_ += circuit_->eval_output_len();
  verifier_len_ = 1;
  for (const Gadget<F>& gadget : gadgets) {
    prove_rand_len_ += gadget.arity();
    proof_len_ += gadget.arity() + gadget.gadget_poly_len();
    verifier_len_ += gadget.arity() + 1;
    // Per gadget its extended gadget polynomial and the Lagrange weights.
    query_scratch_len_ += gadget.eval_len() + gadget.calls() + 1;
  }
  query_scratch_len_ += circuit_->eval_output_len();  // The circuit outputs.
}

template <typename F>
void Flp<F>::Prove(std::span<const F> meas, std::span<const F> prove_rand,
                   std::span<const F> joint_rand, std::span<F> proof) const {
  const auto& gadgets = circuit_->gadgets();
  ProveCalls<F> calls(gadgets, prove_rand);
  std::vector<F> out(circuit_->eval_output_len());
  WipeOnExit wipe_out(out);
  circuit_->Eval(meas, joint_rand, F::One(), calls, out);
  assert(calls.AllCallsMade());

  // The proof: each gadget's wire seeds, then its gadget polynomial.
  size_t offset = 0;
  for (size_t g = 0; g < gadgets.size(); ++g) {
    const Gadget<F>& gadget = gadgets[g];
    std::span<const F> wires = calls.wires(g);
    for (size_t j = 0; j < gadget.arity(); ++j)
      proof[offset + j] = wires[j * gadget.wire_poly_len()];
    offset += gadget.arity();
    gadget.GadgetPoly(wires, proof.subspan(offset, gadget.gadget_poly_len()));
    offset += gadget.gadget_poly_len();
  }
}

template <typename F>
Result<void> Flp<F>::Query(std::span<const F> meas, std::span<const F> proof,
                           std::span<const F> query_rand, std::span<const F> joint_rand,
                           F shares_inverse, std::span<F> verifier) const {
  // The scratch holds shares of the proof: wiped on exit.
  std::vector<F> scratch(query_scratch_len_);
  WipeOnExit wipe_scratch(scratch);
  return Query(meas, proof, query_rand, joint_rand, shares_inverse, verifier, scratch);
}

template <typename F>
Result<void> Flp<F>::Query(std::span<const F> meas, std::span<const F> proof,
                           std::span<const F> query_rand, std::span<const F> joint_rand,
                           F shares_inverse, std::span<F> verifier, std::span<F> scratch) const {
  const auto& gadgets = circuit_->gadgets();
  const size_t eval_output_len = circuit_->eval_output_len();
  const size_t reduce_len = eval_output_len > 1 ? eval_output_len : 0;

  // verifier = [v, (wire checks, gadget check) per gadget]
  std::fill(verifier.begin(), verifier.end(), F::Zero());
  // Scratch: per gadget its extended gadget polynomial and the Lagrange
  // weights, then the circuit outputs; each part is written before it is
  // read, so it needs no clearing.
  std::span<F> free_scratch = scratch.first(query_scratch_len_);
  auto take = [&free_scratch](size_t count) {
    std::span<F> taken = free_scratch.first(count);
    free_scratch = free_scratch.subspan(count);
    return taken;
  };

  QueryCalls<F> calls(gadgets.size());
  size_t proof_offset = 0;
  size_t verifier_offset = 1;
  for (size_t g = 0; g < gadgets.size(); ++g) {
    const Gadget<F>& gadget = gadgets[g];
    const size_t p = gadget.wire_poly_len();
    std::span<const F> seeds = proof.subspan(proof_offset, gadget.arity());
    std::span<const F> poly =
        proof.subspan(proof_offset + gadget.arity(), gadget.gadget_poly_len());
    proof_offset += gadget.arity() + gadget.gadget_poly_len();
    const F t = query_rand[reduce_len + g];

    // At a p-th root of unity the wire checks would be wire values, that is
    // (shares of) measurement-derived gadget inputs: the draft aborts.
    if (PowerOfTwoPower(t, std::countr_zero(p)) == F::One()) {
      return MakeError(ErrorCode::kVerifyFailed, "FLP query point is a root of unity");
    }

    typename QueryCalls<F>::PerGadget& state = calls.gadget(g);
    state.gadget = &gadget;
    state.step = gadget.eval_len() / p;
    state.values = take(gadget.eval_len());
    gadget.ExtendGadgetPoly(poly, state.values);
    state.weights = take(gadget.calls() + 1);
    internal::LagrangeWeights<F>(gadget.wire_nodes(), gadget.wire_scaled_nodes(), t, state.weights);
    state.wire_checks = verifier.subspan(verifier_offset, gadget.arity());
    for (size_t j = 0; j < gadget.arity(); ++j) state.wire_checks[j] = state.weights[0] * seeds[j];
    verifier[verifier_offset + gadget.arity()] =
        internal::EvalLagrange<F>(state.values, gadget.poly_nodes(), gadget.poly_scaled_nodes(), t);
    verifier_offset += gadget.arity() + 1;
  }

  std::span<F> out = take(eval_output_len);
  circuit_->Eval(meas, joint_rand, shares_inverse, calls, out);
  if (!calls.AllCallsMade()) {
    return MakeError(ErrorCode::kInternal, "the validity circuit miscounted its gadget calls");
  }

  // Reduce the outputs to one element with the first query randomness.
  if (eval_output_len > 1) {
    F v = F::Zero();
    for (size_t i = 0; i < eval_output_len; ++i) v += query_rand[i] * out[i];
    verifier[0] = v;
  } else {
    verifier[0] = out[0];
  }
  return {};
}

template <typename F>
bool Flp<F>::Decide(std::span<const F> verifier) const {
  if (verifier.size() != verifier_len_) return false;
  bool valid = verifier[0] == F::Zero();
  size_t offset = 1;
  for (const Gadget<F>& gadget : circuit_->gadgets()) {
    std::span<const F> wire_checks = verifier.subspan(offset, gadget.arity());
    const F gadget_check = verifier[offset + gadget.arity()];
    valid = valid && gadget.Eval(wire_checks) == gadget_check;
    offset += gadget.arity() + 1;
  }
  return valid;
}

template class Gadget<crypto::Field64>;
template class Gadget<crypto::Field128>;
template class Flp<crypto::Field64>;
template class Flp<crypto::Field128>;

}  // namespace canopy::poplar::flp
