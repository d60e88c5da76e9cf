// sslsweep-worker: the agent process. Composition root only.
//
//   sslsweep-worker --coordinator 127.0.0.1:50051 [--work-dir DIR]
//                   [--advertise-address HOST] [--rendezvous-timeout-ms MS]
//
// --advertise-address is how the other ranks of a data-parallel trial reach
// this worker when it runs rank 0 (default: the hostname); it must resolve
// to an address of this host that the other workers can reach.
//
// SIGINT/SIGTERM stop the agent (Agent::Stop): a running trial is released
// back to the coordinator's queue, reports still queued are delivered for up
// to --drain-timeout-ms.
//
// Exit codes: 0 after SIGINT/SIGTERM (or when idle with --exit-when-idle),
// 1 when the coordinator cannot be reached or refuses registration, 2 for
// bad flags.

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "grpcpp/grpcpp.h"
#include "worker/agent/agent.h"
#include "worker/agent/coordinator_connection.h"

namespace {

std::string Hostname() {
  char name[256] = {0};
  gethostname(name, sizeof(name) - 1);
  return name[0] != '\0' ? name : "localhost";
}

}  // namespace

int main(int argc, char** argv) {
  const char* env_address = std::getenv("SSLSWEEP_COORDINATOR");
  std::string address = env_address != nullptr ? env_address : "127.0.0.1:50051";
  sslsweep::AgentOptions options;
  options.trainer_path = sslsweep::ExecutableDir() + "/sslsweep-train";
  options.work_dir = "sslsweep-work";
  options.hostname = Hostname();
  options.advertise_address = options.hostname;

  CLI::App app{"sslsweep worker: leases trials from a coordinator and runs them"};
  app.add_option("--coordinator", address,
                 "coordinator HOST:PORT (default: $SSLSWEEP_COORDINATOR or 127.0.0.1:50051)")
      ->capture_default_str();
  app.add_option("--work-dir", options.work_dir, "where trial directories are written")
      ->capture_default_str();
  app.add_option("--trainer", options.trainer_path, "the sslsweep-train binary")
      ->check(CLI::ExistingFile)
      ->capture_default_str();
  app.add_option("--trainer-threads", options.trainer_threads,
                 "LibTorch threads per trainer (0: the trial's own setting)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--connect-timeout-ms", options.connect_timeout_ms,
                 "how long to try to reach the coordinator at start")
      ->check(CLI::Range(0, 3'600'000))
      ->capture_default_str();
  app.add_option("--advertise-address", options.advertise_address,
                 "host name or IP address at which the other ranks of a data-parallel trial "
                 "reach this worker's rank 0 (default: the hostname)")
      ->capture_default_str();
  app.add_option("--rendezvous-timeout-ms", options.rendezvous_timeout_ms,
                 "how long a rank k > 0 waits for rank 0's rendezvous before it gives the "
                 "attempt up")
      ->check(CLI::Range(0, 86'400'000))
      ->capture_default_str();
  app.add_option("--drain-timeout-ms", options.drain_timeout_ms,
                 "after SIGTERM, how long to keep delivering queued reports")
      ->check(CLI::Range(0, 3'600'000))
      ->capture_default_str();
  app.add_flag("--exit-when-idle", options.exit_when_idle,
               "exit once no running sweep has an unfinished trial");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  options.coordinator_address = address;

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Reconnects within about a second of a coordinator restart.
  auto channel = sslsweep::MakeCoordinatorChannel(address);
  sslsweep::Agent agent(options, sslsweep::v1::WorkerService::NewStub(channel));
  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    if (signal != 0) agent.Stop();
  });
  absl::Status status = agent.Run();
  // Wake the signal thread if Run() ended by itself.
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  if (!status.ok()) {
    std::cerr << "sslsweep-worker: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
