// NcclCommunicator: the id's text form and the refusals everywhere; the
// collectives where CUDA devices exist (GTEST_SKIP otherwise: no GPU on CI),
// two ranks as two threads where there are two devices.

#include "worker/trainer/nccl_communicator.h"

#include <cuda_runtime_api.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;

int CudaDeviceCount() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

// Floats in device memory, freed at the end of the scope.
class DeviceFloats {
 public:
  explicit DeviceFloats(const std::vector<float>& host) : size_(host.size()) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&data_), size_ * sizeof(float)),
              cudaSuccess);
    EXPECT_EQ(cudaMemcpy(data_, host.data(), size_ * sizeof(float), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  ~DeviceFloats() { cudaFree(data_); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;

  float* data() { return data_; }
  std::vector<float> ToHost() const {
    std::vector<float> host(size_);
    EXPECT_EQ(cudaMemcpy(host.data(), data_, size_ * sizeof(float), cudaMemcpyDeviceToHost),
              cudaSuccess);
    return host;
  }

 private:
  const size_t size_;
  float* data_ = nullptr;
};

// Runs `body(communicator)` for ranks 0 to world_size - 1, rank r on device
// r in its own thread, as processes would be.
void RunRanks(int world_size, const std::function<void(NcclCommunicator&)>& body) {
  auto id = NewNcclId();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(CheckNcclId(*id).ok());
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < world_size; ++rank) {
    ranks.emplace_back([&, rank] {
      NcclOptions options;
      options.rank = rank;
      options.world_size = world_size;
      options.id = *id;
      options.device = rank;
      auto comm = NcclCommunicator::Join(options);
      ASSERT_TRUE(comm.ok()) << "rank " << rank << ": " << comm.status();
      EXPECT_EQ((*comm)->device(), rank);
      body(**comm);
    });
  }
  for (auto& t : ranks) t.join();
}

TEST(NcclCommunicatorTest, IdTextIsCheckedBeforeAnythingStarts) {
  EXPECT_TRUE(CheckNcclId(std::string(256, 'a')).ok());
  EXPECT_THAT(CheckNcclId("abc").message(), HasSubstr("expected 256 hex digits"));
  EXPECT_THAT(CheckNcclId(std::string(255, '0') + "g").message(),
              HasSubstr("'g' is not a hex digit"));
  NcclOptions options;
  options.rank = 2;
  options.world_size = 2;
  options.id = std::string(256, '0');
  EXPECT_THAT(NcclCommunicator::Join(options).status().message(),
              HasSubstr("rank 2 of world_size 2"));
  options.rank = 0;
  options.timeout = std::chrono::milliseconds(0);
  EXPECT_THAT(NcclCommunicator::Join(options).status().message(), HasSubstr("timeout"));
}

// Runs everywhere: no machine has a millionth device.
TEST(NcclCommunicatorTest, AMissingDeviceIsAFailedPrecondition) {
  constexpr int kAbsent = 1 << 20;
  EXPECT_EQ(CheckCudaDevice(kAbsent).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(CheckCudaDevice(kAbsent).message(),
              HasSubstr("CUDA device 1048576: this machine has "));
  EXPECT_EQ(CheckCudaDevice(-1).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckCudaDevice(0).ok(), HasCudaDevice());
  NcclOptions options;
  options.id = std::string(256, '0');
  options.device = kAbsent;
  EXPECT_EQ(NcclCommunicator::Join(options).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(NcclCommunicatorTest, OneRankAllReduceAndAllGatherOnTheDevice) {
  if (!HasCudaDevice()) GTEST_SKIP() << "no CUDA device";
  RunRanks(1, [](NcclCommunicator& comm) {
    const std::vector<float> host = {1.5f, -2.0f, 3.25f, 0.0f};
    DeviceFloats buffer(host);
    ASSERT_TRUE(comm.AllReduceSum(buffer.data(), host.size(), NcclType::kFloat32).ok());
    EXPECT_EQ(buffer.ToHost(), host);  // the sum over one rank
    DeviceFloats gathered(std::vector<float>(host.size(), 9.0f));
    ASSERT_TRUE(
        comm.AllGather(buffer.data(), gathered.data(), host.size(), NcclType::kFloat32).ok());
    EXPECT_EQ(gathered.ToHost(), host);  // one rank's part
  });
}

TEST(NcclCommunicatorTest, TwoRanksSumAndGatherInRankOrder) {
  if (CudaDeviceCount() < 2) GTEST_SKIP() << "needs two CUDA devices";
  RunRanks(2, [](NcclCommunicator& comm) {
    const float r = static_cast<float>(comm.rank());
    DeviceFloats buffer({r + 1, 10 * (r + 1), -r});
    ASSERT_TRUE(comm.AllReduceSum(buffer.data(), 3, NcclType::kFloat32).ok());
    EXPECT_EQ(buffer.ToHost(), (std::vector<float>{3, 30, -1})) << "rank " << comm.rank();
    DeviceFloats local({r, r + 0.5f});
    DeviceFloats gathered(std::vector<float>(4, -7.0f));
    ASSERT_TRUE(comm.AllGather(local.data(), gathered.data(), 2, NcclType::kFloat32).ok());
    EXPECT_EQ(gathered.ToHost(), (std::vector<float>{0, 0.5f, 1, 1.5f}))
        << "rank " << comm.rank();
  });
}

}  // namespace
}  // namespace sslsweep
