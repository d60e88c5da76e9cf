#include "worker/trainer/checkpoint.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <ATen/CPUGeneratorImpl.h>

#include "absl/strings/str_cat.h"

namespace sslsweep {

absl::Status SaveCheckpoint(const std::string& path, int64_t epoch,
                            const torch::nn::Module& model,
                            const torch::optim::Optimizer& optimizer) {
  const std::string temporary = absl::StrCat(path, ".tmp");
  try {
    torch::serialize::OutputArchive archive;
    torch::serialize::OutputArchive model_archive;
    model.save(model_archive);
    archive.write("model", model_archive);
    torch::serialize::OutputArchive optimizer_archive;
    optimizer.save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
    archive.write("epoch", torch::tensor(epoch, torch::kInt64));
    archive.write("rng_state",
                  at::detail::getDefaultCPUGenerator().get_state());
    archive.save_to(temporary);
  } catch (const c10::Error& e) {
    std::remove(temporary.c_str());
    return absl::UnavailableError(absl::StrCat(
        path, ": cannot write checkpoint: ", e.what_without_backtrace()));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(temporary.c_str());
    return absl::UnavailableError(
        absl::StrCat(path, ": cannot write checkpoint: ", std::strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace sslsweep
