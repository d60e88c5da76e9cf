#include "analysis/npy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <vector>

#include "analysis/npy_header.h"

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
  const NpyHeader header = ParseNpyHeader(path, header_text);

  const int64_t available = file_size - data_offset;
  TORCH_CHECK(available >= header.data_bytes, path, ": data ends after ", available, " of ",
              header.data_bytes, " bytes");
  TORCH_CHECK(available == header.data_bytes, path, ": ", available - header.data_bytes,
              " unexpected bytes after the array's ", header.data_bytes, " bytes of data");

  const NpyType& type = *header.type;
  const bool direct = type.conversion == NpyType::Conversion::kNone;
  torch::Tensor raw = direct ? torch::empty(header.shape, type.scalar_type)
                             : torch::empty({header.data_bytes}, torch::kUInt8);
  TORCH_CHECK(ReadFully(fd.get(), raw.data_ptr(), static_cast<size_t>(header.data_bytes), path),
              path, ": file changed while being read");
  switch (type.conversion) {
    case NpyType::Conversion::kNone:
      return raw;
    case NpyType::Conversion::kBool:
      return raw.ne(0).reshape(header.shape);
    case NpyType::Conversion::kUnsigned:
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
