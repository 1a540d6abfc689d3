// Benchmarks for the DAP layer: encoding and decoding an aggregation job
// initialisation of 1,000 Poplar1 reports at BITS = 256, and the per-report
// cost of building (shard + two HPKE seals) and opening (one HPKE open) a
// report.
#include <benchmark/benchmark.h>

#include <optional>

#include "dap/messages.h"
#include "dap/report.h"
#include "dap/task.h"
#include "idpf/bit_string.h"

namespace canopy::bench {
namespace {

using namespace canopy::dap;

struct Fixture {
  UploadTarget target;
  std::unique_ptr<poplar::Vdaf> vdaf;
  std::optional<AggregatorHpkeKey> leader_key;
  std::optional<AggregatorHpkeKey> helper_key;

  Fixture() {
    target.task_configuration.leader_aggregator_endpoint = {'l'};
    target.task_configuration.helper_aggregator_endpoint = {'h'};
    target.task_configuration.time_precision = 60;
    target.task_configuration.min_batch_size = 1;
    target.task_configuration.vdaf_type = static_cast<uint32_t>(VdafType::kPoplar1);
    target.task_configuration.vdaf_configuration = Poplar1Configuration(256);
    vdaf = std::move(*MakeVdaf(target.task_configuration.vdaf_type,
                               target.task_configuration.vdaf_configuration));
    for (int i = 0; i < 2; ++i) {
      auto pair = *crypto::hpke::GenerateKeyPair(crypto::hpke::KemId::kX25519HkdfSha256);
      HpkeConfig config{static_cast<uint8_t>(i + 1), 0x0020, 1, 1, pair.public_key};
      auto key = *crypto::hpke::RecipientKey::Create(crypto::hpke::KemId::kX25519HkdfSha256,
                                                     pair.private_key);
      (i == 0 ? target.leader_hpke_config : target.helper_hpke_config) = config;
      (i == 0 ? leader_key : helper_key).emplace(AggregatorHpkeKey{config, std::move(key)});
    }
  }
};

Fixture& SharedFixture() {
  static Fixture fixture;
  return fixture;
}

idpf::BitString Measurement(uint64_t seed) {
  idpf::BitString string;
  for (int i = 0; i < 256; ++i)
    string = string.Extended(((seed * 0x9e3779b97f4a7c15ULL) >> (i % 64)) & 1);
  return string;
}

AggregationJobInitReq MakeInitRequest(size_t reports) {
  Fixture& fixture = SharedFixture();
  AggregationJobInitReq request;
  request.agg_param = {0, 0, 0, 0, 0, 2, 0x00, 0x80};
  for (size_t i = 0; i < reports; ++i) {
    Report report = *BuildReport(fixture.target, *fixture.vdaf, Measurement(i), 1000);
    request.verify_inits.push_back(
        {{report.metadata, report.public_share, report.helper_encrypted_input_share},
         Bytes(33, 1)});
  }
  return request;
}

void BM_EncodeAggregationJobInit1000(benchmark::State& state) {
  static const AggregationJobInitReq request = MakeInitRequest(1000);
  size_t bytes = 0;
  for (auto _ : state) {
    Result<Bytes> encoded = Encode(request);
    bytes = encoded->size();
    benchmark::DoNotOptimize(encoded);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_EncodeAggregationJobInit1000)->Unit(benchmark::kMicrosecond);

void BM_DecodeAggregationJobInit1000(benchmark::State& state) {
  static const Bytes encoded = *Encode(MakeInitRequest(1000));
  for (auto _ : state) {
    Result<AggregationJobInitReq> decoded = Decode<AggregationJobInitReq>(encoded);
    benchmark::DoNotOptimize(decoded);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * encoded.size()));
}
BENCHMARK(BM_DecodeAggregationJobInit1000)->Unit(benchmark::kMicrosecond);

// A client's whole report: shard (BITS = 256) and two HPKE seals.
void BM_BuildPoplar1Report(benchmark::State& state) {
  Fixture& fixture = SharedFixture();
  uint64_t seed = 0;
  for (auto _ : state) {
    Result<Report> report = BuildReport(fixture.target, *fixture.vdaf, Measurement(seed++), 1000);
    benchmark::DoNotOptimize(report);
  }
}
BENCHMARK(BM_BuildPoplar1Report)->Unit(benchmark::kMicrosecond);

// An aggregator opening its input share (one HPKE open, AAD rebuilt).
void BM_OpenPoplar1InputShare(benchmark::State& state) {
  Fixture& fixture = SharedFixture();
  static const Report report = *BuildReport(fixture.target, *fixture.vdaf, Measurement(1), 1000);
  const AggregatorHpkeKey* keys[] = {&*fixture.helper_key};
  for (auto _ : state) {
    auto share = OpenInputShare(fixture.target.task_id, fixture.target.task_configuration,
                                report.metadata, report.public_share,
                                report.helper_encrypted_input_share, Role::kHelper, keys);
    benchmark::DoNotOptimize(share);
  }
}
BENCHMARK(BM_OpenPoplar1InputShare)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace canopy::bench
