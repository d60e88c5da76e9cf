// Coordinator: the service logic behind both gRPC services, as plain methods.
//
// It validates every request field, turns sweeps into trials (sweep_spec),
// hands trials to workers first-come-first-served and records what workers
// report, all through the Store. The gRPC adapters in grpc_services.h only
// convert statuses; tests call these methods directly with a FakeClock.
//
// Errors: InvalidArgument for a malformed request (the message names the
// field), NotFound for unknown ids, FailedPrecondition for a stale attempt
// (the worker must stop that trial), and the Store's error otherwise.
//
// Thread contract: thread-safe; all state lives in the Store.

#ifndef SSLSWEEP_COORDINATOR_COORDINATOR_H_
#define SSLSWEEP_COORDINATOR_COORDINATOR_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "coordinator/clock.h"
#include "coordinator/store.h"
#include "proto/sslsweep.pb.h"

namespace sslsweep {

struct CoordinatorOptions {
  int64_t lease_ms = 60'000;             // a trial's lease, renewed by heartbeats
  int32_t heartbeat_interval_ms = 5'000;  // what workers are told to use
  int32_t idle_retry_ms = 1'000;          // when no trial is pending
  size_t max_sweep_bytes = 1 << 20;       // a larger sweep file is rejected
};

class Coordinator {
 public:
  // `store` and `clock` must outlive the Coordinator.
  Coordinator(Store* store, Clock* clock, CoordinatorOptions options);

  // ---- for the CLI
  absl::StatusOr<v1::SubmitSweepResponse> SubmitSweep(const v1::SubmitSweepRequest& request);
  absl::StatusOr<v1::ListSweepsResponse> ListSweeps(const v1::ListSweepsRequest& request);
  absl::StatusOr<v1::GetSweepStatusResponse> GetSweepStatus(
      const v1::GetSweepStatusRequest& request);
  absl::StatusOr<v1::CancelSweepResponse> CancelSweep(const v1::CancelSweepRequest& request);
  absl::StatusOr<v1::GetResultsResponse> GetResults(const v1::GetResultsRequest& request);
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers(const v1::ListWorkersRequest& request);

  // ---- for workers
  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  absl::StatusOr<v1::LeaseTrialResponse> LeaseTrial(const v1::LeaseTrialRequest& request);
  absl::StatusOr<v1::ReportMetricsResponse> ReportMetrics(
      const v1::ReportMetricsRequest& request);
  absl::StatusOr<v1::FinishTrialResponse> FinishTrial(const v1::FinishTrialRequest& request);
  absl::StatusOr<v1::FailTrialResponse> FailTrial(const v1::FailTrialRequest& request);

 private:
  // OK if `worker_id` is registered; InvalidArgument/NotFound otherwise.
  absl::Status CheckWorker(const std::string& worker_id);
  // OK if the trial exists and `worker_id` holds `attempt` of it.
  absl::Status CheckAttempt(const std::string& worker_id, int64_t trial_id,
                            int32_t attempt);

  Store* const store_;
  Clock* const clock_;
  const CoordinatorOptions options_;
};

// Proto enum for a store state.
v1::TrialState ToProto(TrialState state);
v1::SweepState ToProto(SweepState state);

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_COORDINATOR_H_
