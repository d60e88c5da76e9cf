// NcclCommunicator: the ranks of a data-parallel trial on GPUs, one process
// per GPU as NCCL requires, joined by an NCCL unique id that rank 0 creates
// and the coordinator hands to the others (as the text of NcclIdToText).
// Sums device buffers in place over the ranks (ncclAllReduce), the
// collective that DataParallelGroup's Gloo path does for CPU tensors.
//
// Plain CUDA runtime + NCCL, no LibTorch: it builds wherever the CUDA
// toolkit and NCCL are installed (every CI machine, /usr/local/cuda-13.0),
// GPU or not, and its tests skip without a device. Issue 6: the CUDA
// trainer build uses it for CUDA tensors.
//
// Thread contract: one instance per rank, used from one thread.

#ifndef SSLSWEEP_WORKER_TRAINER_NCCL_COMMUNICATOR_H_
#define SSLSWEEP_WORKER_TRAINER_NCCL_COMMUNICATOR_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sslsweep {

// A new NCCL unique id as 256 hex digits, for rank 0 to hand out.
// Unavailable (with NCCL's message) if NCCL cannot create one.
absl::StatusOr<std::string> NewNcclId();

// Checks that `text` is an id from NewNcclId: InvalidArgument naming what
// is wrong otherwise.
absl::Status CheckNcclId(absl::string_view text);

enum class NcclType { kFloat32, kBFloat16 };

class NcclCommunicator {
 public:
  // Joins rank `rank` of `world_size` on CUDA device `device` (blocking
  // until every rank has joined). InvalidArgument for a bad rank, size or
  // id; FailedPrecondition without that device; Unavailable for NCCL's
  // failures, with its message.
  static absl::StatusOr<std::unique_ptr<NcclCommunicator>> Join(int rank, int world_size,
                                                                absl::string_view id_text,
                                                                int device);
  ~NcclCommunicator();
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }

  // Sums `count` elements of `type` at device pointer `buffer` over the
  // ranks, in place, and waits for it. Unavailable when a rank is gone or
  // NCCL fails.
  absl::Status AllReduceSum(void* buffer, size_t count, NcclType type);

 private:
  NcclCommunicator(int rank, int world_size, void* comm, void* stream)
      : rank_(rank), world_size_(world_size), comm_(comm), stream_(stream) {}

  const int rank_;
  const int world_size_;
  void* const comm_;    // ncclComm_t
  void* const stream_;  // cudaStream_t
};

// Whether a CUDA device is present (false without a driver).
bool HasCudaDevice();

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_NCCL_COMMUNICATOR_H_
