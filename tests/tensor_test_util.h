// Small tensors written out by hand, for the analysis tests.

#ifndef SSLSWEEP_TESTS_TENSOR_TEST_UTIL_H_
#define SSLSWEEP_TESTS_TENSOR_TEST_UTIL_H_

#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace sslsweep {

// Rows of 2-D points as a float [N, 2] tensor.
inline torch::Tensor Points(const std::vector<std::vector<float>>& rows) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(rows.size()), 2});
  for (size_t i = 0; i < rows.size(); ++i) {
    t[i][0] = rows[i][0];
    t[i][1] = rows[i][1];
  }
  return t;
}

inline torch::Tensor Labels(const std::vector<int64_t>& labels) {
  return torch::tensor(labels, torch::kInt64);
}

}  // namespace sslsweep

#endif  // SSLSWEEP_TESTS_TENSOR_TEST_UTIL_H_
