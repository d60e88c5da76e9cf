// DataParallelGroup: ranks as threads of one process, connected over Gloo on
// loopback as separate processes would be.

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
std::vector<absl::Status> RunRanks(
    int world_size, int64_t bucket_bytes,
    const std::function<absl::Status(DataParallelGroup&)>& body,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(20'000)) {
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
}

}  // namespace
}  // namespace sslsweep
