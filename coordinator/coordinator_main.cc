// sslsweep-coordinator: owns the SQLite results store and serves the CLI and
// the workers over gRPC. Composition root only: flags, wiring, signals.
//
//   sslsweep-coordinator --listen 127.0.0.1:50051 --db sweeps.db
//
// Trial checkpoints are kept in --checkpoint-dir (default `<db>.checkpoints`).
// A restart on the same database and directory (after a crash or kill -9
// included) resumes every sweep as acknowledged: running trials get a fresh
// lease for their workers to reconnect. Exit codes: 0 after SIGINT/SIGTERM,
// 2 for bad flags, 1 when the database or the checkpoint directory cannot be
// opened or the address cannot be bound.

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "coordinator/checkpoint_files.h"
#include "coordinator/clock.h"
#include "coordinator/coordinator.h"
#include "coordinator/grpc_services.h"
#include "coordinator/lease_reaper.h"
#include "coordinator/store.h"

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:50051";
  std::string db_path;
  std::string port_file;
  std::string checkpoint_dir;
  sslsweep::CoordinatorOptions options;

  CLI::App app{"sslsweep coordinator: schedules sweep trials to workers and stores results"};
  app.add_option("--listen", listen, "HOST:PORT to serve on (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--db", db_path, "SQLite results database (created if absent)")->required();
  app.add_option("--port-file", port_file, "write the bound port to this file once serving");
  app.add_option("--checkpoint-dir", checkpoint_dir,
                 "where trial checkpoints are kept (default: <db>.checkpoints)");
  app.add_option("--lease-ms", options.lease_ms, "trial lease length")
      ->check(CLI::Range(int64_t{1000}, int64_t{86'400'000}))
      ->capture_default_str();
  app.add_option("--heartbeat-ms", options.heartbeat_interval_ms,
                 "heartbeat interval told to workers")
      ->check(CLI::Range(100, 600'000))
      ->capture_default_str();
  app.add_option("--quarantine-after", options.failure_policy.quarantine_after,
                 "quarantine a worker after this many failed attempts in a row (0: never)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (options.heartbeat_interval_ms * 2 > options.lease_ms) {
    std::cerr << "sslsweep-coordinator: --heartbeat-ms " << options.heartbeat_interval_ms
              << " must be at most half of --lease-ms " << options.lease_ms
              << ", or one late heartbeat loses a lease\n";
    return 2;
  }
  if (checkpoint_dir.empty()) checkpoint_dir = db_path + ".checkpoints";

  // Signals are taken by a dedicated thread (sigwait), so block them before
  // gRPC starts its threads.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto store = sslsweep::Store::Open({db_path});
  if (!store.ok()) {
    std::cerr << "sslsweep-coordinator: " << store.status().message() << "\n";
    return 1;
  }
  auto checkpoints = sslsweep::CheckpointFiles::Open({checkpoint_dir});
  if (!checkpoints.ok()) {
    std::cerr << "sslsweep-coordinator: " << checkpoints.status().message() << "\n";
    return 1;
  }
  sslsweep::SystemClock clock;
  sslsweep::Coordinator coordinator(store->get(), checkpoints->get(), &clock, options);
  if (auto s = coordinator.Recover(); !s.ok()) {
    std::cerr << "sslsweep-coordinator: recovering: " << s.message() << "\n";
    return 1;
  }
  auto server = sslsweep::CoordinatorServer::Start(&coordinator, listen);
  if (!server.ok()) {
    std::cerr << "sslsweep-coordinator: " << server.status().message() << "\n";
    return 1;
  }
  const int port = (*server)->port();
  if (!port_file.empty()) {
    // Write then rename, so a reader never sees a partial number.
    const std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }
  std::cout << "sslsweep-coordinator listening on port " << port << " (db " << db_path
            << ")" << std::endl;

  sslsweep::LeaseReaper reaper(&coordinator, options.lease_ms, &std::cerr);
  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    std::cerr << "sslsweep-coordinator: signal " << signal << ", shutting down\n";
    (*server)->Shutdown();
  });
  (*server)->Wait();
  signal_thread.join();
  return 0;
}
