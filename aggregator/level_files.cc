#include "aggregator/level_files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <vector>

#include "crypto/secure_wipe.h"

namespace canopy::aggregator {
namespace {

// Levels a file holds: a round of a walk at stride 1 to 4 reads one or two
// files per report, and a report's first write is one record per file. Long
// strings put more levels in a file, so that a task never holds more than
// kMaxFiles descriptors.
constexpr size_t kLevelsPerFile = 8;
constexpr size_t kMaxFiles = 32;

size_t LevelsPerFile(size_t levels) {
  return std::max(kLevelsPerFile, (levels + kMaxFiles - 1) / kMaxFiles);
}

std::string ErrnoText(int error) { return std::strerror(error); }

// A file in `directory` that no name refers to: it lives until closed.
Result<int> MakeUnlinkedFile(const std::string& directory) {
  // mkostemp replaces the six X's with a name of its own.
  std::string path = directory + "/canopy-levels-XXXXXX";
  const int fd = mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) {
    return MakeError(ErrorCode::kIoError,
                     "cannot make a level file in " + directory + ": " + ErrnoText(errno));
  }
  // A file left with a name would outlive the process with shares in it.
  if (unlink(path.c_str()) != 0) {
    const int error = errno;
    close(fd);
    return MakeError(ErrorCode::kIoError,
                     "cannot unlink the level file " + path + ": " + ErrnoText(error));
  }
  return fd;
}

// pwrite and pread until done; false with errno set on failure.
bool WriteAll(int fd, const uint8_t* data, size_t size, uint64_t offset) {
  while (size > 0) {
    const ssize_t done = pwrite(fd, data, size, static_cast<off_t>(offset));
    if (done < 0 && errno == EINTR) continue;
    if (done <= 0) {
      if (done == 0) errno = EIO;
      return false;
    }
    data += done;
    size -= static_cast<size_t>(done);
    offset += static_cast<uint64_t>(done);
  }
  return true;
}

bool ReadAll(int fd, uint8_t* data, size_t size, uint64_t offset) {
  while (size > 0) {
    const ssize_t done = pread(fd, data, size, static_cast<off_t>(offset));
    if (done < 0 && errno == EINTR) continue;
    if (done <= 0) {
      if (done == 0) errno = EIO;  // Short: the file lost what was written.
      return false;
    }
    data += done;
    size -= static_cast<size_t>(done);
    offset += static_cast<uint64_t>(done);
  }
  return true;
}

}  // namespace

// One task's files and slot numbers. Thread-safe.
class LevelFiles::TaskFiles {
 public:
  static Result<std::shared_ptr<TaskFiles>> Create(const std::string& directory,
                                                   std::span<const size_t> record_sizes) {
    auto files = std::shared_ptr<TaskFiles>(new TaskFiles());
    files->record_sizes_.assign(record_sizes.begin(), record_sizes.end());
    const size_t levels_per_file = LevelsPerFile(record_sizes.size());
    for (size_t first = 0; first < record_sizes.size(); first += levels_per_file) {
      File file;
      file.index = files->files_.size();
      file.first_level = first;
      file.end_level = std::min(first + levels_per_file, record_sizes.size());
      for (size_t level = first; level < file.end_level; ++level) {
        files->level_file_.push_back(files->files_.size());
        files->level_offset_.push_back(file.record_bytes);
        file.record_bytes += record_sizes[level];
      }
      Result<int> fd = MakeUnlinkedFile(directory);
      if (!fd) return std::unexpected(fd.error());
      file.fd = *fd;
      files->files_.push_back(file);
    }
    files->pending_.resize(files->files_.size());
    files->written_end_.resize(files->files_.size());
    files->maps_.resize(files->files_.size());
    return files;
  }

  ~TaskFiles() {
    for (Pending& pending : pending_) {
      crypto::SecureWipe(pending.bytes.data(), pending.bytes.size());
    }
    for (const std::vector<Map>& maps : maps_) {
      for (const Map& map : maps) munmap(const_cast<uint8_t*>(map.data), map.length);
    }
    for (const File& file : files_) close(file.fd);
  }

  bool Fits(std::span<const size_t> record_sizes) const {
    return std::equal(record_sizes.begin(), record_sizes.end(), record_sizes_.begin(),
                      record_sizes_.end());
  }

  // Hands back a slot numbered by Write.
  void Release(uint64_t slot) {
    std::lock_guard<std::mutex> lock(mutex_);
    --in_use_;
    free_.push_back(slot);
  }

  Usage usage() const {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t bytes_per_slot = 0;
    for (const File& file : files_) bytes_per_slot += file.record_bytes;
    uint64_t maps = 0;
    for (const std::vector<Map>& file_maps : maps_) maps += file_maps.size();
    return {in_use_, next_ * bytes_per_slot, maps};
  }

  // Writes the records of levels from `first` on, back to back, for `slot`;
  // a slot not yet acquired (nullopt) is acquired here first, so that
  // reports stored one after another, by whichever threads, get consecutive
  // slots and their records join one pending write per file.
  Result<void> Write(std::optional<uint64_t>& slot, size_t first,
                     std::span<const uint8_t> records) {
    // Checked whole first, so that a bad call writes nothing.
    auto nothing = [](const File&, size_t, size_t, size_t) -> Result<void> { return {}; };
    if (Result<void> fits = ForEachFile(first, records.size(), nothing); !fits) return fits;
    std::lock_guard<std::mutex> lock(mutex_);
    const bool acquired_here = !slot.has_value();
    if (acquired_here) slot = AcquireLocked();
    Result<void> written = ForEachFile(
        first, records.size(),
        [&](const File& file, size_t level, size_t offset, size_t bytes) -> Result<void> {
          return WriteLocked(file, *slot, level, records.subspan(offset, bytes));
        });
    if (!written && acquired_here) {
      // Records it left in pending writes belong to a free slot: a later
      // write of that slot flushes them first (see WriteLocked).
      --in_use_;
      free_.push_back(*slot);
      slot.reset();
    }
    return written;
  }

  // Reads the records of levels [first, end), back to back.
  Result<void> Read(uint64_t slot, size_t first, size_t end, std::span<uint8_t> out) {
    if (first > end || end > record_sizes_.size()) {
      return MakeError(ErrorCode::kInvalidArgument, "levels out of range");
    }
    size_t bytes = 0;
    for (size_t level = first; level < end; ++level) bytes += record_sizes_[level];
    if (bytes != out.size()) {
      return MakeError(ErrorCode::kInvalidArgument, "the levels do not fill the output");
    }
    return ForEachFile(
        first, out.size(),
        [&](const File& file, size_t level, size_t offset, size_t size) -> Result<void> {
          std::span<uint8_t> into = out.subspan(offset, size);
          const uint8_t* mapped = nullptr;
          if (CopyPendingOrMap(file, slot, level, into, mapped)) return {};
          // Not pending, so in the file: only the slot's owner writes it,
          // and it is reading now. The map stays until the files close.
          if (mapped != nullptr) {
            std::memcpy(into.data(), mapped, into.size());
            return {};
          }
          if (!ReadAll(file.fd, into.data(), into.size(), Position(file, slot, level))) {
            return MakeError(ErrorCode::kIoError, "cannot read a level file: " + ErrnoText(errno));
          }
          return {};
        });
  }

 private:
  struct File {
    size_t index = 0;
    size_t first_level = 0;
    size_t end_level = 0;
    size_t record_bytes = 0;  // One slot's records of this file's levels.
    int fd = -1;
  };

  // Whole records of consecutive slots waiting to be written to one file
  // with one call: a report's first write is a few hundred bytes per file,
  // and a pwrite of each cost about 3 us in the kernel (a fifth of the
  // helper's time in a walk's first round, measured). Reads of a pending
  // slot are served from here, so nothing needs flushing on a timer: the
  // files are not kept across restarts anyway. 64 KB a file (up to 2 MB a
  // task, kept while the task has files) make a write of about 160 records
  // at 256 bits, and keep the writes done under the lock short.
  struct Pending {
    uint64_t first_slot = 0;
    uint64_t count = 0;
    std::vector<uint8_t> bytes;
  };
  static constexpr size_t kPendingBytes = 64 * 1024;

  // Read-only maps of a file, through which reads need no system call: a
  // round of a walk reads one record per report and file, and a pread each
  // cost a few microseconds in the kernel (9 % of each aggregator's time in
  // the later rounds of a million-report walk, with the database's reads).
  // A file that has grown past its newest map gets a larger one; older maps
  // stay until the files close (a reader may still be copying from one).
  // Only what was written is read through a map: past a file's end a map
  // faults.
  struct Map {
    const uint8_t* data = nullptr;
    size_t length = 0;
  };
  static constexpr size_t kMinMapBytes = size_t{1} << 20;

  TaskFiles() = default;

  uint64_t AcquireLocked() {
    ++in_use_;
    if (!free_.empty()) {
      const uint64_t slot = free_.back();
      free_.pop_back();
      return slot;
    }
    return next_++;
  }

  // Writes one file's part of a slot's records: appended to the file's
  // pending write when it is a whole record of the next slot, else after
  // that pending write is flushed (so that a freed and reused slot's old
  // records never land after its new ones).
  Result<void> WriteLocked(const File& file, uint64_t slot, size_t level,
                           std::span<const uint8_t> bytes) {
    Pending& pending = pending_[file.index];
    const bool whole = level == file.first_level && bytes.size() == file.record_bytes;
    if (whole && pending.count > 0 && slot == pending.first_slot + pending.count &&
        pending.bytes.size() + bytes.size() <= kPendingBytes) {
      pending.bytes.insert(pending.bytes.end(), bytes.begin(), bytes.end());
      ++pending.count;
      return {};
    }
    if (Result<void> flushed = FlushLocked(file); !flushed) return flushed;
    if (whole) {
      // Reserved whole at once: a growing vector would leave copies of
      // the shares behind in the memory it gives back.
      pending.bytes.reserve(std::max(kPendingBytes, bytes.size()));
      pending.first_slot = slot;
      pending.count = 1;
      pending.bytes.assign(bytes.begin(), bytes.end());
      return {};
    }
    const uint64_t position = Position(file, slot, level);
    if (!WriteAll(file.fd, bytes.data(), bytes.size(), position)) {
      return MakeError(ErrorCode::kIoError, "cannot write a level file: " + ErrnoText(errno));
    }
    Written(file, position + bytes.size());
    return {};
  }

  // Notes that a file holds written bytes up to `end` (under the lock).
  void Written(const File& file, uint64_t end) {
    written_end_[file.index] = std::max(written_end_[file.index], end);
  }

  // Writes a file's pending records. On failure they stay pending (reads
  // still find them) and the error is returned to the writer that needed
  // the room, whose report then keeps its levels in memory.
  Result<void> FlushLocked(const File& file) {
    Pending& pending = pending_[file.index];
    if (pending.count == 0) return {};
    const uint64_t offset = pending.first_slot * file.record_bytes;
    if (!WriteAll(file.fd, pending.bytes.data(), pending.bytes.size(), offset)) {
      return MakeError(ErrorCode::kIoError, "cannot write a level file: " + ErrnoText(errno));
    }
    Written(file, offset + pending.bytes.size());
    // The records hold correlated-randomness shares: the buffer is wiped,
    // not just emptied, as a report's own copy is.
    crypto::SecureWipe(pending.bytes.data(), pending.bytes.size());
    pending.bytes.clear();
    pending.count = 0;
    return {};
  }

  // Copies a slot's records of `file` from `level` on into `into` when the
  // slot is pending there, and returns true. Otherwise sets `mapped` to
  // where a map of the file shows them (null when they lie past what was
  // written, or no map could be made: then they are to be read).
  bool CopyPendingOrMap(const File& file, uint64_t slot, size_t level, std::span<uint8_t> into,
                        const uint8_t*& mapped) {
    std::lock_guard<std::mutex> lock(mutex_);
    const Pending& pending = pending_[file.index];
    if (pending.count > 0 && slot >= pending.first_slot &&
        slot < pending.first_slot + pending.count) {
      const size_t at =
          static_cast<size_t>(slot - pending.first_slot) * file.record_bytes + level_offset_[level];
      std::memcpy(into.data(), pending.bytes.data() + at, into.size());
      return true;
    }
    const uint64_t position = Position(file, slot, level);
    const uint64_t end = position + into.size();
    if (end > written_end_[file.index]) return false;
    std::vector<Map>& maps = maps_[file.index];
    if (maps.empty() || maps.back().length < end) {
      if (map_failed_) return false;
      const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
      size_t length = std::max<size_t>(kMinMapBytes, 2 * written_end_[file.index]);
      length = (length + page - 1) / page * page;
      void* data = mmap(nullptr, length, PROT_READ, MAP_SHARED, file.fd, 0);
      if (data == MAP_FAILED) {
        // Address space exhausted or limited: reads go on with pread.
        map_failed_ = true;
        return false;
      }
      maps.push_back({static_cast<const uint8_t*>(data), length});
    }
    mapped = maps.back().data + position;
    return false;
  }

  uint64_t Position(const File& file, uint64_t slot, size_t level) const {
    return slot * file.record_bytes + level_offset_[level];
  }

  // Calls `visit(file, first level, offset in the bytes, size)` for each
  // file that the records of `bytes` bytes from level `first` on touch.
  template <typename Visit>
  Result<void> ForEachFile(size_t first, size_t bytes, Visit visit) const {
    size_t level = first;
    size_t offset = 0;
    while (offset < bytes) {
      if (level >= record_sizes_.size()) {
        return MakeError(ErrorCode::kInvalidArgument, "records beyond the last level");
      }
      const File& file = files_[level_file_[level]];
      size_t size = 0;
      const size_t start = level;
      for (; level < file.end_level && offset + size < bytes; ++level) {
        size += record_sizes_[level];
      }
      if (offset + size > bytes) {
        return MakeError(ErrorCode::kInvalidArgument, "records end inside a level");
      }
      if (Result<void> done = visit(file, start, offset, size); !done) return done;
      offset += size;
    }
    return {};
  }

  std::vector<size_t> record_sizes_;
  std::vector<size_t> level_file_;    // The file of each level.
  std::vector<size_t> level_offset_;  // Each level's offset in its file's record.
  std::vector<File> files_;

  // Guards the slot numbers, pending writes, written ends and maps.
  mutable std::mutex mutex_;
  uint64_t next_ = 0;  // Slots ever handed out; the files span this many.
  uint64_t in_use_ = 0;
  std::vector<uint64_t> free_;
  std::vector<Pending> pending_;        // One per file.
  std::vector<uint64_t> written_end_;   // Per file: bytes written from its start.
  std::vector<std::vector<Map>> maps_;  // Per file, newest last.
  bool map_failed_ = false;
};

// One report's slot in its task's files, numbered at its first write.
class LevelFiles::Slot final : public poplar::LevelSlot {
 public:
  explicit Slot(std::shared_ptr<TaskFiles> files) : files_(std::move(files)) {}
  ~Slot() override {
    if (slot_) files_->Release(*slot_);
  }

  Result<void> Write(size_t first, std::span<const uint8_t> records) override {
    return files_->Write(slot_, first, records);
  }

  Result<void> Read(size_t first, size_t end, std::span<uint8_t> out) override {
    if (!slot_) return MakeError(ErrorCode::kInvalidArgument, "nothing was written to the slot");
    Result<void> read = files_->Read(*slot_, first, end, out);
    if (!read && read.error().code() == ErrorCode::kIoError) {
      // What was written cannot be read back: going on would verify from
      // wrong data or reject a good report. The datastore holds every share,
      // so a restart prepares the reports again and loses nothing.
      std::cerr << "canopy-aggregator: " << read.error().message()
                << "; stopping (a restart prepares the reports again from the datastore)\n";
      std::abort();
    }
    return read;
  }

 private:
  std::shared_ptr<TaskFiles> files_;
  std::optional<uint64_t> slot_;  // Empty until the first write succeeds.
};

Result<std::unique_ptr<LevelFiles>> LevelFiles::Open(const std::string& directory) {
  Result<int> probe = MakeUnlinkedFile(directory);
  if (!probe) return std::unexpected(probe.error());
  close(*probe);
  return std::unique_ptr<LevelFiles>(new LevelFiles(directory));
}

LevelFiles::~LevelFiles() = default;

Result<std::unique_ptr<poplar::LevelSlot>> LevelFiles::NewSlot(
    const dap::TaskId& task_id, std::span<const size_t> record_sizes) {
  if (record_sizes.empty()) return MakeError(ErrorCode::kInvalidArgument, "no levels");
  std::shared_ptr<TaskFiles> files;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = tasks_.find(task_id);
    if (found != tasks_.end()) files = found->second.lock();
    // A task replaced by one with another VDAF gets new files.
    if (files == nullptr || !files->Fits(record_sizes)) {
      // After a failure, a while passes before the next try: every report
      // stored meanwhile would otherwise try (and fail) to make the files.
      const auto now = std::chrono::steady_clock::now();
      if (last_failure_ && now - last_failure_->first < kRetryAfterFailure) {
        return std::unexpected(last_failure_->second);
      }
      auto created = TaskFiles::Create(directory_, record_sizes);
      if (!created) {
        last_failure_.emplace(now, created.error());
        return std::unexpected(created.error());
      }
      files = *created;
      tasks_[task_id] = files;
    }
  }
  return std::unique_ptr<poplar::LevelSlot>(new Slot(std::move(files)));
}

void LevelFiles::EraseTask(const dap::TaskId& task_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  tasks_.erase(task_id);
}

LevelFiles::Usage LevelFiles::usage() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Usage total;
  for (const auto& [task_id, weak] : tasks_) {
    if (std::shared_ptr<TaskFiles> files = weak.lock()) {
      const Usage task = files->usage();
      total.slots += task.slots;
      total.file_bytes += task.file_bytes;
      total.maps += task.maps;
    }
  }
  return total;
}

}  // namespace canopy::aggregator
