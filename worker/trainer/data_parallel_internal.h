// What data_parallel_group.cc and gradient_sync.cc share: turning c10d's
// failures into statuses, and the bucket layout of gradient averaging.
// Internal to the trainer's data-parallel code; nothing else includes it.
//
// Thread contract: pure functions.

#ifndef SSLSWEEP_WORKER_TRAINER_DATA_PARALLEL_INTERNAL_H_
#define SSLSWEEP_WORKER_TRAINER_DATA_PARALLEL_INTERNAL_H_

#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include <cstddef>
#include <exception>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace sslsweep::data_parallel_internal {

// Unavailable: "<what>: <e.what()>".
absl::Status Unavailable(const std::string& what, const std::exception& e);

// Waits for `work`; a c10::Error (a rank gone, a timeout) becomes
// Unavailable naming `what`.
absl::Status Wait(const std::string& what, const c10::intrusive_ptr<c10d::Work>& work);

// Starts a collective with `start` and waits for it: whatever either step
// throws (c10::Error, Gloo's IoException for a connection closed or reset,
// a timeout) becomes Unavailable naming `what`, so that no raw transport
// exception leaves the group.
absl::Status RunCollective(const std::string& what,
                           absl::FunctionRef<c10::intrusive_ptr<c10d::Work>()> start);

// The buckets of `parameters`' gradients, each a list of parameter indices,
// in the order they are all-reduced: from the last parameter to the first,
// consecutive parameters of one dtype and device up to bucket_bytes each.
std::vector<std::vector<size_t>> PlanBuckets(const std::vector<torch::Tensor>& parameters,
                                             int64_t bucket_bytes);

// The gradient of `p`, made zeros first if it has none.
torch::Tensor GradOrZeros(const torch::Tensor& p);

// Copies the bucket's mean, `flat` times `scale`, back into `grads`.
void ScatterMean(torch::Tensor& flat, double scale, const std::vector<torch::Tensor>& grads);

}  // namespace sslsweep::data_parallel_internal

#endif  // SSLSWEEP_WORKER_TRAINER_DATA_PARALLEL_INTERNAL_H_
