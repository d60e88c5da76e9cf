// The coordinator's gRPC services: thin adapters over Coordinator, and the
// server that hosts them.
//
// Each handler forwards to the Coordinator method of the same name and maps
// absl::Status to grpc::Status (proto/grpc_status.h); the checkpoint
// handlers also move chunks between the stream and the Coordinator. No
// logic lives here.
//
// Thread contract: handlers run on gRPC's threads; Coordinator is thread-safe.

#ifndef SSLSWEEP_COORDINATOR_GRPC_SERVICES_H_
#define SSLSWEEP_COORDINATOR_GRPC_SERVICES_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/coordinator.h"
#include "proto/sslsweep.grpc.pb.h"

namespace grpc {
class Server;
}

namespace sslsweep {

class SweepServiceImpl final : public v1::SweepService::Service {
 public:
  explicit SweepServiceImpl(Coordinator* coordinator) : coordinator_(coordinator) {}

  grpc::Status SubmitSweep(grpc::ServerContext*, const v1::SubmitSweepRequest*,
                           v1::SubmitSweepResponse*) override;
  grpc::Status ListSweeps(grpc::ServerContext*, const v1::ListSweepsRequest*,
                          v1::ListSweepsResponse*) override;
  grpc::Status GetSweepStatus(grpc::ServerContext*, const v1::GetSweepStatusRequest*,
                              v1::GetSweepStatusResponse*) override;
  grpc::Status CancelSweep(grpc::ServerContext*, const v1::CancelSweepRequest*,
                           v1::CancelSweepResponse*) override;
  grpc::Status CancelTrial(grpc::ServerContext*, const v1::CancelTrialRequest*,
                           v1::CancelTrialResponse*) override;
  grpc::Status GetResults(grpc::ServerContext*, const v1::GetResultsRequest*,
                          v1::GetResultsResponse*) override;
  grpc::Status QueryResults(grpc::ServerContext*, const v1::QueryResultsRequest*,
                            v1::QueryResultsResponse*) override;
  grpc::Status ListWorkers(grpc::ServerContext*, const v1::ListWorkersRequest*,
                           v1::ListWorkersResponse*) override;
  grpc::Status UnquarantineWorker(grpc::ServerContext*, const v1::UnquarantineWorkerRequest*,
                                  v1::UnquarantineWorkerResponse*) override;
  grpc::Status WatchSweep(grpc::ServerContext*, const v1::WatchSweepRequest*,
                          grpc::ServerWriter<v1::SweepEvent>*) override;
  grpc::Status ExportMetrics(grpc::ServerContext*, const v1::ExportMetricsRequest*,
                             grpc::ServerWriter<v1::ExportMetricsChunk>*) override;

  // The server is stopping: open streams end now (UNAVAILABLE) instead of
  // holding up the shutdown.
  void BeginShutdown();

 private:
  Coordinator* const coordinator_;
  std::atomic<bool> shutting_down_{false};
};

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  explicit WorkerServiceImpl(Coordinator* coordinator) : coordinator_(coordinator) {}

  grpc::Status RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest*,
                              v1::RegisterWorkerResponse*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest*,
                         v1::HeartbeatResponse*) override;
  grpc::Status LeaseTrial(grpc::ServerContext*, const v1::LeaseTrialRequest*,
                          v1::LeaseTrialResponse*) override;
  grpc::Status ReportMetrics(grpc::ServerContext*, const v1::ReportMetricsRequest*,
                             v1::ReportMetricsResponse*) override;
  grpc::Status FinishTrial(grpc::ServerContext*, const v1::FinishTrialRequest*,
                           v1::FinishTrialResponse*) override;
  grpc::Status FailTrial(grpc::ServerContext*, const v1::FailTrialRequest*,
                         v1::FailTrialResponse*) override;
  grpc::Status ReportRendezvous(grpc::ServerContext*, const v1::ReportRendezvousRequest*,
                                v1::ReportRendezvousResponse*) override;
  grpc::Status GetRendezvous(grpc::ServerContext*, const v1::GetRendezvousRequest*,
                             v1::GetRendezvousResponse*) override;
  grpc::Status UploadCheckpoint(grpc::ServerContext*, grpc::ServerReader<v1::CheckpointChunk>*,
                                v1::UploadCheckpointResponse*) override;
  grpc::Status DownloadCheckpoint(grpc::ServerContext*, const v1::DownloadCheckpointRequest*,
                                  grpc::ServerWriter<v1::CheckpointChunk>*) override;

 private:
  Coordinator* const coordinator_;
};

// A running gRPC server hosting both services for one Coordinator.
class CoordinatorServer {
 public:
  // Listens on `address` (HOST:PORT; port 0 picks a free one) without TLS.
  // Fails with InvalidArgument for an address that cannot be bound.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(
      Coordinator* coordinator, const std::string& address);
  ~CoordinatorServer();

  int port() const { return port_; }
  // Stops accepting calls and waits for those in flight (up to a deadline).
  void Shutdown();
  // Blocks until Shutdown() has been called.
  void Wait();

 private:
  CoordinatorServer(Coordinator* coordinator);

  SweepServiceImpl sweep_service_;
  WorkerServiceImpl worker_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::once_flag shutdown_once_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_GRPC_SERVICES_H_
