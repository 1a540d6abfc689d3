#include "tests/testing/temp_folder.h"

#include <stdlib.h>

#include <filesystem>

namespace canopy::testing {

Result<std::string> CreateTempFolder(std::string_view prefix) {
  std::error_code error;
  std::filesystem::path base = std::filesystem::temp_directory_path(error);
  if (error) base = "/tmp";
  std::string pattern = (base / (std::string(prefix) + "-XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return MakeError(ErrorCode::kIoError, "cannot create a folder in " + base.string());
  }
  return pattern;
}

}  // namespace canopy::testing
