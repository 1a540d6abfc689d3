#include "config/internal/checks.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <utility>

#include "crypto/hpke.h"
#include "dap/base64url.h"

namespace canopy::config::internal {
namespace {

namespace pb = google::protobuf;

// The line `line` (zero-based) of `text`, without its end.
std::string_view LineOfText(std::string_view text, int line) {
  size_t start = 0;
  for (int i = 0; i < line; ++i) {
    const size_t newline = text.find('\n', start);
    if (newline == std::string_view::npos) return {};
    start = newline + 1;
  }
  const size_t end = text.find('\n', start);
  return text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

bool IsIdentifierChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// The name of the field whose value is at `column` of `line`: the last
// identifier before it that a ':' or '{' follows. The parser's messages about
// values ("Expected integer, got: ...") do not name the field; this does,
// without quoting the value (which may be a secret). The tokenizer counts a
// tab as advancing to the next multiple of 8 columns.
std::string FieldBefore(std::string_view line, int column) {
  size_t end = 0;
  for (int visual = 0; end < line.size() && visual < column; ++end) {
    visual = line[end] == '\t' ? (visual / 8 + 1) * 8 : visual + 1;
  }
  std::string field;
  std::string first;  // The line's first identifier.
  char quote = 0;     // The quote of the string being skipped, or 0.
  for (size_t i = 0; i < end; ++i) {
    const char c = line[i];
    if (quote != 0) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if (c == '#') break;
    if (c == '"' || c == '\'') {
      quote = c;
      continue;
    }
    if (!IsIdentifierChar(c) || (i > 0 && IsIdentifierChar(line[i - 1]))) continue;
    size_t j = i;
    while (j < line.size() && IsIdentifierChar(line[j])) ++j;
    if (first.empty()) first = std::string(line.substr(i, j - i));
    size_t k = j;
    while (k < line.size() && (line[k] == ' ' || line[k] == '\t')) ++k;
    if (k < line.size() && (line[k] == ':' || line[k] == '{' || line[k] == '<')) {
      field = std::string(line.substr(i, j - i));
    }
  }
  // "name 60" (a missing colon): the statement's first word is the field.
  return field.empty() ? first : field;
}

// The token a parser message quotes as the culprit, when the parser reports it
// at the token after it: an unknown field's name, an unknown enum value.
std::string QuotedCulprit(const std::string& message) {
  for (std::string_view lead : {"has no field named \"", "Unknown enumeration value of \""}) {
    const size_t at = message.find(lead);
    if (at == std::string::npos) continue;
    const size_t start = at + lead.size();
    const size_t end = message.find('"', start);
    if (end != std::string::npos) return message.substr(start, end - start);
  }
  return "";
}

// The byte offset of (line, column) in `text`; the column counts tabs as
// advancing to the next multiple of 8, as the tokenizer does.
size_t OffsetOf(std::string_view text, int line, int column) {
  size_t offset = 0;
  for (int i = 0; i < line && offset < text.size(); ++i) {
    const size_t newline = text.find('\n', offset);
    if (newline == std::string_view::npos) return text.size();
    offset = newline + 1;
  }
  for (int visual = 0; offset < text.size() && text[offset] != '\n' && visual < column; ++offset) {
    visual = text[offset] == '\t' ? (visual / 8 + 1) * 8 : visual + 1;
  }
  return offset;
}

// The (line, column) of byte `offset` of `text`.
std::pair<int, int> PositionOf(std::string_view text, size_t offset) {
  const size_t line_start = offset == 0 ? 0 : text.rfind('\n', offset - 1) + 1;
  int line = 0;
  for (size_t i = 0; i < line_start; ++i) line += text[i] == '\n' ? 1 : 0;
  int column = 0;
  for (size_t i = line_start; i < offset; ++i) {
    column = text[i] == '\t' ? (column / 8 + 1) * 8 : column + 1;
  }
  return {line, column};
}

// Moves (line, column) back to the last whole-word occurrence of `token`
// before it, if there is one.
void MoveBackTo(std::string_view text, const std::string& token, int& line, int& column) {
  const size_t limit = OffsetOf(text, line, column);
  size_t at = text.substr(0, limit).rfind(token);
  while (at != std::string_view::npos) {
    const bool starts = at == 0 || !IsIdentifierChar(text[at - 1]);
    const size_t after = at + token.size();
    const bool ends = after >= text.size() || !IsIdentifierChar(text[after]);
    if (starts && ends) {
      std::tie(line, column) = PositionOf(text, at);
      return;
    }
    if (at == 0) return;
    at = text.substr(0, at).rfind(token);
  }
}

// Fields whose values are secrets, which messages must not quote.
bool IsSecretField(std::string_view field) {
  return field == "key" || field == "peer_token" || field == "collector_token" ||
         field == "admin_token";
}

// A parser message without the value it quotes ("Expected string, got: ...").
std::string WithoutValue(const std::string& message) {
  size_t cut = std::string::npos;
  for (std::string_view word : {"got", "found"}) cut = std::min(cut, message.find(word));
  if (cut == std::string::npos) return message;
  return message.substr(0, cut) + "(value not shown: it may be a secret)";
}

// Collects the parser's errors, with the file, one-based line and column, and
// the field when the parser's message does not name it.
class CollectingErrors final : public pb::io::ErrorCollector {
 public:
  CollectingErrors(const std::string& file, std::string_view text, Problems* problems)
      : file_(file), text_(text), problems_(problems) {}

  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    const std::string culprit = QuotedCulprit(message);
    if (!culprit.empty() && line >= 0 && column >= 0) MoveBackTo(text_, culprit, line, column);
    std::string result = file_;
    std::string field;
    if (line >= 0) {
      result += ':';
      result += std::to_string(line + 1);
      if (column >= 0) {
        result += ':';
        result += std::to_string(column + 1);
        field = FieldBefore(LineOfText(text_, line), column);
      }
    }
    result += ": ";
    result += IsSecretField(field) ? WithoutValue(message) : message;
    if (message.ends_with("got: ")) result += "end of file";
    if (culprit.empty() && !field.empty() &&
        message.find("\"" + field + "\"") == std::string::npos) {
      result += " (field \"" + field + "\")";
    }
    problems_->Add(std::move(result));
  }
  // Warnings (deprecated fields) do not make a file unusable.
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}

 private:
  const std::string& file_;
  std::string_view text_;
  Problems* problems_;
};

class IgnoringErrors final : public pb::io::ErrorCollector {
 public:
  void AddError(int, pb::io::ColumnNumber, const std::string&) override {}
};

bool IsTokenChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

}  // namespace

Error Problems::ToError(ErrorCode code) const {
  std::string message;
  for (const std::string& line : lines_) {
    if (!message.empty()) message += '\n';
    message += line;
  }
  return Error(code, std::move(message));
}

Where::Where(Problems* problems, std::string file, const pb::TextFormat::ParseInfoTree* tree,
             const pb::Descriptor* descriptor)
    : Where(problems, std::move(file), tree, descriptor, "", -1) {}

Where::Where(Problems* problems, std::string file, const pb::TextFormat::ParseInfoTree* tree,
             const pb::Descriptor* descriptor, std::string path, int line)
    : problems_(problems),
      file_(std::move(file)),
      tree_(tree),
      descriptor_(descriptor),
      path_(std::move(path)),
      line_(line) {}

const pb::FieldDescriptor* Where::Field(std::string_view name) const {
  if (descriptor_ == nullptr || name.empty()) return nullptr;
  return descriptor_->FindFieldByName(std::string(name));
}

int Where::LineOf(std::string_view field, int index) const {
  const pb::FieldDescriptor* descriptor = Field(field);
  if (tree_ == nullptr || descriptor == nullptr) return line_;
  // The tree wants -1 for a singular field and an index for a repeated one.
  if (!descriptor->is_repeated()) {
    index = -1;
  } else if (index < 0) {
    return line_;
  }
  const int line = tree_->GetLocation(descriptor, index).line;
  return line >= 0 ? line : line_;
}

std::string Where::PathOf(std::string_view field, int index) const {
  std::string path = path_;
  if (!field.empty()) {
    if (!path.empty()) path += '.';
    path += field;
  }
  if (index >= 0) {
    path += '[';
    path += std::to_string(index);
    path += ']';
  }
  return path;
}

Where Where::Nested(std::string_view field, int index) const {
  const pb::FieldDescriptor* descriptor = Field(field);
  const pb::TextFormat::ParseInfoTree* tree = nullptr;
  if (tree_ != nullptr && descriptor != nullptr && (descriptor->is_repeated() == (index >= 0))) {
    tree = tree_->GetTreeForNested(descriptor, descriptor->is_repeated() ? index : -1);
  }
  const pb::Descriptor* type = descriptor != nullptr ? descriptor->message_type() : nullptr;
  return Where(problems_, file_, tree, type, PathOf(field, index), LineOf(field, index));
}

void Where::Fail(std::string_view field, std::string_view problem, int index) const {
  std::string text;
  if (!file_.empty()) {
    text = file_;
    const int line = LineOf(field, index);
    if (line >= 0) {
      text += ':';
      text += std::to_string(line + 1);
    }
    text += ": ";
  }
  std::string path = PathOf(field, index);
  text += path.empty() ? std::string("(top level)") : path;
  text += ": ";
  text += problem;
  problems_->Add(std::move(text));
}

Result<std::string> ReadFile(const std::string& path, uint64_t max_bytes) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return MakeError(ErrorCode::kIoError, path + ": cannot read: is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int saved = errno;
    return MakeError(ErrorCode::kIoError,
                     path + ": cannot open: " + (saved != 0 ? std::strerror(saved) : "failed"));
  }
  std::string text;
  char buffer[1 << 16];
  while (in) {
    in.read(buffer, sizeof buffer);
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > max_bytes) {
      return MakeError(ErrorCode::kInvalidArgument,
                       path + ": larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  if (in.bad()) return MakeError(ErrorCode::kIoError, path + ": read error");
  return text;
}

bool ParseText(std::string_view text, const std::string& file, pb::Message& message,
               pb::TextFormat::ParseInfoTree& tree, Problems& problems) {
  CollectingErrors errors(file, text, &problems);
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  parser.AllowUnknownField(false);
  parser.AllowUnknownExtension(false);
  pb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  const size_t before = problems.size();
  const bool parsed = parser.Parse(&input, &message);
  if (!parsed && problems.size() == before) problems.Add(file + ": cannot parse");
  return parsed && problems.size() == before;
}

std::string FirstIdentifier(std::string_view text) {
  pb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  IgnoringErrors errors;
  pb::io::Tokenizer tokenizer(&input, &errors);
  tokenizer.set_comment_style(pb::io::Tokenizer::SH_COMMENT_STYLE);
  if (!tokenizer.Next()) return "";
  if (tokenizer.current().type != pb::io::Tokenizer::TYPE_IDENTIFIER) return "";
  return tokenizer.current().text;
}

std::string ResolvePath(const std::string& file, const std::string& path) {
  if (path.empty()) return path;
  const std::filesystem::path p(path);
  if (p.is_absolute()) return path;
  const std::filesystem::path base = std::filesystem::path(file).parent_path();
  if (base.empty()) return path;
  return (base / p).lexically_normal().string();
}

std::optional<std::vector<uint8_t>> Check32Bytes(const Where& where, std::string_view field,
                                                 std::string_view text, int index) {
  if (text.empty()) {
    where.Fail(field, "required: 32 bytes of unpadded base64url", index);
    return std::nullopt;
  }
  Result<std::vector<uint8_t>> bytes = dap::Base64UrlDecode(text);
  if (!bytes) {
    where.Fail(field, "must be 32 bytes of unpadded base64url: " + bytes.error().message(), index);
    return std::nullopt;
  }
  if (bytes->size() != 32) {
    where.Fail(field, "must be 32 bytes of base64url, got " + std::to_string(bytes->size()), index);
    return std::nullopt;
  }
  return std::move(*bytes);
}

void CheckUrl(const Where& where, std::string_view field, std::string_view url, bool required) {
  if (url.empty()) {
    if (required) where.Fail(field, "required: an http:// or https:// URL");
    return;
  }
  if (url.size() > 65535) {
    where.Fail(field, "must be at most 65535 bytes");
    return;
  }
  std::string_view rest;
  if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    where.Fail(field, "must be an http:// or https:// URL, got \"" + std::string(url) + "\"");
    return;
  }
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) {
      where.Fail(field, "must not contain spaces or control characters");
      return;
    }
  }
  const std::string_view host = rest.substr(0, rest.find_first_of("/?#"));
  if (host.empty() || host.starts_with(':') || host.find('@') != std::string_view::npos) {
    where.Fail(field, "must name a host, and no user information");
  }
}

void CheckToken(const Where& where, std::string_view field, std::string_view token, bool required) {
  if (token.empty()) {
    if (required) where.Fail(field, "required: a bearer token");
    return;
  }
  if (token.size() > 1024) {
    where.Fail(field, "must be at most 1024 characters");
    return;
  }
  size_t end = token.size();
  while (end > 0 && token[end - 1] == '=') --end;
  bool ok = end > 0;
  for (size_t i = 0; i < end && ok; ++i) ok = IsTokenChar(token[i]);
  if (!ok) {
    where.Fail(field,
               "must be a bearer token of the characters A-Z a-z 0-9 - . _ ~ + / "
               "(and trailing =)");
  }
}

void CheckPath(const Where& where, std::string_view field, std::string_view path, bool required,
               int index) {
  if (path.empty()) {
    if (required) where.Fail(field, "required: a file path", index);
    return;
  }
  if (path.find('\0') != std::string_view::npos) {
    where.Fail(field, "must not contain NUL characters", index);
  }
}

void CheckListenAddress(const Where& where, std::string_view field, std::string_view address) {
  const std::string expected =
      "must be \"host:port\" with a port in 1..65535, got \"" + std::string(address) + "\"";
  if (address.empty()) {
    where.Fail(field, "required: \"host:port\", e.g. \"0.0.0.0:8443\"");
    return;
  }
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    where.Fail(field, expected);
    return;
  }
  std::string_view host = address.substr(0, colon);
  const std::string_view port = address.substr(colon + 1);
  bool ok = !port.empty() && port.size() <= 5;
  uint32_t value = 0;
  for (char c : port) {
    ok = ok && c >= '0' && c <= '9';
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  ok = ok && value >= 1 && value <= 65535;
  if (host.starts_with('[')) {
    ok = ok && host.size() > 2 && host.ends_with(']');
  } else {
    ok = ok && host.find(':') == std::string_view::npos;
  }
  for (char c : host) ok = ok && static_cast<unsigned char>(c) > 0x20 && c != '/';
  if (!ok) where.Fail(field, expected);
}

void CheckHpkeSuite(const Where& where, uint32_t config_id, std::string_view id_field,
                    uint32_t& kem_id, uint32_t& kdf_id, uint32_t& aead_id) {
  if (config_id > 255) {
    where.Fail(id_field, "must be in 0..255, got " + std::to_string(config_id));
  }
  if (kem_id == 0) kem_id = kDefaultKemId;
  if (kdf_id == 0) kdf_id = kDefaultKdfId;
  if (aead_id == 0) aead_id = kDefaultAeadId;
  namespace hpke = crypto::hpke;
  if (kem_id != static_cast<uint32_t>(hpke::KemId::kX25519HkdfSha256)) {
    where.Fail("kem_id", "unsupported HPKE KEM " + std::to_string(kem_id) +
                             " (only 32, 0x0020, DHKEM(X25519, HKDF-SHA256))");
  }
  if (kdf_id != static_cast<uint32_t>(hpke::KdfId::kHkdfSha256)) {
    where.Fail("kdf_id",
               "unsupported HPKE KDF " + std::to_string(kdf_id) + " (only 1, HKDF-SHA256)");
  }
  if (aead_id != static_cast<uint32_t>(hpke::AeadId::kAes128Gcm) &&
      aead_id != static_cast<uint32_t>(hpke::AeadId::kChaCha20Poly1305)) {
    where.Fail("aead_id", "unsupported HPKE AEAD " + std::to_string(aead_id) +
                              " (1, AES-128-GCM, or 3, ChaCha20Poly1305)");
  }
}

}  // namespace canopy::config::internal
