#include "collector_app/internal/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <vector>

namespace canopy::collector::internal {
namespace {

std::unexpected<Error> IoError(const std::string& what, const std::string& path, int error) {
  return MakeError(ErrorCode::kIoError, what + " " + path + ": " + std::strerror(error));
}

// Closes a descriptor when it goes out of scope.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  int get() const { return fd_; }
  // Closes now, so that a failing close (delayed write errors) is seen.
  int Close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

Result<void> WriteAll(int fd, std::string_view content, const std::string& path) {
  while (!content.empty()) {
    const ssize_t written = ::write(fd, content.data(), content.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot write", path, errno);
    }
    content.remove_prefix(static_cast<size_t>(written));
  }
  return {};
}

std::string FolderOf(const std::string& path) {
  const std::string folder = std::filesystem::path(path).parent_path().string();
  return folder.empty() ? "." : folder;
}

}  // namespace

Result<std::optional<std::string>> ReadWholeFile(const std::string& path, uint64_t max_bytes) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return IoError("cannot open", path, errno);
  }
  std::string content;
  std::vector<char> buffer(1 << 16);
  while (true) {
    const ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot read", path, errno);
    }
    if (got == 0) break;
    if (content.size() + static_cast<size_t>(got) > max_bytes) {
      return MakeError(ErrorCode::kIoError,
                       path + " is longer than " + std::to_string(max_bytes) + " bytes");
    }
    content.append(buffer.data(), static_cast<size_t>(got));
  }
  return std::optional<std::string>(std::move(content));
}

Result<void> WriteFileAtomically(const std::string& path, std::string_view content) {
  std::string pattern = path + ".tmp-XXXXXX";
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  FileDescriptor fd(::mkstemp(name.data()));
  if (fd.get() < 0) return IoError("cannot create a temporary file for", path, errno);
  const std::string temporary(name.data());
  auto fail = [&temporary](std::unexpected<Error> error) {
    ::unlink(temporary.c_str());
    return error;
  };
  if (auto written = WriteAll(fd.get(), content, temporary); !written) {
    return fail(std::unexpected(written.error()));
  }
  if (::fsync(fd.get()) != 0) return fail(IoError("cannot flush", temporary, errno));
  if (fd.Close() != 0) return fail(IoError("cannot close", temporary, errno));
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    return fail(IoError("cannot rename " + temporary + " to", path, errno));
  }
  const std::string folder = FolderOf(path);
  FileDescriptor folder_fd(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (folder_fd.get() < 0) return IoError("cannot open the folder", folder, errno);
  if (::fsync(folder_fd.get()) != 0) return IoError("cannot flush the folder", folder, errno);
  return {};
}

}  // namespace canopy::collector::internal
