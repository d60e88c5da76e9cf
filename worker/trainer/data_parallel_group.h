// DataParallelGroup: the ranks of one data-parallel trial, connected for
// collectives over c10d: a TCPStore hosted by rank 0 for the rendezvous, and
// a ProcessGroupGloo for CPU tensors (NCCL for CUDA tensors comes with the
// GPU build; issue 6).
//
// Rank 0 listens on master_port (0: a free port, passed to on_listening so
// that it can be handed to the other ranks); every rank then connects to
// master_addr:port. All collectives are blocking and must be
// called by every rank in the same order, as with any process group.
//
// Thread contract: one instance per rank; call from that rank's training
// thread only.

#ifndef SSLSWEEP_WORKER_TRAINER_DATA_PARALLEL_GROUP_H_
#define SSLSWEEP_WORKER_TRAINER_DATA_PARALLEL_GROUP_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace c10d {
class ProcessGroup;
class Store;
}  // namespace c10d

namespace sslsweep {

struct DataParallelOptions {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // rank 0: 0 picks a free port; other ranks: rank 0's port
  std::chrono::milliseconds timeout{60'000};  // rendezvous and each collective
  int64_t bucket_bytes = int64_t{25} << 20;   // gradients all-reduced per flat bucket
  // Rank 0 only: called with the port once its store listens and before
  // Connect waits for the other ranks, which need that port to join (the
  // worker hands it to the coordinator, which brokers it to them).
  std::function<void(int port)> on_listening;
};

class DataParallelGroup {
 public:
  // Connects this rank to the others (blocking until all world_size ranks
  // have joined, or the timeout). InvalidArgument for a bad rank, size or
  // port; Unavailable (naming the address) when the rendezvous fails.
  static absl::StatusOr<std::unique_ptr<DataParallelGroup>> Connect(
      const DataParallelOptions& options);
  ~DataParallelGroup();

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }
  // The rendezvous port (rank 0's TCPStore).
  int port() const { return port_; }

  // Replaces every rank's gradients of `parameters` by their mean over the
  // ranks, in flat buckets of about bucket_bytes. Parameters without a
  // gradient take part with zeros (so every rank calls the same
  // collectives). Unavailable when a rank is gone (its process died).
  absl::Status AverageGradients(const std::vector<torch::Tensor>& parameters);

  // Copies rank 0's values of `tensors` (parameters, buffers) to every rank,
  // so that all ranks start from the same model.
  absl::Status Broadcast(const std::vector<torch::Tensor>& tensors);

  // Differentiable collectives, for losses and batch statistics over the
  // global batch (VICReg's variance and covariance, Barlow Twins'
  // cross-correlation, SimCLR's negatives, synchronised BatchNorm). Every
  // rank computes the same function of the gathered or summed tensor; their
  // backward sums the gradients over the ranks, so that after
  // AverageGradients every rank holds exactly the gradient that one process
  // would compute on the whole global batch (the convention of VICReg's
  // FullGatherLayer with DDP). Errors (a rank gone) are thrown as
  // c10::Error, like any LibTorch failure inside a forward or backward.
  //
  // The rows of `local` from every rank, concatenated in rank order.
  // REQUIRES: the same shape on every rank.
  torch::Tensor AllGatherRows(const torch::Tensor& local);
  // The elementwise sum of `local` over the ranks.
  torch::Tensor AllReduceSum(const torch::Tensor& local);

 private:
  DataParallelGroup(DataParallelOptions options, int port);

  const DataParallelOptions options_;
  const int port_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_DATA_PARALLEL_GROUP_H_
