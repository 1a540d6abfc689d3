// The aggregators' memo of decoded aggregation parameters: each decoded
// once, and planned from the batch's previous parameter as it was decoded
// itself, so that a Poplar1 level starts from the nodes the reports kept
// after the previous one.
#include "aggregator/internal/agg_param_memo.h"

#include <gtest/gtest.h>

#include "idpf/bit_string.h"
#include "poplar/poplar1.h"
#include "tests/testing/prefixes.h"

namespace canopy::aggregator::internal {
namespace {

using ::canopy::testing::Extensions;
using idpf::BitString;

TEST(AggParamMemo, PlansEachLevelFromThePreviousLevelAsItWasPlanned) {
  Task task;
  task.id[0] = 7;
  auto vdaf = poplar::Poplar1::Create(16);
  ASSERT_TRUE(vdaf);
  const poplar::Poplar1& poplar1 = **vdaf;
  task.vdaf = std::move(*vdaf);
  auto encode = [&](size_t level, std::vector<BitString> prefixes) {
    auto param = poplar1.MakeAggParam(level, std::move(prefixes), nullptr);
    EXPECT_TRUE(param);
    return poplar1.EncodeAggParam(**param);
  };
  // Four bits a round: levels 3, 7 and 11, each extending two survivors.
  const dap::Bytes first = encode(3, Extensions({BitString()}, 4));
  const dap::Bytes second =
      encode(7, Extensions({*BitString::Parse("0110"), *BitString::Parse("1001")}, 4));
  const dap::Bytes third =
      encode(11, Extensions({*BitString::Parse("01100000"), *BitString::Parse("10011111")}, 4));

  const std::vector<dap::Bytes> history = {first, second, third};
  const std::span<const dap::Bytes> before_third = std::span(history).first(2);
  AggParamMemo memo;
  auto decoded_first = memo.Decode(task, first);
  auto decoded_second = memo.Decode(task, second, std::span(history).first(1));
  auto decoded_third = memo.Decode(task, third, before_third);
  ASSERT_TRUE(decoded_first && decoded_second && decoded_third);
  auto plan = [](const auto& decoded) {
    return static_cast<const poplar::Poplar1AggParam&>(**decoded).plan;
  };
  // The second level keeps its round's first level (4), and the third starts
  // from that set: the one the previous decoding planned, not a new decoding
  // of the second parameter, whose plan would start from level 7.
  EXPECT_EQ(plan(decoded_second)->cache_set()->level(), 4u);
  EXPECT_EQ(plan(decoded_third)->source(), plan(decoded_second)->cache_set().get());
  // Decoded once: later calls return the same object, whatever they pass.
  auto again = memo.Decode(task, third);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->get(), decoded_third->get());

  // A memo that no longer remembers the earlier levels (another walk pushed
  // them out) decodes them again in order: the third level is planned from
  // the same level the reports kept after the second.
  AggParamMemo forgetful;
  auto fresh = forgetful.Decode(task, third, before_third);
  ASSERT_TRUE(fresh);
  const idpf::PrefixSet* source = plan(fresh)->source();
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(*source, *plan(decoded_second)->cache_set());  // Level 4: the same set.
}

}  // namespace
}  // namespace canopy::aggregator::internal
