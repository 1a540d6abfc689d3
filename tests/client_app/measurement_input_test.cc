// Measurements from text: Poplar1 strings and bits with their length rules,
// Prio3 numbers and vectors with the VDAF's bounds, input files.
#include "client_app/measurement_input.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "client_app/task_file.h"
#include "dap/task.h"
#include "tests/testing/temp_folder.h"

namespace canopy::client {
namespace {

using idpf::BitString;

void ExpectError(const Result<poplar::Measurement>& result, const std::string& fragment) {
  ASSERT_FALSE(result) << "expected an error containing \"" << fragment << "\"";
  EXPECT_EQ(result.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(result.error().message().find(fragment), std::string::npos) << result.error().message();
}

dap::TaskConfiguration ConfigurationOf(dap::VdafType type, dap::Bytes vdaf_configuration = {}) {
  dap::TaskConfiguration configuration;
  configuration.vdaf_type = static_cast<uint32_t>(type);
  configuration.vdaf_configuration = std::move(vdaf_configuration);
  return configuration;
}

MeasurementParser ParserFor(dap::TaskConfiguration configuration,
                            StringFormat format = StringFormat::kText) {
  auto parser = MeasurementParser::Create(configuration, format);
  EXPECT_TRUE(parser) << parser.error().ToString();
  return std::move(*parser);
}

TEST(EncodeString, PadsWithZeroBytes) {
  auto encoded = EncodeString("ab", 32);
  ASSERT_TRUE(encoded);
  EXPECT_EQ(encoded->size(), 32u);
  EXPECT_EQ(std::vector<uint8_t>(encoded->bytes().begin(), encoded->bytes().end()),
            (std::vector<uint8_t>{'a', 'b', 0, 0}));
  EXPECT_EQ(DecodeString(*encoded), "ab");
}

TEST(EncodeString, TakesAStringOfExactlyTheTaskLength) {
  auto encoded = EncodeString("abcd", 32);
  ASSERT_TRUE(encoded);
  EXPECT_EQ(DecodeString(*encoded), "abcd");
}

TEST(EncodeString, TheEmptyStringIsAllZeroBytes) {
  auto encoded = EncodeString("", 16);
  ASSERT_TRUE(encoded);
  EXPECT_EQ(*encoded, *BitString::Parse("0000000000000000"));
}

TEST(EncodeString, RefusesALongerStringNamingBothLengths) {
  auto refused = EncodeString("abcde", 32);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("5 bytes long"), std::string::npos);
  EXPECT_NE(refused.error().message().find("at most 4 bytes"), std::string::npos);
}

TEST(EncodeString, RefusesNulBytes) {
  auto refused = EncodeString(std::string_view("a\0", 2), 32);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("NUL byte at offset 1"), std::string::npos);
}

TEST(EncodeString, RefusesBitsNotAMultipleOfEight) {
  auto refused = EncodeString("a", 12);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("bits format"), std::string::npos);
}

TEST(ParseBitsMeasurement, TakesExactlyBitsBinaryDigits) {
  auto parsed = ParseBitsMeasurement("101", 3);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, *BitString::Parse("101"));
  EXPECT_FALSE(ParseBitsMeasurement("10", 3));
  EXPECT_FALSE(ParseBitsMeasurement("1011", 3));
  auto bad = ParseBitsMeasurement("1a1", 3);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("character 1"), std::string::npos);
}

TEST(ParseNumber, TakesDecimalIntegersBelow2To64) {
  EXPECT_EQ(ParseNumber("0").value(), 0u);
  EXPECT_EQ(ParseNumber("18446744073709551615").value(), UINT64_MAX);
  EXPECT_FALSE(ParseNumber("18446744073709551616"));
  EXPECT_FALSE(ParseNumber("-1"));
  EXPECT_FALSE(ParseNumber("+1"));
  EXPECT_FALSE(ParseNumber(""));
  EXPECT_FALSE(ParseNumber("1.5"));
  EXPECT_FALSE(ParseNumber("0x10"));
}

TEST(ParseNumberList, TakesCommaSeparatedNumbers) {
  EXPECT_EQ(ParseNumberList("1,0, 3 ,4").value(), (std::vector<uint64_t>{1, 0, 3, 4}));
  EXPECT_EQ(ParseNumberList("7").value(), (std::vector<uint64_t>{7}));
  auto empty_element = ParseNumberList("1,,2");
  ASSERT_FALSE(empty_element);
  EXPECT_NE(empty_element.error().message().find("element 1"), std::string::npos);
  EXPECT_FALSE(ParseNumberList("1,2,"));
}

TEST(MeasurementParser, Poplar1TextNamesTheInputOfAnError) {
  MeasurementParser parser =
      ParserFor(ConfigurationOf(dap::VdafType::kPoplar1, dap::Poplar1Configuration(16)));
  EXPECT_TRUE(parser.is_poplar1());
  EXPECT_EQ(parser.bits(), 16u);
  auto parsed = parser.Parse("hi", "urls.txt:3");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(DecodeString(std::get<BitString>(*parsed)), "hi");
  ExpectError(parser.Parse("hey", "urls.txt:4"), "urls.txt:4: the string is 3 bytes long");
}

TEST(MeasurementParser, Poplar1WithBitsNotAMultipleOfEightNeedsTheBitsFormat) {
  auto text = MeasurementParser::Create(
      ConfigurationOf(dap::VdafType::kPoplar1, dap::Poplar1Configuration(12)), StringFormat::kText);
  ASSERT_FALSE(text);
  EXPECT_NE(text.error().message().find("use the bits format"), std::string::npos);
  MeasurementParser bits = ParserFor(
      ConfigurationOf(dap::VdafType::kPoplar1, dap::Poplar1Configuration(12)), StringFormat::kBits);
  auto parsed = bits.Parse("101010101010", "--string #1");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(std::get<BitString>(*parsed).size(), 12u);
  ExpectError(bits.Parse("1010", "--string #2"), "--string #2: expected exactly 12 binary digits");
}

TEST(MeasurementParser, Prio3CountTakesZeroOrOne) {
  MeasurementParser parser = ParserFor(ConfigurationOf(dap::VdafType::kPrio3Count));
  EXPECT_EQ(std::get<uint64_t>(parser.Parse("1", "a").value()), 1u);
  EXPECT_EQ(std::get<uint64_t>(parser.Parse(" 0 ", "a").value()), 0u);
  ExpectError(parser.Parse("2", "input:7"), "input:7: Prio3Count measurement 2 exceeds");
  ExpectError(parser.Parse("yes", "input:8"), "input:8: \"yes\" is not");
}

TEST(MeasurementParser, Prio3SumNamesItsBound) {
  MeasurementParser parser =
      ParserFor(ConfigurationOf(dap::VdafType::kPrio3Sum, dap::Prio3SumConfiguration(1000)));
  EXPECT_EQ(std::get<uint64_t>(parser.Parse("1000", "a").value()), 1000u);
  ExpectError(parser.Parse("1001", "#2"), "max_measurement 1000");
}

TEST(MeasurementParser, Prio3HistogramTakesABucketIndex) {
  MeasurementParser parser = ParserFor(
      ConfigurationOf(dap::VdafType::kPrio3Histogram, dap::Prio3HistogramConfiguration(20, 4)));
  EXPECT_EQ(std::get<uint64_t>(parser.Parse("19", "a").value()), 19u);
  ExpectError(parser.Parse("20", "b"), "largest bucket index 19");
}

TEST(MeasurementParser, Prio3VectorsTakeCommaSeparatedElements) {
  MeasurementParser sum_vec = ParserFor(
      ConfigurationOf(dap::VdafType::kPrio3SumVec, dap::Prio3SumVecConfiguration(3, 255, 2)));
  EXPECT_EQ(std::get<std::vector<uint64_t>>(sum_vec.Parse("1, 255,0", "a").value()),
            (std::vector<uint64_t>{1, 255, 0}));
  ExpectError(sum_vec.Parse("1,2", "b"), "must have 3 elements, got 2");
  ExpectError(sum_vec.Parse("1,256,0", "c"), "max_measurement 255");

  MeasurementParser multihot = ParserFor(ConfigurationOf(
      dap::VdafType::kPrio3MultihotCountVec, dap::Prio3MultihotCountVecConfiguration(4, 2, 2)));
  EXPECT_TRUE(multihot.Parse("1,0,1,0", "a"));
  ExpectError(multihot.Parse("1,1,1,0", "b"), "max_weight 2");
  ExpectError(multihot.Parse("2,0,0,0", "c"), "exceeds 1");
}

TEST(MeasurementParser, ParseLinesNumbersLinesAndDropsCarriageReturns) {
  MeasurementParser parser =
      ParserFor(ConfigurationOf(dap::VdafType::kPoplar1, dap::Poplar1Configuration(32)));
  std::istringstream input("abc\r\n\nabcd\nlast");
  auto parsed = parser.ParseLines(input, "in.txt");
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  ASSERT_EQ(parsed->size(), 4u);
  EXPECT_EQ(DecodeString(std::get<BitString>((*parsed)[0])), "abc");
  EXPECT_EQ(DecodeString(std::get<BitString>((*parsed)[1])), "");
  EXPECT_EQ(DecodeString(std::get<BitString>((*parsed)[3])), "last");

  std::istringstream too_long("ok\nfine\ntoo long\n");
  auto refused = parser.ParseLines(too_long, "in.txt");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("in.txt:3: the string is 8 bytes long"),
            std::string::npos)
      << refused.error().message();
}

TEST(LoadClientTask, TakesATaskFileWithoutVerifyKeys) {
  const std::string folder = canopy::testing::MakeTempFolder("canopy-client-task");
  ASSERT_FALSE(folder.empty());
  const std::string path = folder + "/task.textproto";
  std::ofstream(path) << R"(
task_id: "RVhBTVBMRSB0YXNrOiBoZWF2eSBoaXR0ZXJzIDI1NmI"
leader_url: "http://127.0.0.1:1/"
helper_url: "http://127.0.0.1:2/"
time_precision_seconds: 3600
min_batch_size: 10
batch_mode: TIME_INTERVAL
poplar1 { bits: 256 }
collector_hpke_config { id: 3 public_key: "KtGNt2c9Cf2FN5X6aRssr5uSeQkAiFJVkDitFlJ4xj8" }
)";
  auto task = LoadClientTask(path);
  ASSERT_TRUE(task) << task.error().ToString();
  EXPECT_EQ(task->upload.task_configuration.vdaf_type,
            static_cast<uint32_t>(dap::VdafType::kPoplar1));
  EXPECT_EQ(task->upload.task_configuration.time_precision, 3600u);
  EXPECT_EQ(task->definition.verify_keys_size(), 0);

  auto missing = LoadClientTask(folder + "/missing.textproto");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kIoError);
  std::filesystem::remove_all(folder);
}

}  // namespace
}  // namespace canopy::client
