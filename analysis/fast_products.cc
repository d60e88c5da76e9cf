#include "analysis/fast_products.h"

namespace sslsweep {

torch::Tensor ProductWithTransposed(const torch::Tensor& a, const torch::Tensor& b) {
  if (at::hasMKLDNN() && a.is_cpu() && a.scalar_type() == torch::kFloat32) {
    return at::mkldnn_linear(a.contiguous().to_mkldnn(), b.contiguous(), /*bias=*/{})
        .to_dense();
  }
  return a.mm(b.t());
}

torch::Tensor Gram(const torch::Tensor& u) {
  const torch::Tensor columns = u.t().contiguous();
  return ProductWithTransposed(columns, columns);
}

bool HasFastBfloat16Products(const torch::Device& device) {
  if (device.is_cuda()) return true;
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool native = __builtin_cpu_supports("avx512bf16") && at::hasMKLDNN();
  return native;
#else
  return false;
#endif
}

}  // namespace sslsweep
