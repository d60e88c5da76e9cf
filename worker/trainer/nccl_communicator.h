// NcclCommunicator: the ranks of a data-parallel trial on GPUs, one process
// (or thread) per GPU as NCCL requires, joined by an NCCL unique id that rank
// 0 creates and hands to the others (as the text of NewNcclId; the
// DataParallelGroup passes it through its TCPStore). Sums and gathers device
// buffers over the ranks (ncclAllReduce, ncclAllGather): the collectives that
// DataParallelGroup runs over Gloo for CPU tensors.
//
// Plain CUDA runtime + NCCL, no LibTorch: it builds wherever the CUDA
// toolkit and NCCL are installed (every CI machine, /usr/local/cuda-13.0),
// GPU or not, and its tests skip without a device.
//
// Every collective runs on the communicator's own stream, after all work
// already queued on the device's legacy default stream (LibTorch's stream
// unless a stream guard says otherwise), and returns once it has completed.
// A collective that makes no progress for `timeout` (a rank gone) or fails
// aborts the communicator: that call and every later one return an error.
//
// Thread contract: one instance per rank, used from one thread.

#ifndef SSLSWEEP_WORKER_TRAINER_NCCL_COMMUNICATOR_H_
#define SSLSWEEP_WORKER_TRAINER_NCCL_COMMUNICATOR_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sslsweep {

// A new NCCL unique id as 256 hex digits, for rank 0 to hand out.
// Unavailable (with NCCL's message) if NCCL cannot create one.
absl::StatusOr<std::string> NewNcclId();

// Checks that `text` is an id from NewNcclId: InvalidArgument naming what
// is wrong otherwise.
absl::Status CheckNcclId(absl::string_view text);

// Whether a CUDA device is present (false without a driver).
bool HasCudaDevice();

// OK when CUDA device `device` exists; FailedPrecondition "CUDA device D:
// this machine has N" otherwise (N is 0 without a driver).
absl::Status CheckCudaDevice(int device);

enum class NcclType { kFloat32, kBFloat16 };

struct NcclOptions {
  int rank = 0;
  int world_size = 1;
  std::string id;  // NewNcclId's text from rank 0, the same on every rank
  int device = 0;  // this rank's CUDA device: NCCL wants one rank per device
  // How long one collective may wait for the other ranks before the
  // communicator is aborted.
  std::chrono::milliseconds timeout{60'000};
};

class NcclCommunicator {
 public:
  // Joins rank options.rank of options.world_size on options.device
  // (blocking until every rank has joined). InvalidArgument for a bad rank,
  // size or id; FailedPrecondition without that device; Unavailable for
  // NCCL's failures, with its message.
  static absl::StatusOr<std::unique_ptr<NcclCommunicator>> Join(const NcclOptions& options);
  ~NcclCommunicator();
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }
  int device() const { return options_.device; }

  // Sums `count` elements of `type` at device pointer `buffer` over the
  // ranks, in place. Unavailable when a rank is gone (the timeout) or NCCL
  // fails; FailedPrecondition once the communicator was aborted.
  absl::Status AllReduceSum(void* buffer, size_t count, NcclType type);

  // Gathers `count` elements of `type` from every rank's `send` into
  // `recv`, rank r's at element r * count. Errors as for AllReduceSum.
  // REQUIRES: recv holds world_size() * count elements; both on device().
  absl::Status AllGather(const void* send, void* recv, size_t count, NcclType type);

 private:
  NcclCommunicator(NcclOptions options, void* comm, void* stream, void* inputs_ready)
      : options_(std::move(options)),
        comm_(comm),
        stream_(stream),
        inputs_ready_(inputs_ready) {}

  // Refuses once aborted; makes the device current and stream_ wait for
  // the work queued so far on the legacy default stream, which wrote the
  // inputs.
  absl::Status Start(const char* what);
  // Waits until stream_ has drained, polling for NCCL's asynchronous errors
  // and the timeout; aborts the communicator on either.
  absl::Status Finish(const char* what);
  // Aborts the communicator (its kernels stop) and returns `error`.
  absl::Status Abort(absl::Status error);

  // Constant after construction.
  const NcclOptions options_;
  void* const comm_;          // ncclComm_t
  void* const stream_;        // cudaStream_t
  void* const inputs_ready_;  // cudaEvent_t

  bool aborted_ = false;  // comm_ is gone: every collective fails
};

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_NCCL_COMMUNICATOR_H_
