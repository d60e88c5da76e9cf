// Coordinator::QueryResults: the request's fields checked before the store
// sees them, the store's errors passed through with their codes, and the
// response's shape. The aggregation itself is tested in
// results_query_test.cc.

#include <cmath>
#include <string>

#include "coordinator/coordinator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator_test_util.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;

class CoordinatorResultsTest : public CoordinatorFixture {
 protected:
  void SetUp() override {
    CoordinatorFixture::SetUp();
    sweep_id_ = Submit(LrBySeedSweep("unit"));
    const std::string worker = Register();
    // Trials 0..3: (0.01, 1), (0.01, 2), (0.001, 1), (0.001, 2).
    for (int i = 0; i < 4; ++i) {
      const v1::TrialAssignment trial = Lease(worker);
      ASSERT_TRUE(Report(worker, trial, 0, 0.1 * (i + 1)).ok());
      ASSERT_TRUE(Report(worker, trial, 1, 0.2 * (i + 1)).ok());
      ASSERT_TRUE(Finish(worker, trial).ok());
    }
  }

  v1::QueryResultsRequest Request() const {
    v1::QueryResultsRequest request;
    request.set_sweep_id(sweep_id_);
    return request;
  }

  absl::Status ErrorOf(const v1::QueryResultsRequest& request) {
    return coordinator_->QueryResults(request).status();
  }

  int64_t sweep_id_ = 0;
};

TEST_F(CoordinatorResultsTest, GroupsByLearningRateInNumericOrder) {
  v1::QueryResultsRequest request = Request();
  request.add_group_by("optim.lr");
  request.add_metrics("ncc_test_acc/*/*");
  auto response = coordinator_->QueryResults(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->group_columns_size(), 1);
  EXPECT_EQ(response->group_columns(0), "optim.lr");
  ASSERT_EQ(response->rows_size(), 2);
  const v1::AggregatedResultRow& low = response->rows(0);
  EXPECT_EQ(low.group(0), "0.001");
  EXPECT_EQ(low.epoch(), 1);
  EXPECT_EQ(low.metric(), "ncc_test_acc/fine/embedding");
  EXPECT_EQ(low.n(), 2);
  EXPECT_NEAR(low.mean(), 0.7, 1e-12);                // 0.6 and 0.8
  EXPECT_NEAR(low.std(), std::sqrt(0.02), 1e-12);     // (0.01 + 0.01) / 1
  EXPECT_DOUBLE_EQ(low.min(), 0.2 * 3);
  EXPECT_DOUBLE_EQ(low.max(), 0.2 * 4);
  EXPECT_EQ(response->rows(1).group(0), "0.01");
  EXPECT_NEAR(response->rows(1).mean(), 0.3, 1e-12);  // 0.2 and 0.4

  request = Request();
  request.set_epoch("0");
  request.add_where("seed=2");
  request.add_states(v1::TRIAL_SUCCEEDED);
  response = coordinator_->QueryResults(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->group_columns(0), "trial_id");
  ASSERT_EQ(response->rows_size(), 2);
  EXPECT_EQ(response->rows(0).epoch(), 0);
  EXPECT_EQ(response->rows(0).n(), 1);
  EXPECT_TRUE(std::isnan(response->rows(0).std()));
  EXPECT_DOUBLE_EQ(response->rows(0).mean(), 0.1 * 2);
  EXPECT_DOUBLE_EQ(response->rows(1).mean(), 0.1 * 4);
}

TEST_F(CoordinatorResultsTest, MalformedFieldsAreInvalidArgumentNamingTheField) {
  const absl::StatusCode invalid = absl::StatusCode::kInvalidArgument;
  v1::QueryResultsRequest request = Request();
  for (const char* epoch : {"last", "-1", "1.5", "2x", "99999999999"}) {
    request.set_epoch(epoch);
    const absl::Status status = ErrorOf(request);
    EXPECT_EQ(status.code(), invalid) << epoch;
    EXPECT_THAT(status.message(),
                HasSubstr("expected final, best, all or an epoch number >= 0"));
  }

  for (const char* where : {"optim.lr", "=0.01", ""}) {
    request = Request();
    request.add_where(where);
    const absl::Status status = ErrorOf(request);
    EXPECT_EQ(status.code(), invalid) << where;
    EXPECT_THAT(status.message(), HasSubstr("where: ")) << where;
  }
  request = Request();
  request.add_where("optim.lr");
  EXPECT_THAT(ErrorOf(request).message(), HasSubstr("expected path=value"));

  request = Request();
  request.add_where("optim.lrr=0.01");
  EXPECT_THAT(ErrorOf(request).message(),
              HasSubstr("unknown parameter 'optim.lrr'; the sweep's swept parameters are: "
                        "optim.lr, seed"));
  request = Request();
  request.add_group_by("optim.lrr");
  EXPECT_EQ(ErrorOf(request).code(), invalid);
  EXPECT_THAT(ErrorOf(request).message(),
              HasSubstr("group_by: unknown parameter 'optim.lrr'; the sweep's swept "
                        "parameters are: optim.lr, seed"));
  request = Request();
  request.add_metrics("accuracy");
  EXPECT_THAT(ErrorOf(request).message(),
              HasSubstr("'accuracy' matches no metric of sweep"));

  request = Request();
  request.add_states(static_cast<v1::TrialState>(42));
  EXPECT_THAT(ErrorOf(request).message(), HasSubstr("states: 42 is not a trial state"));
  request = Request();
  request.add_group_by(std::string(300, 'x'));
  EXPECT_THAT(ErrorOf(request).message(), HasSubstr("group_by: expected 1 to 256 bytes"));

  request = Request();
  request.add_group_by("optim.lr");
  request.set_one_group(true);
  EXPECT_THAT(ErrorOf(request).message(),
              HasSubstr("one_group: aggregates every trial into one group; give it or "
                        "group_by, not both"));

  request = Request();
  request.set_sweep_id(0);
  EXPECT_EQ(ErrorOf(request).code(), invalid);
  request.set_sweep_id(sweep_id_ + 1);
  EXPECT_EQ(ErrorOf(request).code(), absl::StatusCode::kNotFound);
}

TEST_F(CoordinatorResultsTest, BestReadsTheSweepMetric) {
  v1::QueryResultsRequest request = Request();
  request.set_epoch("best");
  request.add_where("optim.lr=1e-2");  // the number of the stored 0.01
  request.add_group_by("optim.lr");
  auto response = coordinator_->QueryResults(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->rows_size(), 1);
  EXPECT_EQ(response->rows(0).group(0), "0.01");
  EXPECT_EQ(response->rows(0).epoch(), 1);
  EXPECT_NEAR(response->rows(0).mean(), 0.3, 1e-12);
}

}  // namespace
}  // namespace sslsweep
