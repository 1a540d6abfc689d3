// A fresh, private folder for a test's files, in the system's temporary
// directory (TMPDIR when set). Tests remove it themselves.
#ifndef CANOPY_TESTS_TESTING_TEMP_FOLDER_H_
#define CANOPY_TESTS_TESTING_TEMP_FOLDER_H_

#include <string>
#include <string_view>

#include "crypto/error.h"

namespace canopy::testing {

// Creates "<temp dir>/<prefix>-XXXXXX" (mode 0700; mkdtemp fills in the
// X's) and returns its path. Needs no test framework. Errors (kIoError): the
// folder cannot be created, naming the temporary directory.
Result<std::string> CreateTempFolder(std::string_view prefix);

// CreateTempFolder for a GoogleTest test: a failure fails the current test
// and returns "". The folder, with everything in it, is removed when the
// test program exits.
std::string MakeTempFolder(std::string_view prefix);

}  // namespace canopy::testing

#endif  // CANOPY_TESTS_TESTING_TEMP_FOLDER_H_
