#include "conformance/vector_check.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <map>
#include <memory>
#include <optional>

#include "crypto/field128.h"
#include "crypto/xof.h"
#include "idpf/idpf.h"
#include "poplar/poplar1.h"
#include "poplar/prio3.h"
#include "poplar/vdaf.h"

namespace canopy::conformance {
namespace {

using Bytes = std::vector<uint8_t>;
namespace json = boost::json;

// Raised (as a value, not an exception) when the file lacks what a check needs.
struct Malformed {
  std::string what;
};

std::string ToHex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (uint8_t byte : bytes) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 15]);
  }
  return hex;
}

std::optional<Bytes> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  Bytes bytes;
  for (size_t i = 0; i < hex.size(); i += 2) {
    auto digit = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int high = digit(hex[i]), low = digit(hex[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    bytes.push_back(static_cast<uint8_t>(16 * high + low));
  }
  return bytes;
}

// Typed, non-throwing access to the JSON of a vector. The first problem is
// kept; later reads return empty values, and the run reports the file as
// malformed.
class Reader {
 public:
  const json::value* Field(const json::value& object, std::string_view key) {
    const json::object* as_object = object.if_object();
    const json::value* field = as_object != nullptr ? as_object->if_contains(key) : nullptr;
    if (field == nullptr) Fail("missing field \"" + std::string(key) + "\"");
    return field;
  }
  bool Has(const json::value& object, std::string_view key) const {
    const json::object* as_object = object.if_object();
    return as_object != nullptr && as_object->if_contains(key) != nullptr;
  }
  Bytes Hex(const json::value& object, std::string_view key) {
    const json::value* field = Field(object, key);
    if (field == nullptr) return {};
    return HexOf(*field, key);
  }
  Bytes HexOf(const json::value& value, std::string_view what) {
    const json::string* text = value.if_string();
    std::optional<Bytes> bytes = text != nullptr ? FromHex(*text) : std::nullopt;
    if (!bytes) Fail("\"" + std::string(what) + "\" is not a hex string");
    return bytes.value_or(Bytes());
  }
  uint64_t Uint(const json::value& object, std::string_view key) {
    const json::value* field = Field(object, key);
    if (field == nullptr) return 0;
    if (field->is_uint64()) return field->as_uint64();
    if (field->is_int64() && field->as_int64() >= 0)
      return static_cast<uint64_t>(field->as_int64());
    Fail("\"" + std::string(key) + "\" is not a non-negative integer");
    return 0;
  }
  const json::array* Array(const json::value& object, std::string_view key) {
    const json::value* field = Field(object, key);
    if (field == nullptr) return nullptr;
    if (!field->is_array()) Fail("\"" + std::string(key) + "\" is not an array");
    return field->if_array();
  }
  // Element `index` of array `key`, or null.
  const json::value* Element(const json::value& object, std::string_view key, size_t index) {
    const json::array* array = Array(object, key);
    if (array == nullptr) return nullptr;
    if (index >= array->size()) {
      Fail("\"" + std::string(key) + "\" has no element " + std::to_string(index));
      return nullptr;
    }
    return &(*array)[index];
  }
  void Fail(std::string what) {
    if (!problem_) problem_ = std::move(what);
  }
  const std::optional<std::string>& problem() const { return problem_; }

 private:
  std::optional<std::string> problem_;
};

// Collects comparisons into a report.
class Checker {
 public:
  explicit Checker(VectorReport& report) : report_(report) {}
  void Equal(const std::string& what, std::span<const uint8_t> actual,
             std::span<const uint8_t> expected) {
    ++report_.checks;
    if (actual.size() != expected.size() ||
        !std::equal(actual.begin(), actual.end(), expected.begin())) {
      report_.mismatches.push_back(what + ": got " + ToHex(actual) + ", expected " +
                                   ToHex(expected));
    }
  }
  void Succeeded(const std::string& what, bool succeeded, bool expected, const std::string& error) {
    ++report_.checks;
    if (succeeded && !expected)
      report_.mismatches.push_back(what + ": succeeded, expected a refusal");
    if (!succeeded && expected) report_.mismatches.push_back(what + ": refused: " + error);
  }
  void Text(const std::string& what, const std::string& actual, const std::string& expected) {
    ++report_.checks;
    if (actual != expected) {
      report_.mismatches.push_back(what + ": got " + actual + ", expected " + expected);
    }
  }

 private:
  VectorReport& report_;
};

// ---- VDAF vectors ------------------------------------------------------------

// Builds the VDAF a vector describes, from its kind and type parameters.
Result<std::unique_ptr<poplar::Vdaf>> MakeVdaf(std::string_view kind, const json::value& vector,
                                               Reader& reader) {
  if (kind == "Poplar1") {
    auto vdaf = poplar::Poplar1::Create(reader.Uint(vector, "bits"));
    if (!vdaf) return std::unexpected(vdaf.error());
    return std::unique_ptr<poplar::Vdaf>(std::move(*vdaf));
  }
  using poplar::Prio3;
  auto prio3 = [](Result<std::unique_ptr<Prio3>> vdaf) -> Result<std::unique_ptr<poplar::Vdaf>> {
    if (!vdaf) return std::unexpected(vdaf.error());
    return std::unique_ptr<poplar::Vdaf>(std::move(*vdaf));
  };
  if (kind.starts_with("Prio3")) {
    const size_t shares = reader.Uint(vector, "shares");
    if (kind == "Prio3Count") return prio3(Prio3::Count(shares));
    if (kind == "Prio3Sum")
      return prio3(Prio3::Sum(reader.Uint(vector, "max_measurement"), shares));
    if (kind == "Prio3SumVec") {
      return prio3(Prio3::SumVec(reader.Uint(vector, "length"),
                                 reader.Uint(vector, "max_measurement"),
                                 reader.Uint(vector, "chunk_length"), shares));
    }
    if (kind == "Prio3SumVecWithMultiproof") {
      // The draft's test instance: Field64 and 3 proofs, which the file does
      // not record.
      return prio3(Prio3::SumVecWithMultiproof(
          Prio3::FieldKind::kField64, 3, reader.Uint(vector, "length"),
          reader.Uint(vector, "max_measurement"), reader.Uint(vector, "chunk_length"), shares));
    }
    if (kind == "Prio3Histogram") {
      return prio3(Prio3::Histogram(reader.Uint(vector, "length"),
                                    reader.Uint(vector, "chunk_length"), shares));
    }
    if (kind == "Prio3MultihotCountVec") {
      return prio3(Prio3::MultihotCountVec(reader.Uint(vector, "length"),
                                           reader.Uint(vector, "max_weight"),
                                           reader.Uint(vector, "chunk_length"), shares));
    }
    if (kind == "Prio3HigherDegree") return prio3(Prio3::HigherDegree(shares));
  }
  return MakeError(ErrorCode::kUnsupported, "no VDAF named " + std::string(kind));
}

// The measurement of a report, as the VDAF of `kind` takes it.
std::optional<poplar::Measurement> ParseMeasurement(std::string_view kind,
                                                    const json::value& measurement,
                                                    Reader& reader) {
  if (kind == "Poplar1") {
    const json::array* bits = measurement.if_array();
    if (bits == nullptr) {
      reader.Fail("a Poplar1 measurement must be an array of booleans");
      return std::nullopt;
    }
    idpf::BitString alpha;
    for (const json::value& bit : *bits) {
      if (!bit.is_bool()) {
        reader.Fail("a Poplar1 measurement must be an array of booleans");
        return std::nullopt;
      }
      alpha = alpha.Extended(bit.as_bool());
    }
    return alpha;
  }
  if (measurement.is_uint64() || measurement.is_int64()) {
    return static_cast<uint64_t>(measurement.is_uint64() ? measurement.as_uint64()
                                                         : measurement.as_int64());
  }
  if (const json::array* values = measurement.if_array()) {
    std::vector<uint64_t> out;
    for (const json::value& value : *values) {
      if (value.is_bool()) {
        out.push_back(value.as_bool() ? 1 : 0);
      } else if (value.is_uint64() || (value.is_int64() && value.as_int64() >= 0)) {
        out.push_back(value.is_uint64() ? value.as_uint64()
                                        : static_cast<uint64_t>(value.as_int64()));
      } else {
        reader.Fail("a measurement element is not a non-negative integer");
        return std::nullopt;
      }
    }
    return out;
  }
  reader.Fail("unrecognised measurement");
  return std::nullopt;
}

// What one aggregator has for one report while the operations run.
struct AggregatorRun {
  std::unique_ptr<poplar::PreparedReport> prepared;
  std::optional<poplar::VerifyState> state;
  std::optional<poplar::FieldVector> out_share;
};

std::string Where(const std::string& operation, uint64_t report, std::optional<uint64_t> agg,
                  std::optional<uint64_t> round) {
  std::string text = operation + " (report " + std::to_string(report);
  if (agg) text += ", aggregator " + std::to_string(*agg);
  if (round) text += ", round " + std::to_string(*round);
  return text + ")";
}

std::string ResultText(const poplar::AggregateResult& result, bool scalar) {
  if (scalar && result.size() == 1) return poplar::ToDecimal(result[0]);
  std::string text = "[";
  for (size_t i = 0; i < result.size(); ++i) {
    if (i > 0) text += ", ";
    text += poplar::ToDecimal(result[i]);
  }
  return text + "]";
}

std::optional<std::string> ExpectedResultText(const json::value& value, bool& scalar) {
  auto number = [](const json::value& v) -> std::optional<std::string> {
    if (v.is_uint64()) return std::to_string(v.as_uint64());
    if (v.is_int64() && v.as_int64() >= 0) return std::to_string(v.as_int64());
    return std::nullopt;
  };
  if (auto single = number(value)) {
    scalar = true;
    return single;
  }
  const json::array* values = value.if_array();
  if (values == nullptr) return std::nullopt;
  scalar = false;
  std::string text = "[";
  for (size_t i = 0; i < values->size(); ++i) {
    auto element = number((*values)[i]);
    if (!element) return std::nullopt;
    if (i > 0) text += ", ";
    text += *element;
  }
  return text + "]";
}

void CheckVdafVector(std::string_view kind, const json::value& vector, Reader& reader,
                     VectorReport& report) {
  Checker check(report);
  auto vdaf = MakeVdaf(kind, vector, reader);
  if (!vdaf) {
    if (vdaf.error().code() == ErrorCode::kUnsupported) {
      report.status = VectorReport::Status::kUnsupported;
      report.error = vdaf.error().message();
    } else {
      reader.Fail("cannot build the VDAF: " + vdaf.error().message());
    }
    return;
  }
  report.description = (*vdaf)->name();
  const Bytes ctx = reader.Hex(vector, "ctx");
  const Bytes verify_key = reader.Hex(vector, "verify_key");
  const Bytes encoded_agg_param = reader.Hex(vector, "agg_param");
  const json::array* reports = reader.Array(vector, "reports");
  const json::array* operations = reader.Array(vector, "operations");
  if (reader.problem() || reports == nullptr || operations == nullptr) return;
  const size_t shares = (*vdaf)->shares();
  if (reader.Has(vector, "shares") && reader.Uint(vector, "shares") != shares) {
    report.status = VectorReport::Status::kUnsupported;
    report.error = "Canopy runs " + std::to_string(shares) + " aggregators, the vector " +
                   std::to_string(reader.Uint(vector, "shares"));
    return;
  }

  auto agg_param = (*vdaf)->DecodeAggParam(encoded_agg_param, nullptr);
  check.Succeeded("decode agg_param", agg_param.has_value(), true,
                  agg_param ? "" : agg_param.error().message());
  if (!agg_param) return;
  check.Equal("encode agg_param", (*vdaf)->EncodeAggParam(**agg_param), encoded_agg_param);

  std::vector<std::vector<AggregatorRun>> runs(reports->size());
  for (auto& run : runs) run.resize(shares);
  for (const json::value& operation : *operations) {
    const json::value* name_value = reader.Field(operation, "operation");
    if (name_value == nullptr || !name_value->is_string()) {
      reader.Fail("an operation has no \"operation\" name");
      break;
    }
    const std::string name(name_value->as_string());
    const json::value* success = reader.Field(operation, "success");
    if (success == nullptr || !success->is_bool()) {
      reader.Fail("an operation's \"success\" must be true or false");
      break;
    }
    const bool expect_success = success->as_bool();
    if (name == "aggregate" || name == "unshard") {
      if (name == "aggregate") {
        const uint64_t agg = reader.Uint(operation, "aggregator_id");
        if (reader.problem() || agg >= shares) {
          reader.Fail("aggregator_id out of range");
          break;
        }
        poplar::FieldVector agg_share = (*vdaf)->AggregateInit(**agg_param);
        for (auto& run : runs) {
          if (run[agg].out_share) (void)poplar::AddFieldVector(agg_share, *run[agg].out_share);
        }
        const json::value* expected = reader.Element(vector, "agg_shares", agg);
        if (expected == nullptr) break;
        check.Equal("aggregate (aggregator " + std::to_string(agg) + ")",
                    poplar::EncodeFieldVector(agg_share), reader.HexOf(*expected, "agg_shares"));
      } else {
        std::vector<Bytes> agg_shares;
        for (size_t agg = 0; agg < shares; ++agg) {
          const json::value* share = reader.Element(vector, "agg_shares", agg);
          if (share == nullptr) break;
          agg_shares.push_back(reader.HexOf(*share, "agg_shares"));
        }
        uint64_t measurements = 0;
        for (auto& run : runs) measurements += run[0].out_share.has_value() ? 1 : 0;
        auto result = (*vdaf)->Unshard(**agg_param, agg_shares, measurements);
        check.Succeeded("unshard", result.has_value(), expect_success,
                        result ? "" : result.error().message());
        const json::value* expected = reader.Field(vector, "agg_result");
        bool scalar = false;
        std::optional<std::string> expected_text =
            expected != nullptr ? ExpectedResultText(*expected, scalar) : std::nullopt;
        if (result && expected_text)
          check.Text("unshard", ResultText(*result, scalar), *expected_text);
        if (result && !expected_text) reader.Fail("\"agg_result\" is not a number or an array");
      }
      continue;
    }

    const uint64_t index = reader.Uint(operation, "report_index");
    if (reader.problem() || index >= reports->size()) {
      reader.Fail("operation names a report that does not exist");
      break;
    }
    const json::value& entry = (*reports)[index];
    const Bytes nonce = reader.Hex(entry, "nonce");
    const Bytes public_share = reader.Hex(entry, "public_share");
    std::vector<AggregatorRun>& run = runs[index];

    if (name == "shard") {
      const json::value* measurement_json = reader.Field(entry, "measurement");
      if (measurement_json == nullptr) break;
      std::optional<poplar::Measurement> measurement =
          ParseMeasurement(kind, *measurement_json, reader);
      if (!measurement) break;
      auto shard = (*vdaf)->Shard(ctx, *measurement, nonce, reader.Hex(entry, "rand"));
      check.Succeeded(Where("shard", index, {}, {}), shard.has_value(), expect_success,
                      shard ? "" : shard.error().message());
      if (!shard) continue;
      check.Equal(Where("shard: public_share", index, {}, {}), shard->public_share, public_share);
      for (size_t agg = 0; agg < shares; ++agg) {
        const json::value* expected = reader.Element(entry, "input_shares", agg);
        if (expected == nullptr) break;
        check.Equal(Where("shard: input_share", index, agg, {}), shard->input_shares[agg],
                    reader.HexOf(*expected, "input_shares"));
      }
    } else if (name == "verify_init") {
      const uint64_t agg = reader.Uint(operation, "aggregator_id");
      if (reader.problem() || agg >= shares) {
        reader.Fail("aggregator_id out of range");
        break;
      }
      const json::value* input_share = reader.Element(entry, "input_shares", agg);
      if (input_share == nullptr) break;
      auto prepared = (*vdaf)->PrepareReport(static_cast<int>(agg), ctx, nonce, public_share,
                                             reader.HexOf(*input_share, "input_shares"));
      Result<poplar::VerifyTransition> transition =
          prepared ? (*vdaf)->VerifyInit(verify_key, ctx, **agg_param, **prepared)
                   : Result<poplar::VerifyTransition>(std::unexpected(prepared.error()));
      check.Succeeded(Where("verify_init", index, agg, {}), transition.has_value(), expect_success,
                      transition ? "" : transition.error().message());
      if (!transition) continue;
      run[agg].prepared = std::move(*prepared);
      const json::value* round_shares = reader.Element(entry, "verifier_shares", 0);
      const json::value* expected = round_shares != nullptr && round_shares->is_array() &&
                                            agg < round_shares->as_array().size()
                                        ? &round_shares->as_array()[agg]
                                        : nullptr;
      if (expected == nullptr) {
        reader.Fail("missing verifier_shares[0]");
        break;
      }
      check.Equal(Where("verify_init: verifier_share", index, agg, {}), transition->verifier_share,
                  reader.HexOf(*expected, "verifier_shares"));
      run[agg].state = transition->state;
    } else if (name == "verifier_shares_to_message") {
      const uint64_t round = reader.Uint(operation, "round");
      const json::value* round_shares = reader.Element(entry, "verifier_shares", round);
      if (round_shares == nullptr || !round_shares->is_array()) {
        reader.Fail("verifier_shares[" + std::to_string(round) + "] is not an array");
        break;
      }
      std::vector<Bytes> verifier_shares;
      for (const json::value& share : round_shares->as_array()) {
        verifier_shares.push_back(reader.HexOf(share, "verifier_shares"));
      }
      auto message = (*vdaf)->VerifierSharesToMessage(ctx, **agg_param, verifier_shares);
      check.Succeeded(Where("verifier_shares_to_message", index, {}, round), message.has_value(),
                      expect_success, message ? "" : message.error().message());
      if (!message) continue;
      const json::value* expected = reader.Element(entry, "verifier_messages", round);
      if (expected == nullptr) break;
      check.Equal(Where("verifier_shares_to_message", index, {}, round), *message,
                  reader.HexOf(*expected, "verifier_messages"));
    } else if (name == "verify_next") {
      const uint64_t agg = reader.Uint(operation, "aggregator_id");
      const uint64_t round = reader.Uint(operation, "round");
      if (reader.problem() || agg >= shares || round == 0) {
        reader.Fail("verify_next needs an aggregator_id in range and a round of at least 1");
        break;
      }
      if (!run[agg].state) {
        reader.Fail(Where("verify_next", index, agg, round) + " has no state from an earlier step");
        break;
      }
      const json::value* message = reader.Element(entry, "verifier_messages", round - 1);
      if (message == nullptr) break;
      auto transition =
          (*vdaf)->VerifyNext(ctx, *run[agg].state, reader.HexOf(*message, "verifier_messages"));
      check.Succeeded(Where("verify_next", index, agg, round), transition.has_value(),
                      expect_success, transition ? "" : transition.error().message());
      if (!transition) continue;
      if (transition->finished) {
        run[agg].state.reset();
        const json::value* expected = reader.Element(entry, "out_shares", agg);
        if (expected == nullptr) break;
        check.Equal(Where("verify_next: out_share", index, agg, round),
                    poplar::EncodeFieldVector(transition->out_share),
                    reader.HexOf(*expected, "out_shares"));
        run[agg].out_share = std::move(transition->out_share);
      } else {
        const json::value* round_shares = reader.Element(entry, "verifier_shares", round);
        if (round_shares == nullptr || !round_shares->is_array() ||
            agg >= round_shares->as_array().size()) {
          reader.Fail("missing verifier_shares[" + std::to_string(round) + "]");
          break;
        }
        check.Equal(Where("verify_next: verifier_share", index, agg, round),
                    transition->verifier_share,
                    reader.HexOf(round_shares->as_array()[agg], "verifier_shares"));
        run[agg].state = std::move(transition->state);
      }
    } else {
      reader.Fail("unknown operation \"" + name + "\"");
      break;
    }
  }
}

// ---- XOF and IDPF vectors ------------------------------------------------------

void CheckXofVector(std::string_view kind, const json::value& vector, Reader& reader,
                    VectorReport& report) {
  Checker check(report);
  const Bytes seed = reader.Hex(vector, "seed");
  const Bytes dst = reader.Hex(vector, "dst");
  const Bytes binder = reader.Hex(vector, "binder");
  const Bytes derived = reader.Hex(vector, "derived_seed");
  const Bytes expanded = reader.Hex(vector, "expanded_vec_field128");
  const uint64_t length = reader.Uint(vector, "length");
  if (reader.problem()) return;
  if (kind == "XofTurboShake128") {
    report.description = "XofTurboShake128";
    check.Equal("derive_seed", crypto::XofTurboShake128::DeriveSeed(seed, dst, binder), derived);
    auto values =
        crypto::XofTurboShake128::ExpandIntoVec<crypto::Field128>(seed, dst, binder, length);
    check.Equal("expand_into_vec", crypto::EncodeVec<crypto::Field128>(values), expanded);
    return;
  }
  report.description = "XofFixedKeyAes128";
  if (seed.size() != crypto::XofFixedKeyAes128::kSeedSize) {
    reader.Fail("XofFixedKeyAes128 seeds are 16 bytes");
    return;
  }
  std::span<const uint8_t, 16> fixed_seed(seed.data(), 16);
  check.Equal("derive_seed", crypto::XofFixedKeyAes128::DeriveSeed(fixed_seed, dst, binder),
              derived);
  auto values =
      crypto::XofFixedKeyAes128::ExpandIntoVec<crypto::Field128>(fixed_seed, dst, binder, length);
  check.Equal("expand_into_vec", crypto::EncodeVec<crypto::Field128>(values), expanded);
}

std::optional<uint64_t> DecimalField(const json::value& value) {
  const json::string* text = value.if_string();
  if (text == nullptr || text->empty() || text->size() > 19) return std::nullopt;
  uint64_t number = 0;
  for (char c : *text) {
    if (c < '0' || c > '9') return std::nullopt;
    number = 10 * number + static_cast<uint64_t>(c - '0');
  }
  return number;
}

void CheckIdpfVector(const json::value& vector, Reader& reader, VectorReport& report) {
  Checker check(report);
  const uint64_t bits = reader.Uint(vector, "bits");
  const Bytes ctx = reader.Hex(vector, "ctx");
  const Bytes nonce = reader.Hex(vector, "nonce");
  const Bytes public_share = reader.Hex(vector, "public_share");
  const json::array* alpha_json = reader.Array(vector, "alpha");
  const json::array* beta_inner_json = reader.Array(vector, "beta_inner");
  const json::array* beta_leaf_json = reader.Array(vector, "beta_leaf");
  const json::array* keys_json = reader.Array(vector, "keys");
  if (reader.problem() || !alpha_json || !beta_inner_json || !beta_leaf_json || !keys_json) return;
  auto idpf = idpf::Idpf::Create(bits);
  if (!idpf || nonce.size() != idpf::kNonceSize || keys_json->size() != 2 ||
      beta_leaf_json->size() != 2) {
    reader.Fail("unusable IDPF parameters");
    return;
  }
  report.description = "IdpfBBCGGI21(bits=" + std::to_string(bits) + ")";
  idpf::BitString alpha;
  for (const json::value& bit : *alpha_json) alpha = alpha.Extended(bit.is_bool() && bit.as_bool());
  std::vector<idpf::InnerValue> beta_inner;
  for (const json::value& pair : *beta_inner_json) {
    const json::array* values = pair.if_array();
    std::optional<uint64_t> a =
        values && values->size() == 2 ? DecimalField((*values)[0]) : std::nullopt;
    std::optional<uint64_t> b =
        values && values->size() == 2 ? DecimalField((*values)[1]) : std::nullopt;
    if (!a || !b) {
      reader.Fail("beta_inner holds values Canopy cannot read (pairs of decimal strings)");
      return;
    }
    beta_inner.push_back({crypto::Field64::FromUint64(*a), crypto::Field64::FromUint64(*b)});
  }
  std::optional<uint64_t> leaf0 = DecimalField((*beta_leaf_json)[0]);
  std::optional<uint64_t> leaf1 = DecimalField((*beta_leaf_json)[1]);
  if (!leaf0 || !leaf1) {
    reader.Fail("beta_leaf holds values Canopy cannot read (decimal strings below 2^64)");
    return;
  }
  idpf::LeafValue beta_leaf = {crypto::Field255::FromUint64(*leaf0),
                               crypto::Field255::FromUint64(*leaf1)};
  Bytes rand;
  std::vector<Bytes> keys;
  for (const json::value& key : *keys_json) {
    keys.push_back(reader.HexOf(key, "keys"));
    rand.insert(rand.end(), keys.back().begin(), keys.back().end());
  }
  if (rand.size() != idpf::kRandSize) {
    reader.Fail("IDPF keys must be 16 bytes each");
    return;
  }
  auto generated =
      idpf->Gen(alpha, beta_inner, beta_leaf, ctx, idpf::Nonce(nonce.data(), 16),
                std::span<const uint8_t, idpf::kRandSize>(rand.data(), idpf::kRandSize));
  check.Succeeded("gen", generated.has_value(), true, generated ? "" : generated.error().message());
  if (!generated) return;
  check.Equal("gen: public_share", idpf->EncodePublicShare(generated->public_share), public_share);
  check.Equal("gen: key 0", generated->keys[0], keys[0]);
  check.Equal("gen: key 1", generated->keys[1], keys[1]);
}

}  // namespace

std::string KindFromFileName(std::string_view file_name) {
  size_t slash = file_name.find_last_of('/');
  std::string_view base = slash == std::string_view::npos ? file_name : file_name.substr(slash + 1);
  size_t cut = base.find('_');
  if (cut == std::string_view::npos) cut = base.find('.');
  return std::string(base.substr(0, cut));
}

std::vector<std::string> SupportedKinds() {
  return {"Poplar1",
          "Prio3Count",
          "Prio3Sum",
          "Prio3SumVec",
          "Prio3SumVecWithMultiproof",
          "Prio3Histogram",
          "Prio3MultihotCountVec",
          "Prio3HigherDegree",
          "IdpfBBCGGI21",
          "XofTurboShake128",
          "XofFixedKeyAes128"};
}

std::string_view StatusName(VectorReport::Status status) {
  switch (status) {
    case VectorReport::Status::kPassed:
      return "passed";
    case VectorReport::Status::kFailed:
      return "FAILED";
    case VectorReport::Status::kUnsupported:
      return "unsupported";
    case VectorReport::Status::kMalformed:
      return "malformed";
  }
  return "unknown";
}

VectorReport CheckVector(std::string_view kind, std::string_view json_text) {
  VectorReport report;
  report.kind = std::string(kind);
  boost::system::error_code parse_error;
  json::value vector = json::parse(json_text, parse_error);
  if (parse_error) {
    report.status = VectorReport::Status::kMalformed;
    report.error = "not valid JSON: " + parse_error.message();
    return report;
  }
  Reader reader;
  report.status = VectorReport::Status::kPassed;
  if (kind == "XofTurboShake128" || kind == "XofFixedKeyAes128") {
    CheckXofVector(kind, vector, reader, report);
  } else if (kind == "IdpfBBCGGI21") {
    CheckIdpfVector(vector, reader, report);
  } else {
    CheckVdafVector(kind, vector, reader, report);
  }
  if (report.status == VectorReport::Status::kUnsupported) return report;
  if (reader.problem()) {
    report.status = VectorReport::Status::kMalformed;
    report.error = *reader.problem();
  } else if (!report.mismatches.empty()) {
    report.status = VectorReport::Status::kFailed;
  } else if (report.checks == 0) {
    report.status = VectorReport::Status::kMalformed;
    report.error = "the vector has nothing to check";
  }
  return report;
}

}  // namespace canopy::conformance
