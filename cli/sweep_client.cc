#include "cli/sweep_client.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_status.h"

namespace sslsweep {
namespace {

// A restarted coordinator is found again within a few seconds (gRPC's
// default reconnect back-off grows to 120 s), which `watch` relies on.
grpc::ChannelArguments ChannelArguments() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2'000);
  return args;
}

}  // namespace

SweepClient::SweepClient(std::string address, int timeout_ms)
    : address_(std::move(address)),
      timeout_ms_(timeout_ms),
      channel_(grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(),
                                         ChannelArguments())),
      stub_(v1::SweepService::NewStub(channel_)) {}

absl::Status SweepClient::ToStatus(const grpc::Status& status) const {
  // Only UNAVAILABLE means "not reached"; a deadline keeps its own code and
  // message (the coordinator may be up but slow).
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::Status(
        FromGrpcStatus(status).code(),
        absl::StrCat("cannot reach the coordinator at ", address_, " (",
                     status.error_message(),
                     "); is sslsweep-coordinator running there? Set the address with "
                     "--coordinator or SSLSWEEP_COORDINATOR"));
  }
  return FromGrpcStatus(status);
}

template <typename Request, typename Response, typename Method>
absl::StatusOr<Response> SweepClient::Call(Method method, const Request& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(timeout_ms_));
  Response response;
  grpc::Status status = ((*stub_).*method)(&context, request, &response);
  if (!status.ok()) return ToStatus(status);
  return response;
}

absl::StatusOr<v1::SubmitSweepResponse> SweepClient::SubmitSweep(
    const v1::SubmitSweepRequest& request) {
  return Call<v1::SubmitSweepRequest, v1::SubmitSweepResponse>(
      &v1::SweepService::Stub::SubmitSweep, request);
}

absl::StatusOr<v1::ListSweepsResponse> SweepClient::ListSweeps() {
  return Call<v1::ListSweepsRequest, v1::ListSweepsResponse>(
      &v1::SweepService::Stub::ListSweeps, v1::ListSweepsRequest());
}

absl::StatusOr<v1::GetSweepStatusResponse> SweepClient::GetSweepStatus(int64_t sweep_id) {
  v1::GetSweepStatusRequest request;
  request.set_sweep_id(sweep_id);
  return Call<v1::GetSweepStatusRequest, v1::GetSweepStatusResponse>(
      &v1::SweepService::Stub::GetSweepStatus, request);
}

absl::StatusOr<v1::CancelSweepResponse> SweepClient::CancelSweep(int64_t sweep_id) {
  v1::CancelSweepRequest request;
  request.set_sweep_id(sweep_id);
  return Call<v1::CancelSweepRequest, v1::CancelSweepResponse>(
      &v1::SweepService::Stub::CancelSweep, request);
}

absl::StatusOr<v1::GetResultsResponse> SweepClient::GetResults(int64_t sweep_id) {
  v1::GetResultsRequest request;
  request.set_sweep_id(sweep_id);
  return Call<v1::GetResultsRequest, v1::GetResultsResponse>(
      &v1::SweepService::Stub::GetResults, request);
}

absl::StatusOr<v1::QueryResultsResponse> SweepClient::QueryResults(
    const v1::QueryResultsRequest& request) {
  return Call<v1::QueryResultsRequest, v1::QueryResultsResponse>(
      &v1::SweepService::Stub::QueryResults, request);
}

absl::StatusOr<v1::ListWorkersResponse> SweepClient::ListWorkers() {
  return Call<v1::ListWorkersRequest, v1::ListWorkersResponse>(
      &v1::SweepService::Stub::ListWorkers, v1::ListWorkersRequest());
}

absl::StatusOr<v1::CancelTrialResponse> SweepClient::CancelTrial(int64_t trial_id) {
  v1::CancelTrialRequest request;
  request.set_trial_id(trial_id);
  return Call<v1::CancelTrialRequest, v1::CancelTrialResponse>(
      &v1::SweepService::Stub::CancelTrial, request);
}

absl::StatusOr<v1::UnquarantineWorkerResponse> SweepClient::UnquarantineWorker(
    const std::string& worker_id) {
  v1::UnquarantineWorkerRequest request;
  request.set_worker_id(worker_id);
  return Call<v1::UnquarantineWorkerRequest, v1::UnquarantineWorkerResponse>(
      &v1::SweepService::Stub::UnquarantineWorker, request);
}

absl::Status SweepClient::Connect() {
  // Fails as soon as a connection attempt fails, as a unary call would; a
  // coordinator that neither accepts nor refuses gets timeout_ms.
  const auto deadline =
      std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms_);
  grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      return ToStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "failed to connect"));
    }
    if (!channel_->WaitForStateChange(state, deadline)) {
      return ToStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                   absl::StrCat("not connected within ", timeout_ms_, " ms")));
    }
    state = channel_->GetState(/*try_to_connect=*/true);
  }
  return absl::OkStatus();
}

absl::Status SweepClient::WatchSweep(int64_t sweep_id,
                                     absl::FunctionRef<bool(const v1::SweepEvent&)> on_event) {
  if (absl::Status s = Connect(); !s.ok()) return s;
  grpc::ClientContext context;
  v1::WatchSweepRequest request;
  request.set_sweep_id(sweep_id);
  std::unique_ptr<grpc::ClientReader<v1::SweepEvent>> reader =
      stub_->WatchSweep(&context, request);
  v1::SweepEvent event;
  bool stopped = false;
  while (reader->Read(&event)) {
    if (!on_event(event)) {
      stopped = true;
      context.TryCancel();
      break;
    }
  }
  const grpc::Status status = reader->Finish();
  if (stopped) return absl::CancelledError("the watch was stopped");
  return ToStatus(status);
}

absl::Status SweepClient::ExportMetrics(
    const v1::ExportMetricsRequest& request,
    absl::FunctionRef<absl::Status(const v1::ExportMetricsChunk&)> on_chunk) {
  if (absl::Status s = Connect(); !s.ok()) return s;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::ExportMetricsChunk>> reader =
      stub_->ExportMetrics(&context, request);
  v1::ExportMetricsChunk chunk;
  absl::Status failed;
  while (reader->Read(&chunk)) {
    failed = on_chunk(chunk);
    if (!failed.ok()) {
      context.TryCancel();
      break;
    }
  }
  const grpc::Status status = reader->Finish();
  if (!failed.ok()) return failed;
  return ToStatus(status);
}

}  // namespace sslsweep
