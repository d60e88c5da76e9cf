// Checkpoint transfer: one upload or one download of a trial checkpoint file
// over the WorkerService stub, in chunks of kCheckpointChunkBytes. The first
// chunk of either direction carries the epoch, the file's size and its zlib
// CRC-32; the receiver checks both before keeping anything. Each function is
// one call on a context the caller prepared (PrepareCall: its deadline, and
// TryCancel from another thread): callers retry transient failures
// (coordinator_connection.h).
//
// Thread contract: stateless functions; the stub is thread-safe.

#ifndef SSLSWEEP_WORKER_AGENT_CHECKPOINT_TRANSFER_H_
#define SSLSWEEP_WORKER_AGENT_CHECKPOINT_TRANSFER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/client_context.h"
#include "proto/checkpoint_crc32.h"  // CheckpointCrc32, the chunks' checksum
#include "proto/sslsweep.grpc.pb.h"

namespace sslsweep {

inline constexpr size_t kCheckpointChunkBytes = size_t{1} << 20;

// The size and zlib CRC-32 of a file.
struct FileDigest {
  int64_t bytes = 0;
  uint32_t crc32 = 0;
};
// Internal naming the file if it cannot be read.
absl::StatusOr<FileDigest> DigestFile(const std::string& path);


// What to upload: the file holding `attempt`'s checkpoint after `epoch` epochs.
struct CheckpointUpload {
  std::string worker_id;
  int64_t trial_id = 0;
  int32_t attempt = 0;
  int32_t epoch = 0;
  std::string path;
};

// Streams the file to the coordinator, which keeps it once size and CRC
// match. OK when the coordinator acknowledged every byte. Errors: the
// coordinator's status as it is (FailedPrecondition: a stale attempt);
// Internal naming the file if it cannot be read, or is empty; DataLoss if the
// coordinator acknowledged another size.
absl::Status UploadCheckpoint(v1::WorkerService::StubInterface& stub, grpc::ClientContext* context,
                              const CheckpointUpload& upload);

struct DownloadedCheckpoint {
  int32_t epoch = 0;  // epochs completed when it was saved
  int64_t bytes = 0;
};

// Streams the coordinator's checkpoint for `request`'s attempt into `path`:
// written to `path`.tmp, checked against the announced size and CRC, then
// renamed, so `path` is either absent or complete. Errors: the coordinator's
// status as it is (NotFound: it holds none; FailedPrecondition: a stale
// attempt); DataLoss naming both values if the size or CRC differ or the
// stream was empty; Internal naming the file if it cannot be written.
absl::StatusOr<DownloadedCheckpoint> DownloadCheckpoint(
    v1::WorkerService::StubInterface& stub, grpc::ClientContext* context,
    const v1::DownloadCheckpointRequest& request, const std::string& path);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_AGENT_CHECKPOINT_TRANSFER_H_
