// Reading CIFAR-10 and CIFAR-100 from their binary versions
// (cifar-10-binary.tar.gz, cifar-100-binary.tar.gz, unpacked) in a directory
// the user names.
//
// A CIFAR-10 record is a label byte then 3072 pixel bytes; a CIFAR-100
// record is a coarse label byte, a fine label byte, then the 3072 pixel
// bytes. The pixels are the red, green and blue planes of a 32x32 image,
// row-major, which is already the layout of a [N, 3, 32, 32] tensor.
// CIFAR-10's training split is data_batch_1.bin .. data_batch_5.bin (10000
// records each) and its test split test_batch.bin (10000); CIFAR-100's are
// train.bin (50000) and test.bin (10000).
//
// CIFAR-100 records carry their superclass (20 of them). CIFAR-10 has none,
// so we define one (our choice, not the dataset's): vehicles (airplane 0,
// automobile 1, ship 8, truck 9) -> 0, animals (bird 2, cat 3, deer 4, dog 5,
// frog 6, horse 7) -> 1.
//
// Each file is read in full and validated: its size must be a whole number
// of records and, for the official files, exactly the official count; every
// label must be in range. Errors name the file: NotFound or PermissionDenied
// when it cannot be opened (with the system's reason), DataLoss when its
// content is corrupt (a truncated file says how many bytes it has and how
// many it should have), InvalidArgument when a requested subset is larger
// than the split.
//
// This file knows nothing of LibTorch: it returns bytes, which the trainer
// turns into tensors.
//
// Thread contract: the functions are pure and may be called from any thread.

#ifndef SSLSWEEP_WORKER_TRAINER_CIFAR_H_
#define SSLSWEEP_WORKER_TRAINER_CIFAR_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "worker/trainer/fashion_mnist.h"  // LabeledImages

namespace sslsweep {

enum class CifarVariant { kCifar10, kCifar100 };

struct CifarData {
  int64_t num_classes = 0;
  int64_t num_coarse_classes = 0;
  LabeledImages train;  // 3 x 32 x 32, with coarse_labels
  LabeledImages test;   // 3 x 32 x 32, with coarse_labels
};

struct CifarLoadOptions {
  CifarVariant variant = CifarVariant::kCifar10;
  std::string root;  // the directory holding the .bin files
  // The first train_limit / test_limit samples are kept (0: all of them).
  int64_t train_limit = 0;
  int64_t test_limit = 0;
  // Require the official record counts (10000 per CIFAR-10 file, 50000 and
  // 10000 for CIFAR-100's). Tests turn it off to read small files.
  bool official_sizes = true;
};

// The superclass we assign to a CIFAR-10 class (see above).
// REQUIRES: label < 10.
uint8_t Cifar10CoarseLabel(uint8_t label);

// Reads every record of one CIFAR binary file. With expected_records > 0 the
// file must hold exactly that many; otherwise any positive number.
absl::StatusOr<LabeledImages> ReadCifarFile(const std::string& path,
                                            CifarVariant variant,
                                            int64_t expected_records);

// Reads the training and test files of options.variant from options.root and
// keeps the first train_limit / test_limit samples. A subset larger than its
// split is InvalidArgument naming the key (data.train_samples or
// data.test_samples).
absl::StatusOr<CifarData> LoadCifar(const CifarLoadOptions& options);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_CIFAR_H_
