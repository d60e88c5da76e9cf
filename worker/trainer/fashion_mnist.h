// Reading Fashion-MNIST (and MNIST) from the gzip-compressed IDX files that
// Debian's dataset-fashion-mnist installs in /usr/share/datasets/fashion-mnist.
//
// Each file is read in full and validated: the magic number (2051 for images,
// 2049 for labels), the dimensions, the byte count (no short read and no
// trailing bytes), agreement of the image and label counts, and labels in
// [0, 10). Errors name the file: NotFound or PermissionDenied when it cannot
// be opened (with the system's reason), DataLoss when its content is corrupt,
// InvalidArgument when a requested subset is larger than the split.
//
// This file knows nothing of LibTorch: it returns bytes, which the trainer
// turns into tensors.
//
// Thread contract: the functions are pure and may be called from any thread.

#ifndef SSLSWEEP_WORKER_TRAINER_FASHION_MNIST_H_
#define SSLSWEEP_WORKER_TRAINER_FASHION_MNIST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sslsweep {

// `count` grayscale images of rows x cols pixels, row-major, one byte each,
// with their class labels.
struct LabeledImages {
  int64_t count = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols
  std::vector<uint8_t> labels;  // count
};

struct FashionMnist {
  static constexpr int64_t kNumClasses = 10;
  LabeledImages train;
  LabeledImages test;
};

// Reads one split from an IDX image file and an IDX label file and keeps the
// first `limit` samples (0: all of them).
absl::StatusOr<LabeledImages> ReadIdxSplit(const std::string& images_path,
                                           const std::string& labels_path,
                                           int64_t limit);

// Reads train-{images-idx3,labels-idx1}-ubyte.gz and their t10k- counterparts
// from `root`, keeping the first `train_limit` / `test_limit` samples (0: all).
absl::StatusOr<FashionMnist> LoadFashionMnist(const std::string& root,
                                              int64_t train_limit,
                                              int64_t test_limit);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_FASHION_MNIST_H_
