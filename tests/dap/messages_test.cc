// DAP-19 messages: random values survive encode/decode, hand-built encodings
// match the draft's layout, and malformed input is refused.
#include "dap/messages.h"

#include <gtest/gtest.h>

#include <random>

namespace canopy::dap {
namespace {

class Generator {
 public:
  explicit Generator(uint64_t seed) : random_(seed) {}

  uint64_t Number() { return random_(); }
  Bytes RandomBytes(size_t min, size_t max) {
    Bytes bytes(min + random_() % (max - min + 1));
    for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(random_());
    return bytes;
  }
  template <size_t N>
  std::array<uint8_t, N> Array() {
    std::array<uint8_t, N> out;
    for (uint8_t& byte : out) byte = static_cast<uint8_t>(random_());
    return out;
  }
  std::vector<Extension> Extensions() {
    std::vector<Extension> out(random_() % 3);
    for (Extension& e : out) e = {static_cast<uint16_t>(random_()), RandomBytes(0, 20)};
    return out;
  }
  HpkeCiphertext Ciphertext() {
    return {static_cast<uint8_t>(random_()), RandomBytes(1, 40), RandomBytes(1, 200)};
  }
  Interval RandomInterval() { return {random_(), random_()}; }
  TaskConfiguration Task() {
    TaskConfiguration t;
    t.task_info = RandomBytes(0, 30);
    t.leader_aggregator_endpoint = RandomBytes(1, 40);
    t.helper_aggregator_endpoint = RandomBytes(1, 40);
    t.time_precision = random_();
    t.min_batch_size = random_();
    t.batch_mode = random_() % 2 ? BatchMode::kTimeInterval : BatchMode::kLeaderSelected;
    t.batch_config = RandomBytes(0, 5);
    t.vdaf_type = static_cast<uint32_t>(random_());
    t.vdaf_configuration = RandomBytes(0, 12);
    t.extensions = Extensions();
    return t;
  }
  ReportMetadata Metadata() { return {Array<16>(), random_(), Extensions()}; }
  Report RandomReport() { return {Metadata(), RandomBytes(0, 300), Ciphertext(), Ciphertext()}; }
  ReportError Error() { return static_cast<ReportError>(1 + random_() % 10); }
  VerifyResp Resp() {
    VerifyResp resp;
    resp.report_id = Array<16>();
    resp.type = static_cast<VerifyRespType>(random_() % 3);
    if (resp.type == VerifyRespType::kContinue) resp.payload = RandomBytes(1, 50);
    if (resp.type == VerifyRespType::kReject) resp.report_error = Error();
    return resp;
  }
  Query RandomQuery() {
    return random_() % 2 ? TimeIntervalQuery(RandomInterval()) : LeaderSelectedQuery();
  }
  CollectionJobReq CollectionReq() { return {RandomQuery(), RandomBytes(0, 40), Extensions()}; }

 private:
  std::mt19937_64 random_;
};

template <typename M>
void ExpectRoundTrip(const M& message, bool streaming) {
  Result<Bytes> encoded = Encode(message);
  ASSERT_TRUE(encoded) << encoded.error().ToString();
  Result<M> decoded = Decode<M>(*encoded);
  ASSERT_TRUE(decoded) << decoded.error().ToString();
  EXPECT_EQ(*decoded, message);
  if (!streaming) {
    // Every truncation and any trailing byte is refused.
    for (size_t length = 0; length < encoded->size(); ++length) {
      EXPECT_FALSE(Decode<M>(std::span(*encoded).first(length))) << "length " << length;
    }
    Bytes longer = *encoded;
    longer.push_back(0);
    EXPECT_FALSE(Decode<M>(longer));
  } else if (!encoded->empty()) {
    // A streaming message cut inside its last element is refused.
    EXPECT_FALSE(Decode<M>(std::span(*encoded).first(encoded->size() - 1)));
  }
}

TEST(DapMessages, RandomValuesRoundTrip) {
  Generator gen(1);
  for (int trial = 0; trial < 40; ++trial) {
    ExpectRoundTrip(gen.RandomInterval(), false);
    ExpectRoundTrip(gen.Ciphertext(), false);
    ExpectRoundTrip(gen.Task(), false);
    ExpectRoundTrip(gen.Metadata(), false);
    ExpectRoundTrip(gen.RandomReport(), false);
    HpkeConfigList list;
    for (int i = 0; i < 1 + trial % 3; ++i) {
      list.configs.push_back({static_cast<uint8_t>(i), 0x20, 1, 1, gen.RandomBytes(1, 40)});
    }
    ExpectRoundTrip(list, false);
    ExpectRoundTrip(PlaintextInputShare{gen.Extensions(), gen.RandomBytes(1, 100)}, false);
    ExpectRoundTrip(
        InputShareAad{gen.Array<32>(), gen.Task(), gen.Metadata(), gen.RandomBytes(0, 50)}, false);
    UploadRequest upload;
    for (int i = 0; i < trial % 4; ++i) upload.reports.push_back(gen.RandomReport());
    ExpectRoundTrip(upload, true);
    UploadErrors errors;
    for (int i = 0; i < trial % 4; ++i) errors.statuses.push_back({gen.Array<16>(), gen.Error()});
    ExpectRoundTrip(errors, true);
    AggregationJobInitReq init{
        static_cast<uint8_t>(gen.Number()), gen.RandomBytes(0, 30), gen.Extensions(), {}};
    for (int i = 0; i < trial % 3; ++i) {
      init.verify_inits.push_back(
          {{gen.Metadata(), gen.RandomBytes(0, 60), gen.Ciphertext()}, gen.RandomBytes(1, 30)});
    }
    ExpectRoundTrip(init, true);
    AggregationJobResp resp;
    for (int i = 0; i < trial % 4; ++i) resp.verify_resps.push_back(gen.Resp());
    ExpectRoundTrip(resp, true);
    AggregationJobContinueReq cont{static_cast<uint16_t>(gen.Number()), {}};
    for (int i = 0; i < trial % 3; ++i)
      cont.verify_continues.push_back({gen.Array<16>(), gen.RandomBytes(1, 30)});
    ExpectRoundTrip(cont, true);
    ExpectRoundTrip(gen.CollectionReq(), false);
    ExpectRoundTrip(
        CollectionJobResp{gen.Number(), gen.RandomInterval(), gen.Ciphertext(), gen.Ciphertext()},
        false);
    ExpectRoundTrip(
        AggregateShareReq{gen.CollectionReq(), LeaderSelectedBatchSelector(gen.Array<32>()),
                          gen.Number(), gen.Array<32>()},
        false);
    ExpectRoundTrip(AggregateShare{gen.Ciphertext()}, false);
    ExpectRoundTrip(AggregateShareAad{gen.Array<32>(), gen.Task(), gen.CollectionReq()}, false);
    ExpectRoundTrip(PingPongMessage{PingPongType::kInitialize, {}, gen.RandomBytes(0, 30)}, false);
    ExpectRoundTrip(
        PingPongMessage{PingPongType::kContinue, gen.RandomBytes(0, 30), gen.RandomBytes(0, 30)},
        false);
    ExpectRoundTrip(PingPongMessage{PingPongType::kFinish, gen.RandomBytes(0, 30), {}}, false);
  }
}

TEST(DapMessages, EncodingFollowsThePresentationLanguage) {
  HpkeCiphertext ciphertext{7, {0xaa}, {0xbb, 0xcc}};
  EXPECT_EQ(*Encode(ciphertext),
            (Bytes{0x07, 0x00, 0x01, 0xaa, 0x00, 0x00, 0x00, 0x02, 0xbb, 0xcc}));
  Interval interval{0x0102, 3};
  EXPECT_EQ(*Encode(interval), (Bytes{0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 3}));
  VerifyResp reject{{}, VerifyRespType::kReject, {}, ReportError::kReportReplayed};
  Bytes expected(16, 0);
  expected.push_back(2);
  expected.push_back(2);
  EXPECT_EQ(*Encode(reject), expected);
  PingPongMessage finish{PingPongType::kFinish, {0x01}, {}};
  EXPECT_EQ(*Encode(finish), (Bytes{2, 0, 0, 0, 1, 0x01}));
  EXPECT_EQ(BatchIntervalOf(TimeIntervalQuery(interval)).value(), interval);
  BatchId id{};
  id[31] = 9;
  EXPECT_EQ(BatchIdOf(LeaderSelectedBatchSelector(id)).value(), id);
}

TEST(DapMessages, DomainSeparationStrings) {
  const std::string input = "dap-19 input share";
  Bytes leader_info(input.begin(), input.end());
  leader_info.push_back(0x01);
  leader_info.push_back(0x02);
  EXPECT_EQ(InputShareInfo(Role::kLeader), leader_info);
  const std::string aggregate = "dap-19 aggregate share";
  Bytes helper_info(aggregate.begin(), aggregate.end());
  helper_info.push_back(0x03);
  helper_info.push_back(0x00);
  EXPECT_EQ(AggregateShareInfo(Role::kHelper), helper_info);
  TaskId task{};
  task[0] = 0xff;
  Bytes ctx = VdafContext(task);
  EXPECT_EQ(ctx.size(), 6u + 32u);
  EXPECT_EQ(std::string(ctx.begin(), ctx.begin() + 6), "dap-19");
  EXPECT_EQ(ctx[6], 0xff);
}

TEST(DapMessages, RefusesUnknownEnumValues) {
  EXPECT_FALSE(Decode<Query>(Bytes{0, 0, 0}));  // batch_mode reserved(0)
  EXPECT_FALSE(Decode<Query>(Bytes{3, 0, 0}));
  Bytes reject(16, 0);
  reject.push_back(2);
  reject.push_back(11);  // No report error 11 in DAP-19.
  EXPECT_FALSE(Decode<AggregationJobResp>(reject));
  reject.back() = 0;
  EXPECT_FALSE(Decode<AggregationJobResp>(reject));
  Bytes bad_type(16, 0);
  bad_type.push_back(3);
  EXPECT_FALSE(Decode<AggregationJobResp>(bad_type));
  EXPECT_FALSE(Decode<PingPongMessage>(Bytes{3}));
}

TEST(DapMessages, RefusesLengthsPastTheEnd) {
  // A 4-byte length of 2^32 - 1 with three bytes behind it: refused without
  // trying to allocate 4 GiB.
  Bytes huge = {1, 0, 1, 0xaa, 0xff, 0xff, 0xff, 0xff, 1, 2, 3};
  Result<HpkeCiphertext> decoded = Decode<HpkeCiphertext>(huge);
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().message().find("payload"), std::string::npos)
      << decoded.error().message();
  // Vectors below their minimum length.
  EXPECT_FALSE(Decode<HpkeCiphertext>(Bytes{1, 0, 0, 0, 0, 0, 1, 0xbb}));  // enc<1..>
  EXPECT_FALSE(Decode<HpkeConfigList>(Bytes{0, 0}));                       // <10..>
}

TEST(DapMessages, EncodeRefusesFieldsOutOfRange) {
  EXPECT_FALSE(Encode(HpkeCiphertext{1, {}, {1}}));  // enc may not be empty.
  EXPECT_FALSE(Encode(HpkeCiphertext{1, {1}, {}}));  // Nor may the payload.
  TaskConfiguration task;
  task.leader_aggregator_endpoint = {'a'};
  task.helper_aggregator_endpoint = {'b'};
  task.task_info.assign(256, 'x');  // <0..255>
  EXPECT_FALSE(Encode(task));
  task.task_info.assign(255, 'x');
  EXPECT_TRUE(Encode(task));
}

}  // namespace
}  // namespace canopy::dap
