// NcclCommunicator: the id's text form everywhere; the all-reduce where a
// CUDA device exists (GTEST_SKIP otherwise: no GPU on CI).

#include "worker/trainer/nccl_communicator.h"

#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;

TEST(NcclCommunicatorTest, IdTextIsCheckedBeforeAnythingStarts) {
  EXPECT_TRUE(CheckNcclId(std::string(256, 'a')).ok());
  EXPECT_THAT(CheckNcclId("abc").message(), HasSubstr("expected 256 hex digits"));
  EXPECT_THAT(CheckNcclId(std::string(255, '0') + "g").message(),
              HasSubstr("'g' is not a hex digit"));
  EXPECT_THAT(NcclCommunicator::Join(2, 2, std::string(256, '0'), 0).status().message(),
              HasSubstr("rank 2 of world_size 2"));
}

TEST(NcclCommunicatorTest, OneRankAllReduceOnTheDevice) {
  if (!HasCudaDevice()) GTEST_SKIP() << "no CUDA device";
  auto id = NewNcclId();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(CheckNcclId(*id).ok());
  auto comm = NcclCommunicator::Join(0, 1, *id, 0);
  ASSERT_TRUE(comm.ok()) << comm.status();
  const std::vector<float> host = {1.5f, -2.0f, 3.25f, 0.0f};
  float* device = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&device), host.size() * sizeof(float)),
            cudaSuccess);
  ASSERT_EQ(cudaMemcpy(device, host.data(), host.size() * sizeof(float),
                       cudaMemcpyHostToDevice),
            cudaSuccess);
  ASSERT_TRUE((*comm)->AllReduceSum(device, host.size(), NcclType::kFloat32).ok());
  std::vector<float> back(host.size());
  ASSERT_EQ(cudaMemcpy(back.data(), device, back.size() * sizeof(float),
                       cudaMemcpyDeviceToHost),
            cudaSuccess);
  cudaFree(device);
  EXPECT_EQ(back, host);  // the sum over one rank
}

}  // namespace
}  // namespace sslsweep
