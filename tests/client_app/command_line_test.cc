// canopy-client's command line: what each command takes, and every usage
// error naming its flag.
#include "client_app/command_line.h"

#include <gtest/gtest.h>

#include <initializer_list>

namespace canopy::client {
namespace {

Result<CommandLine> Parse(std::initializer_list<std::string_view> arguments) {
  std::vector<std::string_view> list(arguments);
  return ParseCommandLine(list);
}

void ExpectUsageError(std::initializer_list<std::string_view> arguments,
                      const std::string& fragment) {
  auto parsed = Parse(arguments);
  ASSERT_FALSE(parsed) << "expected an error containing \"" << fragment << "\"";
  EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(parsed.error().message().find(fragment), std::string::npos) << parsed.error().message();
}

TEST(CommandLine, UploadOfStrings) {
  auto parsed =
      Parse({"upload", "--task", "t.textproto", "--string", "a", "--string=b,c", "--measurement",
             "", "--threads", "3", "--reports-per-request=20", "--leader-url", "http://l/",
             "--token", "secret", "--time", "1767225600", "--progress", "off"});
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  ASSERT_EQ(parsed->kind, CommandLine::Kind::kUpload);
  const UploadCommand& upload = parsed->upload;
  EXPECT_EQ(upload.task_path, "t.textproto");
  EXPECT_EQ(upload.strings, (std::vector<std::string>{"a", "b,c", ""}));
  EXPECT_EQ(upload.threads, 3u);
  EXPECT_EQ(upload.reports_per_request, 20u);
  EXPECT_EQ(upload.leader_url, "http://l/");
  EXPECT_EQ(upload.helper_url, "");
  EXPECT_EQ(upload.token, "secret");
  EXPECT_EQ(upload.time_seconds, 1767225600u);
  EXPECT_EQ(upload.progress, ProgressMode::kOff);
  EXPECT_EQ(upload.format, StringFormat::kText);
  EXPECT_FALSE(upload.workload);
}

TEST(CommandLine, UploadOfAFileInBitsFormat) {
  auto parsed = Parse({"upload", "--task", "t", "--input", "-", "--format", "bits"});
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->upload.input_path, "-");
  EXPECT_EQ(parsed->upload.format, StringFormat::kBits);
  EXPECT_EQ(parsed->upload.reports_per_request, kDefaultReportsPerRequest);
  EXPECT_EQ(parsed->upload.threads, 0u);
}

TEST(CommandLine, UploadOfAWorkload) {
  auto parsed = Parse({"upload", "--task", "t", "--zipf-reports", "1000000", "--zipf-exponent",
                       "1.5", "--distinct", "50", "--seed", "9", "--true-counts", "c.csv",
                       "--strings-output", "s.txt"});
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  ASSERT_TRUE(parsed->upload.workload);
  const WorkloadOptions& workload = *parsed->upload.workload;
  EXPECT_EQ(workload.reports, 1000000u);
  EXPECT_EQ(workload.exponent, 1.5);
  EXPECT_EQ(workload.distinct, 50u);
  EXPECT_EQ(workload.seed, 9u);
  EXPECT_EQ(workload.max_length, 0u);  // The task's BITS / 8.
  EXPECT_EQ(parsed->upload.true_counts_path, "c.csv");
  EXPECT_EQ(parsed->upload.strings_output_path, "s.txt");
}

TEST(CommandLine, Generate) {
  auto parsed = Parse({"generate", "--reports", "10", "--max-length", "32", "--output", "o.txt"});
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  ASSERT_EQ(parsed->kind, CommandLine::Kind::kGenerate);
  EXPECT_EQ(parsed->generate.workload.reports, 10u);
  EXPECT_EQ(parsed->generate.workload.max_length, 32u);
  EXPECT_EQ(parsed->generate.workload.exponent, 1.03);
  EXPECT_EQ(parsed->generate.workload.distinct, 1000u);
  EXPECT_EQ(parsed->generate.workload.seed, 1u);
  EXPECT_EQ(parsed->generate.output_path, "o.txt");
  EXPECT_EQ(parsed->generate.true_counts_path, "");
}

TEST(CommandLine, Help) {
  EXPECT_EQ(Parse({"help"})->kind, CommandLine::Kind::kHelp);
  EXPECT_EQ(Parse({"upload", "--help"})->kind, CommandLine::Kind::kHelp);
  // A value that looks like --help is a value.
  auto parsed = Parse({"upload", "--task", "t", "--string", "--help"});
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->upload.strings, (std::vector<std::string>{"--help"}));
}

TEST(CommandLine, UsageErrorsNameTheFlag) {
  ExpectUsageError({}, "no command");
  ExpectUsageError({"send"}, "unknown command \"send\"");
  ExpectUsageError({"upload", "--string", "a"}, "--task");
  ExpectUsageError({"upload", "--task", "t"}, "exactly one source");
  ExpectUsageError({"upload", "--task", "t", "--string", "a", "--input", "f"},
                   "exactly one source");
  ExpectUsageError({"upload", "--task", "t", "--string", "a", "--bogus", "1"}, "--bogus");
  ExpectUsageError({"upload", "--task", "t", "--string"}, "--string needs a value");
  ExpectUsageError({"upload", "--task", "t", "--task", "u", "--string", "a"},
                   "--task is given twice");
  ExpectUsageError({"upload", "--task", "t", "--string", "a", "--threads", "0"}, "--threads");
  ExpectUsageError({"upload", "--task", "t", "--string", "a", "--threads", "many"}, "--threads");
  ExpectUsageError({"upload", "--task", "t", "--string", "a", "--format", "hex"}, "--format");
  ExpectUsageError({"upload", "--task", "t", "--string", "a", "--progress", "loud"}, "--progress");
  ExpectUsageError({"upload", "--task", "t", "--string", "a", "--seed", "1"},
                   "--seed needs --zipf-reports");
  ExpectUsageError({"upload", "--task", "t", "--zipf-reports", "5", "--format", "bits"},
                   "--format bits");
  ExpectUsageError({"upload", "--task", "t", "--zipf-reports", "5", "--zipf-exponent", "-1"},
                   "--zipf-exponent");
  ExpectUsageError({"upload", "--task", "t", "--zipf-reports", "5", "--output", "o"},
                   "--output is not a flag of upload");
  ExpectUsageError({"upload", "--task", "t", "stray"}, "unexpected argument \"stray\"");
  ExpectUsageError({"generate", "--reports", "5", "--output", "o"}, "--max-length");
  ExpectUsageError({"generate", "--reports", "5", "--max-length", "8"}, "--output");
  ExpectUsageError({"generate", "--max-length", "8", "--output", "o"}, "--reports");
  ExpectUsageError({"generate", "--reports", "5", "--max-length", "8", "--task", "t"},
                   "--task is not a flag of generate");
}

}  // namespace
}  // namespace canopy::client
