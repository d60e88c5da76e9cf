// Coordinator: the service logic behind both gRPC services, as plain methods.
//
// It validates every request field, turns sweeps into trials (sweep_spec),
// leases trials to workers by sweep priority within each sweep's
// concurrency limit (a data-parallel trial to a gang of idle workers at
// once, brokering where its ranks meet), records what workers report, keeps trial checkpoints,
// expires the leases of silent workers, and stops trials that early
// termination prunes, all through the Store. The gRPC adapters in
// grpc_services.h only convert statuses and streams; tests call these
// methods directly with a FakeClock.
//
// Errors: InvalidArgument for a malformed request (the message names the
// field), NotFound for unknown ids, FailedPrecondition for a stale attempt
// (the worker must stop that trial), and the Store's error otherwise.
//
// Thread contract: thread-safe. Durable state lives in the Store and the
// checkpoint directory; the only memory state is each sweep's early
// termination histories, rebuilt from the Store on first use, so a
// restarted coordinator decides as the old one would have, and the
// ChangeSignal that wakes WatchSweep streams.

#ifndef SSLSWEEP_COORDINATOR_COORDINATOR_H_
#define SSLSWEEP_COORDINATOR_COORDINATOR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/change_signal.h"
#include "coordinator/checkpoint_files.h"
#include "coordinator/clock.h"
#include "coordinator/hyperband.h"
#include "coordinator/store.h"
#include "proto/sslsweep.pb.h"

namespace sslsweep {

struct CoordinatorOptions {
  int64_t lease_ms = 60'000;             // a trial's lease, renewed by heartbeats
  int32_t heartbeat_interval_ms = 2'000;  // what workers are told to use
  int32_t idle_retry_ms = 1'000;          // when no trial is pending
  // A worker that asked for work within this window and found none may be
  // made a rank of a data-parallel trial's gang (Store::LeaseNextTrial);
  // a few idle_retry_ms, so that idle workers stay in it while they poll.
  int64_t gang_idle_window_ms = 3'000;
  int32_t rendezvous_retry_ms = 200;  // when rank 0 has not reported it yet
  int32_t quarantined_retry_ms = 30'000;  // what a quarantined worker is told
  size_t max_sweep_bytes = 1 << 20;       // a larger sweep file is rejected
  // A WatchSweep stream looks at its sweep after every notified change,
  // and at least this often (to notice a client that went away).
  int32_t watch_poll_ms = 500;
  // ... and at most this often: under a stream of reports (hundreds of
  // workers) each watcher re-reads its sweep a bounded number of times per
  // second, and the changes between two looks come out as one batch.
  int32_t watch_min_interval_ms = 100;
  // ExportMetrics reads (and sends) at most this many rows at a time.
  int32_t export_page_rows = 2'000;
  FailurePolicy failure_policy;
};

class Coordinator {
 public:
  // `store`, `checkpoints` and `clock` must outlive the Coordinator.
  Coordinator(Store* store, CheckpointFiles* checkpoints, Clock* clock,
              CoordinatorOptions options);

  // After a (re)start, before serving: gives every running trial a fresh
  // lease, so that workers that kept training while the coordinator was
  // down reconnect before their leases are judged; and removes checkpoint
  // files the store does not reference (an upload cut short by a crash).
  absl::Status Recover();

  // Ends the attempts whose leases expired (Store::ExpireLeases): their
  // trials go back to the queue, or fail after max_attempts. The server
  // calls it periodically; tests call it after advancing a FakeClock.
  absl::StatusOr<std::vector<ExpiredLease>> ExpireLeases();

  // ---- for the CLI
  // Validates and expands the sweep and stores it with its trials, or with
  // dry_run only lists the trials it would create.
  absl::StatusOr<v1::SubmitSweepResponse> SubmitSweep(const v1::SubmitSweepRequest& request);
  absl::StatusOr<v1::ListSweepsResponse> ListSweeps(const v1::ListSweepsRequest& request);
  absl::StatusOr<v1::GetSweepStatusResponse> GetSweepStatus(
      const v1::GetSweepStatusRequest& request);
  absl::StatusOr<v1::CancelSweepResponse> CancelSweep(const v1::CancelSweepRequest& request);
  absl::StatusOr<v1::CancelTrialResponse> CancelTrial(const v1::CancelTrialRequest& request);
  absl::StatusOr<v1::GetResultsResponse> GetResults(const v1::GetResultsRequest& request);
  // Aggregated results, computed in SQL by Store::QueryResults
  // (coordinator_results.cc). InvalidArgument for a malformed field (an
  // epoch other than final, best, all or a number >= 0; a where without
  // '='; an unknown state; too many or too long strings) and for the
  // Store's unknown names; NotFound for an unknown sweep.
  absl::StatusOr<v1::QueryResultsResponse> QueryResults(
      const v1::QueryResultsRequest& request);
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers(const v1::ListWorkersRequest& request);

  // ---- the sweep streams (coordinator_watch.cc, coordinator_results.cc)
  // A live view of the sweep (proto WatchSweep): passes the snapshot, then
  // each change, to `emit` in order, and returns OK after sweep_ended.
  // Between looks it waits for a change (WakeWatchers() or a write of this
  // Coordinator) or watch_poll_ms, but at least watch_min_interval_ms
  // (real time) after the last look, then asks `still_open`, whose error
  // (the client cancelled, the server is stopping) ends the watch. Cancelled
  // when `emit` returns false (the client is gone); InvalidArgument for
  // sweep_id <= 0; NotFound for an unknown sweep.
  absl::Status WatchSweep(const v1::WatchSweepRequest& request,
                          absl::FunctionRef<absl::Status()> still_open,
                          absl::FunctionRef<bool(const v1::SweepEvent&)> emit);
  // Wakes every WatchSweep now, so that it asks `still_open` (shutdown).
  void WakeWatchers() { changes_.Notify(); }
  // Every stored metric row of the sweep matching the request's globs
  // (every row without any), in chunks of at most export_page_rows rows
  // by (trial, epoch, name); the first chunk, sent even when there are no
  // rows, carries the parameter columns and the trials. Cancelled when
  // `emit` returns false. InvalidArgument for sweep_id <= 0, too many or
  // too long globs, and (naming stored metrics) a glob that matches no
  // metric of the sweep; NotFound for an unknown sweep.
  absl::Status ExportMetrics(const v1::ExportMetricsRequest& request,
                             absl::FunctionRef<bool(const v1::ExportMetricsChunk&)> emit);
  absl::StatusOr<v1::UnquarantineWorkerResponse> UnquarantineWorker(
      const v1::UnquarantineWorkerRequest& request);

  // ---- for workers
  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  absl::StatusOr<v1::LeaseTrialResponse> LeaseTrial(const v1::LeaseTrialRequest& request);
  absl::StatusOr<v1::ReportMetricsResponse> ReportMetrics(
      const v1::ReportMetricsRequest& request);
  absl::StatusOr<v1::FinishTrialResponse> FinishTrial(const v1::FinishTrialRequest& request);
  absl::StatusOr<v1::FailTrialResponse> FailTrial(const v1::FailTrialRequest& request);
  absl::StatusOr<v1::ReportRendezvousResponse> ReportRendezvous(
      const v1::ReportRendezvousRequest& request);
  absl::StatusOr<v1::GetRendezvousResponse> GetRendezvous(
      const v1::GetRendezvousRequest& request);

  // Checkpoint upload, one chunk at a time in order: the first chunk opens
  // the upload (fenced, size and CRC announced), Finish() checks the size
  // and CRC, keeps the file and records it (fenced again). An upload
  // dropped before Finish() leaves nothing behind.
  class CheckpointUpload {
   public:
    virtual ~CheckpointUpload() = default;
    virtual absl::Status Append(const v1::CheckpointChunk& chunk) = 0;
    virtual absl::StatusOr<v1::UploadCheckpointResponse> Finish() = 0;
  };
  absl::StatusOr<std::unique_ptr<CheckpointUpload>> BeginCheckpointUpload(
      const v1::CheckpointChunk& first_chunk);
  // The stored checkpoint for the attempt the worker holds now, as chunks
  // of at most `chunk_bytes` passed to `emit` in order (the first carries
  // epoch, size and CRC); stops early if `emit` returns false. NotFound if
  // the trial has no checkpoint.
  absl::Status DownloadCheckpoint(const v1::DownloadCheckpointRequest& request,
                                  size_t chunk_bytes,
                                  absl::FunctionRef<bool(const v1::CheckpointChunk&)> emit);

 private:
  // A sweep's early termination: its hyperband state and which of its
  // trials have been seen to end (they never run again, so they are not
  // looked up again when the state would stop them).
  struct EarlyTermination {
    std::string metric;
    std::unique_ptr<HyperbandState> state;  // nullptr: the sweep has none
    std::set<int64_t> ended;
  };

  // The early termination of a sweep, loaded from the store on first use.
  absl::StatusOr<EarlyTermination*> LoadEarlyTermination(int64_t sweep_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(hyperband_mu_);
  // Feeds the trial's newly stored value of its sweep's metric to early
  // termination and prunes every running trial of the sweep it stops.
  // Returns the reason if `trial_id` itself was stopped.
  absl::StatusOr<std::optional<std::string>> ApplyEarlyTermination(
      int64_t sweep_id, int64_t trial_id, int32_t epoch,
      const std::vector<MetricValue>& metrics);

  Store* const store_;
  CheckpointFiles* const checkpoints_;
  Clock* const clock_;
  const CoordinatorOptions options_;

  ChangeSignal changes_;  // notified after each write a watcher may show

  absl::Mutex hyperband_mu_;
  std::map<int64_t, EarlyTermination> hyperband_ ABSL_GUARDED_BY(hyperband_mu_);
};

// Proto enum for a store state.
v1::TrialState ToProto(TrialState state);
v1::SweepState ToProto(SweepState state);

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_COORDINATOR_H_
