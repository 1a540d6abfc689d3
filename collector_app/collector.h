// The collector's side of DAP-19 collection (section 4.7): create a
// collection job on the leader, poll it until the aggregators have answered,
// open both encrypted aggregate shares with the collector's HPKE key and
// unshard them into the aggregate result.
//
// `LoadCollectorSetup` turns a collector configuration file into everything
// a collection needs, checking that the configuration, its task file and its
// key agree before any request is sent.
#ifndef CANOPY_COLLECTOR_APP_COLLECTOR_H_
#define CANOPY_COLLECTOR_APP_COLLECTOR_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "crypto/error.h"
#include "crypto/hpke.h"
#include "dap/http_client.h"
#include "dap/messages.h"
#include "poplar/vdaf.h"
#include "proto/canopy_config.pb.h"

namespace canopy::collector {

// The media type of a collection job request.
inline constexpr char kCollectionJobReqMediaType[] =
    "application/ppm-dap;message=collection-job-req";

// The task as the collector sees it.
struct CollectorTask {
  dap::TaskId task_id{};
  // The configuration both aggregators hold; it is bound into the aggregate
  // shares' associated data, so it must be byte for byte theirs.
  dap::TaskConfiguration configuration;
  std::shared_ptr<const poplar::Vdaf> vdaf;
  // The leader's base URL ("http://host:port/prefix/").
  std::string leader_url;
};

// How a collector polls.
struct CollectorOptions {
  // The bearer token the leader expects from collectors.
  std::string collector_token;
  // Polls start this soon after creation and back off (x1.25 each time) up to
  // poll_interval: a heavy-hitters round is often ready in a fraction of a
  // second, and a walk has many rounds. The leader's Retry-After is only a
  // hint (DAP-19 lets the collector poll at its own pace).
  std::chrono::milliseconds first_poll_delay{10};
  std::chrono::milliseconds poll_interval{5000};
  // How long one collection job may stay pending before Collect gives up.
  std::chrono::milliseconds collection_timeout{std::chrono::hours(1)};
};

// A finished collection, decrypted and unsharded.
struct Collection {
  uint64_t report_count = 0;
  // The interval the batch's reports span (DAP-19: as the leader reports it).
  dap::Interval interval;
  poplar::AggregateResult result;
  // How many polls it took; for progress reports.
  int polls = 0;
};

// Collects batches of one task. Safe to use from one thread at a time; the
// HttpClient it is given must outlive it (it may be shared).
class Collector {
 public:
  // `key` is the collector's HPKE private key, `hpke_config` its public
  // configuration (the task's collector_hpke_config). Errors
  // (kInvalidArgument): a task without a VDAF or leader URL, an empty token.
  static Result<Collector> Create(CollectorTask task, crypto::hpke::RecipientKey key,
                                  dap::HpkeConfig hpke_config, dap::HttpClient& http,
                                  CollectorOptions options);

  Collector(Collector&&) noexcept;
  Collector& operator=(Collector&&) noexcept;
  ~Collector();

  // Creates (or finds again: the leader derives the job's ID from the
  // request, so sending the same request twice names the same job) a
  // collection job and returns its URL. Errors: the HTTP client's
  // (kIoError, ...); kInvalidArgument when the leader refuses the request,
  // with the problem document's type and detail ("batchOverlap: ...") or the
  // status.
  Result<std::string> StartCollection(const dap::CollectionJobReq& request);

  // Polls the job at `job_url` until it is no longer pending, then decrypts
  // and unshards. Errors: the HTTP client's; kIoError when the job is still
  // pending after collection_timeout; kInvalidArgument when the leader
  // answers with a problem (the collection failed: its type and detail);
  // kDecodeError for a malformed response; kVerifyFailed when a share does
  // not open with the collector's key; the VDAF's unshard errors.
  Result<Collection> FinishCollection(const dap::CollectionJobReq& request,
                                      const std::string& job_url);

  // StartCollection, then FinishCollection.
  Result<Collection> Collect(const dap::CollectionJobReq& request);

  // Opens both aggregate shares of a collection job's response and unshards
  // them. Errors: as FinishCollection's decryption and unsharding.
  Result<Collection> Decrypt(const dap::CollectionJobReq& request,
                             const dap::CollectionJobResp& response) const;

  const CollectorTask& task() const;

 private:
  struct State;
  explicit Collector(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Everything a collector configuration file describes, loaded and checked.
struct CollectorSetup {
  config::CollectorConfig config;  // Paths resolved, defaults filled in.
  config::TaskDefinition task_definition;
  CollectorTask task;
  dap::HpkeConfig hpke_config;  // The collector's public configuration.
  std::unique_ptr<crypto::hpke::RecipientKey> key;
  CollectorOptions options;
};

// Loads a collector configuration, its task file and its HPKE key, and
// checks that they agree: the configuration's task_id is the task's (its
// leader_url may differ from the task's, for example a local TLS proxy), the
// key's config_id and suite are the task's collector_hpke_config
// and its public key is the one the task names, the batch fits the task's
// batch mode, and for a heavy-hitters walk the task is Poplar1 with the
// walk's bits, with the multi-level collection extension allowing as many
// collections as the walk has rounds. Errors: the loaders' (kIoError,
// kInvalidArgument naming file, line and field), kInvalidArgument naming the
// file and the two fields that disagree.
Result<CollectorSetup> LoadCollectorSetup(const std::string& config_path);

// The number of collections (rounds) a heavy-hitters walk with these
// settings makes at most: first_round_bits, then bits_per_round each.
uint32_t WalkRounds(const config::HeavyHitters& settings);

// The DAP query of the configuration's batch: its time interval in
// time_precision units (the configuration gives seconds), or "the next batch"
// for a leader-selected task. Errors (kInvalidArgument): an interval that is
// not a multiple of the task's time precision.
Result<dap::Query> BatchQuery(const config::CollectorConfig& config,
                              const dap::TaskConfiguration& task);

}  // namespace canopy::collector

#endif  // CANOPY_COLLECTOR_APP_COLLECTOR_H_
