// Matrix products for the measurements, routed to the fastest kernel that
// computes them in the inputs' own precision.
//
// Why: LibTorch's CPU mm calls the system BLAS, which may be a generic build
// (Debian's OpenBLAS 0.3.21 takes a Sapphire Rapids for an SSE3-only
// Prescott: 30 GFLOP/s on two cores), while oneDNN, which LibTorch carries,
// generates kernels for the CPU it runs on (140-200 GFLOP/s there). Both
// compute the same float32 products.
//
// Thread contract: pure functions; may be called concurrently.

#ifndef SSLSWEEP_ANALYSIS_FAST_PRODUCTS_H_
#define SSLSWEEP_ANALYSIS_FAST_PRODUCTS_H_

#include <torch/torch.h>

namespace sslsweep {

// a [m, k] times b [n, k] transposed: [m, n] in their dtype, on their
// device. float32 on the CPU goes through oneDNN when LibTorch has it.
// REQUIRES: a and b 2-D, same dtype, device and k.
torch::Tensor ProductWithTransposed(const torch::Tensor& a, const torch::Tensor& b);

// sum over rows of u^T u for a [r, D] chunk: [D, D] in u's dtype.
torch::Tensor Gram(const torch::Tensor& u);

// True where bfloat16 products run in hardware (a CUDA device; a CPU with
// AVX512-BF16 and oneDNN), about twice as fast as float32: the kNN search
// then ranks candidates in bfloat16 and re-ranks them in float32.
bool HasFastBfloat16Products(const torch::Device& device);

}  // namespace sslsweep

#endif  // SSLSWEEP_ANALYSIS_FAST_PRODUCTS_H_
