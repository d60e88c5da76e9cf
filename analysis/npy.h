// Reading and writing numpy's .npy files (format versions 1.0, 2.0 and 3.0),
// so that embeddings exported from any model can be analysed and ours can be
// read by numpy.
//
// Supported: C-order (fortran_order False) arrays of little-endian float32,
// float64, int8/16/32/64, uint8/16/32/64 and bool ('<f4', '<f8', '|i1',
// '<i2', '<i4', '<i8', '|u1', '<u2', '<u4', '<u8', '|b1'), of any rank.
// Anything else (a pickle, big-endian data, Fortran order, a truncated file,
// a header that does not parse) is refused with a message that names the
// file and what is wrong, e.g. "F.npy: data ends after 1024 of 4096 bytes".
//
// Thread contract: the functions are pure and may be called concurrently.

#ifndef SSLSWEEP_ANALYSIS_NPY_H_
#define SSLSWEEP_ANALYSIS_NPY_H_

#include <string>

#include <torch/torch.h>

namespace sslsweep {

// Reads `path` into a CPU tensor of the file's dtype (uint16/32/64 become
// int64; values of uint64 above INT64_MAX are refused) and shape. Throws
// c10::Error with "<path>: <what is wrong>" on failure.
torch::Tensor ReadNpy(const std::string& path);

// Writes `tensor` (moved to the CPU, made contiguous) as a version 1.0 .npy
// file; float32, float64, int32, int64, uint8 and bool are supported. Throws
// c10::Error naming the path when the file cannot be written.
void WriteNpy(const std::string& path, const torch::Tensor& tensor);

}  // namespace sslsweep

#endif  // SSLSWEEP_ANALYSIS_NPY_H_
