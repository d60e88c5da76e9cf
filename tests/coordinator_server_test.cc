// The coordinator's gRPC server speaks the standard services that tools
// rely on: grpc.health.v1.Health (load balancers, grpc_health_probe) and
// server reflection (grpcurl and grpc_cli list and call its methods without
// the .proto files). Real gRPC on loopback; the calls are generic, with the
// few protobuf bytes of those standard messages written out, so that the
// test needs no copy of their .proto files.

#include <memory>
#include <string>
#include <vector>

#include "coordinator/grpc_services.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/coordinator_test_util.h"

namespace sslsweep {
namespace {

using ::testing::HasSubstr;

grpc::ByteBuffer Bytes(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string Text(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return "";
  std::string text;
  for (const grpc::Slice& s : slices) {
    text.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return text;
}

// Waits for the completion of `tag` on `queue`; false if it failed.
bool Await(grpc::CompletionQueue& queue, void* tag) {
  void* got = nullptr;
  bool ok = false;
  if (!queue.Next(&got, &ok)) return false;
  EXPECT_EQ(got, tag);
  return ok;
}

class CoordinatorServerTest : public CoordinatorFixture {
 protected:
  void SetUp() override {
    CoordinatorFixture::SetUp();
    auto server = CoordinatorServer::Start(coordinator_.get(), "127.0.0.1:0");
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
  }

  // A unary call of `method` with the serialized request `request`.
  grpc::Status Call(const std::string& method, const std::string& request,
                    std::string* response) {
    grpc::GenericStub stub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::CompletionQueue queue;
    auto call = stub.PrepareUnaryCall(&context, method, Bytes(request), &queue);
    call->StartCall();
    grpc::ByteBuffer reply;
    grpc::Status status;
    call->Finish(&reply, &status, this);
    EXPECT_TRUE(Await(queue, this));
    *response = Text(reply);
    return status;
  }

  std::unique_ptr<CoordinatorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(CoordinatorServerTest, HealthCheckSaysServing) {
  std::string response;
  // HealthCheckRequest{service: ""} is empty; HealthCheckResponse{status:
  // SERVING} is field 1 (varint) = 1.
  grpc::Status status = Call("/grpc.health.v1.Health/Check", "", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response, std::string("\x08\x01", 2));
  // A service name it does not know is NOT_FOUND, as the protocol says.
  status = Call("/grpc.health.v1.Health/Check", std::string("\x0a\x03xyz", 5), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(CoordinatorServerTest, ReflectionListsTheSweepAndWorkerServices) {
  grpc::GenericStub stub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue queue;
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &queue);
  int start = 0, write = 0, done = 0, read = 0, finish = 0;
  call->StartCall(&start);
  ASSERT_TRUE(Await(queue, &start));
  // ServerReflectionRequest{list_services: ""}: field 7, length-delimited.
  call->Write(Bytes(std::string("\x3a\x00", 2)), &write);
  ASSERT_TRUE(Await(queue, &write));
  call->WritesDone(&done);
  ASSERT_TRUE(Await(queue, &done));
  grpc::ByteBuffer reply;
  call->Read(&reply, &read);
  ASSERT_TRUE(Await(queue, &read));
  grpc::Status status;
  call->Finish(&status, &finish);
  ASSERT_TRUE(Await(queue, &finish));
  EXPECT_TRUE(status.ok()) << status.error_message();
  const std::string services = Text(reply);
  EXPECT_THAT(services, HasSubstr("sslsweep.v1.SweepService"));
  EXPECT_THAT(services, HasSubstr("sslsweep.v1.WorkerService"));
  EXPECT_THAT(services, HasSubstr("grpc.health.v1.Health"));
}

}  // namespace
}  // namespace sslsweep
