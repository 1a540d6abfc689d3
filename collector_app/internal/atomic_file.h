// Small POSIX file helpers for the collector's resume state: a whole-file
// read, and a write that a crash leaves either complete or not done at all.
#ifndef CANOPY_COLLECTOR_APP_INTERNAL_ATOMIC_FILE_H_
#define CANOPY_COLLECTOR_APP_INTERNAL_ATOMIC_FILE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/error.h"

namespace canopy::collector::internal {

// Reads the whole file at `path`; nullopt when it does not exist. Errors
// (kIoError, naming the path): it cannot be opened or read, or it is longer
// than `max_bytes`.
Result<std::optional<std::string>> ReadWholeFile(const std::string& path, uint64_t max_bytes);

// Replaces the file at `path` with `content` so that a crash at any moment
// leaves the old file or the new one, never a mix: the content goes to a
// temporary file in the same folder, which is flushed to disk, renamed over
// `path`, and the folder is flushed so the rename itself survives. Errors
// (kIoError, naming the path and the system's reason); the temporary file is
// removed on failure.
Result<void> WriteFileAtomically(const std::string& path, std::string_view content);

}  // namespace canopy::collector::internal

#endif  // CANOPY_COLLECTOR_APP_INTERNAL_ATOMIC_FILE_H_
