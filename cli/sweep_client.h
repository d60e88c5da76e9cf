// SweepClient: the CLI's connection to a coordinator's SweepService.
//
// Each call has a deadline and returns absl::Status with the coordinator's
// code and message; an unreachable coordinator becomes Unavailable with a
// message that names the address and how to set it. The streams have no
// overall deadline (a watch lasts as long as its sweep): only connecting is
// bounded by the timeout.
//
// Thread contract: thread-compatible (one instance per thread).

#ifndef SSLSWEEP_CLI_SWEEP_CLIENT_H_
#define SSLSWEEP_CLI_SWEEP_CLIENT_H_

#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "proto/sslsweep.grpc.pb.h"

namespace sslsweep {

class SweepClient {
 public:
  SweepClient(std::string address, int timeout_ms = 10'000);

  const std::string& address() const { return address_; }

  absl::StatusOr<v1::SubmitSweepResponse> SubmitSweep(const v1::SubmitSweepRequest& request);
  absl::StatusOr<v1::ListSweepsResponse> ListSweeps();
  absl::StatusOr<v1::GetSweepStatusResponse> GetSweepStatus(int64_t sweep_id);
  absl::StatusOr<v1::CancelSweepResponse> CancelSweep(int64_t sweep_id);
  absl::StatusOr<v1::GetResultsResponse> GetResults(int64_t sweep_id);
  // Aggregated results (proto QueryResultsRequest for the fields).
  absl::StatusOr<v1::QueryResultsResponse> QueryResults(const v1::QueryResultsRequest& request);
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers();
  absl::StatusOr<v1::CancelTrialResponse> CancelTrial(int64_t trial_id);
  absl::StatusOr<v1::UnquarantineWorkerResponse> UnquarantineWorker(const std::string& worker_id);

  // The sweep's events (proto WatchSweep), each passed to `on_event` as it
  // arrives; returning false cancels the stream (Cancelled). OK once the
  // coordinator ended the stream after the sweep ended.
  absl::Status WatchSweep(int64_t sweep_id,
                          absl::FunctionRef<bool(const v1::SweepEvent&)> on_event);
  // The sweep's metric rows in chunks (proto ExportMetrics); an error from
  // `on_chunk` cancels the stream and is returned.
  absl::Status ExportMetrics(const v1::ExportMetricsRequest& request,
                             absl::FunctionRef<absl::Status(const v1::ExportMetricsChunk&)> on_chunk);

 private:
  template <typename Request, typename Response, typename Method>
  absl::StatusOr<Response> Call(Method method, const Request& request);
  // UNAVAILABLE as "cannot reach the coordinator at ..."; others as they are.
  absl::Status ToStatus(const grpc::Status& status) const;
  // Waits up to the timeout for the channel to connect; Unavailable if not.
  absl::Status Connect();

  const std::string address_;
  const int timeout_ms_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SweepService::Stub> stub_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_SWEEP_CLIENT_H_
