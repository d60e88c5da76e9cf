// DataParallelGroup: the ranks of one data-parallel trial, connected for
// collectives: a c10d TCPStore hosted by rank 0 for the rendezvous, a c10d
// ProcessGroupGloo for CPU tensors and, when the ranks compute on GPUs
// (DataParallelOptions::cuda_device), an NcclCommunicator for CUDA tensors,
// joined by an NCCL id that rank 0 puts in the store. Each collective picks
// NCCL or Gloo by where its tensors are. NCCL exists only in builds that
// found the CUDA toolkit and NCCL (every CI build, and -DSSLSWEEP_CUDA=ON);
// elsewhere a CUDA device is refused (FailedPrecondition).
//
// Rank 0 listens on master_port (0: a free port, passed to on_listening so
// that it can be handed to the other ranks); every rank then connects to
// master_addr:port. All collectives are blocking and must be
// called by every rank in the same order, as with any process group; the
// one exception is GradientSync, which starts the gradient all-reduces of
// CPU parameters during the backward and waits for them after it.
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

class DataParallelGroup;
class NcclCommunicator;

// GradientSync: the averaging over the ranks of a fixed list of parameters'
// gradients, step after step, overlapped with the backward that computes
// them (as PyTorch's DistributedDataParallel does). The parameters are
// split once into the buckets that AverageGradients uses (see there), which
// follow the reverse of the parameters' order, roughly the order in which a
// backward produces their gradients. A hook on each parameter's gradient
// accumulator notes when its gradient has been accumulated; once every
// gradient of a bucket, and of every bucket before it, is there, the bucket
// is copied into its flat buffer and its all-reduce starts on Gloo's
// threads while the backward goes on. Finish starts the buckets still
// waiting (a parameter unused this step), waits for all of them in order
// and writes the means into the gradients: bitwise what AverageGradients
// writes, since the same buffers are summed.
//
// Every rank starts the buckets in the same order. REQUIRES: when the
// backward runs collectives of its own (AllGatherRows, AllReduceSum,
// synchronised BatchNorm), the same parameters get a gradient on every
// rank, so that the bucket all-reduces interleave with those collectives
// alike on every rank (true when every rank runs the same graph, as the
// trainer's ranks do).
//
// Without DataParallelOptions::overlap_gradient_sync, or when any parameter
// is on a CUDA device, no hook is set and Finish is AverageGradients. (On
// CUDA, overlapping would need the all-reduces on a side stream, ordered
// after the backward's kernels with events; there is no GPU to test that
// on here, so NCCL stays synchronous.)
//
// Thread contract: confined to the rank's training thread, which calls Arm,
// the backward and Finish: LibTorch runs the autograd work of CPU tensors,
// and so the hooks, on the thread that calls backward. The group must
// outlive it.
class GradientSync {
 public:
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Arms the hooks for the next backward; call before it, on every rank.
  // Arming again discards a step that was not finished (a backward that
  // threw).
  void Arm();

  // After the backward: replaces the gradients by their mean over the ranks,
  // as AverageGradients does (parameters without a gradient take part with
  // zeros). Errors as AverageGradients'. Without Arm, it is
  // AverageGradients. REQUIRES: one backward between Arm and Finish (a
  // second one's gradients would miss the buckets already started).
  absl::Status Finish();

  // The overlapped buckets (0 when Finish is AverageGradients), and how many
  // of them the last finished step started during the backward rather than
  // in Finish: what overlapped.
  int bucket_count() const;
  int buckets_started_in_backward() const;

  struct State;  // shared with the hooks, which may outlive this object

 private:
  friend class DataParallelGroup;
  explicit GradientSync(std::shared_ptr<State> state);

  const std::shared_ptr<State> state_;
};

struct DataParallelOptions {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // rank 0: 0 picks a free port; other ranks: rank 0's port
  // The address of this host where this rank's Gloo transport listens and
  // the other ranks connect to it. Empty: rank 0 uses master_addr (its own
  // host), the others the address their host name resolves to (Gloo's
  // default device; the loopback address if it resolves to none).
  std::string local_addr;
  std::chrono::milliseconds timeout{60'000};  // rendezvous and each collective
  int64_t bucket_bytes = int64_t{25} << 20;   // gradients all-reduced per flat bucket
  // Whether a GradientSync of CPU parameters starts each bucket's all-reduce
  // during the backward, as soon as its gradients are there (false: it
  // averages them all after the backward, as AverageGradients does). The
  // results are bitwise the same either way. Off by default: on the 2-core
  // CPU machines measured (docs/benchmarks.md, issue 6) two ranks trained
  // no faster with it, as Gloo's threads then compete with the backward for
  // the cores. CUDA parameters are always averaged after the backward.
  bool overlap_gradient_sync = false;
  // The CUDA device index of this rank's tensors, or -1 when they are on
  // the CPU (Gloo only). With a device, Connect also joins the ranks over
  // NCCL on it; NCCL wants a different device for every rank of the group.
  // The trainer sets it from its DeviceSettings `settings`:
  //   options.cuda_device = settings.device.is_cuda() ? settings.device.index() : -1;
  int cuda_device = -1;
  // Rank 0 only: called with the port once its store listens and before
  // Connect waits for the other ranks, which need that port to join (the
  // worker hands it to the coordinator, which brokers it to them).
  std::function<void(int port)> on_listening;
};

class DataParallelGroup {
 public:
  // Connects this rank to the others (blocking until all world_size ranks
  // have joined, or the timeout). InvalidArgument for a bad rank, size,
  // port or cuda_device; FailedPrecondition, before any rendezvous, for a
  // cuda_device in a build without NCCL ("this trainer was built without
  // NCCL") or on a machine without that device; Unavailable (naming the
  // address) when the rendezvous, Gloo's or NCCL's, fails.
  static absl::StatusOr<std::unique_ptr<DataParallelGroup>> Connect(
      const DataParallelOptions& options);
  ~DataParallelGroup();

  // Whether this build can connect ranks on CUDA devices (it has NCCL).
  static bool SupportsCuda();

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }
  // The rendezvous port (rank 0's TCPStore).
  int port() const { return port_; }

  // Replaces every rank's gradients of `parameters` by their mean over the
  // ranks, in flat buckets of about bucket_bytes (consecutive parameters of
  // one dtype and device, from the last parameter to the first, the order
  // of a backward): over NCCL for CUDA parameters, Gloo for CPU ones.
  // Parameters without a gradient take part with zeros (so every rank calls
  // the same collectives). Unavailable when a rank is gone (its process
  // died). Before any collective: InvalidArgument for a CUDA parameter that
  // is not float32 or bfloat16 or not on cuda_device, FailedPrecondition for
  // one in a group connected without cuda_device.
  absl::Status AverageGradients(const std::vector<torch::Tensor>& parameters);

  // The averaging of `parameters`' gradients of every step, overlapped with
  // the backward where it can be (see GradientSync): for a training loop
  // that calls Arm before each backward and Finish after it instead of
  // AverageGradients. Registers hooks on the parameters' gradient
  // accumulators once, here; they do nothing while the GradientSync is not
  // armed. REQUIRES: distinct parameters, the same on every rank.
  std::unique_ptr<GradientSync> NewGradientSync(const std::vector<torch::Tensor>& parameters);

  // Copies rank 0's values of `tensors` (parameters, buffers) to every rank,
  // so that all ranks start from the same model. CUDA tensors travel
  // through host memory over Gloo: this runs once per trial.
  absl::Status Broadcast(const std::vector<torch::Tensor>& tensors);

  // Differentiable collectives, for losses and batch statistics over the
  // global batch (VICReg's variance and covariance, Barlow Twins'
  // cross-correlation, SimCLR's negatives, synchronised BatchNorm). Every
  // rank computes the same function of the gathered or summed tensor; their
  // backward sums the gradients over the ranks, so that after
  // AverageGradients every rank holds exactly the gradient that one process
  // would compute on the whole global batch (the convention of VICReg's
  // FullGatherLayer with DDP). Errors are thrown as c10::Error, like any
  // LibTorch failure inside a forward or backward, with the text of an
  // absl::Status: "UNAVAILABLE: ..." when a rank is gone. CUDA tensors go
  // over NCCL and must be float32 or bfloat16, on cuda_device.
  //
  // The rows of `local` from every rank, concatenated in rank order.
  // REQUIRES: the same shape on every rank.
  torch::Tensor AllGatherRows(const torch::Tensor& local);
  // The elementwise sum of `local` over the ranks.
  torch::Tensor AllReduceSum(const torch::Tensor& local);

 private:
  // Deletes the communicator where its type is complete: in builds with
  // NCCL only (elsewhere there is never one).
  struct NcclDeleter {
    void operator()(NcclCommunicator* nccl) const;
  };

  DataParallelGroup(DataParallelOptions options, int port);

  // Constant after construction (Connect).
  const DataParallelOptions options_;
  const int port_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;          // Gloo: CPU tensors
  std::unique_ptr<NcclCommunicator, NcclDeleter> nccl_;  // CUDA tensors; null on the CPU
};

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_DATA_PARALLEL_GROUP_H_
