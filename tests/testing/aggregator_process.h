// Programs the tests run as real processes: any program (ChildProcess: fork
// and exec with its output in files, wait, kill) and a `canopy-aggregator`
// service (AggregatorProcess: started until its /healthz answers, killed,
// restarted on the same configuration, stopped with SIGTERM).
//
// Neither depends on a test framework: failures are Result<> errors, which
// tests turn into failures and benchmarks into messages.
#ifndef CANOPY_TESTS_TESTING_AGGREGATOR_PROCESS_H_
#define CANOPY_TESTS_TESTING_AGGREGATOR_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/error.h"
#include "dap/http_client.h"

namespace canopy::testing {

// "exit status 1", "signal 9": a waitpid status for messages.
std::string DescribeWaitStatus(int status);

// Where a child's standard output and error go.
struct ChildOutput {
  // Files, opened for appending (created when missing). Equal paths share one
  // file, the two streams interleaved as written.
  std::string stdout_path;
  std::string stderr_path;
};

// One child process running a program. Move-only; the destructor kills the
// process (SIGKILL) if it still runs, so no child outlives its owner. The
// child also gets SIGKILL when the thread that started it dies, so a crashed
// test leaves no process behind.
class ChildProcess {
 public:
  // `argv[0]` is the program's path; the others are its arguments. Standard
  // input is /dev/null. Errors: kInvalidArgument for an empty argv; kIoError
  // when an output file cannot be opened or fork fails. A program that cannot
  // be executed exits with status 127.
  static Result<ChildProcess> Start(const std::vector<std::string>& argv,
                                    const ChildOutput& output);

  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // True while the process runs; reaps it (and records its status) once it
  // has exited.
  bool Running();
  // Waits until the process exits and returns its wait status. Errors:
  // kInvalidArgument when no process was started; kIoError when it still runs
  // after `timeout` (it is then killed).
  Result<int> Wait(std::chrono::milliseconds timeout);
  // SIGKILL, then reaps the process. No-op when it is not running.
  void Kill();
  // SIGTERM, then waits up to `timeout`. Returns the wait status. Errors: as
  // Wait's.
  Result<int> Terminate(std::chrono::milliseconds timeout);

  // The wait status once the process has been reaped.
  std::optional<int> wait_status() const { return wait_status_; }
  pid_t pid() const { return pid_; }

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  bool Reap(bool block);

  pid_t pid_ = -1;
  std::optional<int> wait_status_;
};

// One `canopy-aggregator --config FILE` process, restartable on the same
// configuration (hence database and port). Its standard output and error are
// appended to one log file, with a line marking each start and exit.
class AggregatorProcess {
 public:
  // Starts nothing. `binary` is the canopy-aggregator executable; `port` the
  // one its configuration listens on (for the health probe and url()).
  AggregatorProcess(std::string name, std::string binary, std::string config_path,
                    std::string log_path, uint16_t port);
  // Kills the process if it still runs.
  ~AggregatorProcess();
  AggregatorProcess(const AggregatorProcess&) = delete;
  AggregatorProcess& operator=(const AggregatorProcess&) = delete;

  // Starts the process and waits until GET /healthz answers 200. Errors:
  // kInvalidArgument when it already runs; kIoError when fork/exec fails,
  // when the process exits first (with its status) or when it is not healthy
  // within `timeout` (it is then killed); the HTTP client's creation errors.
  Result<void> Start(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGKILL, then reaps the process. No-op when not running.
  void Kill();
  // SIGTERM, then waits up to `timeout` for the process to exit. Returns its
  // wait status (as waitpid gives it). Errors: kInvalidArgument when it is
  // not running; kIoError when it still runs after `timeout` (it is then
  // killed).
  Result<int> Terminate(std::chrono::milliseconds timeout);
  // True while the process runs (reaping it, and noting its exit in the log,
  // if it has exited).
  bool Running();

  const std::string& name() const { return name_; }
  const std::string& config_path() const { return config_path_; }
  const std::string& log_path() const { return log_path_; }
  // "http://127.0.0.1:<port>/".
  std::string url() const;
  uint16_t port() const { return port_; }
  // How many times Start was called.
  int starts() const { return starts_; }
  // The running process's ID (for its /proc entries), -1 before a start.
  pid_t pid() const { return process_.pid(); }

 private:
  void AppendToLog(const std::string& line) const;

  std::string name_;
  std::string binary_;
  std::string config_path_;
  std::string log_path_;
  uint16_t port_;
  ChildProcess process_;
  int starts_ = 0;
  std::unique_ptr<dap::HttpClient> http_;
};

}  // namespace canopy::testing

#endif  // CANOPY_TESTS_TESTING_AGGREGATOR_PROCESS_H_
