// canopy-vectors: checks test vectors in the official VDAF draft-20 JSON
// format against Canopy, file by file and value by value.
//
//   canopy-vectors check [--kind KIND] [--verbose] FILE.json...
//   canopy-vectors kinds
//
// Exit status: 0 when every file passed; 1 when any file failed, is
// unsupported or malformed; 2 on a usage error or an unreadable file.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "conformance/vector_check.h"

namespace {

using canopy::conformance::VectorReport;

constexpr char kUsage[] =
    "usage: canopy-vectors check [--kind KIND] [--verbose] FILE.json...\n"
    "       canopy-vectors kinds\n"
    "\n"
    "Checks each file, a test vector in the VDAF draft-20 JSON format, and prints\n"
    "whether Canopy reproduces every value byte for byte. The kind of vector\n"
    "(Poplar1, Prio3Count, ...) is read from the file name up to its first '_'\n"
    "unless --kind names it.\n";

int Usage(const std::string& problem) {
  std::cerr << "canopy-vectors: " << problem << "\n\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return Usage("no command given");
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (args[0] == "kinds") {
    for (const std::string& kind : canopy::conformance::SupportedKinds()) std::cout << kind << "\n";
    return 0;
  }
  if (args[0] != "check") return Usage("unknown command \"" + args[0] + "\"");

  std::string kind_override;
  bool verbose = false;
  std::vector<std::string> files;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--kind") {
      if (i + 1 == args.size()) return Usage("--kind needs a value");
      kind_override = args[++i];
    } else if (args[i] == "--verbose" || args[i] == "-v") {
      verbose = true;
    } else if (args[i].starts_with("-")) {
      return Usage("unknown option \"" + args[i] + "\"");
    } else {
      files.push_back(args[i]);
    }
  }
  if (files.empty()) return Usage("no vector files given");

  int exit_status = 0;
  size_t passed = 0;
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::cerr << "canopy-vectors: cannot read " << file << "\n";
      exit_status = 2;
      continue;
    }
    std::stringstream text;
    text << in.rdbuf();
    const std::string kind =
        kind_override.empty() ? canopy::conformance::KindFromFileName(file) : kind_override;
    VectorReport report = canopy::conformance::CheckVector(kind, text.str());
    std::cout << canopy::conformance::StatusName(report.status) << "  " << file;
    if (!report.description.empty()) std::cout << "  " << report.description;
    std::cout << "  (" << report.checks << " checks)\n";
    if (!report.error.empty()) std::cout << "    " << report.error << "\n";
    const size_t shown =
        verbose ? report.mismatches.size() : std::min<size_t>(report.mismatches.size(), 10);
    for (size_t i = 0; i < shown; ++i) std::cout << "    " << report.mismatches[i] << "\n";
    if (shown < report.mismatches.size()) {
      std::cout << "    ... and " << report.mismatches.size() - shown
                << " more (--verbose shows all)\n";
    }
    if (report.status == VectorReport::Status::kPassed) {
      ++passed;
    } else if (exit_status == 0) {
      exit_status = 1;
    }
  }
  std::cout << passed << " of " << files.size() << " files passed\n";
  return exit_status;
}
