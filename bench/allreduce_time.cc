// sslsweep-bench-allreduce: issue 6's gradient all-reduce time per step.
// N ranks (processes: this binary runs rank 0 and spawns the others as
// itself with --rank) each hold ResNet-18's gradients (CIFAR variant, as the
// trainer builds it, plus the default 3-layer 512-wide projector) and run
// DataParallelGroup::AverageGradients, the trainer's per-step call, over Gloo
// on loopback. Prints one JSON line from rank 0:
//   {"ranks":N,"parameters":P,"megabytes":M,"bucket_mb":B,"steps":S,
//    "ms_per_step":{"p50":..,"min":..,"max":..}}
//
//   sslsweep-bench-allreduce [--ranks 2] [--steps 20] [--bucket-mb 25]

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "CLI/CLI.hpp"
#include "worker/agent/subprocess.h"
#include "worker/trainer/backbone.h"
#include "worker/trainer/data_parallel_group.h"
#include "worker/trainer/projector.h"

int main(int argc, char** argv) {
  int ranks = 2;
  int rank = 0;
  int port = 0;
  int steps = 20;
  int bucket_mb = 25;
  CLI::App app{"Gradient all-reduce time per step for ResNet-18 over Gloo"};
  app.add_option("--ranks", ranks, "processes")->check(CLI::Range(2, 64));
  app.add_option("--rank", rank, "(internal) this process's rank");
  app.add_option("--port", port, "(internal) rank 0's port");
  app.add_option("--steps", steps, "timed steps (after 2 warm-up steps)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--bucket-mb", bucket_mb, "all-reduce bucket size")
      ->check(CLI::Range(1, 4096));
  CLI11_PARSE(app, argc, argv);
  torch::set_num_threads(1);

  torch::manual_seed(0);
  sslsweep::BackboneConfig config;
  config.name = "resnet18";
  auto backbone = sslsweep::MakeBackbone(config, {3, 32, 32});
  sslsweep::Projector projector(sslsweep::ProjectorOptions{backbone->embedding_dim(), 512, 512, 3});
  std::vector<torch::Tensor> parameters = backbone->parameters();
  for (const torch::Tensor& p : projector->parameters()) parameters.push_back(p);
  int64_t numel = 0;
  for (torch::Tensor& p : parameters) {
    p.mutable_grad() = torch::randn_like(p);
    numel += p.numel();
  }

  std::vector<std::unique_ptr<sslsweep::Subprocess>> others;
  sslsweep::DataParallelOptions options;
  options.rank = rank;
  options.world_size = ranks;
  options.master_port = port;
  options.bucket_bytes = int64_t{bucket_mb} << 20;
  if (rank == 0) {
    options.on_listening = [&](int listening) {
      for (int r = 1; r < ranks; ++r) {
        sslsweep::SubprocessOptions spawn;
        spawn.argv = {sslsweep::ExecutableDir() + "/sslsweep-bench-allreduce", "--ranks",
                      std::to_string(ranks), "--rank", std::to_string(r), "--port",
                      std::to_string(listening), "--steps", std::to_string(steps),
                      "--bucket-mb", std::to_string(bucket_mb)};
        auto child = sslsweep::Subprocess::Spawn(spawn);
        if (child.ok()) others.push_back(std::move(*child));
      }
    };
  }
  auto group = sslsweep::DataParallelGroup::Connect(options);
  if (!group.ok()) {
    std::cerr << "rank " << rank << ": " << group.status().message() << "\n";
    return 1;
  }
  std::vector<double> ms;
  for (int step = 0; step < steps + 2; ++step) {
    const auto start = std::chrono::steady_clock::now();
    if (auto s = (*group)->AverageGradients(parameters); !s.ok()) {
      std::cerr << "rank " << rank << ": " << s.message() << "\n";
      return 1;
    }
    const double elapsed =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count();
    if (step >= 2) ms.push_back(elapsed);
  }
  for (auto& other : others) other->Wait();
  if (rank != 0) return 0;
  std::sort(ms.begin(), ms.end());
  std::printf(
      "{\"ranks\":%d,\"parameters\":%lld,\"megabytes\":%.1f,\"bucket_mb\":%d,\"steps\":%d,"
      "\"ms_per_step\":{\"p50\":%.2f,\"min\":%.2f,\"max\":%.2f}}\n",
      ranks, static_cast<long long>(numel), numel * 4 / 1e6, bucket_mb, steps,
      ms[ms.size() / 2], ms.front(), ms.back());
  return 0;
}
