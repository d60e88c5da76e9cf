#include "analysis/npy_header.h"

#include <cctype>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>

namespace sslsweep {
namespace {

using Conversion = NpyType::Conversion;

// Headers quoted in messages are cut to this many characters.
constexpr size_t kQuoteLimit = 120;

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

}  // namespace

NpyHeader ParseNpyHeader(const std::string& path, const std::string& text) {
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

}  // namespace sslsweep
