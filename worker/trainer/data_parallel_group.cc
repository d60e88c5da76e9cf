#include "worker/trainer/data_parallel_group.h"

#include <exception>
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

namespace sslsweep {
namespace {

absl::Status Unavailable(const std::string& what, const std::exception& e) {
  return absl::UnavailableError(absl::StrCat(what, ": ", e.what()));
}

// Runs `work` and waits for it; a c10::Error (a rank gone, a timeout) becomes
// Unavailable.
absl::Status Wait(const std::string& what, const c10::intrusive_ptr<c10d::Work>& work) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    return Unavailable(what, e);
  }
  return absl::OkStatus();
}

// Sums `tensor` over the group in place.
void SumInPlace(c10d::ProcessGroup& group, torch::Tensor& tensor) {
  std::vector<torch::Tensor> one = {tensor};
  group.allreduce(one)->wait();
}

// The group travels through autograd's saved data as an integer: Function
// arguments must be tensors or IValues, and the group outlives the graph.
c10d::ProcessGroup& GroupOf(torch::autograd::AutogradContext* ctx) {
  return *reinterpret_cast<c10d::ProcessGroup*>(ctx->saved_data["group"].toInt());
}

struct AllGatherRowsFunction : torch::autograd::Function<AllGatherRowsFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor local,
                               int64_t group_address) {
    ctx->saved_data["group"] = group_address;
    ctx->saved_data["rows"] = local.size(0);
    c10d::ProcessGroup& group = GroupOf(ctx);
    std::vector<std::vector<torch::Tensor>> gathered(1);
    for (int i = 0; i < group.getSize(); ++i) gathered[0].push_back(torch::empty_like(local));
    std::vector<torch::Tensor> input = {local.contiguous()};
    group.allgather(gathered, input)->wait();
    return torch::cat(gathered[0], 0);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    c10d::ProcessGroup& group = GroupOf(ctx);
    const int64_t rows = ctx->saved_data["rows"].toInt();
    torch::Tensor grad = grads[0].contiguous().clone();
    SumInPlace(group, grad);
    return {grad.narrow(0, group.getRank() * rows, rows), torch::Tensor()};
  }
};

struct AllReduceSumFunction : torch::autograd::Function<AllReduceSumFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor local,
                               int64_t group_address) {
    ctx->saved_data["group"] = group_address;
    torch::Tensor sum = local.contiguous().clone();
    SumInPlace(GroupOf(ctx), sum);
    return sum;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    torch::Tensor grad = grads[0].contiguous().clone();
    SumInPlace(GroupOf(ctx), grad);
    return {grad, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor DataParallelGroup::AllGatherRows(const torch::Tensor& local) {
  return AllGatherRowsFunction::apply(local, reinterpret_cast<int64_t>(group_.get()));
}

torch::Tensor DataParallelGroup::AllReduceSum(const torch::Tensor& local) {
  return AllReduceSumFunction::apply(local, reinterpret_cast<int64_t>(group_.get()));
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
    gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(
        options.master_addr));
    group->group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(
        store, options.rank, options.world_size, gloo);
  } catch (const std::exception& e) {
    return Unavailable(absl::StrCat("Gloo process group of ", where), e);
  }
  return group;
}

absl::Status DataParallelGroup::AverageGradients(const std::vector<torch::Tensor>& parameters) {
  torch::NoGradGuard no_grad;
  const double scale = 1.0 / options_.world_size;
  size_t begin = 0;
  while (begin < parameters.size()) {
    // One bucket: consecutive parameters of one dtype up to bucket_bytes.
    std::vector<torch::Tensor> grads;
    int64_t bytes = 0;
    size_t end = begin;
    for (; end < parameters.size(); ++end) {
      const torch::Tensor& p = parameters[end];
      if (!grads.empty() && (bytes + p.numel() * p.element_size() > options_.bucket_bytes ||
                             p.scalar_type() != grads.front().scalar_type())) {
        break;
      }
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      grads.push_back(p.grad());
      bytes += p.numel() * p.element_size();
    }
    std::vector<torch::Tensor> flat_views;
    flat_views.reserve(grads.size());
    for (const torch::Tensor& g : grads) flat_views.push_back(g.reshape({-1}));
    std::vector<torch::Tensor> bucket = {torch::cat(flat_views)};
    if (auto s = Wait("all-reduce of gradients", group_->allreduce(bucket)); !s.ok()) return s;
    bucket[0].mul_(scale);
    int64_t offset = 0;
    for (torch::Tensor& g : grads) {
      g.copy_(bucket[0].narrow(0, offset, g.numel()).view_as(g));
      offset += g.numel();
    }
    begin = end;
  }
  return absl::OkStatus();
}

absl::Status DataParallelGroup::Broadcast(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  for (const torch::Tensor& t : tensors) {
    std::vector<torch::Tensor> one = {t.is_contiguous() ? t : t.contiguous()};
    if (auto s = Wait("broadcast", group_->broadcast(one)); !s.ok()) return s;
    if (!t.is_contiguous()) t.copy_(one[0]);
  }
  return absl::OkStatus();
}

}  // namespace sslsweep
