// Tests of the trainer's data sets (worker/trainer/dataset, fashion_mnist,
// cifar): the synthetic hierarchical data, the Fashion-MNIST reader and its
// coarse map on the installed files, and the CIFAR-10/100 readers on small
// files written here, with their errors.

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "analysis/nearest_class_center.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "worker/trainer/cifar.h"
#include "worker/trainer/dataset.h"
#include "worker/trainer/fashion_mnist.h"
#include "worker/trial_config.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<int64_t> Shape(const torch::Tensor& t) { return t.sizes().vec(); }

// ---- Synthetic hierarchical data
// ---------------------------------------------

SyntheticDataOptions SmallSynthetic() {
  SyntheticDataOptions options;
  options.classes = 6;
  options.superclasses = 3;
  options.train_samples = 60;
  options.test_samples = 20;
  return options;
}

TEST(SyntheticDataTest, IsSeededAndShaped) {
  const TrialData a = MakeSyntheticData(SmallSynthetic());
  const TrialData b = MakeSyntheticData(SmallSynthetic());
  EXPECT_EQ(Shape(a.train_images), (std::vector<int64_t>{60, 1, 28, 28}));
  EXPECT_EQ(Shape(a.test_images), (std::vector<int64_t>{20, 1, 28, 28}));
  for (const torch::Tensor& labels :
       {a.train_labels, a.train_coarse, a.test_labels, a.test_coarse}) {
    EXPECT_EQ(labels.scalar_type(), torch::kInt64);
  }
  EXPECT_EQ(Shape(a.train_coarse), (std::vector<int64_t>{60}));
  EXPECT_EQ(Shape(a.test_coarse), (std::vector<int64_t>{20}));
  EXPECT_EQ(a.num_classes, 6);
  EXPECT_EQ(a.num_coarse_classes, 3);
  EXPECT_EQ(a.channels, 1);
  EXPECT_EQ(a.height, 28);
  EXPECT_EQ(a.width, 28);
  EXPECT_TRUE(torch::equal(a.train_images, b.train_images));
  EXPECT_TRUE(torch::equal(a.train_labels, b.train_labels));
  EXPECT_TRUE(torch::equal(a.test_images, b.test_images));
  EXPECT_GE(a.train_images.min().item<float>(), 0.0f);
  EXPECT_LE(a.train_images.max().item<float>(), 1.0f);
  EXPECT_GE(a.train_labels.min().item<int64_t>(), 0);
  EXPECT_LT(a.train_labels.max().item<int64_t>(), 6);

  SyntheticDataOptions other = SmallSynthetic();
  other.seed += 1;
  EXPECT_FALSE(
      torch::equal(MakeSyntheticData(other).train_images, a.train_images));
}

TEST(SyntheticDataTest, CoarseIsFineOverClassesPerSuperclass) {
  SyntheticDataOptions options = SmallSynthetic();
  options.classes = 12;
  options.superclasses = 4;
  options.train_samples = 500;
  const TrialData data = MakeSyntheticData(options);
  for (const auto& [fine, coarse] :
       {std::pair{data.train_labels, data.train_coarse},
        std::pair{data.test_labels, data.test_coarse}}) {
    EXPECT_TRUE(torch::equal(coarse, torch::div(fine, 3, "floor")));
  }
  EXPECT_EQ(std::get<0>(at::_unique(data.train_labels)).numel(), 12);
  EXPECT_EQ(std::get<0>(at::_unique(data.train_coarse)).numel(), 4);
}

// The hierarchy shows in the raw pixels: nearest class centers tell both
// label sets apart above chance, the superclasses at least as well.
TEST(SyntheticDataTest, RawPixelNccIsAboveChanceAndCoarseAtLeastFine) {
  SyntheticDataOptions options;  // 10 fine classes in 5 superclasses
  options.train_samples = 2000;
  options.test_samples = 1000;
  const TrialData data = MakeSyntheticData(options);
  auto accuracy = [&](const torch::Tensor& train_labels,
                      const torch::Tensor& test_labels, int64_t classes) {
    const ClassCenters centers = ComputeClassCenters(
        data.train_images.flatten(1), train_labels, classes);
    return NearestClassCenterAccuracy(centers, data.test_images.flatten(1),
                                      test_labels);
  };
  const double fine = accuracy(data.train_labels, data.test_labels, 10);
  const double coarse = accuracy(data.train_coarse, data.test_coarse, 5);
  RecordProperty("fine_ncc", std::to_string(fine));
  RecordProperty("coarse_ncc", std::to_string(coarse));
  EXPECT_GT(fine, 2 * 0.1) << "fine " << fine;
  EXPECT_GT(coarse, 2 * 0.2) << "coarse " << coarse;
  EXPECT_GE(coarse, fine) << "fine " << fine << " coarse " << coarse;
}

TEST(SyntheticDataTest, LoadTrialDataUsesTheConfig) {
  DataConfig config;
  config.dataset = "synthetic";
  config.train_samples = 40;
  config.synthetic_classes = 8;
  config.synthetic_superclasses = 2;
  auto data = LoadTrialData(config);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->num_classes, 8);
  EXPECT_EQ(data->num_coarse_classes, 2);
  EXPECT_EQ(data->test_images.size(0), 10);  // train_samples / 4
  EXPECT_TRUE(torch::equal(data->train_coarse,
                           torch::div(data->train_labels, 4, "floor")));

  config.synthetic_superclasses = 3;
  auto bad = LoadTrialData(config);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              StartsWith("data.synthetic_superclasses: 3 superclasses must "
                         "divide data.synthetic_classes (8"));
}

// ---- Fashion-MNIST
// -----------------------------------------------------------

// Writes an uncompressed IDX file; gzread reads plain files transparently,
// so the reader sees it as it would a .gz.
void WriteIdx(const std::filesystem::path& path, std::vector<uint32_t> header,
              size_t payload_bytes, uint8_t fill = 0) {
  std::ofstream out(path, std::ios::binary);
  for (uint32_t v : header) {
    const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
    out.write(b, 4);
  }
  const std::string payload(payload_bytes, static_cast<char>(fill));
  out.write(payload.data(), payload.size());
}

TEST(FashionMnistTest, MissingFileIsNamed) {
  const auto root = TempDir("missing");
  auto data = LoadFashionMnist(root.string(), 0, 0);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(data.status().message(),
            (root / "train-images-idx3-ubyte.gz").string() +
                ": No such file or directory");
}

TEST(FashionMnistTest, CorruptFilesAreNamed) {
  const auto root = TempDir("corrupt");
  const auto images = root / "images";
  const auto labels = root / "labels";
  WriteIdx(images, {2051, 3, 28, 28}, 3 * 28 * 28);
  WriteIdx(labels, {2049, 3}, 3, 1);
  auto ok = ReadIdxSplit(images.string(), labels.string(), 2);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->count, 2);
  EXPECT_EQ(ok->pixels.size(), 2u * 28 * 28);

  struct Case {
    std::vector<uint32_t> image_header;
    size_t image_bytes;
    std::vector<uint32_t> label_header;
    size_t label_bytes;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{2049, 3, 28, 28},
       3 * 28 * 28,
       {2049, 3},
       3,
       images.string() + ": bad magic number 2049 (expected 2051"},
      {{2051, 3, 28, 28},
       100,
       {2049, 3},
       3,
       images.string() +
           ": short read: expected 2352 bytes of pixel data, got 100"},
      {{2051, 3, 28, 28},
       3 * 28 * 28 + 1,
       {2049, 3},
       3,
       images.string() + ": size mismatch: trailing bytes"},
      {{2051, 3, 28, 28},
       3 * 28 * 28,
       {2049, 4},
       4,
       labels.string() + ": size mismatch: 4 labels but " + images.string() +
           " has 3 images"},
      {{2051, 3}, 0, {2049, 3}, 3, images.string() + ": short read"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    WriteIdx(images, c.image_header, c.image_bytes);
    WriteIdx(labels, c.label_header, c.label_bytes, 1);
    auto result = ReadIdxSplit(images.string(), labels.string(), 0);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(result.status().message()), StartsWith(c.expected));
  }
  WriteIdx(images, {2051, 3, 28, 28}, 3 * 28 * 28);
  WriteIdx(labels, {2049, 3}, 3, 10);
  EXPECT_THAT(
      std::string(
          ReadIdxSplit(images.string(), labels.string(), 0).status().message()),
      HasSubstr("label 10 of sample 0 is outside [0, 10)"));
}

TEST(FashionMnistTest, CoarseMapIsTheBriefs) {
  // tops {0, 2, 4, 6}, bottoms and dresses {1, 3}, footwear {5, 7, 9},
  // bags {8}.
  const std::vector<int> expected = {0, 1, 0, 1, 0, 2, 0, 2, 3, 2};
  for (int label = 0; label < 10; ++label) {
    EXPECT_EQ(FashionMnistCoarseLabel(label), expected[label]) << label;
  }
}

TEST(FashionMnistTest, ReadsTheInstalledDatasetWithCoarseLabels) {
  const std::string root = DataConfig().root;
  if (!std::filesystem::exists(root + "/t10k-labels-idx1-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  auto raw = LoadFashionMnist(root, 100, 50);
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->train.count, 100);
  EXPECT_EQ(raw->test.count, 50);
  EXPECT_EQ(raw->train.rows, 28);
  EXPECT_EQ(raw->train.pixels.size(), 100u * 28 * 28);
  EXPECT_EQ(raw->train.labels[0], 9);  // the first training image: a boot
  EXPECT_EQ(raw->train.coarse_labels[0], 2);  // footwear
  auto too_many = LoadFashionMnist(root, 0, 10001);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_many.status().message()),
              StartsWith("data.test_samples: asked for 10001 samples"));

  DataConfig config;
  config.train_samples = 1000;
  config.test_samples = 500;
  auto data = LoadTrialData(config);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(Shape(data->train_images), (std::vector<int64_t>{1000, 1, 28, 28}));
  EXPECT_EQ(data->num_classes, 10);
  EXPECT_EQ(data->num_coarse_classes, 4);
  EXPECT_EQ(data->channels, 1);
  const torch::Tensor map =
      torch::tensor(std::vector<int64_t>{0, 1, 0, 1, 0, 2, 0, 2, 3, 2});
  EXPECT_TRUE(torch::equal(data->train_coarse,
                           map.index_select(0, data->train_labels)));
  EXPECT_TRUE(
      torch::equal(data->test_coarse, map.index_select(0, data->test_labels)));
  // The first 1000 training images have every class, so every superclass.
  EXPECT_EQ(std::get<0>(at::_unique(data->train_coarse)).numel(), 4);
}

// ---- CIFAR-10 and CIFAR-100
// --------------------------------------------------

constexpr int64_t kCifarPixels = 3 * 32 * 32;

// The pixel byte `index` of record `record` in our test files.
uint8_t TestPixel(int64_t record, int64_t index) {
  return static_cast<uint8_t>((record * 7 + index * 3) % 256);
}

// Writes CIFAR records: each the `label_bytes[i]` then 3072 TestPixel bytes,
// numbering records from `first_record`.
void WriteCifar(const std::filesystem::path& path,
                const std::vector<std::vector<uint8_t>>& label_bytes,
                int64_t first_record = 0) {
  std::ofstream out(path, std::ios::binary);
  for (size_t i = 0; i < label_bytes.size(); ++i) {
    std::string record(label_bytes[i].begin(), label_bytes[i].end());
    for (int64_t j = 0; j < kCifarPixels; ++j) {
      record.push_back(static_cast<char>(TestPixel(first_record + i, j)));
    }
    out.write(record.data(), record.size());
  }
}

// A small CIFAR-10 directory: 2 records per training file (labels 0..9 in
// order across the five files) and 3 test records.
std::filesystem::path WriteSmallCifar10(const std::string& name) {
  const auto root = TempDir(name);
  for (int file = 0; file < 5; ++file) {
    WriteCifar(root / ("data_batch_" + std::to_string(file + 1) + ".bin"),
               {{static_cast<uint8_t>(2 * file)},
                {static_cast<uint8_t>(2 * file + 1)}},
               2 * file);
  }
  WriteCifar(root / "test_batch.bin", {{3}, {8}, {5}});
  return root;
}

CifarLoadOptions SmallFiles(CifarVariant variant,
                            const std::filesystem::path& root) {
  CifarLoadOptions options;
  options.variant = variant;
  options.root = root.string();
  options.official_sizes = false;
  return options;
}

TEST(CifarTest, ReadsCifar10ValuesLabelsAndCoarse) {
  const auto root = WriteSmallCifar10("cifar10");
  auto raw = LoadCifar(SmallFiles(CifarVariant::kCifar10, root));
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->num_classes, 10);
  EXPECT_EQ(raw->num_coarse_classes, 2);
  EXPECT_EQ(raw->train.count, 10);
  EXPECT_EQ(raw->test.count, 3);
  EXPECT_EQ(raw->train.labels,
            (std::vector<uint8_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  // Vehicles (airplane, automobile, ship, truck) 0, animals 1.
  EXPECT_EQ(raw->train.coarse_labels,
            (std::vector<uint8_t>{0, 0, 1, 1, 1, 1, 1, 1, 0, 0}));
  EXPECT_EQ(raw->test.coarse_labels, (std::vector<uint8_t>{1, 0, 1}));

  const TrialData data = ToTrialData(raw->train, raw->test, raw->num_classes,
                                     raw->num_coarse_classes);
  EXPECT_EQ(Shape(data.train_images), (std::vector<int64_t>{10, 3, 32, 32}));
  EXPECT_EQ(Shape(data.test_images), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_EQ(data.channels, 3);
  EXPECT_EQ(data.height, 32);
  EXPECT_EQ(data.width, 32);
  EXPECT_EQ(data.num_coarse_classes, 2);
  EXPECT_EQ(data.train_labels[7].item<int64_t>(), 7);
  EXPECT_EQ(data.test_coarse[1].item<int64_t>(), 0);
  // Record 7, channel c, row y, column x is byte c * 1024 + y * 32 + x of its
  // pixels: the planes are R, G, B.
  for (const auto& [c, y, x] :
       {std::tuple{0, 0, 0}, std::tuple{1, 5, 9}, std::tuple{2, 31, 31}}) {
    EXPECT_FLOAT_EQ(data.train_images[7][c][y][x].item<float>(),
                    TestPixel(7, c * 1024 + y * 32 + x) / 255.0f);
  }
  EXPECT_GE(data.train_images.min().item<float>(), 0.0f);
  EXPECT_LE(data.train_images.max().item<float>(), 1.0f);

  CifarLoadOptions subset = SmallFiles(CifarVariant::kCifar10, root);
  subset.train_limit = 3;
  subset.test_limit = 1;
  auto small = LoadCifar(subset);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(small->train.count, 3);
  EXPECT_EQ(small->train.pixels.size(), 3u * kCifarPixels);
  EXPECT_EQ(small->test.labels, (std::vector<uint8_t>{3}));
}

TEST(CifarTest, ReadsCifar100CoarseAndFineBytes) {
  const auto root = TempDir("cifar100");
  WriteCifar(root / "train.bin", {{19, 99}, {0, 0}, {4, 57}});
  WriteCifar(root / "test.bin", {{7, 12}}, 100);
  auto raw = LoadCifar(SmallFiles(CifarVariant::kCifar100, root));
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->num_classes, 100);
  EXPECT_EQ(raw->num_coarse_classes, 20);
  EXPECT_EQ(raw->train.labels, (std::vector<uint8_t>{99, 0, 57}));
  EXPECT_EQ(raw->train.coarse_labels, (std::vector<uint8_t>{19, 0, 4}));
  EXPECT_EQ(raw->test.labels, (std::vector<uint8_t>{12}));
  EXPECT_EQ(raw->test.coarse_labels, (std::vector<uint8_t>{7}));
  const TrialData data = ToTrialData(raw->train, raw->test, raw->num_classes,
                                     raw->num_coarse_classes);
  EXPECT_EQ(Shape(data.train_images), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_FLOAT_EQ(data.test_images[0][2][0][1].item<float>(),
                  TestPixel(100, 2048 + 1) / 255.0f);
  EXPECT_EQ(data.train_coarse[0].item<int64_t>(), 19);
}

TEST(CifarTest, BadFilesAreNamed) {
  const auto root = TempDir("cifar_bad");
  const auto path = (root / "file.bin").string();

  auto missing = ReadCifarFile(path, CifarVariant::kCifar10, 0);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), path + ": No such file or directory");

  WriteCifar(path, {{1}, {2}});
  std::filesystem::resize_file(path, 2 * 3073 - 5);
  auto truncated = ReadCifarFile(path, CifarVariant::kCifar10, 0);
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(truncated.status().message(),
            path +
                ": size mismatch: 6141 bytes is not a positive whole number "
                "of 3073-byte CIFAR-10 records (truncated?)");

  std::ofstream(path, std::ios::binary | std::ios::trunc).close();
  EXPECT_THAT(
      std::string(
          ReadCifarFile(path, CifarVariant::kCifar10, 0).status().message()),
      StartsWith(path + ": size mismatch: 0 bytes"));

  // A CIFAR-10 file read as CIFAR-100: 2 x 3073 bytes is not a whole number
  // of 3074-byte records.
  WriteCifar(path, {{1}, {2}});
  EXPECT_THAT(
      std::string(
          ReadCifarFile(path, CifarVariant::kCifar100, 0).status().message()),
      StartsWith(path + ": size mismatch: 6146 bytes is not"));

  // The official files hold exactly 10000 / 50000 records.
  auto unofficial = ReadCifarFile(path, CifarVariant::kCifar10, 10000);
  EXPECT_EQ(unofficial.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(unofficial.status().message(),
            path +
                ": size mismatch: 6146 bytes, but an official CIFAR-10 "
                "file of 10000 records of 3073 bytes has 30730000 "
                "(truncated?)");

  struct Case {
    CifarVariant variant;
    std::vector<std::vector<uint8_t>> labels;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {CifarVariant::kCifar10,
       {{9}, {10}},
       "label 10 of record 1 is outside [0, 10)"},
      {CifarVariant::kCifar100,
       {{20, 5}},
       "coarse label 20 of record 0 is outside [0, 20)"},
      {CifarVariant::kCifar100,
       {{19, 99}, {3, 100}},
       "fine label 100 of record 1 is outside [0, 100)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    WriteCifar(path, c.labels);
    auto result = ReadCifarFile(path, c.variant, 0);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_EQ(result.status().message(), path + ": " + c.expected);
  }
}

TEST(CifarTest, LoadErrorsNameTheFileOrTheKey) {
  const auto root = WriteSmallCifar10("cifar10_errors");
  // LoadTrialData insists on the official sizes.
  DataConfig config;
  config.dataset = "cifar10";
  config.root = root.string();
  auto official = LoadTrialData(config);
  EXPECT_EQ(official.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(official.status().message()),
              StartsWith((root / "data_batch_1.bin").string() +
                         ": size mismatch: 6146 bytes, but an official"));

  CifarLoadOptions options = SmallFiles(CifarVariant::kCifar10, root);
  options.train_limit = 11;
  auto too_many = LoadCifar(options);
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(too_many.status().message(),
            "data.train_samples: asked for 11 samples but the CIFAR-10 "
            "training split (data_batch_1.bin .. data_batch_5.bin in " +
                root.string() + ") holds 10");
  options.train_limit = 0;
  options.test_limit = 4;
  EXPECT_THAT(std::string(LoadCifar(options).status().message()),
              StartsWith("data.test_samples: asked for 4 samples but " +
                         (root / "test_batch.bin").string() + " holds 3"));

  std::filesystem::remove(root / "data_batch_4.bin");
  auto missing = LoadCifar(SmallFiles(CifarVariant::kCifar10, root));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), (root / "data_batch_4.bin").string() +
                                            ": No such file or directory");

  config.dataset = "cifar100";
  auto cifar100 = LoadTrialData(config);
  EXPECT_EQ(cifar100.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cifar100.status().message(),
            (root / "train.bin").string() + ": No such file or directory");
}

TEST(CifarTest, UnreadableFileIsPermissionDenied) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file";
  const auto root = TempDir("cifar_perm");
  const auto path = (root / "train.bin").string();
  WriteCifar(path, {{1, 1}});
  std::filesystem::permissions(path, std::filesystem::perms::none);
  auto result = ReadCifarFile(path, CifarVariant::kCifar100, 0);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(result.status().message(), path + ": Permission denied");
}

}  // namespace
}  // namespace sslsweep
