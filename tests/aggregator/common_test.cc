// The aggregator's SHA-256 (one algorithm fetch per process, one context per
// thread) and the DAP report checksum built on it, against FIPS 180-2's
// examples and XOR's algebra.
#include "aggregator/internal/common.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "tests/testing/vectors.h"

namespace canopy::aggregator::internal {
namespace {

std::string Hex(std::span<const uint8_t> bytes) { return canopy::testing::BytesToHex(bytes); }

std::vector<uint8_t> Bytes(const std::string& text) { return {text.begin(), text.end()}; }

TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(Hex(Sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex(Sha256(Bytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha256(Bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

// A job's ID is the first 16 bytes of SHA-256(task ID || request body): a
// retried request must find the job its first attempt made, also across an
// upgrade, so the derivation may never change.
TEST(ContentDerivedId, IsTheHashOfTaskIdAndBody) {
  dap::TaskId task_id;
  for (size_t i = 0; i < task_id.size(); ++i) task_id[i] = static_cast<uint8_t>(i);
  const std::vector<uint8_t> body = Bytes("an aggregation job's request");
  std::vector<uint8_t> joined(task_id.begin(), task_id.end());
  joined.insert(joined.end(), body.begin(), body.end());
  const std::array<uint8_t, 32> digest = Sha256(joined);
  const JobId id = ContentDerivedId(task_id, body);
  EXPECT_EQ(Hex(id), Hex(std::span<const uint8_t>(digest).first(16)));
  EXPECT_NE(ContentDerivedId(task_id, Bytes("another request")), id);
  EXPECT_EQ(ContentDigest(task_id, body), digest);
  EXPECT_EQ(IdOfContentDigest(digest), id);
}

// A retried init finds its stored answer by the request's content digest,
// and, for a job stored by an earlier build, by SHA-256 of the body alone;
// another request's hash finds nothing.
TEST(StoredInitAnswer, MatchesTheContentDigestAndTheEarlierBodyHash) {
  dap::TaskId task_id{};
  const std::vector<uint8_t> body = Bytes("an init request");
  const std::array<uint8_t, 32> digest = ContentDigest(task_id, body);
  const std::array<uint8_t, 32> body_hash = Sha256(body);
  const std::vector<uint8_t> digest_bytes(digest.begin(), digest.end());

  AggregationJobRow at_init;  // Step 0: the last answer is the init's.
  at_init.last_response = Bytes("answer at init");
  at_init.last_request_hash = digest_bytes;
  ASSERT_NE(StoredInitAnswer(at_init, digest_bytes, body), nullptr);
  EXPECT_EQ(*StoredInitAnswer(at_init, digest_bytes, body), at_init.last_response);
  EXPECT_EQ(StoredInitAnswer(at_init, digest_bytes, Bytes("another request")),
            &at_init.last_response)
      << "the digest decides while it matches";

  AggregationJobRow earlier = at_init;  // Stored by a build that hashed the body alone.
  earlier.last_request_hash = std::vector<uint8_t>(body_hash.begin(), body_hash.end());
  EXPECT_EQ(StoredInitAnswer(earlier, digest_bytes, body), &earlier.last_response);

  AggregationJobRow moved_on;  // Past its init: the kept init answer.
  moved_on.step = 1;
  moved_on.last_request_hash = Bytes("a continuation's hash");
  moved_on.last_response = Bytes("answer at step 1");
  moved_on.init_request_hash = std::vector<uint8_t>(body_hash.begin(), body_hash.end());
  moved_on.init_response = Bytes("answer at init");
  EXPECT_EQ(StoredInitAnswer(moved_on, digest_bytes, body), &moved_on.init_response);

  AggregationJobRow moved_on_here = moved_on;  // Its init stored by this build.
  moved_on_here.init_request_hash = digest_bytes;
  EXPECT_EQ(StoredInitAnswer(moved_on_here, digest_bytes, body), &moved_on_here.init_response);

  // Past its init, the last request is a continuation: even if its hash were
  // the init body's, the answer found is the init's, never the last one.
  AggregationJobRow continued = moved_on;
  continued.last_request_hash = std::vector<uint8_t>(body_hash.begin(), body_hash.end());
  continued.init_request_hash = Bytes("an older init's hash");
  EXPECT_EQ(StoredInitAnswer(continued, digest_bytes, body), nullptr);

  const std::array<uint8_t, 32> other = ContentDigest(task_id, Bytes("another request"));
  EXPECT_EQ(StoredInitAnswer(at_init, std::vector<uint8_t>(other.begin(), other.end()),
                             Bytes("another request")),
            nullptr);
  EXPECT_EQ(StoredInitAnswer(moved_on, std::vector<uint8_t>(other.begin(), other.end()),
                             Bytes("another request")),
            nullptr);
}

// Each thread has its own context: hashing at once gives each its own digest.
TEST(Sha256, ThreadsHashAtOnce) {
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (size_t t = 0; t < wrong.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        wrong[t] += Hex(Sha256(Bytes("abc"))) !=
                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong, std::vector<int>(4, 0));
}

// The checksum XORs in each report ID's digest: adding one twice cancels it,
// and the order does not matter.
TEST(UpdateChecksum, XorsEachReportIdsDigest) {
  dap::ReportId a{}, b{};
  a[0] = 1;
  b[0] = 2;
  Checksum ab{}, ba{}, twice{};
  UpdateChecksum(ab, a);
  UpdateChecksum(ab, b);
  UpdateChecksum(ba, b);
  UpdateChecksum(ba, a);
  EXPECT_EQ(ab, ba);
  EXPECT_NE(ab, Checksum{});
  UpdateChecksum(twice, a);
  EXPECT_EQ(Hex(twice), Hex(Sha256(a)));
  UpdateChecksum(twice, a);
  EXPECT_EQ(twice, Checksum{});
}

TEST(LocationOnOrigin, StaysOnTheRequestsAuthority) {
  const std::string request = "http://helper.example:8080/dap/tasks/t/aggregation_jobs";
  EXPECT_EQ(LocationOnOrigin(request, "/dap/tasks/t/aggregation_jobs/j"),
            "http://helper.example:8080/dap/tasks/t/aggregation_jobs/j");
  EXPECT_EQ(LocationOnOrigin(request, "tasks/t/aggregation_jobs/j"),
            "http://helper.example:8080/tasks/t/aggregation_jobs/j");
  // An absolute URL on the same authority (the default port spelt out or not).
  EXPECT_EQ(LocationOnOrigin(request, "http://helper.example:8080/x"),
            "http://helper.example:8080/x");
  EXPECT_EQ(LocationOnOrigin("http://helper.example/a", "http://helper.example:80/x"),
            "http://helper.example:80/x");
  // Anywhere else is refused: another host, another port, another scheme.
  for (const char* elsewhere : {"http://attacker.example:8080/x", "http://helper.example:8081/x",
                                "https://helper.example:8080/x", "ftp://helper.example:8080/x",
                                "http://user@helper.example:8080/x"}) {
    EXPECT_EQ(LocationOnOrigin(request, elsewhere), std::nullopt) << elsewhere;
  }
  // The host's case does not matter; a "://" in a path's query does not
  // make it an absolute URL.
  EXPECT_EQ(LocationOnOrigin(request, "http://Helper.Example:8080/x"),
            "http://Helper.Example:8080/x");
  EXPECT_EQ(LocationOnOrigin(request, "/jobs/j?next=http://elsewhere/"),
            "http://helper.example:8080/jobs/j?next=http://elsewhere/");
  // A path that looks like a host stays a path on the helper.
  EXPECT_EQ(LocationOnOrigin(request, "//attacker.example/x"),
            "http://helper.example:8080//attacker.example/x");
  // Without a request URL that parses there is no origin to stay on.
  EXPECT_EQ(LocationOnOrigin("not a url", "/x"), std::nullopt);
}

TEST(ConstantTimeEquals, EqualOnlyForTheSameBytes) {
  EXPECT_TRUE(ConstantTimeEquals("secret-token", "secret-token"));
  EXPECT_FALSE(ConstantTimeEquals("secret-token", "secret-tokeN"));
  EXPECT_FALSE(ConstantTimeEquals("secret-token", "secret-token-longer"));
  EXPECT_FALSE(ConstantTimeEquals("secret-token", ""));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace canopy::aggregator::internal
