#include "worker/trainer/checkpoint.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace sslsweep {
namespace {

constexpr char kModelKey[] = "model";
constexpr char kOptimizerKey[] = "optimizer";
constexpr char kEpochKey[] = "epoch";
constexpr char kStepKey[] = "step";
constexpr char kCpuRngKey[] = "rng_state";
constexpr char kCudaRngKey[] = "cuda_rng_state";
constexpr char kConfigKey[] = "config";

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Names the first key whose line differs between two TrialConfigToYaml
// texts ("optim.lr is 0.2 in the checkpoint, 0.1 here"). The texts list
// sections as unindented "name:" lines and keys as "  key: value".
std::string DescribeDifference(const std::string& checkpoint,
                               const std::string& here) {
  const std::vector<std::string> a = Lines(checkpoint);
  const std::vector<std::string> b = Lines(here);
  std::string section;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const bool indented = !b[i].empty() && b[i][0] == ' ';
    if (!indented && !b[i].empty() && b[i].back() == ':') {
      section = b[i].substr(0, b[i].size() - 1);
    }
    if (a[i] == b[i]) continue;
    const size_t colon_a = a[i].find(": ");
    const size_t colon_b = b[i].find(": ");
    if (colon_a == std::string::npos || colon_b == std::string::npos ||
        a[i].substr(0, colon_a) != b[i].substr(0, colon_b)) {
      break;
    }
    std::string key = b[i].substr(0, colon_b);
    key.erase(0, key.find_first_not_of(' '));
    if (indented) key = absl::StrCat(section, ".", key);
    return absl::StrCat(key, " is ", a[i].substr(colon_a + 2),
                        " in the checkpoint, ", b[i].substr(colon_b + 2),
                        " here");
  }
  return "the checkpoint's configuration has other keys";
}

void SetGeneratorState(torch::Device device, const torch::Tensor& state) {
  at::Generator generator = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state.to(torch::kCPU));
}

torch::Tensor GeneratorState(torch::Device device) {
  at::Generator generator = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

int64_t ReadInt(torch::serialize::InputArchive& archive, const char* key) {
  torch::Tensor value;
  archive.read(key, value);
  return value.item<int64_t>();
}

void FlattenInto(torch::serialize::InputArchive& archive,
                 const std::string& prefix,
                 std::map<std::string, torch::Tensor>& out) {
  for (const std::string& key : archive.keys()) {
    torch::Tensor tensor;
    torch::serialize::InputArchive nested;
    if (archive.try_read(key, tensor)) {
      out.emplace(prefix + key, tensor.to(torch::kCPU));
    } else if (archive.try_read(key, nested)) {
      FlattenInto(nested, prefix + key + ".", out);
    }
  }
}

}  // namespace

std::string CheckpointConfigText(const TrialConfig& config) {
  TrialConfig bound = config;
  bound.threads = 0;
  return TrialConfigToYaml(bound);
}

Checkpointer::Checkpointer(std::string path, const TrialConfig& config,
                           torch::nn::Module& model,
                           torch::optim::Optimizer& optimizer,
                           torch::Device device)
    : path_(std::move(path)),
      config_text_(CheckpointConfigText(config)),
      model_(model),
      optimizer_(optimizer),
      device_(device) {}

bool Checkpointer::Exists() const {
  std::error_code error;
  return std::filesystem::exists(path_, error);
}

absl::Status Checkpointer::Save(const TrainingProgress& progress) const {
  const std::string temporary = absl::StrCat(path_, ".tmp");
  try {
    torch::serialize::OutputArchive archive;
    torch::serialize::OutputArchive model_archive;
    model_.save(model_archive);
    archive.write(kModelKey, model_archive);
    torch::serialize::OutputArchive optimizer_archive;
    optimizer_.save(optimizer_archive);
    archive.write(kOptimizerKey, optimizer_archive);
    archive.write(kEpochKey, torch::tensor(progress.epoch, torch::kInt64));
    archive.write(kStepKey, torch::tensor(progress.step, torch::kInt64));
    archive.write(kCpuRngKey, GeneratorState(torch::kCPU));
    if (device_.is_cuda()) {
      archive.write(kCudaRngKey, GeneratorState(device_));
    }
    archive.write(kConfigKey, c10::IValue(config_text_));
    archive.save_to(temporary);
  } catch (const c10::Error& e) {
    std::remove(temporary.c_str());
    return absl::UnavailableError(absl::StrCat(
        path_, ": cannot write checkpoint: ", e.what_without_backtrace()));
  }
  if (std::rename(temporary.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    std::remove(temporary.c_str());
    return absl::UnavailableError(
        absl::StrCat(path_, ": cannot write checkpoint: ", std::strerror(err)));
  }
  return absl::OkStatus();
}

absl::StatusOr<TrainingProgress> Checkpointer::Restore() {
  const std::string advice =
      "; delete it or give this trial another output directory";
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path_, device_);
    c10::IValue config;
    if (!archive.try_read(kConfigKey, config) || !config.isString()) {
      return absl::FailedPreconditionError(absl::StrCat(
          path_,
          ": the checkpoint records no trial configuration (an older "
          "sslsweep-train wrote it)",
          advice));
    }
    if (config.toStringRef() != config_text_) {
      return absl::FailedPreconditionError(absl::StrCat(
          path_, ": the checkpoint belongs to another trial configuration (",
          DescribeDifference(config.toStringRef(), config_text_), ")", advice));
    }
    TrainingProgress progress;
    progress.epoch = ReadInt(archive, kEpochKey);
    progress.step = ReadInt(archive, kStepKey);
    torch::serialize::InputArchive model_archive;
    archive.read(kModelKey, model_archive);
    model_.load(model_archive);
    torch::serialize::InputArchive optimizer_archive;
    archive.read(kOptimizerKey, optimizer_archive);
    optimizer_.load(optimizer_archive);
    torch::Tensor cpu_rng;
    archive.read(kCpuRngKey, cpu_rng);
    torch::Tensor cuda_rng;
    if (device_.is_cuda()) archive.read(kCudaRngKey, cuda_rng);
    // Set the generators last: nothing above draws from them, and a failed
    // read leaves them as they were.
    SetGeneratorState(torch::kCPU, cpu_rng);
    if (device_.is_cuda()) SetGeneratorState(device_, cuda_rng);
    return progress;
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat(
        path_, ": cannot read checkpoint: ", e.what_without_backtrace()));
  }
}

absl::StatusOr<std::map<std::string, torch::Tensor>> ReadCheckpointModel(
    const std::string& path) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path, torch::kCPU);
    torch::serialize::InputArchive model;
    archive.read(kModelKey, model);
    std::map<std::string, torch::Tensor> tensors;
    FlattenInto(model, "", tensors);
    return tensors;
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat(
        path, ": cannot read checkpoint: ", e.what_without_backtrace()));
  }
}

}  // namespace sslsweep
