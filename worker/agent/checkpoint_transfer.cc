#include "worker/agent/checkpoint_transfer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "worker/agent/coordinator_connection.h"

namespace sslsweep {
namespace {

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

absl::Status FileError(const std::string& path, const std::string& what) {
  return absl::InternalError(absl::StrCat(path, ": ", what, ": ", std::strerror(errno)));
}

// Reads up to kCheckpointChunkBytes into `buffer`; its size says how many.
absl::Status ReadChunk(std::FILE* file, const std::string& path, std::string* buffer) {
  buffer->resize(kCheckpointChunkBytes);
  const size_t n = std::fread(buffer->data(), 1, buffer->size(), file);
  buffer->resize(n);
  if (n < kCheckpointChunkBytes && std::ferror(file)) return FileError(path, "cannot read");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<FileDigest> DigestFile(const std::string& path) {
  File file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) return FileError(path, "cannot open");
  FileDigest digest;
  std::string buffer;
  do {
    if (auto s = ReadChunk(file.get(), path, &buffer); !s.ok()) return s;
    digest.bytes += static_cast<int64_t>(buffer.size());
    digest.crc32 = CheckpointCrc32(digest.crc32, buffer);
  } while (!buffer.empty());
  return digest;
}

absl::Status UploadCheckpoint(v1::WorkerService::StubInterface& stub, grpc::ClientContext* context,
                              const CheckpointUpload& upload) {
  // The link file never changes, so a first pass for the digest is safe.
  absl::StatusOr<FileDigest> digest = DigestFile(upload.path);
  if (!digest.ok()) return digest.status();
  if (digest->bytes == 0) return absl::InternalError(absl::StrCat(upload.path, ": empty file"));
  File file(std::fopen(upload.path.c_str(), "rb"));
  if (file == nullptr) return FileError(upload.path, "cannot open");

  v1::UploadCheckpointResponse response;
  std::unique_ptr<grpc::ClientWriterInterface<v1::CheckpointChunk>> writer =
      stub.UploadCheckpoint(context, &response);
  v1::CheckpointChunk chunk;
  chunk.set_worker_id(upload.worker_id);
  chunk.set_trial_id(upload.trial_id);
  chunk.set_attempt(upload.attempt);
  chunk.set_epoch(upload.epoch);
  chunk.set_total_bytes(digest->bytes);
  chunk.set_crc32(digest->crc32);
  absl::Status local;
  int64_t sent = 0;
  while (sent < digest->bytes) {
    local = ReadChunk(file.get(), upload.path, chunk.mutable_data());
    if (!local.ok()) break;
    if (chunk.data().empty()) {
      local = absl::InternalError(absl::StrCat(upload.path, ": shrank while uploading"));
      break;
    }
    sent += static_cast<int64_t>(chunk.data().size());
    // A failed write means the stream is broken; Finish() says why.
    if (!writer->Write(chunk)) break;
    chunk.clear_total_bytes();
    chunk.clear_crc32();
  }
  if (!local.ok()) context->TryCancel();
  writer->WritesDone();
  const absl::Status status = FromGrpcStatus(writer->Finish());
  if (!local.ok()) return local;
  if (!status.ok()) return status;
  if (response.bytes() != digest->bytes) {
    return absl::DataLossError(absl::StrFormat("%s: the coordinator acknowledged %d bytes of %d",
                                               upload.path, response.bytes(), digest->bytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<DownloadedCheckpoint> DownloadCheckpoint(
    v1::WorkerService::StubInterface& stub, grpc::ClientContext* context,
    const v1::DownloadCheckpointRequest& request, const std::string& path) {
  const std::string temporary = absl::StrCat(path, ".tmp");
  File file(std::fopen(temporary.c_str(), "wb"));
  if (file == nullptr) return FileError(temporary, "cannot create");

  std::unique_ptr<grpc::ClientReaderInterface<v1::CheckpointChunk>> reader =
      stub.DownloadCheckpoint(context, request);
  v1::CheckpointChunk chunk;
  bool first = true;
  DownloadedCheckpoint result;
  int64_t total_bytes = 0;
  uint32_t expected_crc = 0, crc = 0;
  absl::Status local;
  while (reader->Read(&chunk)) {
    if (first) {
      first = false;
      result.epoch = chunk.epoch();
      total_bytes = chunk.total_bytes();
      expected_crc = chunk.crc32();
    }
    result.bytes += static_cast<int64_t>(chunk.data().size());
    crc = CheckpointCrc32(crc, chunk.data());
    if (result.bytes > total_bytes) {
      local = absl::DataLossError(
          absl::StrFormat("trial %d's checkpoint: more than the %d bytes announced",
                          request.trial_id(), total_bytes));
      break;
    }
    if (std::fwrite(chunk.data().data(), 1, chunk.data().size(), file.get()) !=
        chunk.data().size()) {
      local = FileError(temporary, "cannot write");
      break;
    }
  }
  if (!local.ok()) context->TryCancel();
  const absl::Status status = FromGrpcStatus(reader->Finish());
  if (local.ok() && status.ok()) {
    if (first || total_bytes <= 0) {
      local = absl::DataLossError(absl::StrFormat(
          "trial %d's checkpoint: the coordinator sent an empty file", request.trial_id()));
    } else if (result.bytes != total_bytes || crc != expected_crc) {
      local = absl::DataLossError(absl::StrFormat(
          "trial %d's checkpoint: received %d bytes with CRC-32 %08x, announced %d bytes "
          "with CRC-32 %08x",
          request.trial_id(), result.bytes, crc, total_bytes, expected_crc));
    } else if (std::fflush(file.get()) != 0) {
      local = FileError(temporary, "cannot write");
    }
  }
  file.reset();
  if (local.ok() && status.ok() && std::rename(temporary.c_str(), path.c_str()) != 0) {
    local = FileError(temporary, absl::StrCat("cannot rename to ", path));
  }
  if (!status.ok() || !local.ok()) {
    std::remove(temporary.c_str());
    // A local failure cancelled the call, so its status says only that.
    return !local.ok() ? local : status;
  }
  return result;
}

}  // namespace sslsweep
