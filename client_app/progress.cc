#include "client_app/progress.h"

#include <unistd.h>

#include <cstdio>

namespace canopy::client {

std::string FormatDuration(std::chrono::seconds duration) {
  const long long total = duration.count() < 0 ? 0 : duration.count();
  char text[48];
  if (total < 60) {
    std::snprintf(text, sizeof(text), "%llds", total);
  } else if (total < 3600) {
    std::snprintf(text, sizeof(text), "%lldm%02llds", total / 60, total % 60);
  } else {
    std::snprintf(text, sizeof(text), "%lldh%02lldm", total / 3600, total % 3600 / 60);
  }
  return text;
}

namespace {

// The time left at `rate` reports a second, "?" before there is a rate.
std::string Eta(const BulkProgress& progress, double rate) {
  if (progress.sent >= progress.total) return FormatDuration(std::chrono::seconds(0));
  if (rate <= 0) return "?";
  const double left = static_cast<double>(progress.total - progress.sent) / rate;
  return FormatDuration(std::chrono::seconds(static_cast<long long>(left + 0.5)));
}

}  // namespace

std::string FormatProgress(const BulkProgress& progress) {
  const double seconds = std::chrono::duration<double>(progress.elapsed).count();
  const double rate = seconds > 0 ? static_cast<double>(progress.sent) / seconds : 0;
  const double percent =
      progress.total == 0 ? 100.0 : 100.0 * static_cast<double>(progress.sent) / progress.total;
  const std::string eta = Eta(progress, rate);
  char text[160];
  std::snprintf(text, sizeof(text), "%llu/%llu reports (%.1f%%), %.0f/s, ETA %s",
                static_cast<unsigned long long>(progress.sent),
                static_cast<unsigned long long>(progress.total), percent, rate, eta.c_str());
  std::string line = text;
  if (progress.refused > 0) line += ", " + std::to_string(progress.refused) + " refused";
  return line;
}

ProgressDisplay::Mode ProgressDisplay::ModeFor(std::FILE* stream) {
  return isatty(fileno(stream)) ? Mode::kTerminal : Mode::kLines;
}

ProgressDisplay::ProgressDisplay(std::FILE* stream, Mode mode, std::chrono::seconds line_interval)
    : stream_(stream), mode_(mode), line_interval_(line_interval) {}

void ProgressDisplay::Update(const BulkProgress& progress) {
  switch (mode_) {
    case Mode::kOff:
      return;
    case Mode::kTerminal: {
      std::string line = FormatProgress(progress);
      const size_t width = line.size();
      if (width < drawn_width_) line.append(drawn_width_ - width, ' ');
      drawn_width_ = width;
      std::fprintf(stream_, "\r%s", line.c_str());
      std::fflush(stream_);
      return;
    }
    case Mode::kLines:
      if (progress.elapsed - last_line_ < line_interval_) return;
      last_line_ = progress.elapsed;
      std::fprintf(stream_, "%s\n", FormatProgress(progress).c_str());
      std::fflush(stream_);
      return;
  }
}

void ProgressDisplay::Finish() {
  if (mode_ == Mode::kTerminal && drawn_width_ > 0) {
    std::fputc('\n', stream_);
    std::fflush(stream_);
    drawn_width_ = 0;
  }
}

}  // namespace canopy::client
