// Showing a bulk upload's progress: on a terminal, one line rewritten in
// place ("\r"); in a log, a plain line now and then; or nothing.
#ifndef CANOPY_CLIENT_APP_PROGRESS_H_
#define CANOPY_CLIENT_APP_PROGRESS_H_

#include <chrono>
#include <cstdio>
#include <string>

#include "client_app/bulk_upload.h"

namespace canopy::client {

// "12000/1000000 reports (1.2%), 2150/s, ETA 7m40s": sent of total, the rate
// since the start, and the time left at that rate ("ETA ?" before the first
// answer).
std::string FormatProgress(const BulkProgress& progress);

// A duration for people: "42s", "7m40s", "3h05m".
std::string FormatDuration(std::chrono::seconds duration);

class ProgressDisplay {
 public:
  enum class Mode {
    kTerminal,  // One line, rewritten.
    kLines,     // A line every line_interval.
    kOff,
  };

  // kTerminal when `stream` is a terminal, else kLines.
  static Mode ModeFor(std::FILE* stream);

  // Writes to `stream` (not owned; stderr in the program).
  ProgressDisplay(std::FILE* stream, Mode mode,
                  std::chrono::seconds line_interval = std::chrono::seconds(10));

  // Shows `progress` (kLines: only when line_interval has passed since the
  // last line).
  void Update(const BulkProgress& progress);

  // Ends the terminal line, so that what follows starts on a fresh one.
  void Finish();

 private:
  std::FILE* stream_;
  Mode mode_;
  std::chrono::seconds line_interval_;
  std::chrono::steady_clock::duration last_line_{};
  size_t drawn_width_ = 0;  // Of the terminal line, to blank what is left of a longer one.
};

}  // namespace canopy::client

#endif  // CANOPY_CLIENT_APP_PROGRESS_H_
