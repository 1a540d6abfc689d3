// Group commit for uploads: every upload request waiting to be stored goes
// into one datastore transaction, so the cost of a commit (a write to the
// database's log) is shared by all the requests that arrived while the
// previous one was being written. A request is answered only after the
// transaction holding its reports has committed, so an acknowledged report
// survives a crash.
#ifndef CANOPY_AGGREGATOR_UPLOAD_WRITER_H_
#define CANOPY_AGGREGATOR_UPLOAD_WRITER_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "aggregator/datastore.h"
#include "aggregator/task_registry.h"

namespace canopy::aggregator {

class UploadWriter {
 public:
  // One upload request's reports: `errors[i]` is set for reports already
  // refused; the others are stored from `rows[i]`. `done` gets the final
  // errors (replays and collected batches added) or, when the datastore
  // failed, the error.
  struct Pending {
    std::shared_ptr<const Task> task;
    std::vector<ClientReportRow> rows;
    std::vector<std::optional<dap::ReportError>> errors;
    std::function<void(Result<std::vector<std::optional<dap::ReportError>>>)> done;
  };

  // Starts the writer thread. `datastore` must outlive the writer.
  explicit UploadWriter(Datastore& datastore);
  // Stores what is queued, answers it, and joins the thread.
  ~UploadWriter();

  UploadWriter(const UploadWriter&) = delete;
  UploadWriter& operator=(const UploadWriter&) = delete;

  void Submit(Pending pending);

 private:
  void Loop();
  void Store(std::vector<Pending>& batch);

  Datastore& datastore_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Pending> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_UPLOAD_WRITER_H_
