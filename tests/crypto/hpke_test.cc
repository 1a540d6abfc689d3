// HPKE (RFC 9180) base mode: every X25519 base-mode entry of the official test
// vectors (all intermediate values, all 257 messages, the exports), X25519
// known answers (RFC 7748), and the failure cases DAP depends on: wrong keys,
// aad or info, modified, truncated or extended ciphertexts, malformed and
// low-order encapsulated keys, sequence numbers and their limit.
#include "crypto/hpke.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <boost/json/value.hpp>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "crypto/internal/hkdf.h"
#include "crypto/internal/hpke_internal.h"
#include "crypto/random.h"
#include "crypto/sha256.h"
#include "tests/testing/vectors.h"

namespace canopy::crypto::hpke {
namespace {

using ::canopy::testing::BytesToHex;
using ::canopy::testing::HexToBytes;
using ::canopy::testing::JsonHex;
using ::canopy::testing::JsonString;
using ::canopy::testing::JsonUint;

constexpr Suite kAesSuite = {KemId::kX25519HkdfSha256, KdfId::kHkdfSha256, AeadId::kAes128Gcm};
constexpr Suite kChaChaSuite = {KemId::kX25519HkdfSha256, KdfId::kHkdfSha256,
                                AeadId::kChaCha20Poly1305};

std::vector<uint8_t> Text(std::string_view text) { return {text.begin(), text.end()}; }

template <typename T>
ErrorCode CodeOf(const Result<T>& result) {
  EXPECT_FALSE(result.has_value());
  return result ? ErrorCode::kInternal : result.error().code();
}

// ---- Official vectors -------------------------------------------------------

// Checks one base-mode entry end to end; returns the number of messages checked.
size_t CheckVectorEntry(const boost::json::value& entry) {
  const Suite suite = {static_cast<KemId>(JsonUint(entry, "kem_id")),
                       static_cast<KdfId>(JsonUint(entry, "kdf_id")),
                       static_cast<AeadId>(JsonUint(entry, "aead_id"))};
  const std::vector<uint8_t> info = JsonHex(entry, "info");
  const std::vector<uint8_t> enc = JsonHex(entry, "enc");
  const std::vector<uint8_t> pk_rm = JsonHex(entry, "pkRm");
  const std::vector<uint8_t> sk_rm = JsonHex(entry, "skRm");

  // DeriveKeyPair for both key pairs.
  Result<KeyPair> recipient = DeriveKeyPair(suite.kem, JsonHex(entry, "ikmR"));
  Result<KeyPair> ephemeral = DeriveKeyPair(suite.kem, JsonHex(entry, "ikmE"));
  EXPECT_TRUE(recipient.has_value() && ephemeral.has_value());
  if (!recipient || !ephemeral) return 0;
  EXPECT_EQ(BytesToHex(recipient->private_key), JsonString(entry, "skRm"));
  EXPECT_EQ(BytesToHex(recipient->public_key), JsonString(entry, "pkRm"));
  EXPECT_EQ(BytesToHex(ephemeral->private_key), JsonString(entry, "skEm"));
  EXPECT_EQ(BytesToHex(ephemeral->public_key), JsonString(entry, "pkEm"));
  Result<std::vector<uint8_t>> public_key = PublicKeyFromPrivate(suite.kem, sk_rm);
  EXPECT_TRUE(public_key.has_value() && *public_key == pk_rm);

  // Encap with the vector's ephemeral key, and Decap.
  Result<internal::EncapResult> encap =
      internal::EncapWithEphemeral(suite.kem, pk_rm, JsonHex(entry, "skEm"));
  EXPECT_TRUE(encap.has_value());
  if (!encap) return 0;
  EXPECT_EQ(BytesToHex(encap->enc), JsonString(entry, "enc"));
  EXPECT_EQ(BytesToHex(encap->shared_secret), JsonString(entry, "shared_secret"));
  Result<RecipientKey> recipient_key = RecipientKey::Create(suite.kem, sk_rm);
  EXPECT_TRUE(recipient_key.has_value());
  if (!recipient_key) return 0;
  EXPECT_EQ(BytesToHex(recipient_key->public_key()), JsonString(entry, "pkRm"));
  Result<SecretBytes> decap = internal::Decap(enc, *recipient_key);
  EXPECT_TRUE(decap.has_value());
  if (decap) {
    EXPECT_EQ(BytesToHex(*decap), JsonString(entry, "shared_secret"));
  }

  // KeySchedule.
  Result<internal::KeyScheduleResult> schedule =
      internal::KeySchedule(suite, JsonHex(entry, "shared_secret"), info);
  EXPECT_TRUE(schedule.has_value());
  if (!schedule) return 0;
  EXPECT_EQ(BytesToHex(schedule->key_schedule_context), JsonString(entry, "key_schedule_context"));
  EXPECT_EQ(BytesToHex(schedule->secret), JsonString(entry, "secret"));
  EXPECT_EQ(BytesToHex(schedule->key), JsonString(entry, "key"));
  EXPECT_EQ(BytesToHex(schedule->base_nonce), JsonString(entry, "base_nonce"));
  EXPECT_EQ(BytesToHex(schedule->exporter_secret), JsonString(entry, "exporter_secret"));

  // The public setup functions give the same enc and contexts.
  Result<SenderSetup> sender = SetupBaseSWithEphemeral(suite, pk_rm, info, JsonHex(entry, "ikmE"));
  EXPECT_TRUE(sender.has_value());
  if (!sender) return 0;
  EXPECT_EQ(BytesToHex(sender->enc), JsonString(entry, "enc"));
  Result<RecipientContext> receiver = SetupBaseR(suite, enc, *recipient_key, info);
  EXPECT_TRUE(receiver.has_value());
  if (!receiver) return 0;

  // All messages, in order, through one context on each side.
  const std::span<const uint8_t, kNonceSize> base_nonce(schedule->base_nonce.data(), kNonceSize);
  size_t messages = 0;
  const boost::json::array& encryptions = entry.at("encryptions").as_array();
  for (size_t seq = 0; seq < encryptions.size(); ++seq) {
    const boost::json::value& encryption = encryptions[seq];
    const std::vector<uint8_t> aad = JsonHex(encryption, "aad");
    const std::vector<uint8_t> pt = JsonHex(encryption, "pt");
    EXPECT_EQ(BytesToHex(internal::ComputeNonce(base_nonce, seq)), JsonString(encryption, "nonce"))
        << "seq " << seq;
    EXPECT_EQ(sender->context.sequence_number(), seq);
    Result<std::vector<uint8_t>> ct = sender->context.Seal(aad, pt);
    EXPECT_TRUE(ct.has_value()) << "seq " << seq;
    if (!ct) return messages;
    EXPECT_EQ(BytesToHex(*ct), JsonString(encryption, "ct")) << "seq " << seq;
    EXPECT_EQ(receiver->sequence_number(), seq);
    Result<std::vector<uint8_t>> opened = receiver->Open(aad, JsonHex(encryption, "ct"));
    EXPECT_TRUE(opened.has_value()) << "seq " << seq;
    if (!opened) return messages;
    EXPECT_EQ(*opened, pt) << "seq " << seq;
    ++messages;
  }

  // Single-shot Open of the first message, from the serialized key too.
  const boost::json::value& first = encryptions.front();
  Result<std::vector<uint8_t>> single =
      Open(suite, sk_rm, enc, info, JsonHex(first, "aad"), JsonHex(first, "ct"));
  EXPECT_TRUE(single.has_value() && *single == JsonHex(first, "pt"));

  for (const boost::json::value& exported : entry.at("exports").as_array()) {
    const std::vector<uint8_t> context = JsonHex(exported, "exporter_context");
    const size_t length = JsonUint(exported, "L");
    Result<SecretBytes> from_sender = sender->context.Export(context, length);
    Result<SecretBytes> from_receiver = receiver->Export(context, length);
    EXPECT_TRUE(from_sender.has_value() && from_receiver.has_value());
    if (!from_sender || !from_receiver) continue;
    EXPECT_EQ(BytesToHex(*from_sender), JsonString(exported, "exported_value"));
    EXPECT_EQ(BytesToHex(*from_receiver), JsonString(exported, "exported_value"));
  }
  return messages;
}

TEST(HpkeVectors, X25519Sha256BaseMode) {
  CANOPY_LOAD_VECTOR(vectors, "hpke/hpke_x25519_sha256.json");
  ASSERT_TRUE(vectors.is_array());
  size_t base_entries = 0;
  size_t run = 0;
  size_t messages = 0;
  bool saw_aes = false;
  bool saw_chacha = false;
  for (const boost::json::value& entry : vectors.as_array()) {
    if (JsonUint(entry, "mode") != 0 || JsonUint(entry, "kem_id") != 0x0020) continue;
    ++base_entries;
    const Suite suite = {static_cast<KemId>(JsonUint(entry, "kem_id")),
                         static_cast<KdfId>(JsonUint(entry, "kdf_id")),
                         static_cast<AeadId>(JsonUint(entry, "aead_id"))};
    if (!CheckSuite(suite)) {
      // Only AEADs this implementation lacks may be skipped; the file has none.
      ADD_FAILURE() << "unexpected unsupported suite, aead " << JsonUint(entry, "aead_id");
      continue;
    }
    saw_aes |= suite.aead == AeadId::kAes128Gcm;
    saw_chacha |= suite.aead == AeadId::kChaCha20Poly1305;
    SCOPED_TRACE("aead_id " + std::to_string(JsonUint(entry, "aead_id")));
    const size_t checked = CheckVectorEntry(entry);
    EXPECT_EQ(checked, entry.at("encryptions").as_array().size());
    EXPECT_EQ(checked, 257u);
    messages += checked;
    ++run;
  }
  EXPECT_EQ(run, base_entries) << "every X25519 base-mode entry must run";
  EXPECT_GE(run, 2u);
  EXPECT_TRUE(saw_aes);
  EXPECT_TRUE(saw_chacha);
  std::printf("[ info ] %zu X25519 base-mode entries, %zu messages checked\n", run, messages);
}

// P-256 is not implemented: its vectors must be recognised as unsupported,
// cleanly, and never fail the build's tests.
TEST(HpkeVectors, P256IsReportedUnsupported) {
  ::canopy::testing::VectorLoad load =
      ::canopy::testing::LoadVectorFile("hpke/hpke_p256_sha256.json");
  if (load.status != ::canopy::testing::VectorLoad::Status::kLoaded) {
    GTEST_SKIP() << "no P-256 vectors: " << load.message;
  }
  ASSERT_TRUE(load.json.is_array());
  for (const boost::json::value& entry : load.json.as_array()) {
    const Suite suite = {static_cast<KemId>(JsonUint(entry, "kem_id")),
                         static_cast<KdfId>(JsonUint(entry, "kdf_id")),
                         static_cast<AeadId>(JsonUint(entry, "aead_id"))};
    EXPECT_EQ(CodeOf(CheckSuite(suite)), ErrorCode::kUnsupported);
    EXPECT_EQ(CodeOf(DeriveKeyPair(suite.kem, JsonHex(entry, "ikmR"))), ErrorCode::kUnsupported);
    EXPECT_EQ(CodeOf(Seal(suite, JsonHex(entry, "pkRm"), JsonHex(entry, "info"), {}, {})),
              ErrorCode::kUnsupported);
    EXPECT_EQ(CodeOf(Open(suite, JsonHex(entry, "skRm"), JsonHex(entry, "enc"),
                          JsonHex(entry, "info"), {}, std::vector<uint8_t>(32))),
              ErrorCode::kUnsupported);
  }
}

// ---- Building blocks --------------------------------------------------------

// RFC 4231 test case 2 and RFC 5869 test case 1: the HMAC and HKDF under HPKE.
TEST(HpkeHkdf, KnownAnswers) {
  std::array<uint8_t, 32> mac;
  ASSERT_TRUE(crypto::internal::HmacSha256(Text("Jefe"),
                                           {Text("what do ya want "), Text("for nothing?")}, mac));
  EXPECT_EQ(BytesToHex(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

  const std::vector<uint8_t> ikm(22, 0x0b);
  const std::vector<uint8_t> salt = HexToBytes("000102030405060708090a0b0c");
  const std::vector<uint8_t> info = HexToBytes("f0f1f2f3f4f5f6f7f8f9");
  std::array<uint8_t, 32> prk;
  ASSERT_TRUE(crypto::internal::HkdfSha256Extract(salt, {ikm}, prk));
  EXPECT_EQ(BytesToHex(prk), "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
  std::vector<uint8_t> okm(42);
  ASSERT_TRUE(crypto::internal::HkdfSha256Expand(
      prk, {std::span(info).first(3), std::span(info).subspan(3)}, okm));
  EXPECT_EQ(BytesToHex(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");

  // A key longer than the block is hashed first (RFC 4231 test case 6).
  const std::vector<uint8_t> long_key(131, 0xaa);
  ASSERT_TRUE(crypto::internal::HmacSha256(
      long_key, {Text("Test Using Larger Than Block-Size Key - Hash Key First")}, mac));
  EXPECT_EQ(BytesToHex(mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");

  std::vector<uint8_t> too_long(crypto::internal::kHkdfSha256MaxOutput + 1);
  EXPECT_EQ(CodeOf(crypto::internal::HkdfSha256Expand(prk, {info}, too_long)),
            ErrorCode::kInvalidArgument);
}

// Plain SHA-256 on the same fetched algorithm and per-thread context as
// HMAC (FIPS 180-2's examples), between HMACs that reuse the context.
TEST(HpkeHkdf, Sha256KnownAnswers) {
  std::array<uint8_t, 32> digest;
  ASSERT_TRUE(crypto::Sha256({}, digest));
  EXPECT_EQ(BytesToHex(digest), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  std::array<uint8_t, 32> mac;
  ASSERT_TRUE(crypto::internal::HmacSha256(Text("Jefe"),
                                           {Text("what do ya want "), Text("for nothing?")}, mac));
  ASSERT_TRUE(crypto::Sha256(Text("abc"), digest));
  EXPECT_EQ(BytesToHex(digest), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  ASSERT_TRUE(
      crypto::Sha256(Text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"), digest));
  EXPECT_EQ(BytesToHex(digest), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  ASSERT_TRUE(crypto::internal::HmacSha256(Text("Jefe"),
                                           {Text("what do ya want "), Text("for nothing?")}, mac));
  EXPECT_EQ(BytesToHex(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// Parts hash as their concatenation, whichever way a message is split into
// three (some empty).
TEST(HpkeHkdf, Sha256OfPartsHashesTheirConcatenation) {
  const std::vector<uint8_t> message =
      Text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
  const std::span<const uint8_t> whole = message;
  for (size_t first = 0; first <= whole.size(); ++first) {
    for (size_t second = first; second <= whole.size(); ++second) {
      const std::span<const uint8_t> parts[] = {
          whole.first(first), whole.subspan(first, second - first), whole.subspan(second)};
      std::array<uint8_t, 32> digest{};
      ASSERT_TRUE(crypto::Sha256OfParts(parts, digest));
      ASSERT_EQ(BytesToHex(digest),
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
          << "split at " << first << " and " << second;
    }
  }
}

// RFC 7748 section 6.1: public keys computed through the ladder shortcut.
TEST(HpkeX25519, Rfc7748PublicKeys) {
  Result<std::vector<uint8_t>> alice = PublicKeyFromPrivate(
      KemId::kX25519HkdfSha256,
      HexToBytes("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
  ASSERT_TRUE(alice.has_value());
  EXPECT_EQ(BytesToHex(*alice), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  Result<std::vector<uint8_t>> bob = PublicKeyFromPrivate(
      KemId::kX25519HkdfSha256,
      HexToBytes("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
  ASSERT_TRUE(bob.has_value());
  EXPECT_EQ(BytesToHex(*bob), "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
}

// The public keys agree with OpenSSL's own computation from the private key.
TEST(HpkeX25519, PublicKeysMatchOpenSsl) {
  for (int trial = 0; trial < 50; ++trial) {
    Result<KeyPair> pair = GenerateKeyPair(KemId::kX25519HkdfSha256);
    ASSERT_TRUE(pair.has_value());
    ASSERT_EQ(pair->private_key.size(), kX25519PrivateKeySize);
    ASSERT_EQ(pair->public_key.size(), kX25519PublicKeySize);
    EVP_PKEY* key =
        EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, pair->private_key.data(), 32);
    ASSERT_NE(key, nullptr);
    std::vector<uint8_t> expected(32);
    size_t length = expected.size();
    ASSERT_EQ(EVP_PKEY_get_raw_public_key(key, expected.data(), &length), 1);
    EVP_PKEY_free(key);
    EXPECT_EQ(pair->public_key, expected);
  }
}

TEST(HpkeKeys, Errors) {
  const auto kem = KemId::kX25519HkdfSha256;
  EXPECT_EQ(CodeOf(DeriveKeyPair(kem, std::vector<uint8_t>(31))), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(DeriveKeyPair(kem, std::vector<uint8_t>(32)).has_value());
  EXPECT_EQ(CodeOf(PublicKeyFromPrivate(kem, std::vector<uint8_t>(31))),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(PublicKeyFromPrivate(kem, std::vector<uint8_t>(33))),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(RecipientKey::Create(kem, {})), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(GenerateKeyPair(static_cast<KemId>(0x0010))), ErrorCode::kUnsupported);
  EXPECT_EQ(CodeOf(RecipientKey::Create(static_cast<KemId>(0x0021), std::vector<uint8_t>(56))),
            ErrorCode::kUnsupported);
}

TEST(HpkeKeys, UnsupportedSuites) {
  EXPECT_TRUE(CheckSuite(kAesSuite).has_value());
  EXPECT_TRUE(CheckSuite(kChaChaSuite).has_value());
  for (const Suite& suite :
       {Suite{static_cast<KemId>(0x0010), KdfId::kHkdfSha256, AeadId::kAes128Gcm},
        Suite{KemId::kX25519HkdfSha256, static_cast<KdfId>(0x0002), AeadId::kAes128Gcm},
        Suite{KemId::kX25519HkdfSha256, KdfId::kHkdfSha256, static_cast<AeadId>(0x0002)},
        Suite{KemId::kX25519HkdfSha256, KdfId::kHkdfSha256, static_cast<AeadId>(0xffff)}}) {
    EXPECT_EQ(CodeOf(CheckSuite(suite)), ErrorCode::kUnsupported);
    EXPECT_EQ(CodeOf(Seal(suite, std::vector<uint8_t>(32, 9), {}, {}, {})),
              ErrorCode::kUnsupported);
  }
}

TEST(HpkeKeys, SecretBytesMove) {
  SecretBytes a(std::vector<uint8_t>{1, 2, 3});
  SecretBytes b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checked on purpose.
  EXPECT_EQ(BytesToHex(b), "010203");
  SecretBytes c(4);
  c = std::move(b);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(BytesToHex(c), "010203");
}

// ---- Round trips and failures, for both AEADs ----------------------------------

class HpkeTest : public ::testing::TestWithParam<Suite> {
 protected:
  void SetUp() override {
    Result<KeyPair> pair = GenerateKeyPair(KemId::kX25519HkdfSha256);
    ASSERT_TRUE(pair.has_value());
    pair_ = std::move(*pair);
    Result<RecipientKey> key = RecipientKey::Create(KemId::kX25519HkdfSha256, pair_.private_key);
    ASSERT_TRUE(key.has_value());
    key_.emplace(std::move(*key));
  }

  Sealed SealOrDie(std::span<const uint8_t> plaintext) {
    Result<Sealed> sealed = Seal(GetParam(), pair_.public_key, info_, aad_, plaintext);
    EXPECT_TRUE(sealed.has_value());
    return sealed ? std::move(*sealed) : Sealed{};
  }

  Result<std::vector<uint8_t>> OpenSealed(const Sealed& sealed) {
    return Open(GetParam(), *key_, sealed.enc, info_, aad_, sealed.ciphertext);
  }

  KeyPair pair_;
  std::optional<RecipientKey> key_;
  const std::vector<uint8_t> info_ = Text("dap-09 input share");
  const std::vector<uint8_t> aad_ = Text("task id || metadata");
};

TEST_P(HpkeTest, RoundTripWithRandomKeys) {
  for (size_t size : {0, 1, 15, 16, 17, 100, 4096, 70000}) {
    Result<std::vector<uint8_t>> plaintext = RandomVector(size);
    ASSERT_TRUE(plaintext.has_value());
    Sealed sealed = SealOrDie(*plaintext);
    EXPECT_EQ(sealed.enc.size(), kX25519PublicKeySize);
    EXPECT_EQ(sealed.ciphertext.size(), size + kTagSize);
    Result<std::vector<uint8_t>> opened = OpenSealed(sealed);
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    EXPECT_EQ(*opened, *plaintext);
    // The serialized-key overload agrees.
    Result<std::vector<uint8_t>> again =
        Open(GetParam(), pair_.private_key, sealed.enc, info_, aad_, sealed.ciphertext);
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(*again, *plaintext);
  }
}

TEST_P(HpkeTest, FreshEphemeralKeyPerSeal) {
  const std::vector<uint8_t> plaintext = Text("same message");
  Sealed first = SealOrDie(plaintext);
  Sealed second = SealOrDie(plaintext);
  EXPECT_NE(first.enc, second.enc);
  EXPECT_NE(first.ciphertext, second.ciphertext);
}

TEST_P(HpkeTest, WrongRecipientKeyFails) {
  Sealed sealed = SealOrDie(Text("for someone else"));
  Result<KeyPair> other = GenerateKeyPair(KemId::kX25519HkdfSha256);
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(
      CodeOf(Open(GetParam(), other->private_key, sealed.enc, info_, aad_, sealed.ciphertext)),
      ErrorCode::kVerifyFailed);
}

TEST_P(HpkeTest, WrongAadOrInfoFails) {
  Sealed sealed = SealOrDie(Text("bound to its context"));
  EXPECT_EQ(
      CodeOf(Open(GetParam(), *key_, sealed.enc, info_, Text("other aad"), sealed.ciphertext)),
      ErrorCode::kVerifyFailed);
  EXPECT_EQ(CodeOf(Open(GetParam(), *key_, sealed.enc, info_, {}, sealed.ciphertext)),
            ErrorCode::kVerifyFailed);
  EXPECT_EQ(
      CodeOf(Open(GetParam(), *key_, sealed.enc, Text("other info"), aad_, sealed.ciphertext)),
      ErrorCode::kVerifyFailed);
  // The other AEAD with the same KEM and key.
  Suite other = GetParam();
  other.aead = other.aead == AeadId::kAes128Gcm ? AeadId::kChaCha20Poly1305 : AeadId::kAes128Gcm;
  EXPECT_EQ(CodeOf(Open(other, *key_, sealed.enc, info_, aad_, sealed.ciphertext)),
            ErrorCode::kVerifyFailed);
  EXPECT_TRUE(OpenSealed(sealed).has_value());
}

TEST_P(HpkeTest, EveryBitFlipFails) {
  Sealed sealed = SealOrDie(Text("short"));
  ASSERT_EQ(sealed.ciphertext.size(), 5 + kTagSize);
  for (size_t bit = 0; bit < 8 * sealed.ciphertext.size(); ++bit) {
    Sealed flipped{sealed.enc, sealed.ciphertext};
    flipped.ciphertext[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
    EXPECT_EQ(CodeOf(OpenSealed(flipped)), ErrorCode::kVerifyFailed) << "ciphertext bit " << bit;
  }
  EXPECT_EQ(ERR_peek_error(), 0u);
  // Bit 255 of enc is ignored by X25519 (RFC 7748 masks it), so flipping it
  // gives the same shared point; but enc is also bound into the key schedule
  // through kem_context, so even that flip must fail.
  for (size_t bit = 0; bit < 8 * sealed.enc.size(); ++bit) {
    Sealed flipped{sealed.enc, sealed.ciphertext};
    flipped.enc[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
    EXPECT_EQ(CodeOf(OpenSealed(flipped)), ErrorCode::kVerifyFailed) << "enc bit " << bit;
  }
  EXPECT_TRUE(OpenSealed(sealed).has_value());
}

TEST_P(HpkeTest, TruncatedOrExtendedCiphertextFails) {
  Sealed sealed = SealOrDie(Text("a message of some length"));
  for (size_t length = 0; length < sealed.ciphertext.size(); ++length) {
    Sealed truncated{sealed.enc, std::vector<uint8_t>(sealed.ciphertext.begin(),
                                                      sealed.ciphertext.begin() + length)};
    EXPECT_EQ(CodeOf(OpenSealed(truncated)),
              length < kTagSize ? ErrorCode::kDecodeError : ErrorCode::kVerifyFailed)
        << "length " << length;
  }
  Sealed extended{sealed.enc, sealed.ciphertext};
  extended.ciphertext.push_back(0);
  EXPECT_EQ(CodeOf(OpenSealed(extended)), ErrorCode::kVerifyFailed);
}

TEST_P(HpkeTest, MalformedEncFails) {
  Sealed sealed = SealOrDie(Text("x"));
  for (size_t length : {0, 1, 31, 33, 64, 65}) {
    std::vector<uint8_t> enc(length, 0x42);
    std::copy_n(sealed.enc.begin(), std::min(length, sealed.enc.size()), enc.begin());
    EXPECT_EQ(CodeOf(Open(GetParam(), *key_, enc, info_, aad_, sealed.ciphertext)),
              ErrorCode::kDecodeError)
        << "length " << length;
    EXPECT_EQ(CodeOf(SetupBaseR(GetParam(), enc, *key_, info_)), ErrorCode::kDecodeError);
  }
  // A public key of the wrong length is refused when sealing too.
  EXPECT_EQ(CodeOf(Seal(GetParam(), std::vector<uint8_t>(31, 9), info_, aad_, {})),
            ErrorCode::kDecodeError);
  EXPECT_EQ(CodeOf(Seal(GetParam(), std::vector<uint8_t>(65, 4), info_, aad_, {})),
            ErrorCode::kDecodeError);
}

// Points of small order on the curve or its twist (including non-canonical
// encodings and ones with the ignored top bit set) give an all-zero X25519
// output, which must be refused on both sides.
TEST_P(HpkeTest, LowOrderPointsFail) {
  const char* const kLowOrder[] = {
      "0000000000000000000000000000000000000000000000000000000000000000",
      "0100000000000000000000000000000000000000000000000000000000000000",
      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
      "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "0000000000000000000000000000000000000000000000000000000000000080",
      "0100000000000000000000000000000000000000000000000000000000000080",
      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
      "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
  };
  const std::vector<uint8_t> ciphertext(40, 0);
  for (const char* hex : kLowOrder) {
    const std::vector<uint8_t> point = HexToBytes(hex);
    EXPECT_EQ(CodeOf(Open(GetParam(), *key_, point, info_, aad_, ciphertext)),
              ErrorCode::kVerifyFailed)
        << hex;
    EXPECT_EQ(CodeOf(SetupBaseS(GetParam(), point, info_)), ErrorCode::kVerifyFailed) << hex;
    // OpenSSL's refusal leaves nothing in its error queue for later code.
    EXPECT_EQ(ERR_peek_error(), 0u);
  }
}

TEST_P(HpkeTest, ContextSequenceNumbersAdvance) {
  Result<SenderSetup> sender = SetupBaseS(GetParam(), pair_.public_key, info_);
  ASSERT_TRUE(sender.has_value());
  Result<RecipientContext> receiver = SetupBaseR(GetParam(), sender->enc, *key_, info_);
  ASSERT_TRUE(receiver.has_value());
  const std::vector<uint8_t> plaintext = Text("the same plaintext");
  EXPECT_EQ(sender->context.sequence_number(), 0u);
  Result<std::vector<uint8_t>> first = sender->context.Seal(aad_, plaintext);
  Result<std::vector<uint8_t>> second = sender->context.Seal(aad_, plaintext);
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_NE(*first, *second);  // Different nonces.
  EXPECT_EQ(sender->context.sequence_number(), 2u);

  // Out of order: the second message does not open first, and the failure
  // does not advance the recipient.
  EXPECT_EQ(CodeOf(receiver->Open(aad_, *second)), ErrorCode::kVerifyFailed);
  EXPECT_EQ(receiver->sequence_number(), 0u);
  Result<std::vector<uint8_t>> opened = receiver->Open(aad_, *first);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(*opened, plaintext);
  EXPECT_EQ(receiver->sequence_number(), 1u);
  // A replay of the first message fails at the next sequence number.
  EXPECT_EQ(CodeOf(receiver->Open(aad_, *first)), ErrorCode::kVerifyFailed);
  opened = receiver->Open(aad_, *second);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(*opened, plaintext);
  EXPECT_EQ(receiver->sequence_number(), 2u);

  // Both sides export the same secrets; lengths up to 255 * Nh.
  for (size_t length : {size_t{0}, size_t{1}, size_t{32}, size_t{33}, kMaxExportSize}) {
    Result<SecretBytes> a = sender->context.Export(Text("ctx"), length);
    Result<SecretBytes> b = receiver->Export(Text("ctx"), length);
    ASSERT_TRUE(a.has_value() && b.has_value());
    EXPECT_EQ(a->size(), length);
    EXPECT_EQ(BytesToHex(*a), BytesToHex(*b));
  }
  EXPECT_EQ(CodeOf(sender->context.Export({}, kMaxExportSize + 1)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(receiver->Export({}, kMaxExportSize + 1)), ErrorCode::kInvalidArgument);
  Result<SecretBytes> one = sender->context.Export(Text("ctx"), 32);
  Result<SecretBytes> other = sender->context.Export(Text("cty"), 32);
  ASSERT_TRUE(one.has_value() && other.has_value());
  EXPECT_NE(BytesToHex(*one), BytesToHex(*other));
}

// The sequence number stops one short of 2^64 rather than wrap (which would
// reuse the first nonce).
TEST_P(HpkeTest, SequenceNumberLimit) {
  const size_t key_size = GetParam().aead == AeadId::kAes128Gcm ? 16 : 32;
  const std::vector<uint8_t> key(key_size, 7);
  const std::vector<uint8_t> base_nonce(kNonceSize, 0x5a);
  const std::vector<uint8_t> exporter_secret(32, 3);
  const uint64_t last = std::numeric_limits<uint64_t>::max() - 1;
  Result<SenderContext> sender =
      internal::MakeSenderContext(GetParam(), key, base_nonce, exporter_secret, last);
  Result<RecipientContext> receiver =
      internal::MakeRecipientContext(GetParam(), key, base_nonce, exporter_secret, last);
  ASSERT_TRUE(sender.has_value() && receiver.has_value());
  Result<std::vector<uint8_t>> ct = sender->Seal(aad_, Text("last"));
  ASSERT_TRUE(ct.has_value());
  EXPECT_EQ(CodeOf(sender->Seal(aad_, Text("one too many"))), ErrorCode::kInvalidArgument);
  Result<std::vector<uint8_t>> pt = receiver->Open(aad_, *ct);
  ASSERT_TRUE(pt.has_value());
  EXPECT_EQ(*pt, Text("last"));
  EXPECT_EQ(CodeOf(receiver->Open(aad_, *ct)), ErrorCode::kInvalidArgument);

  EXPECT_EQ(BytesToHex(internal::ComputeNonce(
                std::span<const uint8_t, kNonceSize>(base_nonce.data(), kNonceSize), last)),
            "5a5a5a5aa5a5a5a5a5a5a5a4");
  EXPECT_EQ(CodeOf(internal::MakeSenderContext(GetParam(), std::vector<uint8_t>(key_size + 1),
                                               base_nonce, exporter_secret)),
            ErrorCode::kInvalidArgument);
}

TEST_P(HpkeTest, MovedFromRecipientKeyIsRejected) {
  Sealed sealed = SealOrDie(Text("x"));
  RecipientKey moved = std::move(*key_);
  EXPECT_EQ(BytesToHex(moved.public_key()), BytesToHex(pair_.public_key));
  EXPECT_EQ(CodeOf(Open(GetParam(), *key_, sealed.enc, info_, aad_, sealed.ciphertext)),
            ErrorCode::kInvalidArgument);
  Result<std::vector<uint8_t>> opened =
      Open(GetParam(), moved, sealed.enc, info_, aad_, sealed.ciphertext);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(*opened, Text("x"));
}

TEST_P(HpkeTest, PrivateKeyOfWrongLengthIsRejected) {
  Sealed sealed = SealOrDie(Text("x"));
  EXPECT_EQ(CodeOf(Open(GetParam(), std::vector<uint8_t>(16), sealed.enc, info_, aad_,
                        sealed.ciphertext)),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(SetupBaseR(GetParam(), sealed.enc, std::vector<uint8_t>(33), info_)),
            ErrorCode::kInvalidArgument);
}

// One RecipientKey shared by several threads, as an aggregator would.
TEST_P(HpkeTest, SharedRecipientKeyAcrossThreads) {
  std::vector<Sealed> sealed;
  for (int i = 0; i < 8; ++i) sealed.push_back(SealOrDie(Text("report " + std::to_string(i))));
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (size_t t = 0; t < failures.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 10; ++round) {
        for (size_t i = 0; i < sealed.size(); ++i) {
          Result<std::vector<uint8_t>> opened =
              Open(GetParam(), *key_, sealed[i].enc, info_, aad_, sealed[i].ciphertext);
          if (!opened || *opened != Text("report " + std::to_string(i))) ++failures[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int failed : failures) EXPECT_EQ(failed, 0);
}

INSTANTIATE_TEST_SUITE_P(Aeads, HpkeTest, ::testing::Values(kAesSuite, kChaChaSuite),
                         [](const ::testing::TestParamInfo<Suite>& param_info) {
                           return param_info.param.aead == AeadId::kAes128Gcm ? "Aes128Gcm"
                                                                              : "ChaCha20Poly1305";
                         });

}  // namespace
}  // namespace canopy::crypto::hpke
