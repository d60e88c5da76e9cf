#include "worker/trainer/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstring>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace sslsweep {
namespace {

absl::Status NcclError(const char* what, ncclResult_t result, ncclComm_t comm = nullptr) {
  std::string message = absl::StrCat(what, ": ", ncclGetErrorString(result));
  // NCCL's last error says which rank or transport failed, where it knows.
  if (const char* detail = comm == nullptr ? nullptr : ncclGetLastError(comm);
      detail != nullptr && *detail != '\0') {
    absl::StrAppend(&message, " (", detail, ")");
  }
  return absl::UnavailableError(message);
}

absl::Status CudaError(const char* what, cudaError_t error) {
  return absl::UnavailableError(absl::StrCat(what, ": ", cudaGetErrorString(error)));
}

ncclDataType_t NcclDataType(NcclType type) {
  return type == NcclType::kFloat32 ? ncclFloat32 : ncclBfloat16;
}

}  // namespace

bool HasCudaDevice() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

absl::Status CheckCudaDevice(int device) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) {
    cudaGetLastError();  // no driver or device: not an error to leave behind
    devices = 0;
  }
  if (device < 0 || device >= devices) {
    return absl::FailedPreconditionError(
        absl::StrCat("CUDA device ", device, ": this machine has ", devices));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> NewNcclId() {
  ncclUniqueId id;
  if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) {
    return NcclError("creating an NCCL unique id", r);
  }
  return absl::BytesToHexString(absl::string_view(id.internal, sizeof(id.internal)));
}

absl::Status CheckNcclId(absl::string_view text) {
  if (text.size() != 2 * NCCL_UNIQUE_ID_BYTES) {
    return absl::InvalidArgumentError(absl::StrCat(
        "NCCL id: expected ", 2 * NCCL_UNIQUE_ID_BYTES, " hex digits, got ", text.size(),
        " characters"));
  }
  for (char c : text) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat("NCCL id: '", std::string(1, c), "' is not a hex digit"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Join(
    const NcclOptions& options) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", options.rank, " of world_size ",
                                                   options.world_size,
                                                   ": expected 0 <= rank < size"));
  }
  if (auto s = CheckNcclId(options.id); !s.ok()) return s;
  if (options.timeout <= std::chrono::milliseconds::zero()) {
    return absl::InvalidArgumentError(
        absl::StrCat("timeout: expected > 0 ms, got ", options.timeout.count()));
  }
  if (auto s = CheckCudaDevice(options.device); !s.ok()) return s;
  if (cudaError_t e = cudaSetDevice(options.device); e != cudaSuccess) {
    return CudaError("cudaSetDevice", e);
  }
  ncclUniqueId id;
  const std::string bytes = absl::HexStringToBytes(options.id);
  std::memcpy(id.internal, bytes.data(), sizeof(id.internal));
  cudaStream_t stream = nullptr;
  if (cudaError_t e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
      e != cudaSuccess) {
    return CudaError("cudaStreamCreate", e);
  }
  cudaEvent_t inputs_ready = nullptr;
  if (cudaError_t e = cudaEventCreateWithFlags(&inputs_ready, cudaEventDisableTiming);
      e != cudaSuccess) {
    cudaStreamDestroy(stream);
    return CudaError("cudaEventCreate", e);
  }
  ncclComm_t comm = nullptr;
  if (ncclResult_t r = ncclCommInitRank(&comm, options.world_size, id, options.rank);
      r != ncclSuccess) {
    cudaEventDestroy(inputs_ready);
    cudaStreamDestroy(stream);
    return NcclError("joining the NCCL communicator", r);
  }
  return std::unique_ptr<NcclCommunicator>(
      new NcclCommunicator(options, comm, stream, inputs_ready));
}

NcclCommunicator::~NcclCommunicator() {
  if (!aborted_) ncclCommDestroy(static_cast<ncclComm_t>(comm_));
  cudaEventDestroy(static_cast<cudaEvent_t>(inputs_ready_));
  cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

absl::Status NcclCommunicator::AllReduceSum(void* buffer, size_t count, NcclType type) {
  if (auto s = Start("ncclAllReduce"); !s.ok()) return s;
  if (ncclResult_t r = ncclAllReduce(buffer, buffer, count, NcclDataType(type), ncclSum,
                                     static_cast<ncclComm_t>(comm_),
                                     static_cast<cudaStream_t>(stream_));
      r != ncclSuccess) {
    return Abort(NcclError("ncclAllReduce", r, static_cast<ncclComm_t>(comm_)));
  }
  return Finish("ncclAllReduce");
}

absl::Status NcclCommunicator::AllGather(const void* send, void* recv, size_t count,
                                         NcclType type) {
  if (auto s = Start("ncclAllGather"); !s.ok()) return s;
  if (ncclResult_t r = ncclAllGather(send, recv, count, NcclDataType(type),
                                     static_cast<ncclComm_t>(comm_),
                                     static_cast<cudaStream_t>(stream_));
      r != ncclSuccess) {
    return Abort(NcclError("ncclAllGather", r, static_cast<ncclComm_t>(comm_)));
  }
  return Finish("ncclAllGather");
}

absl::Status NcclCommunicator::Start(const char* what) {
  if (aborted_) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": the NCCL communicator was aborted after an earlier failure"));
  }
  // The device is per thread, and LibTorch's device guards may have moved it.
  if (cudaError_t e = cudaSetDevice(options_.device); e != cudaSuccess) {
    return Abort(CudaError("cudaSetDevice", e));
  }
  // stream_ is non-blocking, so nothing orders it after LibTorch's kernels
  // that wrote the inputs unless this event does.
  auto inputs_ready = static_cast<cudaEvent_t>(inputs_ready_);
  if (cudaError_t e = cudaEventRecord(inputs_ready, cudaStreamLegacy); e != cudaSuccess) {
    return Abort(CudaError(what, e));
  }
  if (cudaError_t e = cudaStreamWaitEvent(static_cast<cudaStream_t>(stream_), inputs_ready, 0);
      e != cudaSuccess) {
    return Abort(CudaError(what, e));
  }
  return absl::OkStatus();
}

absl::Status NcclCommunicator::Finish(const char* what) {
  auto stream = static_cast<cudaStream_t>(stream_);
  auto comm = static_cast<ncclComm_t>(comm_);
  // A collective whose peer is gone never completes (its kernel waits for
  // the peer's data), so cudaStreamSynchronize could wait forever: poll.
  const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  for (;;) {
    const cudaError_t e = cudaStreamQuery(stream);
    if (e == cudaSuccess) return absl::OkStatus();
    if (e != cudaErrorNotReady) return Abort(CudaError(what, e));
    ncclResult_t async = ncclSuccess;
    if (ncclResult_t r = ncclCommGetAsyncError(comm, &async); r != ncclSuccess) {
      return Abort(NcclError(what, r, comm));
    }
    if (async != ncclSuccess) return Abort(NcclError(what, async, comm));
    if (std::chrono::steady_clock::now() >= deadline) {
      return Abort(absl::UnavailableError(absl::StrCat(
          what, ": not complete after ", options_.timeout.count(),
          " ms (is a rank gone?); the NCCL communicator is aborted")));
    }
    std::this_thread::yield();
  }
}

absl::Status NcclCommunicator::Abort(absl::Status error) {
  // After an error or a timeout the communicator's state is unknown; abort
  // stops its kernels, so that the stream drains and nothing hangs.
  ncclCommAbort(static_cast<ncclComm_t>(comm_));
  aborted_ = true;
  return error;
}

}  // namespace sslsweep
