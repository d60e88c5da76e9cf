// The loop every measurement of analysis/ runs: over the rows of a feature
// matrix in chunks, each converted to float64, so that memory beyond the
// inputs stays O(chunk_rows * D) however many rows there are.
//
// Thread contract: a Float64RowChunks is confined to one thread; the
// function is pure.

#ifndef SSLSWEEP_ANALYSIS_ROW_CHUNKS_H_
#define SSLSWEEP_ANALYSIS_ROW_CHUNKS_H_

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>

namespace sslsweep {

// Calls visit(begin, end) for consecutive row ranges [begin, end) of at most
// chunk_rows rows covering [0, rows).
// REQUIRES: chunk_rows > 0.
template <typename Visit>
void ForEachRowChunk(int64_t rows, int64_t chunk_rows, Visit visit) {
  for (int64_t begin = 0; begin < rows; begin += chunk_rows) {
    visit(begin, std::min(rows, begin + chunk_rows));
  }
}

// Float64 copies of row ranges of a [N, D] matrix, written into one buffer
// on the matrix's device: a fresh multi-megabyte allocation per chunk costs
// page faults on the order of the conversion itself.
class Float64RowChunks {
 public:
  // REQUIRES: rows is [N, D]; chunk_rows > 0.
  Float64RowChunks(const torch::Tensor& rows, int64_t chunk_rows)
      : rows_(rows),
        buffer_(torch::empty(
            {std::min(chunk_rows, rows.size(0)), rows.size(1)},
            torch::TensorOptions(rows.device()).dtype(torch::kFloat64))) {}

  // rows[begin, end) as float64, which the caller may modify in place;
  // valid until the next call.
  // REQUIRES: 0 <= begin < end <= N, end - begin <= chunk_rows.
  torch::Tensor Get(int64_t begin, int64_t end) {
    return buffer_.slice(0, 0, end - begin).copy_(rows_.slice(0, begin, end));
  }

 private:
  const torch::Tensor rows_;
  torch::Tensor buffer_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_ANALYSIS_ROW_CHUNKS_H_
