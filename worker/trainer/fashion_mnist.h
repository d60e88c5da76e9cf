// Reading Fashion-MNIST (and MNIST) from the gzip-compressed IDX files that
// Debian's dataset-fashion-mnist installs in /usr/share/datasets/fashion-mnist.
//
// Each file is read in full and validated: the magic number (2051 for images,
// 2049 for labels), the dimensions, the byte count (no short read and no
// trailing bytes), agreement of the image and label counts, and labels in
// [0, 10). Errors name the file: NotFound or PermissionDenied when it cannot
// be opened (with the system's reason), DataLoss when its content is corrupt,
// InvalidArgument when a requested subset is larger than the split. The
// coarse labels group the ten classes as the brief does: tops, bottoms and
// dresses, footwear, bags (FashionMnistCoarseLabel).
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

// `count` images of channels x rows x cols pixels, one byte each, stored
// image by image, each as channel planes of row-major pixels (the layout of
// a [count, channels, rows, cols] tensor), with their class labels and, where
// the dataset defines them, coarse (superclass) labels.
struct LabeledImages {
  int64_t count = 0;
  int64_t channels = 1;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> pixels;         // count * channels * rows * cols
  std::vector<uint8_t> labels;         // count
  std::vector<uint8_t> coarse_labels;  // count, or empty
};

struct FashionMnist {
  static constexpr int64_t kNumClasses = 10;
  static constexpr int64_t kNumCoarseClasses = 4;
  LabeledImages train;  // with coarse_labels
  LabeledImages test;   // with coarse_labels
};

// The superclass of a Fashion-MNIST class: tops (T-shirt/top 0, pullover 2,
// coat 4, shirt 6) -> 0, bottoms and dresses (trouser 1, dress 3) -> 1,
// footwear (sandal 5, sneaker 7, ankle boot 9) -> 2, bags (bag 8) -> 3.
// REQUIRES: label < FashionMnist::kNumClasses.
uint8_t FashionMnistCoarseLabel(uint8_t label);

// Reads one split from an IDX image file and an IDX label file and keeps the
// first `limit` samples (0: all of them). Leaves coarse_labels empty.
absl::StatusOr<LabeledImages> ReadIdxSplit(const std::string& images_path,
                                           const std::string& labels_path,
                                           int64_t limit);

// Reads train-{images-idx3,labels-idx1}-ubyte.gz and their t10k- counterparts
// from `root`, keeping the first `train_limit` / `test_limit` samples (0: all),
// and fills in the coarse labels.
absl::StatusOr<FashionMnist> LoadFashionMnist(const std::string& root,
                                              int64_t train_limit,
                                              int64_t test_limit);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_FASHION_MNIST_H_
