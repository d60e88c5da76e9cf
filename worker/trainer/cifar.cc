#include "worker/trainer/cifar.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sslsweep {
namespace {

constexpr int64_t kChannels = 3;
constexpr int64_t kSide = 32;
constexpr int64_t kPixelBytes = kChannels * kSide * kSide;  // 3072
constexpr int64_t kCifar10Classes = 10;
constexpr int64_t kCifar10CoarseClasses = 2;
constexpr int64_t kCifar100Classes = 100;
constexpr int64_t kCifar100CoarseClasses = 20;

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

struct VariantSpec {
  const char* name;
  int64_t label_bytes;  // before the pixels of each record
  int64_t classes;
  int64_t coarse_classes;
  std::vector<std::string> train_files;
  int64_t train_records_per_file;
  std::string test_file;
  int64_t test_records;
};

const VariantSpec& SpecOf(CifarVariant variant) {
  static const VariantSpec kCifar10{
      "CIFAR-10",
      /*label_bytes=*/1,
      kCifar10Classes,
      kCifar10CoarseClasses,
      {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
       "data_batch_4.bin", "data_batch_5.bin"},
      /*train_records_per_file=*/10000,
      "test_batch.bin",
      /*test_records=*/10000};
  static const VariantSpec kCifar100{"CIFAR-100",
                                     /*label_bytes=*/2,
                                     kCifar100Classes,
                                     kCifar100CoarseClasses,
                                     {"train.bin"},
                                     /*train_records_per_file=*/50000,
                                     "test.bin",
                                     /*test_records=*/10000};
  return variant == CifarVariant::kCifar10 ? kCifar10 : kCifar100;
}

absl::Status OpenError(const std::string& path, int err) {
  std::string message =
      absl::StrCat(path, ": ", err != 0 ? std::strerror(err) : "cannot open");
  if (err == EACCES) return absl::PermissionDeniedError(message);
  return absl::NotFoundError(message);
}

// Reads the whole regular file at `path`.
absl::StatusOr<std::vector<uint8_t>> ReadWholeFile(const std::string& path) {
  errno = 0;
  File file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) return OpenError(path, errno);
  struct stat info;
  if (fstat(fileno(file.get()), &info) != 0) return OpenError(path, errno);
  if (!S_ISREG(info.st_mode)) {
    return absl::DataLossError(absl::StrCat(path, ": not a regular file"));
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(info.st_size));
  const size_t got = std::fread(bytes.data(), 1, bytes.size(), file.get());
  if (got != bytes.size()) {
    return absl::DataLossError(absl::StrCat(
        path, ": read ", got, " of its ", bytes.size(), " bytes",
        std::ferror(file.get()) ? absl::StrCat(": ", std::strerror(errno))
                                : std::string()));
  }
  return bytes;
}

absl::Status LabelOutOfRange(const std::string& path, const char* kind,
                             int label, int64_t record, int64_t limit) {
  return absl::DataLossError(absl::StrCat(path, ": ", kind, " ", label,
                                          " of record ", record,
                                          " is outside [0, ", limit, ")"));
}

// Appends `part`'s samples to `all`.
void Append(LabeledImages& all, const LabeledImages& part) {
  all.count += part.count;
  all.pixels.insert(all.pixels.end(), part.pixels.begin(), part.pixels.end());
  all.labels.insert(all.labels.end(), part.labels.begin(), part.labels.end());
  all.coarse_labels.insert(all.coarse_labels.end(), part.coarse_labels.begin(),
                           part.coarse_labels.end());
}

// Keeps the first `limit` samples (0: all); a larger limit is InvalidArgument
// naming `key` and `what` holds the split.
absl::Status KeepFirst(LabeledImages& split, int64_t limit, const char* key,
                       const std::string& what) {
  if (limit < 0 || limit > split.count) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": asked for ", limit,
                                                   " samples but ", what,
                                                   " holds ", split.count));
  }
  if (limit == 0 || limit == split.count) return absl::OkStatus();
  split.count = limit;
  split.pixels.resize(limit * kPixelBytes);
  split.labels.resize(limit);
  split.coarse_labels.resize(limit);
  split.pixels.shrink_to_fit();
  split.labels.shrink_to_fit();
  split.coarse_labels.shrink_to_fit();
  return absl::OkStatus();
}

}  // namespace

uint8_t Cifar10CoarseLabel(uint8_t label) {
  // Indexed by class: airplane, automobile, bird, cat, deer, dog, frog,
  // horse, ship, truck.
  static constexpr uint8_t kCoarse[kCifar10Classes] = {0, 0, 1, 1, 1,
                                                       1, 1, 1, 0, 0};
  return kCoarse[label];
}

absl::StatusOr<LabeledImages> ReadCifarFile(const std::string& path,
                                            CifarVariant variant,
                                            int64_t expected_records) {
  const VariantSpec& spec = SpecOf(variant);
  auto bytes = ReadWholeFile(path);
  if (!bytes.ok()) return bytes.status();
  const int64_t record_bytes = spec.label_bytes + kPixelBytes;
  const int64_t size = static_cast<int64_t>(bytes->size());
  if (expected_records > 0 && size != expected_records * record_bytes) {
    return absl::DataLossError(absl::StrCat(
        path, ": size mismatch: ", size, " bytes, but an official ", spec.name,
        " file of ", expected_records, " records of ", record_bytes,
        " bytes has ", expected_records * record_bytes,
        size < expected_records * record_bytes ? " (truncated?)" : ""));
  }
  if (size == 0 || size % record_bytes != 0) {
    return absl::DataLossError(
        absl::StrCat(path, ": size mismatch: ", size,
                     " bytes is not a positive whole number of ", record_bytes,
                     "-byte ", spec.name, " records (truncated?)"));
  }
  LabeledImages split;
  split.count = size / record_bytes;
  split.channels = kChannels;
  split.rows = kSide;
  split.cols = kSide;
  split.pixels.resize(split.count * kPixelBytes);
  split.labels.resize(split.count);
  split.coarse_labels.resize(split.count);
  for (int64_t i = 0; i < split.count; ++i) {
    const uint8_t* record = bytes->data() + i * record_bytes;
    if (variant == CifarVariant::kCifar10) {
      if (record[0] >= spec.classes) {
        return LabelOutOfRange(path, "label", record[0], i, spec.classes);
      }
      split.labels[i] = record[0];
      split.coarse_labels[i] = Cifar10CoarseLabel(record[0]);
    } else {
      if (record[0] >= spec.coarse_classes) {
        return LabelOutOfRange(path, "coarse label", record[0], i,
                               spec.coarse_classes);
      }
      if (record[1] >= spec.classes) {
        return LabelOutOfRange(path, "fine label", record[1], i, spec.classes);
      }
      split.coarse_labels[i] = record[0];
      split.labels[i] = record[1];
    }
    std::memcpy(split.pixels.data() + i * kPixelBytes,
                record + spec.label_bytes, kPixelBytes);
  }
  return split;
}

absl::StatusOr<CifarData> LoadCifar(const CifarLoadOptions& options) {
  const VariantSpec& spec = SpecOf(options.variant);
  CifarData data;
  data.num_classes = spec.classes;
  data.num_coarse_classes = spec.coarse_classes;
  for (LabeledImages* split : {&data.train, &data.test}) {
    split->channels = kChannels;
    split->rows = kSide;
    split->cols = kSide;
  }
  for (const std::string& name : spec.train_files) {
    auto part =
        ReadCifarFile(absl::StrCat(options.root, "/", name), options.variant,
                      options.official_sizes ? spec.train_records_per_file : 0);
    if (!part.ok()) return part.status();
    Append(data.train, *part);
  }
  const std::string train_what =
      spec.train_files.size() == 1
          ? absl::StrCat(options.root, "/", spec.train_files[0])
          : absl::StrCat("the ", spec.name, " training split (",
                         spec.train_files.front(), " .. ",
                         spec.train_files.back(), " in ", options.root, ")");
  if (auto s = KeepFirst(data.train, options.train_limit, "data.train_samples",
                         train_what);
      !s.ok()) {
    return s;
  }
  const std::string test_path = absl::StrCat(options.root, "/", spec.test_file);
  auto test = ReadCifarFile(test_path, options.variant,
                            options.official_sizes ? spec.test_records : 0);
  if (!test.ok()) return test.status();
  data.test = *std::move(test);
  if (auto s = KeepFirst(data.test, options.test_limit, "data.test_samples",
                         test_path);
      !s.ok()) {
    return s;
  }
  return data;
}

}  // namespace sslsweep
