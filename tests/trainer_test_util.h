// Helpers shared by the trainer's test files: a tiny synthetic trial, a
// fake clock, running a trial in-process and reading its metrics back.

#ifndef SSLSWEEP_TESTS_TRAINER_TEST_UTIL_H_
#define SSLSWEEP_TESTS_TRAINER_TEST_UTIL_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include <torch/torch.h>

#include "analysis/npy.h"
#include "nlohmann/json.hpp"
#include "tests/test_util.h"
#include "worker/trainer/trainer.h"
#include "worker/trial_config.h"

namespace sslsweep {

inline TrialConfig TinySyntheticConfig() {
  TrialConfig config;
  config.seed = 5;
  config.epochs = 2;
  config.threads = 1;
  config.data.dataset = "synthetic";
  config.data.train_samples = 256;
  config.backbone.depth = 2;
  config.backbone.width = 8;
  config.projector.hidden = 32;
  config.projector.out = 32;
  config.optim.batch_size = 64;
  config.analysis.sample_images = 16;
  config.analysis.sample_views = 4;
  return config;
}

// A clock that advances one second per reading, so that the epoch times
// (and hence whole metrics files) are reproducible.
inline std::function<double()> FakeClock() {
  auto now = std::make_shared<double>(0.0);
  return [now] { return *now += 1.0; };
}

struct TrialRun {
  absl::Status status;
  std::string metrics;  // metrics.jsonl
  std::string echoed;   // what went to metrics_echo
  std::string log;      // what went to the progress log
};

// Runs `config` into `out` with the fake clock; stop_after_epoch as
// TrainerOptions (0: to the end).
inline TrialRun RunInProcess(const TrialConfig& config, const std::filesystem::path& out,
                             int64_t stop_after_epoch = 0) {
  std::ostringstream echo;
  std::ostringstream log;
  TrainerOptions options;
  options.out_dir = out.string();
  options.metrics_echo = &echo;
  options.log = &log;
  options.now_seconds = FakeClock();
  options.stop_after_epoch = stop_after_epoch;
  TrialRun run;
  run.status = RunTrial(config, options);
  run.metrics = ReadFile(out / "metrics.jsonl");
  run.echoed = echo.str();
  run.log = log.str();
  return run;
}

// epoch -> {name -> value} of a metrics.jsonl text.
inline std::map<int64_t, std::map<std::string, double>> MetricsByEpoch(const std::string& text) {
  std::map<int64_t, std::map<std::string, double>> epochs;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto json = nlohmann::json::parse(line);
    if (json.contains("name")) {
      epochs[json.at("epoch").get<int64_t>()][json.at("name")] = json.at("value").get<double>();
    }
  }
  return epochs;
}

// Writes int64 labels i % classes for `rows` samples as a .npy file.
inline std::string WriteLabels(const std::filesystem::path& path, int64_t rows, int64_t classes) {
  WriteNpy(path.string(), torch::arange(rows, torch::kInt64).remainder(classes));
  return path.string();
}

}  // namespace sslsweep

#endif  // SSLSWEEP_TESTS_TRAINER_TEST_UTIL_H_
