// GradientSync (data_parallel_group.h): averaging gradients over the ranks
// overlapped with the backward, and DataParallelGroup::NewGradientSync.

#include <cstdint>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include <torch/csrc/autograd/function_hook.h>

#include "worker/trainer/data_parallel_group.h"
#include "worker/trainer/data_parallel_internal.h"

namespace sslsweep {

using data_parallel_internal::GradOrZeros;
using data_parallel_internal::PlanBuckets;
using data_parallel_internal::ScatterMean;
using data_parallel_internal::Unavailable;
using data_parallel_internal::Wait;

// One bucket of an overlapped GradientSync.
struct OverlappedBucket {
  std::vector<size_t> parameters;  // indices, in the flat buffer's order
  torch::Tensor flat;              // this bucket's sums, reused every step
  // Per step:
  size_t pending = 0;  // parameters whose gradient has not arrived
  c10::intrusive_ptr<c10d::Work> work;  // the all-reduce, once started
};

struct GradientSync::State {
  // Constant after construction.
  DataParallelGroup* group;
  c10d::ProcessGroup* gloo;  // null: Finish is AverageGradients (no hooks)
  std::vector<torch::Tensor> parameters;
  double scale;
  std::vector<size_t> bucket_of;  // parameter index -> bucket index
  // A tensor holds its gradient accumulator weakly: without these, autograd
  // would make a new one, without the hooks, for each graph.
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<uintptr_t> hook_keys;  // of each accumulator's hook

  // Per step, confined to the training thread (see the class comment).
  std::vector<OverlappedBucket> buckets;
  std::vector<bool> arrived;
  size_t next_start = 0;  // buckets start in order: every rank alike
  bool armed = false;
  int started_in_backward = 0;
  int last_started_in_backward = 0;
  std::thread::id owner;
  absl::Status error;  // a failure to start an all-reduce in a hook

  // Copies the bucket's gradients (zeros for a parameter without one) into
  // its buffer and starts its all-reduce.
  void Start(OverlappedBucket& bucket) {
    torch::NoGradGuard no_grad;
    int64_t offset = 0;
    for (size_t i : bucket.parameters) {
      const torch::Tensor g = GradOrZeros(parameters[i]);
      bucket.flat.narrow(0, offset, g.numel()).view_as(g).copy_(g);
      offset += g.numel();
    }
    std::vector<torch::Tensor> one = {bucket.flat};
    try {
      bucket.work = gloo->allreduce(one);
    } catch (const std::exception& e) {
      if (error.ok()) error = Unavailable("all-reduce of gradients", e);
    }
  }

  // Starts, in order, the buckets whose gradients have all arrived.
  void StartReady() {
    while (next_start < buckets.size() && buckets[next_start].pending == 0) {
      Start(buckets[next_start++]);
      ++started_in_backward;
    }
  }

  // The hook of parameter `i`'s accumulator: its gradient is in p.grad().
  void Arrived(size_t i) {
    if (!armed || arrived[i]) return;
    if (std::this_thread::get_id() != owner) {
      // The contract is broken (a backward on another thread): leave the
      // bucket to Finish rather than touch this state from two threads.
      return;
    }
    arrived[i] = true;
    if (--buckets[bucket_of[i]].pending == 0) StartReady();
  }
};

namespace {

// Tells the GradientSync, if it is still there, that a parameter's gradient
// has been accumulated.
class GradientArrivedHook : public torch::autograd::FunctionPostHook {
 public:
  GradientArrivedHook(std::weak_ptr<GradientSync::State> state, size_t index)
      : state_(std::move(state)), index_(index) {}

  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    if (auto state = state_.lock()) state->Arrived(index_);
    return outputs;
  }

 private:
  const std::weak_ptr<GradientSync::State> state_;
  const size_t index_;
};

}  // namespace

GradientSync::GradientSync(std::shared_ptr<State> state) : state_(std::move(state)) {}

GradientSync::~GradientSync() {
  // An accumulator may outlive this object (a graph holds it): take the
  // hooks off it rather than leave ones that would do nothing.
  for (size_t i = 0; i < state_->accumulators.size(); ++i) {
    state_->accumulators[i]->del_post_hook(state_->hook_keys[i]);
  }
}

std::unique_ptr<GradientSync> DataParallelGroup::NewGradientSync(
    const std::vector<torch::Tensor>& parameters) {
  auto state = std::make_shared<GradientSync::State>();
  state->group = this;
  state->parameters = parameters;
  state->scale = 1.0 / options_.world_size;
  bool cuda = false;
  for (const torch::Tensor& p : parameters) cuda = cuda || p.is_cuda();
  // CUDA: NCCL stays synchronous (see GradientSync).
  if (!options_.overlap_gradient_sync || cuda) {
    return std::unique_ptr<GradientSync>(new GradientSync(std::move(state)));
  }
  state->gloo = group_.get();
  state->bucket_of.resize(parameters.size());
  for (const std::vector<size_t>& plan : PlanBuckets(parameters, options_.bucket_bytes)) {
    OverlappedBucket bucket;
    bucket.parameters = plan;
    int64_t numel = 0;
    for (size_t i : plan) {
      numel += parameters[i].numel();
      state->bucket_of[i] = state->buckets.size();
    }
    bucket.flat = torch::empty({numel}, parameters[plan.front()].options());
    state->buckets.push_back(std::move(bucket));
  }
  state->arrived.assign(parameters.size(), false);
  for (size_t i = 0; i < parameters.size(); ++i) {
    // A parameter that does not require a gradient never gets one: its
    // bucket waits for Finish.
    std::shared_ptr<torch::autograd::Node> accumulator =
        parameters[i].requires_grad() ? torch::autograd::impl::grad_accumulator(parameters[i])
                                      : nullptr;
    if (accumulator == nullptr) continue;
    state->hook_keys.push_back(accumulator->add_post_hook(
        std::make_unique<GradientArrivedHook>(std::weak_ptr<GradientSync::State>(state), i)));
    state->accumulators.push_back(std::move(accumulator));
  }
  return std::unique_ptr<GradientSync>(new GradientSync(std::move(state)));
}

void GradientSync::Arm() {
  State& s = *state_;
  if (s.gloo == nullptr) return;
  for (OverlappedBucket& bucket : s.buckets) {
    bucket.pending = bucket.parameters.size();
    bucket.work.reset();
  }
  s.arrived.assign(s.parameters.size(), false);
  s.next_start = 0;
  s.started_in_backward = 0;
  s.owner = std::this_thread::get_id();
  s.error = absl::OkStatus();
  s.armed = true;
}

absl::Status GradientSync::Finish() {
  State& s = *state_;
  // Not armed: no hook has started anything, so this is AverageGradients.
  if (s.gloo == nullptr || !s.armed) return s.group->AverageGradients(s.parameters);
  s.armed = false;
  s.last_started_in_backward = s.started_in_backward;
  // The buckets still waiting (a parameter unused this step), in order.
  while (s.next_start < s.buckets.size()) s.Start(s.buckets[s.next_start++]);
  if (!s.error.ok()) return s.error;
  torch::NoGradGuard no_grad;
  for (OverlappedBucket& bucket : s.buckets) {
    if (auto status = Wait("all-reduce of gradients", bucket.work); !status.ok()) return status;
    bucket.work.reset();
    std::vector<torch::Tensor> grads;
    grads.reserve(bucket.parameters.size());
    for (size_t i : bucket.parameters) grads.push_back(s.parameters[i].grad());
    ScatterMean(bucket.flat, s.scale, grads);
  }
  return absl::OkStatus();
}

int GradientSync::buckets_started_in_backward() const {
  return state_->last_started_in_backward;
}

int GradientSync::bucket_count() const { return static_cast<int>(state_->buckets.size()); }

}  // namespace sslsweep
