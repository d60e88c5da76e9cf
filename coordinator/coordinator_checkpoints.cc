// Coordinator: checkpoint upload and download (see coordinator.h), apart from
// the scheduling logic in coordinator.cc.

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/coordinator.h"
#include "coordinator/request_fields.h"
#include "proto/checkpoint_crc32.h"

namespace sslsweep {
namespace {

constexpr size_t kMaxChunkBytes = size_t{4} << 20;

// Which ranks of an attempt may do something with its checkpoint.
enum class Ranks { kRankZero, kAny };

// The attempt named by a chunk or request, checked against the store: the
// worker must hold the trial's current attempt (rank 0 of it, or any rank)
// while it runs.
absl::StatusOr<TrialRecord> HeldAttempt(Store& store, const std::string& worker_id,
                                        int64_t trial_id, int32_t attempt, Ranks ranks) {
  if (auto s = CheckAttemptFields(worker_id, trial_id, attempt); !s.ok()) return s;
  absl::StatusOr<TrialRecord> trial = store.GetTrial(trial_id);
  if (!trial.ok()) return trial.status();
  const bool holder =
      trial->worker_id == worker_id ||
      (ranks == Ranks::kAny && std::find(trial->rank_workers.begin(), trial->rank_workers.end(),
                                         worker_id) != trial->rank_workers.end());
  if (trial->state != TrialState::kRunning || trial->attempt != attempt || !holder) {
    return absl::FailedPreconditionError(absl::StrCat(
        "trial ", trial_id, ": attempt ", attempt, " on ", worker_id,
        " is not current (current attempt ", trial->attempt, " on '", trial->worker_id,
        "', state ", TrialStateName(trial->state), ")"));
  }
  return trial;
}

class Upload final : public Coordinator::CheckpointUpload {
 public:
  Upload(Store* store, CheckpointFiles* files, v1::CheckpointChunk header,
         std::unique_ptr<CheckpointWriter> writer)
      : store_(store), files_(files), header_(std::move(header)), writer_(std::move(writer)) {}

  absl::Status Append(const v1::CheckpointChunk& chunk) override {
    if (chunk.trial_id() != header_.trial_id() || chunk.attempt() != header_.attempt() ||
        chunk.epoch() != header_.epoch() || chunk.worker_id() != header_.worker_id()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint chunk: names trial ", chunk.trial_id(), " attempt ", chunk.attempt(),
          " epoch ", chunk.epoch(), " inside the upload of trial ", header_.trial_id(),
          " attempt ", header_.attempt(), " epoch ", header_.epoch()));
    }
    if (chunk.data().size() > kMaxChunkBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint chunk: ", chunk.data().size(), " bytes; at most ", kMaxChunkBytes));
    }
    return writer_->Append(chunk.data());
  }

  absl::StatusOr<v1::UploadCheckpointResponse> Finish() override {
    if (auto s = writer_->Commit(); !s.ok()) return s;
    // Fenced again: the lease may have been lost while the bytes came in.
    // Then the file stays unreferenced and is removed later.
    if (auto s = store_->RecordCheckpoint(header_.worker_id(), header_.trial_id(),
                                          header_.attempt(), header_.epoch());
        !s.ok()) {
      return s;
    }
    files_->RemoveAllBut(header_.trial_id(), header_.epoch());
    v1::UploadCheckpointResponse response;
    response.set_bytes(writer_->bytes_written());
    return response;
  }

 private:
  Store* const store_;
  CheckpointFiles* const files_;
  const v1::CheckpointChunk header_;
  const std::unique_ptr<CheckpointWriter> writer_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Coordinator::CheckpointUpload>>
Coordinator::BeginCheckpointUpload(const v1::CheckpointChunk& first_chunk) {
  absl::StatusOr<TrialRecord> trial =
      HeldAttempt(*store_, first_chunk.worker_id(), first_chunk.trial_id(),
                  first_chunk.attempt(), Ranks::kRankZero);
  if (!trial.ok()) return trial.status();
  if (first_chunk.epoch() < 0 || first_chunk.epoch() > trial->epochs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "epoch: expected 0 to ", trial->epochs, " (the trial's epochs), got ",
        first_chunk.epoch()));
  }
  absl::StatusOr<std::unique_ptr<CheckpointWriter>> writer = checkpoints_->BeginUpload(
      first_chunk.trial_id(), first_chunk.attempt(), first_chunk.epoch(),
      first_chunk.total_bytes(), first_chunk.crc32());
  if (!writer.ok()) return writer.status();
  v1::CheckpointChunk header = first_chunk;
  header.clear_data();
  auto upload = std::make_unique<Upload>(store_, checkpoints_, std::move(header),
                                         *std::move(writer));
  if (auto s = upload->Append(first_chunk); !s.ok()) return s;
  return std::unique_ptr<CheckpointUpload>(std::move(upload));
}

absl::Status Coordinator::DownloadCheckpoint(
    const v1::DownloadCheckpointRequest& request, size_t chunk_bytes,
    absl::FunctionRef<bool(const v1::CheckpointChunk&)> emit) {
  // Every rank of a data-parallel trial resumes from the same checkpoint.
  absl::StatusOr<TrialRecord> trial = HeldAttempt(*store_, request.worker_id(),
                                                  request.trial_id(), request.attempt(),
                                                  Ranks::kAny);
  if (!trial.ok()) return trial.status();
  if (trial->checkpoint_epoch < 0) {
    return absl::NotFoundError(
        absl::StrCat("trial ", request.trial_id(), " has no checkpoint; start afresh"));
  }
  const std::string path = checkpoints_->Path(request.trial_id(), trial->checkpoint_epoch);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (file == nullptr) {
    return absl::DataLossError(absl::StrCat("trial ", request.trial_id(), ": checkpoint ",
                                            path, " is recorded but cannot be read"));
  }
  // The first chunk announces size and CRC: read the file once for them.
  std::string buffer(std::max<size_t>(1, std::min(chunk_bytes, kMaxChunkBytes)), '\0');
  int64_t total = 0;
  uint32_t crc = 0;
  for (size_t n; (n = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0;) {
    crc = CheckpointCrc32(crc, absl::string_view(buffer.data(), n));
    total += static_cast<int64_t>(n);
  }
  std::rewind(file.get());
  bool first = true;
  for (size_t n; (n = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0;) {
    v1::CheckpointChunk chunk;
    chunk.set_trial_id(request.trial_id());
    chunk.set_attempt(request.attempt());
    chunk.set_epoch(trial->checkpoint_epoch);
    if (first) {
      chunk.set_total_bytes(total);
      chunk.set_crc32(crc);
      first = false;
    }
    chunk.set_data(buffer.data(), n);
    if (!emit(chunk)) return absl::CancelledError("the download was abandoned");
  }
  return absl::OkStatus();
}

}  // namespace sslsweep
