#include "worker/trainer/fashion_mnist.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sslsweep {
namespace {

constexpr uint32_t kImagesMagic = 2051;  // unsigned byte data, 3 dimensions
constexpr uint32_t kLabelsMagic = 2049;  // unsigned byte data, 1 dimension
// Far above any real IDX file; bounds the allocation a corrupt header asks for.
constexpr uint64_t kMaxPayloadBytes = uint64_t{1} << 32;

struct GzFileCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzFileCloser>;

// A gzip (or plain) file read sequentially; every error names the path.
class GzReader {
 public:
  static absl::StatusOr<GzReader> Open(const std::string& path) {
    errno = 0;
    GzFile file(gzopen(path.c_str(), "rb"));
    if (file == nullptr) {
      const int err = errno;
      std::string message = absl::StrCat(
          path, ": ", err != 0 ? std::strerror(err) : "cannot open");
      if (err == EACCES) return absl::PermissionDeniedError(message);
      return absl::NotFoundError(message);
    }
    return GzReader(path, std::move(file));
  }

  // Reads exactly `size` bytes; `what` names them in the error.
  absl::Status ReadExactly(void* out, uint64_t size, const std::string& what) {
    auto* bytes = static_cast<uint8_t*>(out);
    uint64_t done = 0;
    while (done < size) {
      const unsigned int want =
          static_cast<unsigned int>(std::min<uint64_t>(size - done, 1u << 30));
      const int got = gzread(file_.get(), bytes + done, want);
      if (got < 0) return GzError();
      if (got == 0) {
        return absl::DataLossError(
            absl::StrCat(path_, ": short read: expected ", size, " bytes of ",
                         what, ", got ", done));
      }
      done += static_cast<uint64_t>(got);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<uint32_t> ReadBigEndian32(const std::string& what) {
    uint8_t b[4];
    if (auto s = ReadExactly(b, sizeof(b), what); !s.ok()) return s;
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) |
           (uint32_t{b[2]} << 8) | uint32_t{b[3]};
  }

  absl::Status ExpectEnd() {
    uint8_t extra;
    const int got = gzread(file_.get(), &extra, 1);
    if (got < 0) return GzError();
    if (got > 0) {
      return absl::DataLossError(absl::StrCat(
          path_,
          ": size mismatch: trailing bytes after the data the header "
          "describes"));
    }
    return absl::OkStatus();
  }

  const std::string& path() const { return path_; }

 private:
  GzReader(std::string path, GzFile file)
      : path_(std::move(path)), file_(std::move(file)) {}

  absl::Status GzError() {
    int code = 0;
    const char* message = gzerror(file_.get(), &code);
    return absl::DataLossError(
        absl::StrCat(path_, ": corrupt gzip data: ",
                     code == Z_ERRNO ? std::strerror(errno) : message));
  }

  std::string path_;
  GzFile file_;
};

absl::Status CheckMagic(const GzReader& reader, uint32_t magic,
                        uint32_t expected, const char* kind) {
  if (magic == expected) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(reader.path(), ": bad magic number ",
                                          magic, " (expected ", expected,
                                          " for an IDX ", kind, " file)"));
}

// A subset larger than the split is a configuration mistake: say which key.
absl::Status WithSubsetKey(const absl::Status& status, const char* key) {
  if (status.code() != absl::StatusCode::kInvalidArgument) return status;
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", status.message()));
}

void AddCoarseLabels(LabeledImages& split) {
  split.coarse_labels.resize(split.labels.size());
  for (size_t i = 0; i < split.labels.size(); ++i) {
    split.coarse_labels[i] = FashionMnistCoarseLabel(split.labels[i]);
  }
}

}  // namespace

uint8_t FashionMnistCoarseLabel(uint8_t label) {
  // Indexed by class: T-shirt/top, trouser, pullover, dress, coat, sandal,
  // shirt, sneaker, bag, ankle boot.
  static constexpr uint8_t kCoarse[FashionMnist::kNumClasses] = {0, 1, 0, 1, 0,
                                                                 2, 0, 2, 3, 2};
  return kCoarse[label];
}

absl::StatusOr<LabeledImages> ReadIdxSplit(const std::string& images_path,
                                           const std::string& labels_path,
                                           int64_t limit) {
  LabeledImages split;
  {
    auto reader = GzReader::Open(images_path);
    if (!reader.ok()) return reader.status();
    auto magic = reader->ReadBigEndian32("header");
    if (!magic.ok()) return magic.status();
    if (auto s = CheckMagic(*reader, *magic, kImagesMagic, "image"); !s.ok()) {
      return s;
    }
    uint32_t dims[3];
    for (uint32_t& dim : dims) {
      auto value = reader->ReadBigEndian32("header");
      if (!value.ok()) return value.status();
      dim = *value;
    }
    if (dims[1] == 0 || dims[2] == 0) {
      return absl::DataLossError(absl::StrCat(images_path, ": bad image size ",
                                              dims[1], "x", dims[2]));
    }
    const uint64_t bytes = uint64_t{dims[0]} * dims[1] * dims[2];
    if (bytes > kMaxPayloadBytes) {
      return absl::DataLossError(absl::StrCat(
          images_path, ": header claims ", dims[0], " images of ", dims[1], "x",
          dims[2], " pixels, more than any IDX file holds"));
    }
    split.count = dims[0];
    split.rows = dims[1];
    split.cols = dims[2];
    split.pixels.resize(bytes);
    if (auto s = reader->ReadExactly(split.pixels.data(), bytes, "pixel data");
        !s.ok()) {
      return s;
    }
    if (auto s = reader->ExpectEnd(); !s.ok()) return s;
  }
  {
    auto reader = GzReader::Open(labels_path);
    if (!reader.ok()) return reader.status();
    auto magic = reader->ReadBigEndian32("header");
    if (!magic.ok()) return magic.status();
    if (auto s = CheckMagic(*reader, *magic, kLabelsMagic, "label"); !s.ok()) {
      return s;
    }
    auto count = reader->ReadBigEndian32("header");
    if (!count.ok()) return count.status();
    if (*count != split.count) {
      return absl::DataLossError(
          absl::StrCat(labels_path, ": size mismatch: ", *count, " labels but ",
                       images_path, " has ", split.count, " images"));
    }
    split.labels.resize(*count);
    if (auto s = reader->ReadExactly(split.labels.data(), *count, "labels");
        !s.ok()) {
      return s;
    }
    if (auto s = reader->ExpectEnd(); !s.ok()) return s;
    for (int64_t i = 0; i < split.count; ++i) {
      if (split.labels[i] >= FashionMnist::kNumClasses) {
        return absl::DataLossError(absl::StrCat(
            labels_path, ": label ", int{split.labels[i]}, " of sample ", i,
            " is outside [0, ", FashionMnist::kNumClasses, ")"));
      }
    }
  }
  if (limit < 0 || limit > split.count) {
    return absl::InvalidArgumentError(absl::StrCat("asked for ", limit,
                                                   " samples but ", images_path,
                                                   " holds ", split.count));
  }
  if (limit > 0 && limit < split.count) {
    split.count = limit;
    split.pixels.resize(limit * split.rows * split.cols);
    split.labels.resize(limit);
    split.pixels.shrink_to_fit();
    split.labels.shrink_to_fit();
  }
  return split;
}

absl::StatusOr<FashionMnist> LoadFashionMnist(const std::string& root,
                                              int64_t train_limit,
                                              int64_t test_limit) {
  FashionMnist data;
  auto train = ReadIdxSplit(absl::StrCat(root, "/train-images-idx3-ubyte.gz"),
                            absl::StrCat(root, "/train-labels-idx1-ubyte.gz"),
                            train_limit);
  if (!train.ok()) return WithSubsetKey(train.status(), "data.train_samples");
  data.train = *std::move(train);
  AddCoarseLabels(data.train);
  auto test = ReadIdxSplit(absl::StrCat(root, "/t10k-images-idx3-ubyte.gz"),
                           absl::StrCat(root, "/t10k-labels-idx1-ubyte.gz"),
                           test_limit);
  if (!test.ok()) return WithSubsetKey(test.status(), "data.test_samples");
  data.test = *std::move(test);
  AddCoarseLabels(data.test);
  return data;
}

}  // namespace sslsweep
