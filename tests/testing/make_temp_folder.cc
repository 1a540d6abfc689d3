#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "tests/testing/temp_folder.h"

namespace canopy::testing {
namespace {

// The folders MakeTempFolder made in this program, removed with what they
// hold when it exits, so that test runs do not leave folders behind.
class MadeFolders {
 public:
  ~MadeFolders() {
    for (const std::string& folder : folders_) {
      std::error_code ignored;
      std::filesystem::remove_all(folder, ignored);
    }
  }

  void Add(std::string folder) {
    std::lock_guard<std::mutex> lock(mutex_);
    folders_.push_back(std::move(folder));
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> folders_;
};

MadeFolders& Made() {
  static MadeFolders made;
  return made;
}

}  // namespace

std::string MakeTempFolder(std::string_view prefix) {
  auto folder = CreateTempFolder(prefix);
  EXPECT_TRUE(folder) << folder.error().message();
  if (!folder) return std::string();
  Made().Add(*folder);
  return *folder;
}

}  // namespace canopy::testing
