// The progress line: its text, and when each display mode writes.
#include "client_app/progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace canopy::client {
namespace {

using std::chrono::seconds;

BulkProgress At(uint64_t sent, uint64_t total, seconds elapsed, uint64_t refused = 0) {
  BulkProgress progress;
  progress.total = total;
  progress.sent = sent;
  progress.accepted = sent - refused;
  progress.refused = refused;
  progress.elapsed = elapsed;
  return progress;
}

std::string Contents(std::FILE* file) {
  std::rewind(file);
  std::string text;
  char buffer[256];
  size_t read;
  while ((read = std::fread(buffer, 1, sizeof(buffer), file)) > 0) text.append(buffer, read);
  return text;
}

TEST(FormatDuration, IsShortAndReadable) {
  EXPECT_EQ(FormatDuration(seconds(0)), "0s");
  EXPECT_EQ(FormatDuration(seconds(59)), "59s");
  EXPECT_EQ(FormatDuration(seconds(460)), "7m40s");
  EXPECT_EQ(FormatDuration(seconds(3 * 3600 + 5 * 60 + 9)), "3h05m");
}

TEST(FormatProgress, ShowsSentTotalRateAndEta) {
  EXPECT_EQ(FormatProgress(At(2000, 10000, seconds(4))),
            "2000/10000 reports (20.0%), 500/s, ETA 16s");
  EXPECT_EQ(FormatProgress(At(0, 10000, seconds(0))), "0/10000 reports (0.0%), 0/s, ETA ?");
  EXPECT_EQ(FormatProgress(At(10, 10, seconds(1), 3)),
            "10/10 reports (100.0%), 10/s, ETA 0s, 3 refused");
}

TEST(ProgressDisplay, TerminalRewritesOneLine) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  ProgressDisplay display(file, ProgressDisplay::Mode::kTerminal);
  display.Update(At(100, 1000, seconds(10)));
  display.Update(At(1000, 1000, seconds(20)));
  display.Finish();
  EXPECT_EQ(Contents(file),
            "\r100/1000 reports (10.0%), 10/s, ETA 1m30s"
            "\r1000/1000 reports (100.0%), 50/s, ETA 0s \n");
  std::fclose(file);
}

TEST(ProgressDisplay, LinesArePeriodic) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  ProgressDisplay display(file, ProgressDisplay::Mode::kLines, seconds(10));
  display.Update(At(1, 100, seconds(1)));    // Too early.
  display.Update(At(10, 100, seconds(10)));  // Written.
  display.Update(At(15, 100, seconds(15)));  // Too soon after.
  display.Update(At(20, 100, seconds(20)));  // Written.
  display.Finish();
  EXPECT_EQ(Contents(file),
            "10/100 reports (10.0%), 1/s, ETA 1m30s\n20/100 reports (20.0%), 1/s, ETA 1m20s\n");
  std::fclose(file);
}

TEST(ProgressDisplay, OffWritesNothing) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  ProgressDisplay display(file, ProgressDisplay::Mode::kOff);
  display.Update(At(10, 100, seconds(100)));
  display.Finish();
  EXPECT_EQ(Contents(file), "");
  std::fclose(file);
}

}  // namespace
}  // namespace canopy::client
