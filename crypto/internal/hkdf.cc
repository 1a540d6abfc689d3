#include "crypto/internal/hkdf.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <memory>
#include <vector>

#include "crypto/secure_wipe.h"
#include "crypto/sha256.h"

namespace canopy::crypto::internal {
namespace {

constexpr size_t kBlockSize = 64;  // SHA-256's block.

// SHA-256 fetched once. An explicit fetch avoids the implicit fetch that
// EVP_DigestInit_ex2(EVP_sha256()) performs on every call, which costs about
// as much as hashing HPKE's short inputs. Never freed: it is needed until exit.
const EVP_MD* Sha256() {
  static const EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }  // Also wipes the state.
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// One thread's hashing context, reused across calls: allocating one per HMAC
// would be a noticeable share of HPKE's key schedule. Hmac leaves it in the
// initial state, so no secret lingers in it between calls.
EVP_MD_CTX* ThreadMdCtx() {
  thread_local MdCtx ctx;
  if (ctx == nullptr) ctx.reset(EVP_MD_CTX_new());
  return ctx.get();
}

Result<void> OpenSslFailure(std::span<uint8_t> out) {
  ERR_clear_error();
  SecureWipe(out.data(), out.size());
  return MakeError(ErrorCode::kInternal, "OpenSSL SHA-256 failed");
}

using PartList = std::span<const std::span<const uint8_t>>;

// out = SHA-256(prefix || concatenation of parts).
bool Hash(EVP_MD_CTX* ctx, std::span<const uint8_t> prefix, PartList parts,
          std::span<uint8_t, kSha256Size> out) {
  if (EVP_DigestInit_ex2(ctx, Sha256(), nullptr) != 1) return false;
  if (!prefix.empty() && EVP_DigestUpdate(ctx, prefix.data(), prefix.size()) != 1) return false;
  for (std::span<const uint8_t> part : parts) {
    if (!part.empty() && EVP_DigestUpdate(ctx, part.data(), part.size()) != 1) return false;
  }
  unsigned int length = 0;
  return EVP_DigestFinal_ex(ctx, out.data(), &length) == 1 && length == kSha256Size;
}

Result<void> Hmac(std::span<const uint8_t> key, PartList message,
                  std::span<uint8_t, kSha256Size> out) {
  EVP_MD_CTX* ctx = ThreadMdCtx();
  if (ctx == nullptr || Sha256() == nullptr) return OpenSslFailure(out);

  // K0: the key, hashed when longer than a block, zero-padded to a block.
  std::array<uint8_t, kBlockSize> pad{};
  bool ok = true;
  if (key.size() > kBlockSize) {
    const std::span<const uint8_t> key_part[] = {key};
    ok = Hash(ctx, {}, key_part, std::span<uint8_t, kSha256Size>(pad.data(), kSha256Size));
  } else {
    std::copy(key.begin(), key.end(), pad.begin());
  }

  std::array<uint8_t, kSha256Size> inner;
  for (uint8_t& byte : pad) byte ^= 0x36;
  ok = ok && Hash(ctx, pad, message, inner);
  for (uint8_t& byte : pad) byte ^= 0x36 ^ 0x5c;
  const std::span<const uint8_t> inner_part[] = {inner};
  ok = ok && Hash(ctx, pad, inner_part, out);
  // The reused context still holds the last hash's state, which is the MAC
  // itself (or, after a failure, some keyed state): reset it to SHA-256's
  // initial state rather than keep a secret in it.
  ok = EVP_DigestInit_ex2(ctx, Sha256(), nullptr) == 1 && ok;
  SecureWipeObject(pad);
  SecureWipeObject(inner);
  if (!ok) return OpenSslFailure(out);
  return {};
}

PartList AsList(ByteParts parts) { return PartList(parts.begin(), parts.size()); }

}  // namespace

Result<void> HmacSha256(std::span<const uint8_t> key, ByteParts message,
                        std::span<uint8_t, kSha256Size> out) {
  return Hmac(key, AsList(message), out);
}

Result<void> HkdfSha256Extract(std::span<const uint8_t> salt, ByteParts ikm,
                               std::span<uint8_t, kSha256Size> prk) {
  return Hmac(salt, AsList(ikm), prk);
}

Result<void> HkdfSha256Expand(std::span<const uint8_t> prk, ByteParts info,
                              std::span<uint8_t> out) {
  if (out.size() > kHkdfSha256MaxOutput) {
    SecureWipe(out.data(), out.size());
    return MakeError(ErrorCode::kInvalidArgument, "HKDF-SHA256 output longer than 255 * 32 bytes");
  }
  // T(i) = HMAC(prk, T(i-1) || info || i) with T(0) empty; out = T(1) || T(2) ...
  std::array<uint8_t, kSha256Size> block{};
  uint8_t counter = 0;
  // The message pieces: [T(i-1)] [info pieces...] [counter]. HPKE passes at
  // most five info pieces, so this fits in place; longer lists still work.
  constexpr size_t kInline = 8;
  std::array<std::span<const uint8_t>, kInline> inline_parts;
  std::vector<std::span<const uint8_t>> heap_parts;
  std::span<std::span<const uint8_t>> parts;
  if (info.size() + 2 <= kInline) {
    parts = std::span(inline_parts.data(), info.size() + 2);
  } else {
    heap_parts.resize(info.size() + 2);
    parts = heap_parts;
  }
  std::copy(info.begin(), info.end(), parts.begin() + 1);
  parts.back() = std::span<const uint8_t>(&counter, 1);

  for (size_t done = 0; done < out.size(); done += kSha256Size) {
    ++counter;
    parts.front() = std::span<const uint8_t>(block.data(), counter == 1 ? 0 : kSha256Size);
    Result<void> mac = Hmac(prk, parts, block);
    if (!mac) {
      SecureWipeObject(block);
      SecureWipe(out.data(), out.size());
      return mac;
    }
    const size_t take = std::min(kSha256Size, out.size() - done);
    std::copy_n(block.begin(), take, out.begin() + static_cast<std::ptrdiff_t>(done));
  }
  SecureWipeObject(block);
  return {};
}

}  // namespace canopy::crypto::internal

namespace canopy::crypto {

Result<void> Sha256(std::span<const uint8_t> data, std::span<uint8_t, kSha256DigestSize> out) {
  const std::span<const uint8_t> parts[] = {data};
  return Sha256OfParts(parts, out);
}

Result<void> Sha256OfParts(std::span<const std::span<const uint8_t>> parts,
                           std::span<uint8_t, kSha256DigestSize> out) {
  // HMAC's fetched algorithm and per-thread context serve plain hashing too.
  EVP_MD_CTX* ctx = internal::ThreadMdCtx();
  if (ctx == nullptr || internal::Sha256() == nullptr || !internal::Hash(ctx, {}, parts, out)) {
    return internal::OpenSslFailure(out);
  }
  return {};
}

}  // namespace canopy::crypto
