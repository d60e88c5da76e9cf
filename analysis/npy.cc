#include "analysis/npy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <vector>

// The .npy layout (numpy.lib.format, NEP 1):
//   "\x93NUMPY" major minor HEADER_LEN header data
// HEADER_LEN is a little-endian uint16 in version 1.0 and a uint32 in 2.0 and
// 3.0; the header is a Python dict literal (latin-1 before 3.0, UTF-8 in 3.0)
// padded with spaces and a final '\n' so that the data starts on a multiple
// of 64 bytes; the data is the array's bytes in C or Fortran order.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "npy.cc copies little-endian .npy data as is");

namespace sslsweep {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr size_t kAlignment = 64;
// Headers quoted in messages are cut to this many characters.
constexpr size_t kQuoteLimit = 120;

// How the bytes of a supported dtype become a tensor.
enum class Conversion {
  kNone,     // copied as is into a tensor of `scalar_type`
  kBool,     // bytes, any nonzero byte is true
  kUnsigned, // uint16/32/64 widened to int64, refused above INT64_MAX
};

struct NpyType {
  const char* descr;
  size_t item_size;
  torch::ScalarType scalar_type;  // of the resulting tensor
  Conversion conversion;
};

// One-byte types are also accepted with '<' (numpy writes '|').
constexpr NpyType kTypes[] = {
    {"<f4", 4, torch::kFloat32, Conversion::kNone},
    {"<f8", 8, torch::kFloat64, Conversion::kNone},
    {"|i1", 1, torch::kInt8, Conversion::kNone},
    {"<i1", 1, torch::kInt8, Conversion::kNone},
    {"<i2", 2, torch::kInt16, Conversion::kNone},
    {"<i4", 4, torch::kInt32, Conversion::kNone},
    {"<i8", 8, torch::kInt64, Conversion::kNone},
    {"|u1", 1, torch::kUInt8, Conversion::kNone},
    {"<u1", 1, torch::kUInt8, Conversion::kNone},
    {"<u2", 2, torch::kInt64, Conversion::kUnsigned},
    {"<u4", 4, torch::kInt64, Conversion::kUnsigned},
    {"<u8", 8, torch::kInt64, Conversion::kUnsigned},
    {"|b1", 1, torch::kBool, Conversion::kBool},
    {"<b1", 1, torch::kBool, Conversion::kBool},
};

constexpr const char* kSupportedDescrs =
    "'<f4', '<f8', '|i1', '<i2', '<i4', '<i8', '|u1', '<u2', '<u4', '<u8', '|b1'";

const NpyType* FindType(const std::string& descr) {
  for (const NpyType& type : kTypes) {
    if (descr == type.descr) return &type;
  }
  return nullptr;
}

// `text` for a message: control and non-ASCII bytes escaped, trailing
// whitespace (a header's padding) dropped, cut after kQuoteLimit characters.
std::string Quote(std::string text) {
  text.erase(text.find_last_not_of(" \n") + 1);
  std::string quoted;
  for (char c : text.substr(0, kQuoteLimit)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == '\n') {
      quoted += "\\n";
    } else if (byte < 0x20 || byte >= 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\x%02x", byte);
      quoted += escape;
    } else {
      quoted += c;
    }
  }
  if (text.size() > kQuoteLimit) quoted += "...";
  return quoted;
}

// A Python literal of the kinds a .npy header holds.
struct PyValue {
  enum class Kind { kString, kBool, kNone, kInt, kTuple, kList, kDict };
  Kind kind = Kind::kNone;
  std::string text;   // kString; for kInt the digits as written
  bool boolean = false;
  int64_t integer = 0;
  bool overflow = false;  // kInt outside int64
  std::vector<PyValue> items;  // kTuple, kList; kDict: key, value, key, ...
};

// Recursive descent over the subset of Python literal syntax that numpy
// writes (and ast.literal_eval would accept): dicts, tuples, lists, strings,
// integers, True, False, None.
class PyLiteralParser {
 public:
  explicit PyLiteralParser(const std::string& text) : text_(text) {}

  // Parses the whole text as one value; on failure returns false and sets
  // *error to what was expected where.
  bool ParseAll(PyValue* value, std::string* error) {
    if (!ParseValue(value, /*depth=*/0)) {
      *error = error_;
      return false;
    }
    SkipSpace();
    if (pos_ != text_.size()) {
      *error = "unexpected " + Describe() + " after the literal";
      return false;
    }
    return true;
  }

 private:
  static constexpr int kMaxDepth = 32;

  bool Fail(const std::string& what) {
    if (error_.empty()) error_ = what;
    return false;
  }

  std::string Describe() const {
    if (pos_ >= text_.size()) return "end of header";
    return "'" + Quote(text_.substr(pos_, 1)) + "' at offset " + std::to_string(pos_);
  }

  void SkipSpace() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
            text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Consume(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  bool ParseValue(PyValue* value, int depth) {
    if (depth > kMaxDepth) return Fail("literal nested too deeply");
    SkipSpace();
    if (pos_ >= text_.size()) return Fail("header ends where a value was expected");
    const char c = text_[pos_];
    if (c == '\'' || c == '"') return ParseString(value);
    if (c == '(') return ParseSequence(value, PyValue::Kind::kTuple, ')', depth);
    if (c == '[') return ParseSequence(value, PyValue::Kind::kList, ']', depth);
    if (c == '{') return ParseDict(value, depth);
    if (c == '-' || c == '+' || (c >= '0' && c <= '9')) return ParseInt(value);
    if (ParseWord("True")) {
      value->kind = PyValue::Kind::kBool;
      value->boolean = true;
      return true;
    }
    if (ParseWord("False")) {
      value->kind = PyValue::Kind::kBool;
      value->boolean = false;
      return true;
    }
    if (ParseWord("None")) {
      value->kind = PyValue::Kind::kNone;
      return true;
    }
    return Fail("expected a value, found " + Describe());
  }

  bool ParseWord(const char* word) {
    const size_t length = std::strlen(word);
    if (text_.compare(pos_, length, word) != 0) return false;
    const size_t end = pos_ + length;
    if (end < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[end])) ||
                               text_[end] == '_')) {
      return false;
    }
    pos_ = end;
    return true;
  }

  bool ParseString(PyValue* value) {
    const char quote = text_[pos_++];
    value->kind = PyValue::Kind::kString;
    value->text.clear();
    while (pos_ < text_.size() && text_[pos_] != quote) {
      char c = text_[pos_++];
      if (c == '\n') return Fail("string literal runs past the end of the line");
      if (c == '\\') {
        if (pos_ >= text_.size()) break;
        c = text_[pos_++];
      }
      value->text += c;
    }
    if (pos_ >= text_.size()) return Fail("unterminated string literal");
    ++pos_;
    return true;
  }

  bool ParseInt(PyValue* value) {
    const size_t start = pos_;
    bool negative = false;
    if (text_[pos_] == '-' || text_[pos_] == '+') negative = text_[pos_++] == '-';
    if (pos_ >= text_.size() || !std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      return Fail("expected digits at offset " + std::to_string(pos_));
    }
    // Accumulated as a negative number, whose range includes INT64_MIN.
    int64_t magnitude = 0;
    bool overflow = false;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      const int digit = text_[pos_++] - '0';
      if (magnitude < (std::numeric_limits<int64_t>::min() + digit) / 10) {
        overflow = true;
      } else {
        magnitude = magnitude * 10 - digit;
      }
    }
    // Python 2 wrote long integers with an 'L' suffix ("(3L, 4L)").
    if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;
    value->kind = PyValue::Kind::kInt;
    value->text = text_.substr(start, pos_ - start);
    if (!negative && magnitude == std::numeric_limits<int64_t>::min()) overflow = true;
    value->overflow = overflow;
    value->integer = overflow ? 0 : (negative ? magnitude : -magnitude);
    return true;
  }

  bool ParseSequence(PyValue* value, PyValue::Kind kind, char close, int depth) {
    ++pos_;
    value->kind = kind;
    value->items.clear();
    if (Consume(close)) return true;
    bool saw_comma = false;
    while (true) {
      PyValue item;
      if (!ParseValue(&item, depth + 1)) return false;
      value->items.push_back(std::move(item));
      if (Consume(close)) break;
      if (!Consume(',')) {
        return Fail(std::string("expected ',' or '") + close + "', found " + Describe());
      }
      saw_comma = true;
      if (Consume(close)) break;
    }
    // "(3)" is the integer 3 in Python, not a tuple; numpy writes "(3,)".
    if (kind == PyValue::Kind::kTuple && value->items.size() == 1 && !saw_comma) {
      PyValue inner = std::move(value->items[0]);
      *value = std::move(inner);
    }
    return true;
  }

  bool ParseDict(PyValue* value, int depth) {
    ++pos_;
    value->kind = PyValue::Kind::kDict;
    value->items.clear();
    if (Consume('}')) return true;
    while (true) {
      PyValue key;
      if (!ParseValue(&key, depth + 1)) return false;
      if (!Consume(':')) return Fail("expected ':' after a dict key, found " + Describe());
      PyValue item;
      if (!ParseValue(&item, depth + 1)) return false;
      value->items.push_back(std::move(key));
      value->items.push_back(std::move(item));
      if (Consume('}')) break;
      if (!Consume(',')) return Fail("expected ',' or '}', found " + Describe());
      if (Consume('}')) break;
    }
    return true;
  }

  const std::string& text_;
  size_t pos_ = 0;
  std::string error_;
};

std::string ShapeText(const std::vector<PyValue>& dims) {
  std::string text = "(";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) text += ", ";
    text += dims[i].text;
  }
  if (dims.size() == 1) text += ",";
  return text + ")";
}

// What a header says about the array.
struct NpyHeader {
  const NpyType* type = nullptr;
  std::vector<int64_t> shape;
  int64_t data_bytes = 0;
};

NpyHeader ParseHeader(const std::string& path, const std::string& text) {
  PyValue dict;
  std::string error;
  PyLiteralParser parser(text);
  TORCH_CHECK(parser.ParseAll(&dict, &error), path,
              ": header is not a Python dict literal (", error, "): ", Quote(text));
  TORCH_CHECK(dict.kind == PyValue::Kind::kDict, path,
              ": header is not a Python dict literal: ", Quote(text));

  const PyValue* descr = nullptr;
  const PyValue* fortran_order = nullptr;
  const PyValue* shape = nullptr;
  for (size_t i = 0; i < dict.items.size(); i += 2) {
    const PyValue& key = dict.items[i];
    TORCH_CHECK(key.kind == PyValue::Kind::kString, path,
                ": header has a key that is not a string: ", Quote(text));
    const PyValue** slot = key.text == "descr"           ? &descr
                           : key.text == "fortran_order" ? &fortran_order
                           : key.text == "shape"         ? &shape
                                                         : nullptr;
    TORCH_CHECK(slot != nullptr, path, ": header has an unexpected key '", Quote(key.text),
                "' (expected exactly descr, fortran_order and shape)");
    TORCH_CHECK(*slot == nullptr, path, ": header has the key '", key.text, "' twice");
    *slot = &dict.items[i + 1];
  }
  for (const auto& [name, value] : {std::pair<const char*, const PyValue*>{"descr", descr},
                                    {"fortran_order", fortran_order},
                                    {"shape", shape}}) {
    TORCH_CHECK(value != nullptr, path, ": header lacks the key '", name, "': ", Quote(text));
  }

  NpyHeader header;
  TORCH_CHECK(descr->kind != PyValue::Kind::kList, path,
              ": structured dtypes (a descr list) are not supported");
  TORCH_CHECK(descr->kind == PyValue::Kind::kString, path,
              ": descr is not a dtype string: ", Quote(text));
  const std::string& name = descr->text;
  header.type = FindType(name);
  if (header.type == nullptr) {
    const bool objects = !name.empty() && (name[0] == 'O' || (name.size() > 1 && name[1] == 'O'));
    TORCH_CHECK(!objects, path,
                ": unsupported dtype '", Quote(name),
                "': Python objects (a pickle) cannot be read; save a numeric array");
    TORCH_CHECK(name.empty() || name[0] != '>', path, ": unsupported dtype '", Quote(name),
                "': big-endian data; save it little-endian (arr.astype('<",
                Quote(name.substr(1)), "'))");
    TORCH_CHECK(false, path, ": unsupported dtype '", Quote(name), "' (supported: ",
                kSupportedDescrs, ")");
  }

  TORCH_CHECK(fortran_order->kind == PyValue::Kind::kBool, path,
              ": fortran_order is not True or False: ", Quote(text));
  TORCH_CHECK(!fortran_order->boolean, path,
              ": fortran_order True is not supported; save a C-order array "
              "(np.ascontiguousarray)");

  TORCH_CHECK(shape->kind == PyValue::Kind::kTuple, path,
              ": shape is not a tuple of integers: ", Quote(text));
  const std::string shape_text = ShapeText(shape->items);
  bool empty = false;
  for (const PyValue& dim : shape->items) {
    TORCH_CHECK(dim.kind == PyValue::Kind::kInt, path,
                ": shape is not a tuple of integers: ", Quote(text));
    const bool negative = dim.text[0] == '-' && (dim.overflow || dim.integer != 0);
    TORCH_CHECK(!negative, path, ": shape ", shape_text, " has a negative dimension");
    TORCH_CHECK(!dim.overflow, path, ": shape ", shape_text,
                " has a dimension beyond the int64 range");
    header.shape.push_back(dim.integer);
    empty = empty || dim.integer == 0;
  }
  // Bytes, not elements, must fit in int64 (and so in a size_t).
  const int64_t item_size = static_cast<int64_t>(header.type->item_size);
  int64_t bytes = empty ? 0 : item_size;
  for (int64_t dim : header.shape) {
    if (empty) break;
    TORCH_CHECK(bytes <= std::numeric_limits<int64_t>::max() / dim, path, ": shape ",
                shape_text, " is too large (its data would exceed 2^63 bytes)");
    bytes *= dim;
  }
  header.data_bytes = bytes;
  return header;
}

// A POSIX file descriptor closed on destruction.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads exactly `size` bytes at the current offset; false at end of file.
bool ReadFully(int fd, void* buffer, size_t size, const std::string& path) {
  auto* out = static_cast<char*>(buffer);
  while (size > 0) {
    const ssize_t n = ::read(fd, out, std::min<size_t>(size, size_t{1} << 30));
    if (n < 0 && errno == EINTR) continue;
    TORCH_CHECK(n >= 0, path, ": cannot read: ", std::strerror(errno));
    if (n == 0) return false;
    out += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

uint64_t LittleEndian(const unsigned char* bytes, int count) {
  uint64_t value = 0;
  for (int i = count - 1; i >= 0; --i) value = value << 8 | bytes[i];
  return value;
}

torch::Tensor ConvertUnsigned(const std::string& path, const torch::Tensor& raw,
                              const NpyType& type, const std::vector<int64_t>& shape) {
  torch::Tensor result = torch::empty(shape, torch::kInt64);
  const auto* bytes = raw.data_ptr<uint8_t>();
  int64_t* out = result.data_ptr<int64_t>();
  const int64_t count = result.numel();
  const int width = static_cast<int>(type.item_size);
  for (int64_t i = 0; i < count; ++i) {
    const uint64_t value = LittleEndian(bytes + i * width, width);
    TORCH_CHECK(value <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), path,
                ": element ", i, " is ", value, ", above the int64 maximum");
    out[i] = static_cast<int64_t>(value);
  }
  return result;
}

void WriteFully(std::FILE* file, const void* data, size_t size, const std::string& path) {
  if (size == 0) return;
  TORCH_CHECK(std::fwrite(data, 1, size, file) == size, path, ": cannot write: ",
              std::strerror(errno));
}

const char* DescrFor(torch::ScalarType scalar_type) {
  switch (scalar_type) {
    case torch::kFloat32: return "<f4";
    case torch::kFloat64: return "<f8";
    case torch::kInt32: return "<i4";
    case torch::kInt64: return "<i8";
    case torch::kUInt8: return "|u1";
    case torch::kBool: return "|b1";
    default: return nullptr;
  }
}

}  // namespace

torch::Tensor ReadNpy(const std::string& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  TORCH_CHECK(fd.get() >= 0, path, ": cannot open: ", std::strerror(errno));
  struct stat info;
  TORCH_CHECK(::fstat(fd.get(), &info) == 0, path, ": cannot stat: ", std::strerror(errno));
  TORCH_CHECK(!S_ISDIR(info.st_mode), path, ": is a directory, not a .npy file");
  const int64_t file_size = S_ISREG(info.st_mode) ? static_cast<int64_t>(info.st_size) : -1;
  TORCH_CHECK(file_size >= 0, path, ": is not a regular file");

  TORCH_CHECK(file_size > 0, path, ": is empty, not a .npy file");
  unsigned char preamble[12];
  const size_t magic_read = static_cast<size_t>(std::min<int64_t>(file_size, kMagicSize));
  TORCH_CHECK(ReadFully(fd.get(), preamble, magic_read, path), path,
              ": file changed while being read");
  TORCH_CHECK(std::memcmp(preamble, kMagic, magic_read) == 0, path,
              ": not a .npy file (it does not start with \"\\x93NUMPY\")");
  TORCH_CHECK(file_size >= 10, path, ": file ends inside the .npy preamble (", file_size,
              " bytes)");
  TORCH_CHECK(ReadFully(fd.get(), preamble + kMagicSize, 4, path), path,
              ": file changed while being read");
  const int major = preamble[6];
  const int minor = preamble[7];
  TORCH_CHECK((major == 1 || major == 2 || major == 3) && minor == 0, path,
              ": unsupported .npy format version ", major, ".", minor,
              " (supported: 1.0, 2.0, 3.0)");
  int64_t header_offset = 10;
  uint64_t header_length = LittleEndian(preamble + 8, 2);
  if (major >= 2) {
    TORCH_CHECK(file_size >= 12, path, ": file ends inside the .npy preamble (", file_size,
                " bytes)");
    TORCH_CHECK(ReadFully(fd.get(), preamble + 10, 2, path), path,
                ": file changed while being read");
    header_offset = 12;
    header_length = LittleEndian(preamble + 8, 4);
  }
  const int64_t data_offset = header_offset + static_cast<int64_t>(header_length);
  TORCH_CHECK(data_offset <= file_size, path, ": file ends inside the header (",
              file_size, " bytes; the header says it ends at byte ", data_offset, ")");
  std::string header_text(header_length, '\0');
  TORCH_CHECK(ReadFully(fd.get(), header_text.data(), header_length, path), path,
              ": file changed while being read");
  const NpyHeader header = ParseHeader(path, header_text);

  const int64_t available = file_size - data_offset;
  TORCH_CHECK(available >= header.data_bytes, path, ": data ends after ", available, " of ",
              header.data_bytes, " bytes");
  TORCH_CHECK(available == header.data_bytes, path, ": ", available - header.data_bytes,
              " unexpected bytes after the array's ", header.data_bytes, " bytes of data");

  const NpyType& type = *header.type;
  const bool direct = type.conversion == Conversion::kNone;
  torch::Tensor raw = direct ? torch::empty(header.shape, type.scalar_type)
                             : torch::empty({header.data_bytes}, torch::kUInt8);
  TORCH_CHECK(ReadFully(fd.get(), raw.data_ptr(), static_cast<size_t>(header.data_bytes), path),
              path, ": file changed while being read");
  switch (type.conversion) {
    case Conversion::kNone:
      return raw;
    case Conversion::kBool:
      return raw.ne(0).reshape(header.shape);
    case Conversion::kUnsigned:
      return ConvertUnsigned(path, raw, type, header.shape);
  }
  TORCH_CHECK(false, path, ": internal error: unknown conversion");
}

void WriteNpy(const std::string& path, const torch::Tensor& tensor) {
  TORCH_CHECK(tensor.defined(), path, ": cannot write an undefined tensor");
  const char* descr = DescrFor(tensor.scalar_type());
  TORCH_CHECK(descr != nullptr, path, ": cannot write dtype ", tensor.scalar_type(),
              " (supported: float32, float64, int32, int64, uint8, bool)");
  const torch::Tensor data = tensor.detach().cpu().contiguous();

  std::ostringstream dict;
  dict << "{'descr': '" << descr << "', 'fortran_order': False, 'shape': (";
  for (int64_t i = 0; i < data.dim(); ++i) {
    if (i > 0) dict << ", ";
    dict << data.size(i);
  }
  if (data.dim() == 1) dict << ",";
  dict << "), }";
  std::string header = dict.str();
  const size_t unpadded = 10 + header.size() + 1;
  header.append((kAlignment - unpadded % kAlignment) % kAlignment, ' ');
  header += '\n';
  TORCH_CHECK(header.size() <= 0xffff, path, ": header too long for .npy version 1.0");

  std::string preamble(kMagic, kMagicSize);
  preamble += static_cast<char>(1);
  preamble += static_cast<char>(0);
  preamble += static_cast<char>(header.size() & 0xff);
  preamble += static_cast<char>(header.size() >> 8);

  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "wb"),
                                                       &std::fclose);
  TORCH_CHECK(file != nullptr, path, ": cannot open for writing: ", std::strerror(errno));
  try {
    WriteFully(file.get(), preamble.data(), preamble.size(), path);
    WriteFully(file.get(), header.data(), header.size(), path);
    WriteFully(file.get(), data.data_ptr(), data.numel() * data.element_size(), path);
    TORCH_CHECK(std::fclose(file.release()) == 0, path, ": cannot write: ",
                std::strerror(errno));
  } catch (const c10::Error&) {
    // A partial file would read back as "data ends after ..."; leave none
    // (but never unlink a device such as /dev/full).
    file.reset();
    struct stat info;
    if (::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode)) std::remove(path.c_str());
    throw;
  }
}

}  // namespace sslsweep
