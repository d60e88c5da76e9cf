#include "worker/trainer/data_parallel_group.h"

#include <cstdint>
#include <exception>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
// ProcessGroupGloo.hpp declares its class only under USE_C10D_GLOO, which
// Debian's LibTorch is built with. Defined here, after the precompiled
// torch/torch.h, so that the shared precompiled header stays valid.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "worker/trainer/data_parallel_internal.h"

// Set on this file alone (worker/trainer/CMakeLists.txt) where the CUDA
// toolkit and NCCL were found.
#ifdef SSLSWEEP_WITH_NCCL
#include "worker/trainer/nccl_communicator.h"
#endif

namespace sslsweep {
namespace data_parallel_internal {

absl::Status Unavailable(const std::string& what, const std::exception& e) {
  return absl::UnavailableError(absl::StrCat(what, ": ", e.what()));
}

// Runs `work` and waits for it; a c10::Error (a rank gone, a timeout) becomes
// Unavailable.
absl::Status Wait(const std::string& what, const c10::intrusive_ptr<c10d::Work>& work) {
  return RunCollective(what, [&] { return work; });
}

absl::Status RunCollective(const std::string& what,
                           absl::FunctionRef<c10::intrusive_ptr<c10d::Work>()> start) {
  try {
    start()->wait();
  } catch (const std::exception& e) {
    return Unavailable(what, e);
  }
  return absl::OkStatus();
}

// The buckets of `parameters`' gradients, each a list of parameter indices,
// in the order they are all-reduced: from the last parameter to the first
// (roughly the order in which a backward produces the gradients),
// consecutive parameters of one dtype and device up to bucket_bytes each.
// AverageGradients and GradientSync share it, so that they sum the same
// buffers: with more than two ranks Gloo's ring adds an element's terms in
// an order that depends on its place in the buffer.
std::vector<std::vector<size_t>> PlanBuckets(const std::vector<torch::Tensor>& parameters,
                                             int64_t bucket_bytes) {
  std::vector<std::vector<size_t>> buckets;
  int64_t bytes = 0;
  for (size_t i = parameters.size(); i-- > 0;) {
    const torch::Tensor& p = parameters[i];
    const int64_t size = p.numel() * p.element_size();
    if (buckets.empty() ||
        bytes + size > bucket_bytes ||
        p.scalar_type() != parameters[buckets.back().front()].scalar_type() ||
        p.device() != parameters[buckets.back().front()].device()) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(i);
    bytes += size;
  }
  return buckets;
}

// The gradient of `p`, made zeros first if it has none: a parameter unused
// this step takes part in its bucket's all-reduce like the others, so that
// every rank calls the same collectives.
torch::Tensor GradOrZeros(const torch::Tensor& p) {
  if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
  return p.grad();
}

// Copies the bucket's mean, `flat` times `scale`, back into `grads`.
void ScatterMean(torch::Tensor& flat, double scale, const std::vector<torch::Tensor>& grads) {
  flat.mul_(scale);
  int64_t offset = 0;
  for (const torch::Tensor& g : grads) {
    g.copy_(flat.narrow(0, offset, g.numel()).view_as(g));
    offset += g.numel();
  }
}

}  // namespace data_parallel_internal

namespace {

using data_parallel_internal::GradOrZeros;
using data_parallel_internal::PlanBuckets;
using data_parallel_internal::ScatterMean;
using data_parallel_internal::Unavailable;
using data_parallel_internal::RunCollective;

absl::Status Prefixed(const std::string& what, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

// The groups of one rank, as the autograd functions below carry them: Gloo
// for CPU tensors, NCCL (null without a CUDA device) for CUDA tensors.
struct Collectives {
  c10d::ProcessGroup* gloo;
  NcclCommunicator* nccl;
};

// Why a CUDA tensor cannot take part in a collective of `c`, before any
// collective starts, or OK.
absl::Status CheckCudaTensor(const Collectives& c, const torch::Tensor& tensor) {
#ifdef SSLSWEEP_WITH_NCCL
  if (c.nccl == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("a tensor on ", tensor.device().str(),
                     " in a data-parallel group connected without cuda_device"));
  }
  if (tensor.scalar_type() != torch::kFloat && tensor.scalar_type() != torch::kBFloat16) {
    return absl::InvalidArgumentError(
        absl::StrCat("NCCL collectives take float32 or bfloat16 tensors, got ",
                     c10::toString(tensor.scalar_type())));
  }
  if (tensor.get_device() != c.nccl->device()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a tensor on ", tensor.device().str(),
                     ", but this rank's NCCL communicator is on cuda:", c.nccl->device()));
  }
  return absl::OkStatus();
#else
  return absl::FailedPreconditionError(
      absl::StrCat("a tensor on ", tensor.device().str(),
                   ": this trainer was built without NCCL"));
#endif
}

#ifdef SSLSWEEP_WITH_NCCL
NcclType NcclTypeOf(const torch::Tensor& tensor) {
  return tensor.scalar_type() == torch::kBFloat16 ? NcclType::kBFloat16 : NcclType::kFloat32;
}
#endif

// Sums contiguous `tensor` over the ranks in place: over NCCL on a CUDA
// device, over Gloo on the CPU.
absl::Status SumInPlace(const Collectives& c, const std::string& what, torch::Tensor& tensor) {
  if (tensor.is_cuda()) {
    if (auto s = CheckCudaTensor(c, tensor); !s.ok()) return Prefixed(what, s);
#ifdef SSLSWEEP_WITH_NCCL
    if (auto s = c.nccl->AllReduceSum(tensor.data_ptr(), static_cast<size_t>(tensor.numel()),
                                      NcclTypeOf(tensor));
        !s.ok()) {
      return Prefixed(what, s);
    }
#endif
    return absl::OkStatus();
  }
  std::vector<torch::Tensor> one = {tensor};
  return RunCollective(what, [&] { return c.gloo->allreduce(one); });
}

// Inside a forward or backward, a failure is thrown as c10::Error, like any
// LibTorch failure there, with the status's text ("UNAVAILABLE: ..." for a
// rank gone).
void ThrowIfError(const absl::Status& status) { TORCH_CHECK(status.ok(), status.ToString()); }

// The group travels through autograd's saved data as integers: Function
// arguments must be tensors or IValues, and the group outlives the graph.
Collectives CollectivesOf(torch::autograd::AutogradContext* ctx) {
  return {reinterpret_cast<c10d::ProcessGroup*>(ctx->saved_data["gloo"].toInt()),
          reinterpret_cast<NcclCommunicator*>(ctx->saved_data["nccl"].toInt())};
}

void SaveCollectives(torch::autograd::AutogradContext* ctx, int64_t gloo_address,
                     int64_t nccl_address) {
  ctx->saved_data["gloo"] = gloo_address;
  ctx->saved_data["nccl"] = nccl_address;
}

// The rows of contiguous `local` from every rank over NCCL, in rank order.
torch::Tensor GatherRowsOnDevice(const Collectives& c, const torch::Tensor& local) {
  ThrowIfError(Prefixed("all-gather of rows", CheckCudaTensor(c, local)));
  std::vector<int64_t> sizes = local.sizes().vec();
  sizes[0] *= c.gloo->getSize();
  torch::Tensor gathered = torch::empty(sizes, local.options());
#ifdef SSLSWEEP_WITH_NCCL
  ThrowIfError(Prefixed(
      "all-gather of rows", c.nccl->AllGather(local.data_ptr(), gathered.data_ptr(),
                                              static_cast<size_t>(local.numel()),
                                              NcclTypeOf(local))));
#endif
  return gathered;
}

struct AllGatherRowsFunction : torch::autograd::Function<AllGatherRowsFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor local,
                               int64_t gloo_address, int64_t nccl_address) {
    SaveCollectives(ctx, gloo_address, nccl_address);
    ctx->saved_data["rows"] = local.size(0);
    const Collectives c = CollectivesOf(ctx);
    if (local.is_cuda()) return GatherRowsOnDevice(c, local.contiguous());
    std::vector<std::vector<torch::Tensor>> gathered(1);
    for (int i = 0; i < c.gloo->getSize(); ++i) gathered[0].push_back(torch::empty_like(local));
    std::vector<torch::Tensor> input = {local.contiguous()};
    ThrowIfError(
        RunCollective("all-gather of rows", [&] { return c.gloo->allgather(gathered, input); }));
    return torch::cat(gathered[0], 0);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const Collectives c = CollectivesOf(ctx);
    const int64_t rows = ctx->saved_data["rows"].toInt();
    torch::Tensor grad = grads[0].contiguous().clone();
    ThrowIfError(SumInPlace(c, "all-reduce of gathered rows' gradient", grad));
    return {grad.narrow(0, c.gloo->getRank() * rows, rows), torch::Tensor(), torch::Tensor()};
  }
};

struct AllReduceSumFunction : torch::autograd::Function<AllReduceSumFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor local,
                               int64_t gloo_address, int64_t nccl_address) {
    SaveCollectives(ctx, gloo_address, nccl_address);
    torch::Tensor sum = local.contiguous().clone();
    ThrowIfError(SumInPlace(CollectivesOf(ctx), "all-reduce", sum));
    return sum;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    torch::Tensor grad = grads[0].contiguous().clone();
    ThrowIfError(SumInPlace(CollectivesOf(ctx), "all-reduce of a sum's gradient", grad));
    return {grad, torch::Tensor(), torch::Tensor()};
  }
};



#ifdef SSLSWEEP_WITH_NCCL
// Where rank 0 publishes the NCCL id in the group's own TCPStore.
constexpr char kNcclIdKey[] = "sslsweep/nccl_id";

// Joins every rank over NCCL on options.cuda_device: rank 0 creates the id
// and puts it in the store, the others wait for it there.
absl::StatusOr<std::unique_ptr<NcclCommunicator>> JoinNccl(c10d::Store& store,
                                                           const DataParallelOptions& options,
                                                           const std::string& where) {
  NcclOptions nccl;
  nccl.rank = options.rank;
  nccl.world_size = options.world_size;
  nccl.device = options.cuda_device;
  nccl.timeout = options.timeout;
  try {
    if (options.rank == 0) {
      // If this fails the others time out waiting for the id (Unavailable).
      auto id = NewNcclId();
      if (!id.ok()) return Prefixed(absl::StrCat("NCCL id of ", where), id.status());
      nccl.id = *std::move(id);
      store.set(kNcclIdKey, std::vector<uint8_t>(nccl.id.begin(), nccl.id.end()));
    } else {
      const std::vector<uint8_t> id = store.get(kNcclIdKey);  // waits up to the timeout
      nccl.id.assign(id.begin(), id.end());
    }
  } catch (const std::exception& e) {
    return Unavailable(absl::StrCat("NCCL id exchange of ", where), e);
  }
  auto joined = NcclCommunicator::Join(nccl);
  if (!joined.ok()) return Prefixed(absl::StrCat("NCCL group of ", where), joined.status());
  return joined;
}
#endif

}  // namespace

void DataParallelGroup::NcclDeleter::operator()(NcclCommunicator* nccl) const {
#ifdef SSLSWEEP_WITH_NCCL
  delete nccl;
#endif
}

bool DataParallelGroup::SupportsCuda() {
#ifdef SSLSWEEP_WITH_NCCL
  return true;
#else
  return false;
#endif
}

torch::Tensor DataParallelGroup::AllGatherRows(const torch::Tensor& local) {
  return AllGatherRowsFunction::apply(local, reinterpret_cast<int64_t>(group_.get()),
                                      reinterpret_cast<int64_t>(nccl_.get()));
}

torch::Tensor DataParallelGroup::AllReduceSum(const torch::Tensor& local) {
  return AllReduceSumFunction::apply(local, reinterpret_cast<int64_t>(group_.get()),
                                     reinterpret_cast<int64_t>(nccl_.get()));
}

DataParallelGroup::DataParallelGroup(DataParallelOptions options, int port)
    : options_(std::move(options)), port_(port) {}

DataParallelGroup::~DataParallelGroup() = default;

absl::StatusOr<std::unique_ptr<DataParallelGroup>> DataParallelGroup::Connect(
    const DataParallelOptions& options) {
  if (options.world_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("world_size: expected >= 1, got ", options.world_size));
  }
  if (options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("rank: expected 0 to ",
                                                   options.world_size - 1, ", got ",
                                                   options.rank));
  }
  if (options.master_port < 0 || options.master_port > 65535 ||
      (options.rank > 0 && options.master_port == 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "master_port: expected 1 to 65535 (0 only on rank 0), got ", options.master_port));
  }
  if (options.cuda_device < -1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cuda_device: expected -1 (CPU) or a CUDA device index, got ", options.cuda_device));
  }
  // Refused before the rendezvous, so that this rank does not keep the
  // others waiting for it.
  if (options.cuda_device >= 0) {
#ifdef SSLSWEEP_WITH_NCCL
    if (auto s = CheckCudaDevice(options.cuda_device); !s.ok()) {
      return Prefixed("cuda_device", s);
    }
#else
    return absl::FailedPreconditionError(absl::StrCat(
        "cuda_device ", options.cuda_device,
        ": this trainer was built without NCCL (it needs the CUDA toolkit and NCCL at "
        "configure time; see deploy/build-gpu.sh)"));
#endif
  }
  const std::string where =
      absl::StrCat("rank ", options.rank, " of ", options.world_size, " at ",
                   options.master_addr, ":", options.master_port);
  c10::intrusive_ptr<c10d::TCPStore> store;
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(options.master_port);
    store_options.isServer = options.rank == 0;
    store_options.numWorkers = options.world_size;
    store_options.waitWorkers = false;  // the process group's own barrier waits
    store_options.timeout = options.timeout;
    store = c10::make_intrusive<c10d::TCPStore>(options.master_addr, store_options);
  } catch (const std::exception& e) {
    return Unavailable(absl::StrCat("rendezvous of ", where), e);
  }
  if (options.rank == 0 && options.on_listening) options.on_listening(store->getPort());
  std::unique_ptr<DataParallelGroup> group(new DataParallelGroup(options, store->getPort()));
  group->store_ = store;
  try {
    auto gloo = c10d::ProcessGroupGloo::Options::create(options.timeout);
    // master_addr is rank 0's host, not the others': they bind to their own.
    const std::string& local =
        !options.local_addr.empty() ? options.local_addr
                                    : (options.rank == 0 ? options.master_addr : std::string());
    gloo->devices.push_back(local.empty()
                                ? c10d::ProcessGroupGloo::createDefaultDevice()
                                : c10d::ProcessGroupGloo::createDeviceForHostname(local));
    group->group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(
        store, options.rank, options.world_size, gloo);
  } catch (const std::exception& e) {
    return Unavailable(absl::StrCat("Gloo process group of ", where), e);
  }
#ifdef SSLSWEEP_WITH_NCCL
  // After Gloo's rendezvous: every rank is there, so rank 0's id reaches
  // them all and NCCL's own (untimed) rendezvous finds them.
  if (options.cuda_device >= 0) {
    auto nccl = JoinNccl(*store, options, where);
    if (!nccl.ok()) return nccl.status();
    group->nccl_.reset(nccl->release());
  }
#endif
  return group;
}

absl::Status DataParallelGroup::AverageGradients(const std::vector<torch::Tensor>& parameters) {
  torch::NoGradGuard no_grad;
  const Collectives collectives{group_.get(), nccl_.get()};
  // Every rank has the same parameters, so every rank refuses alike, before
  // any collective that the others would wait in.
  for (const torch::Tensor& p : parameters) {
    if (!p.is_cuda()) continue;
    if (auto s = CheckCudaTensor(collectives, p); !s.ok()) {
      return Prefixed("all-reduce of gradients", s);
    }
  }
  const double scale = 1.0 / options_.world_size;
  for (const std::vector<size_t>& bucket : PlanBuckets(parameters, options_.bucket_bytes)) {
    std::vector<torch::Tensor> grads;
    std::vector<torch::Tensor> flat_views;
    grads.reserve(bucket.size());
    flat_views.reserve(bucket.size());
    for (size_t i : bucket) {
      grads.push_back(GradOrZeros(parameters[i]));
      flat_views.push_back(grads.back().reshape({-1}));
    }
    torch::Tensor flat = torch::cat(flat_views);
    if (auto s = SumInPlace(collectives, "all-reduce of gradients", flat); !s.ok()) return s;
    ScatterMean(flat, scale, grads);
  }
  return absl::OkStatus();
}

absl::Status DataParallelGroup::Broadcast(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  for (const torch::Tensor& t : tensors) {
    const bool staged = t.is_cuda() || !t.is_contiguous();
    std::vector<torch::Tensor> one = {t.is_cuda() ? t.to(torch::kCPU).contiguous()
                                                  : t.contiguous()};
    if (auto s = RunCollective("broadcast", [&] { return group_->broadcast(one); }); !s.ok()) {
      return s;
    }
    if (staged) t.copy_(one[0]);
  }
  return absl::OkStatus();
}

}  // namespace sslsweep
