// DataParallelGroup: ranks as threads of one process, connected over Gloo on
// loopback as separate processes would be; with CUDA tensors, over NCCL too,
// rank r on device r (GTEST_SKIP without a CUDA LibTorch, NCCL and the
// devices: no GPU on CI).

#include "worker/trainer/data_parallel_group.h"

#include <functional>
#include <future>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;

// Runs `body(group)` on `world_size` ranks, rank 0 on a free port that it
// hands to the others, and returns each rank's status.
// With `cuda`, rank r computes on CUDA device r.
std::vector<absl::Status> RunRanks(
    int world_size, int64_t bucket_bytes,
    const std::function<absl::Status(DataParallelGroup&)>& body,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(20'000),
    bool cuda = false, bool overlap_gradient_sync = true) {
  std::promise<int> port;
  std::shared_future<int> port_ready = port.get_future().share();
  std::vector<absl::Status> statuses(world_size);
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < world_size; ++rank) {
    ranks.emplace_back([&, rank] {
      DataParallelOptions options;
      options.rank = rank;
      options.world_size = world_size;
      options.bucket_bytes = bucket_bytes;
      options.timeout = timeout;
      options.cuda_device = cuda ? rank : -1;
      options.overlap_gradient_sync = overlap_gradient_sync;
      if (rank == 0) {
        options.on_listening = [&](int p) { port.set_value(p); };
      } else {
        options.master_port = port_ready.get();
      }
      auto group = DataParallelGroup::Connect(options);
      if (!group.ok()) {
        if (rank == 0 && port_ready.wait_for(std::chrono::seconds(0)) !=
                             std::future_status::ready) {
          port.set_value(1);  // let the others fail instead of waiting forever
        }
        statuses[rank] = group.status();
        return;
      }
      statuses[rank] = body(**group);
    });
  }
  for (auto& t : ranks) t.join();
  return statuses;
}

TEST(DataParallelGroupTest, AverageGradientsGivesEveryRankTheMean) {
  for (int64_t bucket_bytes : {int64_t{16}, int64_t{25} << 20}) {  // many buckets, one
    std::vector<std::vector<torch::Tensor>> grads(3);
    const auto statuses = RunRanks(3, bucket_bytes, [&](DataParallelGroup& group) {
      // Rank r's gradients are r + 1 everywhere (weight) and 10 (r + 1) (bias);
      // the third parameter has no gradient on any rank.
      auto weight = torch::zeros({4, 3}, torch::requires_grad());
      auto bias = torch::zeros({3}, torch::requires_grad());
      auto unused = torch::zeros({2}, torch::requires_grad());
      weight.mutable_grad() = torch::full({4, 3}, group.rank() + 1.0);
      bias.mutable_grad() = torch::full({3}, 10.0 * (group.rank() + 1));
      absl::Status s = group.AverageGradients({weight, bias, unused});
      grads[group.rank()] = {weight.grad(), bias.grad(), unused.grad()};
      return s;
    });
    for (int rank = 0; rank < 3; ++rank) {
      ASSERT_TRUE(statuses[rank].ok()) << "rank " << rank << ": " << statuses[rank];
      EXPECT_TRUE(torch::allclose(grads[rank][0], torch::full({4, 3}, 2.0)));
      EXPECT_TRUE(torch::allclose(grads[rank][1], torch::full({3}, 20.0)));
      EXPECT_TRUE(torch::equal(grads[rank][2], torch::zeros({2})));
    }
  }
}

TEST(DataParallelGroupTest, BroadcastCopiesRankZerosValues) {
  std::vector<torch::Tensor> values(2);
  const auto statuses = RunRanks(2, int64_t{25} << 20, [&](DataParallelGroup& group) {
    auto t = torch::full({5}, static_cast<float>(group.rank() + 7));
    absl::Status s = group.Broadcast({t});
    values[group.rank()] = t;
    return s;
  });
  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_TRUE(statuses[rank].ok()) << statuses[rank];
    EXPECT_TRUE(torch::equal(values[rank], torch::full({5}, 7.0f)));
  }
}

TEST(DataParallelGroupTest, ARankThatLeavesFailsTheOthersCollectiveInsteadOfHangingIt) {
  const auto start = std::chrono::steady_clock::now();
  const auto statuses = RunRanks(
      2, int64_t{25} << 20,
      [&](DataParallelGroup& group) -> absl::Status {
        if (group.rank() == 1) return absl::OkStatus();  // gone, as a killed rank
        auto weight = torch::zeros({8}, torch::requires_grad());
        weight.mutable_grad() = torch::ones({8});
        return group.AverageGradients({weight});
      },
      std::chrono::milliseconds(3'000));
  EXPECT_TRUE(statuses[1].ok());
  EXPECT_EQ(statuses[0].code(), absl::StatusCode::kUnavailable) << statuses[0];
  EXPECT_THAT(statuses[0].message(), HasSubstr("all-reduce of gradients"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

// The global-batch function both tests differentiate: a VICReg-like loss of
// z = normalise(x) W, with batch statistics over all rows. `mean` is the
// rows' mean over the global batch (computed by the caller).
torch::Tensor GlobalBatchLoss(const torch::Tensor& z) {
  const torch::Tensor centred = z - z.mean(0);
  const torch::Tensor variance = torch::relu(1 - torch::sqrt(centred.pow(2).mean(0) + 1e-4));
  const torch::Tensor covariance = centred.t().mm(centred) / (z.size(0) - 1);
  return variance.mean() + covariance.pow(2).sum() / z.size(1);
}

// Rank r's rows of the global batch, and the shared initial weight.
torch::Tensor Rows(int rank, int rows) {
  return torch::linspace(-1, 1, rows * 3).reshape({rows, 3}).mul(rank + 1).sin() + rank;
}

TEST(DataParallelGroupTest, GatheredLossGivesTheSingleProcessGradient) {
  constexpr int kRanks = 2;
  constexpr int kRows = 5;
  const torch::Tensor initial = torch::linspace(-0.5, 0.7, 12).reshape({3, 4});
  // One process, the whole global batch, synchronised statistics as plain
  // means over all rows.
  torch::Tensor expected_weight_grad;
  torch::Tensor expected_input_grad;
  {
    auto x = torch::cat({Rows(0, kRows), Rows(1, kRows)}).requires_grad_();
    auto weight = initial.clone().requires_grad_();
    const torch::Tensor normalised = (x - x.mean(0)) / torch::sqrt(x.var(0, false) + 1e-5);
    GlobalBatchLoss(normalised.mm(weight)).backward();
    expected_weight_grad = weight.grad();
    expected_input_grad = x.grad();
  }
  std::vector<torch::Tensor> weight_grads(kRanks), input_grads(kRanks);
  const auto statuses = RunRanks(kRanks, int64_t{25} << 20, [&](DataParallelGroup& group) {
    auto x = Rows(group.rank(), kRows).requires_grad_();
    auto weight = initial.clone().requires_grad_();
    // SyncBatchNorm's statistics: sums over the ranks' rows.
    const double total = kRows * group.world_size();
    const torch::Tensor mean = group.AllReduceSum(x.sum(0)) / total;
    const torch::Tensor variance =
        group.AllReduceSum((x - mean).pow(2).sum(0)) / total;
    const torch::Tensor normalised = (x - mean) / torch::sqrt(variance + 1e-5);
    GlobalBatchLoss(group.AllGatherRows(normalised.mm(weight))).backward();
    absl::Status s = group.AverageGradients({weight});
    weight_grads[group.rank()] = weight.grad();
    input_grads[group.rank()] = x.grad() / group.world_size();
    return s;
  });
  for (int rank = 0; rank < kRanks; ++rank) {
    ASSERT_TRUE(statuses[rank].ok()) << statuses[rank];
    EXPECT_TRUE(torch::allclose(weight_grads[rank], expected_weight_grad, 1e-5, 1e-6))
        << "rank " << rank << "\n" << weight_grads[rank] << "\n" << expected_weight_grad;
    EXPECT_TRUE(torch::allclose(input_grads[rank],
                                expected_input_grad.narrow(0, rank * kRows, kRows), 1e-5,
                                1e-6))
        << "rank " << rank;
  }
}

// A small network whose backward runs a collective of its own between its
// layers' gradients (as the trainer's gathered losses and synchronised
// BatchNorm do), with a parameter that no step uses.
struct OverlapNet {
  torch::nn::Linear first{torch::nn::LinearOptions(3, 8)};
  torch::nn::Linear second{torch::nn::LinearOptions(8, 6)};
  torch::nn::Linear third{torch::nn::LinearOptions(6, 2)};
  torch::Tensor unused = torch::ones({5}, torch::requires_grad());

  OverlapNet() {
    // The same weights on every rank, without the generator the rank
    // threads share.
    torch::NoGradGuard no_grad;
    double phase = 0;
    for (const torch::Tensor& p : parameters()) {
      p.copy_(torch::sin(torch::arange(p.numel(), torch::kFloat) * 0.7 + ++phase).view_as(p));
    }
  }

  std::vector<torch::Tensor> parameters() {
    std::vector<torch::Tensor> all = {unused};
    for (torch::nn::Linear layer : {first, second, third}) {
      for (const torch::Tensor& p : layer->parameters()) all.push_back(p);
    }
    return all;
  }

  void Backward(DataParallelGroup& group) {
    const torch::Tensor x = Rows(group.rank(), 4);
    const torch::Tensor h = group.AllGatherRows(torch::tanh(second(torch::tanh(first(x)))));
    third(h).pow(2).sum().backward();
  }
};

// The overlapped averaging writes bitwise the gradients that the synchronous
// one writes, with a bucket per parameter and with one for all, on two and
// three ranks, an unused parameter included; and its buckets do start
// during the backward.
TEST(DataParallelGroupTest, OverlappedGradientSyncMatchesAverageGradientsBitwise) {
  for (int ranks : {2, 3}) {
    for (int64_t bucket_bytes : {int64_t{16}, int64_t{25} << 20}) {
      std::vector<std::vector<torch::Tensor>> overlapped(ranks), synchronous(ranks);
      std::vector<int> started(ranks), buckets(ranks);
      const auto statuses = RunRanks(ranks, bucket_bytes, [&](DataParallelGroup& group) {
        const int r = group.rank();
        OverlapNet net;
        const std::vector<torch::Tensor> parameters = net.parameters();
        std::unique_ptr<GradientSync> sync = group.NewGradientSync(parameters);
        for (int step = 0; step < 2; ++step) {  // the hooks serve every step
          for (const torch::Tensor& p : parameters) p.mutable_grad() = torch::Tensor();
          sync->Arm();
          net.Backward(group);
          if (auto s = sync->Finish(); !s.ok()) return s;
        }
        started[r] = sync->buckets_started_in_backward();
        buckets[r] = sync->bucket_count();
        for (const torch::Tensor& p : parameters) overlapped[r].push_back(p.grad().clone());

        for (const torch::Tensor& p : parameters) p.mutable_grad() = torch::Tensor();
        net.Backward(group);
        if (auto s = group.AverageGradients(parameters); !s.ok()) return s;
        for (const torch::Tensor& p : parameters) synchronous[r].push_back(p.grad().clone());
        return absl::OkStatus();
      });
      for (int r = 0; r < ranks; ++r) {
        ASSERT_TRUE(statuses[r].ok()) << "rank " << r << ": " << statuses[r];
        const int expected_buckets = bucket_bytes == 16 ? 7 : 1;
        EXPECT_EQ(buckets[r], expected_buckets);
        // The first bucket holds the last layer's bias; the unused
        // parameter's bucket (the last one) waits for Finish.
        EXPECT_EQ(started[r], expected_buckets - 1) << "bucket_bytes " << bucket_bytes;
        ASSERT_EQ(overlapped[r].size(), synchronous[r].size());
        for (size_t i = 0; i < overlapped[r].size(); ++i) {
          EXPECT_TRUE(torch::equal(overlapped[r][i], synchronous[r][i]))
              << ranks << " ranks, bucket_bytes " << bucket_bytes << ", rank " << r
              << ", parameter " << i;
        }
        EXPECT_TRUE(torch::equal(overlapped[r][0], torch::zeros({5})));
        EXPECT_FALSE(torch::equal(overlapped[r][1], torch::zeros_like(overlapped[r][1])));
      }
    }
  }
}

// Without overlap_gradient_sync, Finish is AverageGradients: no hooks, no
// bucket started during the backward, the same gradients.
TEST(DataParallelGroupTest, GradientSyncWithoutOverlapAveragesAfterTheBackward) {
  std::vector<std::vector<torch::Tensor>> grads(2);
  const auto statuses = RunRanks(
      2, int64_t{16},
      [&](DataParallelGroup& group) {
        OverlapNet net;
        const std::vector<torch::Tensor> parameters = net.parameters();
        std::unique_ptr<GradientSync> sync = group.NewGradientSync(parameters);
        sync->Arm();
        net.Backward(group);
        if (auto s = sync->Finish(); !s.ok()) return s;
        EXPECT_EQ(sync->bucket_count(), 0);
        EXPECT_EQ(sync->buckets_started_in_backward(), 0);
        for (const torch::Tensor& p : parameters) grads[group.rank()].push_back(p.grad());
        return absl::OkStatus();
      },
      std::chrono::milliseconds(20'000), /*cuda=*/false, /*overlap_gradient_sync=*/false);
  for (int r = 0; r < 2; ++r) {
    ASSERT_TRUE(statuses[r].ok()) << statuses[r];
    for (size_t i = 0; i < grads[r].size(); ++i) {
      EXPECT_TRUE(torch::equal(grads[r][i], grads[0][i])) << "parameter " << i;
    }
    EXPECT_TRUE(torch::equal(grads[r][0], torch::zeros({5})));
  }
}

// A rank gone fails the overlapped averaging as it fails AverageGradients.
TEST(DataParallelGroupTest, ARankThatLeavesFailsTheOverlappedSync) {
  const auto statuses = RunRanks(
      2, int64_t{16},
      [&](DataParallelGroup& group) -> absl::Status {
        // Both ranks are fully connected (a collective completed) before
        // rank 1 leaves, so that rank 0 fails in the averaging, not while
        // it still sets up Gloo's connections.
        if (auto s = group.Broadcast({torch::zeros({1})}); !s.ok()) return s;
        if (group.rank() == 1) return absl::OkStatus();  // gone, as a killed rank
        auto weight = torch::ones({8}, torch::requires_grad());
        std::unique_ptr<GradientSync> sync = group.NewGradientSync({weight});
        sync->Arm();
        (weight * 2).sum().backward();
        return sync->Finish();
      },
      std::chrono::milliseconds(3'000));
  EXPECT_TRUE(statuses[1].ok());
  EXPECT_EQ(statuses[0].code(), absl::StatusCode::kUnavailable) << statuses[0];
  EXPECT_THAT(statuses[0].message(), HasSubstr("all-reduce of gradients"));
}

TEST(DataParallelGroupTest, BadOptionsNameTheField) {
  DataParallelOptions options;
  options.world_size = 2;
  options.rank = 2;
  EXPECT_THAT(DataParallelGroup::Connect(options).status().message(), HasSubstr("rank"));
  options.rank = 1;
  options.master_port = 0;
  EXPECT_THAT(DataParallelGroup::Connect(options).status().message(),
              HasSubstr("master_port"));
  options.world_size = 0;
  EXPECT_THAT(DataParallelGroup::Connect(options).status().message(),
              HasSubstr("world_size"));
  options.world_size = 1;
  options.rank = 0;
  options.cuda_device = -2;
  EXPECT_THAT(DataParallelGroup::Connect(options).status().message(),
              HasSubstr("cuda_device"));
}

// Runs everywhere: no machine has a millionth device. The refusal comes
// before the rendezvous (port 1 would fail it as Unavailable), so that the
// other ranks are not kept waiting for this one.
TEST(DataParallelGroupTest, ACudaDeviceWithoutNcclOrWithoutTheDeviceIsRefusedFirst) {
  DataParallelOptions options;
  options.world_size = 2;
  options.rank = 1;
  options.master_port = 1;
  options.cuda_device = 1 << 20;
  const absl::Status status = DataParallelGroup::Connect(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr(DataParallelGroup::SupportsCuda()
                                              ? "CUDA device 1048576: this machine has "
                                              : "this trainer was built without NCCL"));
}

// Whether `ranks` ranks can compute on CUDA devices 0 to ranks - 1 here.
bool CanRunCudaRanks(int ranks) {
  return DataParallelGroup::SupportsCuda() && torch::cuda::is_available() &&
         static_cast<int>(torch::cuda::device_count()) >= ranks;
}

// One rank's part of CheckCudaCollectives: rank r on device r.
absl::Status CheckCudaCollectivesOnRank(DataParallelGroup& group) {
  const int r = group.rank();
  const double R = group.world_size();
  const auto cuda = torch::TensorOptions().device(torch::kCUDA, r);
  const auto bf16 = cuda.dtype(torch::kBFloat16);
  // Gradients: rank r's are r + 1 times a pattern, in fp32 (one parameter
  // channels_last, so not contiguous) and bf16.
  auto weight = torch::zeros({4, 3}, cuda).requires_grad_();
  auto conv = torch::zeros({2, 3, 2, 2}, cuda)
                  .contiguous(at::MemoryFormat::ChannelsLast)
                  .requires_grad_();
  auto bias = torch::zeros({3}, bf16).requires_grad_();
  auto unused = torch::zeros({2}, cuda).requires_grad_();
  const torch::Tensor pattern = torch::arange(24, cuda.dtype(torch::kFloat)).view({2, 3, 2, 2});
  weight.mutable_grad() = torch::full({4, 3}, r + 1.0, cuda);
  conv.mutable_grad() = (pattern * (r + 1)).contiguous(at::MemoryFormat::ChannelsLast);
  bias.mutable_grad() = torch::full({3}, 10.0 * (r + 1), bf16);
  if (auto s = group.AverageGradients({weight, conv, bias, unused}); !s.ok()) return s;
  EXPECT_TRUE(torch::allclose(weight.grad().cpu(), torch::full({4, 3}, (R + 1) / 2)));
  EXPECT_TRUE(torch::allclose(conv.grad().cpu(), (pattern * ((R + 1) / 2)).cpu()));
  EXPECT_TRUE(torch::equal(bias.grad().cpu().to(torch::kFloat), torch::full({3}, 5 * (R + 1))));
  EXPECT_TRUE(torch::equal(unused.grad().cpu(), torch::zeros({2})));

  // AllGatherRows: rank q's rows are q; the backward sums over the ranks
  // the gradient of this rank's rows.
  auto local = torch::full({2, 3}, static_cast<float>(r), cuda).requires_grad_();
  const torch::Tensor gathered = group.AllGatherRows(local);
  std::vector<torch::Tensor> rows;
  for (int q = 0; q < group.world_size(); ++q) {
    rows.push_back(torch::full({2, 3}, static_cast<float>(q)));
  }
  const torch::Tensor expected = torch::cat(rows);
  EXPECT_TRUE(torch::equal(gathered.cpu(), expected));
  const torch::Tensor weights =
      torch::arange(gathered.numel(), cuda.dtype(torch::kFloat)).view_as(gathered);
  (gathered * weights).sum().backward();
  EXPECT_TRUE(torch::allclose(local.grad().cpu(), (weights.narrow(0, 2 * r, 2) * R).cpu()))
      << "rank " << r;
  const torch::Tensor gathered_bf16 = group.AllGatherRows(local.detach().to(torch::kBFloat16));
  EXPECT_TRUE(torch::equal(gathered_bf16.cpu().to(torch::kFloat), expected));

  // AllReduceSum: the sum, and the backward sums the ranks' gradients.
  auto x = torch::full({3}, r + 1.0f, cuda).requires_grad_();
  const torch::Tensor sum = group.AllReduceSum(x);
  EXPECT_TRUE(torch::allclose(sum.cpu(), torch::full({3}, R * (R + 1) / 2)));
  sum.sum().backward();
  EXPECT_TRUE(torch::allclose(x.grad().cpu(), torch::full({3}, R)));

  // Broadcast: rank 0's values, through host memory.
  auto t = torch::full({5}, r + 7.0f, cuda);
  if (auto s = group.Broadcast({t}); !s.ok()) return s;
  EXPECT_TRUE(torch::equal(t.cpu(), torch::full({5}, 7.0f)));

  // A dtype NCCL does not take is refused alike on every rank, before any
  // collective (so nothing hangs).
  auto wide = torch::zeros({2}, cuda.dtype(torch::kDouble)).requires_grad_();
  wide.mutable_grad() = torch::ones({2}, cuda.dtype(torch::kDouble));
  const absl::Status refused = group.AverageGradients({weight, wide});
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  EXPECT_THAT(refused.message(), HasSubstr("float32 or bfloat16"));
  return absl::OkStatus();
}

// Every differentiable collective, AverageGradients and Broadcast on
// `ranks` ranks with CUDA tensors (so over NCCL), against the values that
// one process computes.
void CheckCudaCollectives(int ranks) {
  for (int64_t bucket_bytes : {int64_t{16}, int64_t{25} << 20}) {  // many buckets, one
    const auto statuses = RunRanks(ranks, bucket_bytes, CheckCudaCollectivesOnRank,
                                   std::chrono::milliseconds(60'000), /*cuda=*/true);
    for (int rank = 0; rank < ranks; ++rank) {
      EXPECT_TRUE(statuses[rank].ok()) << "rank " << rank << ": " << statuses[rank];
    }
  }
}

TEST(DataParallelGroupTest, OneCudaRankGoesOverNccl) {
  if (!CanRunCudaRanks(1)) GTEST_SKIP() << "needs a CUDA LibTorch, NCCL and a CUDA device";
  CheckCudaCollectives(1);
}

TEST(DataParallelGroupTest, TwoCudaRanksAverageAndGatherOverNccl) {
  if (!CanRunCudaRanks(2)) GTEST_SKIP() << "needs a CUDA LibTorch, NCCL and two CUDA devices";
  CheckCudaCollectives(2);
}

}  // namespace
}  // namespace sslsweep
