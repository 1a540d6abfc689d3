// Internals of the configuration loaders: collecting problems with their file,
// line and field, reading files, and the checks shared by several schemas.
#ifndef CANOPY_CONFIG_INTERNAL_CHECKS_H_
#define CANOPY_CONFIG_INTERNAL_CHECKS_H_

#include <google/protobuf/descriptor.h>
#include <google/protobuf/text_format.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/error.h"

namespace canopy::config::internal {

// The problems found in one file, one line each.
class Problems {
 public:
  void Add(std::string line) { lines_.push_back(std::move(line)); }
  bool empty() const { return lines_.empty(); }
  size_t size() const { return lines_.size(); }
  // All the lines, joined by newlines, as one error with `code`.
  Error ToError(ErrorCode code = ErrorCode::kInvalidArgument) const;

 private:
  std::vector<std::string> lines_;
};

// A message's place: the file it was read from, where its fields were written
// (the parser's ParseInfoTree, when there is one) and its path from the
// file's top ("task[1].poplar1"). Records problems about its fields as
// "FILE:LINE: path.field: problem".
class Where {
 public:
  // The top-level message of `file` (which may be empty: no file, no lines).
  // `tree` may be null; `problems` must outlive this object and its children.
  Where(Problems* problems, std::string file,
        const google::protobuf::TextFormat::ParseInfoTree* tree,
        const google::protobuf::Descriptor* descriptor);

  // The message in field `field` (element `index` of a repeated field).
  Where Nested(std::string_view field, int index = -1) const;

  // Records a problem with field `field` (element `index` if repeated); the
  // line is the field's, else this message's. `field` may also name a oneof
  // ("vdaf"), or be empty for the message itself.
  void Fail(std::string_view field, std::string_view problem, int index = -1) const;

  // The path of `field` from the file's top: "task[0].poplar1.bits".
  std::string PathOf(std::string_view field, int index = -1) const;

  const std::string& file() const { return file_; }

 private:
  Where(Problems* problems, std::string file,
        const google::protobuf::TextFormat::ParseInfoTree* tree,
        const google::protobuf::Descriptor* descriptor, std::string path, int line);
  const google::protobuf::FieldDescriptor* Field(std::string_view name) const;
  // Zero-based line of `field`, or -1.
  int LineOf(std::string_view field, int index) const;

  Problems* problems_;
  std::string file_;
  const google::protobuf::TextFormat::ParseInfoTree* tree_;
  const google::protobuf::Descriptor* descriptor_;
  std::string path_;
  int line_;  // Zero-based line of this message, or -1.
};

// Reads a whole file. Errors: kIoError naming the path (missing, a
// directory, unreadable); kInvalidArgument when larger than `max_bytes`.
Result<std::string> ReadFile(const std::string& path, uint64_t max_bytes);

// Parses `text` as a text-format `message`, recording syntax errors, unknown
// fields and type errors as "FILE:LINE:COLUMN: message" and field locations
// in `tree`. Returns false on any error.
bool ParseText(std::string_view text, const std::string& file, google::protobuf::Message& message,
               google::protobuf::TextFormat::ParseInfoTree& tree, Problems& problems);

// The first identifier of a text-format file, skipping comments ("" if none).
std::string FirstIdentifier(std::string_view text);

// `path` resolved against the directory of `file` when relative.
std::string ResolvePath(const std::string& file, const std::string& path);

// Checks `text` is unpadded base64url of exactly 32 bytes, recording a
// problem against `field` otherwise (an empty `text` is "required"). The
// problem never quotes `text`, which may be a secret. Returns the bytes.
std::optional<std::vector<uint8_t>> Check32Bytes(const Where& where, std::string_view field,
                                                 std::string_view text, int index = -1);

// Checks an http:// or https:// URL with a host, no spaces or control
// characters, at most 65535 bytes. An empty one is refused when `required`.
void CheckUrl(const Where& where, std::string_view field, std::string_view url, bool required);

// Checks a bearer token: RFC 6750 b64token characters, at most 1024. An empty
// one is refused when `required`. Never quotes the token.
void CheckToken(const Where& where, std::string_view field, std::string_view token, bool required);

// Checks a path: no NUL characters; an empty one is refused when `required`.
void CheckPath(const Where& where, std::string_view field, std::string_view path, bool required,
               int index = -1);

// Checks "host:port" (host a name, an IPv4 address or a bracketed IPv6
// address; port 1..65535).
void CheckListenAddress(const Where& where, std::string_view field, std::string_view address);

// Checks an HPKE suite (0 meaning each default) this implementation supports,
// and a config ID in 0..255. Fills in the defaults.
void CheckHpkeSuite(const Where& where, uint32_t config_id, std::string_view id_field,
                    uint32_t& kem_id, uint32_t& kdf_id, uint32_t& aead_id);

// The HPKE defaults the schema's 0 stands for.
inline constexpr uint32_t kDefaultKemId = 0x0020;
inline constexpr uint32_t kDefaultKdfId = 0x0001;
inline constexpr uint32_t kDefaultAeadId = 0x0001;

}  // namespace canopy::config::internal

#endif  // CANOPY_CONFIG_INTERNAL_CHECKS_H_
