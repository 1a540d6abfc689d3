// A fresh, private folder for a test's files, in the system's temporary
// directory (TMPDIR when set). Tests remove it themselves.
#ifndef CANOPY_TESTS_TESTING_TEMP_FOLDER_H_
#define CANOPY_TESTS_TESTING_TEMP_FOLDER_H_

#include <string>
#include <string_view>

namespace canopy::testing {

// Creates "<temp dir>/<prefix>-XXXXXX" (mode 0700) and returns its path; a
// failure to create it fails the current test and returns "".
std::string MakeTempFolder(std::string_view prefix);

}  // namespace canopy::testing

#endif  // CANOPY_TESTS_TESTING_TEMP_FOLDER_H_
