#include "tests/testing/aggregator_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <thread>
#include <utility>

namespace canopy::testing {

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

// --- ChildProcess.

Result<ChildProcess> ChildProcess::Start(const std::vector<std::string>& argv,
                                         const ChildOutput& output) {
  if (argv.empty()) return MakeError(ErrorCode::kInvalidArgument, "no program to start");
  // Everything the child needs is prepared before fork: after it, the child
  // may only make async-signal-safe calls.
  const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
  int out_fd = open(output.stdout_path.c_str(), flags, 0644);
  if (out_fd < 0) return MakeError(ErrorCode::kIoError, "cannot open " + output.stdout_path);
  int err_fd = output.stderr_path == output.stdout_path
                   ? out_fd
                   : open(output.stderr_path.c_str(), flags, 0644);
  if (err_fd < 0) {
    close(out_fd);
    return MakeError(ErrorCode::kIoError, "cannot open " + output.stderr_path);
  }
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::vector<std::string> arguments = argv;
  std::vector<char*> pointers;
  for (std::string& argument : arguments) pointers.push_back(argument.data());
  pointers.push_back(nullptr);

  pid_t pid = fork();
  if (pid == 0) {
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
#ifdef SYS_close_range
    syscall(SYS_close_range, 3U, ~0U, 0U);  // No test sockets leak into the program.
#endif
    // The program must not outlive a test that crashed.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execv(pointers[0], pointers.data());
    _exit(127);
  }
  close(out_fd);
  if (err_fd != out_fd) close(err_fd);
  if (null_fd >= 0) close(null_fd);
  if (pid < 0) return MakeError(ErrorCode::kIoError, "fork failed for " + argv[0]);
  return ChildProcess(pid);
}

ChildProcess::~ChildProcess() { Kill(); }

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), wait_status_(other.wait_status_) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    Kill();
    pid_ = std::exchange(other.pid_, -1);
    wait_status_ = other.wait_status_;
  }
  return *this;
}

bool ChildProcess::Reap(bool block) {
  if (pid_ <= 0) return true;
  int status = 0;
  pid_t reaped;
  do {
    reaped = waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (reaped < 0 && errno == EINTR);
  if (reaped == pid_ || reaped < 0) {
    // reaped < 0: not our child any more (already reaped); nothing to wait for.
    if (reaped == pid_) wait_status_ = status;
    pid_ = -1;
    return true;
  }
  return false;
}

bool ChildProcess::Running() { return !Reap(false); }

Result<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0 && !wait_status_) {
    return MakeError(ErrorCode::kInvalidArgument, "no process was started");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Polling rather than a blocking wait keeps the timeout simple and costs
  // at most the poll period per program run.
  auto period = std::chrono::milliseconds(1);
  while (Running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      const pid_t pid = pid_;
      Kill();
      return MakeError(ErrorCode::kIoError, "process " + std::to_string(pid) + " still ran after " +
                                                std::to_string(timeout.count()) + " ms; killed it");
    }
    std::this_thread::sleep_for(period);
    period = std::min(period * 2, std::chrono::milliseconds(20));
  }
  return wait_status_.value_or(0);
}

void ChildProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  Reap(true);
}

Result<int> ChildProcess::Terminate(std::chrono::milliseconds timeout) {
  if (pid_ > 0) kill(pid_, SIGTERM);
  return Wait(timeout);
}

// --- AggregatorProcess.

AggregatorProcess::AggregatorProcess(std::string name, std::string binary, std::string config_path,
                                     std::string log_path, uint16_t port)
    : name_(std::move(name)),
      binary_(std::move(binary)),
      config_path_(std::move(config_path)),
      log_path_(std::move(log_path)),
      port_(port) {}

AggregatorProcess::~AggregatorProcess() { Kill(); }

std::string AggregatorProcess::url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/";
}

void AggregatorProcess::AppendToLog(const std::string& line) const {
  std::ofstream log(log_path_, std::ios::app);
  log << "=== " << name_ << ": " << line << " ===\n";
}

Result<void> AggregatorProcess::Start(std::chrono::milliseconds timeout) {
  if (Running()) return MakeError(ErrorCode::kInvalidArgument, name_ + " is already running");
  if (http_ == nullptr) {
    // One attempt with short timeouts: the health probe polls on its own.
    dap::HttpClientOptions options;
    options.max_attempts = 1;
    options.connect_timeout = std::chrono::milliseconds(1000);
    options.request_timeout = std::chrono::milliseconds(2000);
    auto client = dap::HttpClient::Create(options);
    if (!client) return std::unexpected(client.error());
    http_ = std::make_unique<dap::HttpClient>(std::move(*client));
  }
  ++starts_;
  AppendToLog("start " + std::to_string(starts_));
  auto started = ChildProcess::Start({binary_, "--config", config_path_}, {log_path_, log_path_});
  if (!started) return std::unexpected(started.error());
  process_ = std::move(*started);

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string health = url() + "healthz";
  for (;;) {
    if (!process_.Running()) {
      const std::string status = DescribeWaitStatus(process_.wait_status().value_or(0));
      AppendToLog("exited while starting, " + status);
      return MakeError(ErrorCode::kIoError, name_ + " exited while starting: " + status);
    }
    auto answer = http_->Send(dap::HttpMethod::kGet, health);
    if (answer && answer->status == 200) return {};
    if (std::chrono::steady_clock::now() > deadline) {
      Kill();
      return MakeError(ErrorCode::kIoError, name_ + " did not become healthy");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void AggregatorProcess::Kill() {
  if (!process_.Running()) return;
  process_.Kill();
  if (http_ != nullptr) http_->CloseIdleConnections();
}

Result<int> AggregatorProcess::Terminate(std::chrono::milliseconds timeout) {
  if (!process_.Running()) {
    return MakeError(ErrorCode::kInvalidArgument, name_ + " is not running");
  }
  auto status = process_.Terminate(timeout);
  if (http_ != nullptr) http_->CloseIdleConnections();
  if (!status) return MakeError(ErrorCode::kIoError, name_ + " still ran after SIGTERM");
  return *status;
}

bool AggregatorProcess::Running() {
  if (process_.pid() <= 0) return false;
  if (process_.Running()) return true;
  AppendToLog("exited, " + DescribeWaitStatus(process_.wait_status().value_or(0)));
  return false;
}

}  // namespace canopy::testing
