#include <gtest/gtest.h>

#include "tests/testing/temp_folder.h"

namespace canopy::testing {

std::string MakeTempFolder(std::string_view prefix) {
  auto folder = CreateTempFolder(prefix);
  EXPECT_TRUE(folder) << folder.error().message();
  return folder ? *folder : std::string();
}

}  // namespace canopy::testing
