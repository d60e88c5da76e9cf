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
