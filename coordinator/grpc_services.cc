#include "coordinator/grpc_services.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "proto/grpc_status.h"

namespace sslsweep {
namespace {

template <typename Response>
grpc::Status Reply(absl::StatusOr<Response> result, Response* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace

#define SSLSWEEP_FORWARD(Service, Method)                                        \
  grpc::Status Service::Method(grpc::ServerContext*, const v1::Method##Request* \
                                   request,                                     \
                               v1::Method##Response* response) {                \
    return Reply(coordinator_->Method(*request), response);                     \
  }

SSLSWEEP_FORWARD(SweepServiceImpl, SubmitSweep)
SSLSWEEP_FORWARD(SweepServiceImpl, ListSweeps)
SSLSWEEP_FORWARD(SweepServiceImpl, GetSweepStatus)
SSLSWEEP_FORWARD(SweepServiceImpl, CancelSweep)
SSLSWEEP_FORWARD(SweepServiceImpl, CancelTrial)
SSLSWEEP_FORWARD(SweepServiceImpl, GetResults)
SSLSWEEP_FORWARD(SweepServiceImpl, QueryResults)
SSLSWEEP_FORWARD(SweepServiceImpl, ListWorkers)
SSLSWEEP_FORWARD(SweepServiceImpl, UnquarantineWorker)
SSLSWEEP_FORWARD(WorkerServiceImpl, RegisterWorker)
SSLSWEEP_FORWARD(WorkerServiceImpl, Heartbeat)
SSLSWEEP_FORWARD(WorkerServiceImpl, LeaseTrial)
SSLSWEEP_FORWARD(WorkerServiceImpl, ReportMetrics)
SSLSWEEP_FORWARD(WorkerServiceImpl, FinishTrial)
SSLSWEEP_FORWARD(WorkerServiceImpl, FailTrial)
SSLSWEEP_FORWARD(WorkerServiceImpl, ReportRendezvous)
SSLSWEEP_FORWARD(WorkerServiceImpl, GetRendezvous)

#undef SSLSWEEP_FORWARD

grpc::Status SweepServiceImpl::WatchSweep(grpc::ServerContext* context,
                                          const v1::WatchSweepRequest* request,
                                          grpc::ServerWriter<v1::SweepEvent>* writer) {
  return ToGrpcStatus(coordinator_->WatchSweep(
      *request,
      [&]() -> absl::Status {
        if (shutting_down_) return absl::UnavailableError("the coordinator is shutting down");
        if (context->IsCancelled()) return absl::CancelledError("the client cancelled the watch");
        return absl::OkStatus();
      },
      [&](const v1::SweepEvent& event) { return writer->Write(event); }));
}

grpc::Status SweepServiceImpl::ExportMetrics(grpc::ServerContext* context,
                                             const v1::ExportMetricsRequest* request,
                                             grpc::ServerWriter<v1::ExportMetricsChunk>* writer) {
  return ToGrpcStatus(coordinator_->ExportMetrics(
      *request, [&](const v1::ExportMetricsChunk& chunk) {
        return !shutting_down_ && !context->IsCancelled() && writer->Write(chunk);
      }));
}

void SweepServiceImpl::BeginShutdown() {
  shutting_down_ = true;
  coordinator_->WakeWatchers();
}

grpc::Status WorkerServiceImpl::UploadCheckpoint(grpc::ServerContext*,
                                                 grpc::ServerReader<v1::CheckpointChunk>* reader,
                                                 v1::UploadCheckpointResponse* response) {
  v1::CheckpointChunk chunk;
  if (!reader->Read(&chunk)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "checkpoint upload: no chunk");
  }
  absl::StatusOr<std::unique_ptr<Coordinator::CheckpointUpload>> upload =
      coordinator_->BeginCheckpointUpload(chunk);
  if (!upload.ok()) return ToGrpcStatus(upload.status());
  while (reader->Read(&chunk)) {
    if (auto s = (*upload)->Append(chunk); !s.ok()) return ToGrpcStatus(s);
  }
  return Reply((*upload)->Finish(), response);
}

grpc::Status WorkerServiceImpl::DownloadCheckpoint(
    grpc::ServerContext*, const v1::DownloadCheckpointRequest* request,
    grpc::ServerWriter<v1::CheckpointChunk>* writer) {
  return ToGrpcStatus(coordinator_->DownloadCheckpoint(
      *request, size_t{1} << 20,
      [&](const v1::CheckpointChunk& chunk) { return writer->Write(chunk); }));
}

CoordinatorServer::CoordinatorServer(Coordinator* coordinator)
    : sweep_service_(coordinator), worker_service_(coordinator) {}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    Coordinator* coordinator, const std::string& address) {
  std::unique_ptr<CoordinatorServer> server(new CoordinatorServer(coordinator));
  // Standard tools can talk to the coordinator: grpc.health.v1.Health
  // (SERVING while it runs; load balancers and `grpc_health_probe`) and
  // server reflection (grpcurl, grpc_cli list and call without .proto files).
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(&server->sweep_service_);
  builder.RegisterService(&server->worker_service_);
  builder.SetMaxReceiveMessageSize(16 << 20);
  // gRPC binds with SO_REUSEPORT by default, which would let a second
  // coordinator share the port (and half the traffic) with the first.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot listen on '", address,
        "': expected a free HOST:PORT such as 127.0.0.1:50051"));
  }
  return server;
}

void CoordinatorServer::Shutdown() {
  if (server_ == nullptr) return;
  std::call_once(shutdown_once_, [this] {
    sweep_service_.BeginShutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  });
}

void CoordinatorServer::Wait() {
  if (server_ != nullptr) server_->Wait();
}

}  // namespace sslsweep
