#include "worker/trainer/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace sslsweep {
namespace {

absl::Status NcclError(const char* what, ncclResult_t result) {
  return absl::UnavailableError(absl::StrCat(what, ": ", ncclGetErrorString(result)));
}

absl::Status CudaError(const char* what, cudaError_t error) {
  return absl::UnavailableError(absl::StrCat(what, ": ", cudaGetErrorString(error)));
}

}  // namespace

bool HasCudaDevice() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
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
    int rank, int world_size, absl::string_view id_text, int device) {
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", rank, " of world_size ",
                                                   world_size, ": expected 0 <= rank < size"));
  }
  if (auto s = CheckNcclId(id_text); !s.ok()) return s;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || device < 0 || device >= devices) {
    return absl::FailedPreconditionError(
        absl::StrCat("CUDA device ", device, ": this machine has ", devices));
  }
  if (cudaError_t e = cudaSetDevice(device); e != cudaSuccess) {
    return CudaError("cudaSetDevice", e);
  }
  ncclUniqueId id;
  const std::string bytes = absl::HexStringToBytes(id_text);
  std::memcpy(id.internal, bytes.data(), sizeof(id.internal));
  cudaStream_t stream = nullptr;
  if (cudaError_t e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
      e != cudaSuccess) {
    return CudaError("cudaStreamCreate", e);
  }
  ncclComm_t comm = nullptr;
  if (ncclResult_t r = ncclCommInitRank(&comm, world_size, id, rank); r != ncclSuccess) {
    cudaStreamDestroy(stream);
    return NcclError("joining the NCCL communicator", r);
  }
  return std::unique_ptr<NcclCommunicator>(
      new NcclCommunicator(rank, world_size, comm, stream));
}

NcclCommunicator::~NcclCommunicator() {
  ncclCommDestroy(static_cast<ncclComm_t>(comm_));
  cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

absl::Status NcclCommunicator::AllReduceSum(void* buffer, size_t count, NcclType type) {
  const ncclDataType_t nccl_type = type == NcclType::kFloat32 ? ncclFloat32 : ncclBfloat16;
  auto stream = static_cast<cudaStream_t>(stream_);
  if (ncclResult_t r = ncclAllReduce(buffer, buffer, count, nccl_type, ncclSum,
                                     static_cast<ncclComm_t>(comm_), stream);
      r != ncclSuccess) {
    return NcclError("ncclAllReduce", r);
  }
  if (cudaError_t e = cudaStreamSynchronize(stream); e != cudaSuccess) {
    return CudaError("waiting for ncclAllReduce", e);
  }
  return absl::OkStatus();
}

}  // namespace sslsweep
