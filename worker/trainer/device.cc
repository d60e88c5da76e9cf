#include "worker/trainer/device.h"

#include <malloc.h>

#include <ATen/autocast_mode.h>

#ifdef SSLSWEEP_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sslsweep {

std::string DescribeDevice(const DeviceSettings& settings) {
  if (!settings.device.is_cuda()) return settings.device.str();
#ifdef SSLSWEEP_WITH_CUDA
  cudaDeviceProp properties;
  const int index = settings.device.has_index() ? settings.device.index() : 0;
  if (cudaGetDeviceProperties(&properties, index) == cudaSuccess) {
    return absl::StrFormat("%s (%s, %.0f GiB, compute %d.%d)", settings.device.str(),
                           properties.name, properties.totalGlobalMem / 1073741824.0,
                           properties.major, properties.minor);
  }
#endif
  return settings.device.str();
}

void KeepLargeAllocationsInHeap() {
  constexpr int kOneGiB = 1 << 30;
  mallopt(M_MMAP_THRESHOLD, kOneGiB);
  mallopt(M_TRIM_THRESHOLD, kOneGiB);
}

void SynchronizeDevice(const DeviceSettings& settings) {
  if (!settings.device.is_cuda()) return;
#ifdef SSLSWEEP_WITH_CUDA
  cudaDeviceSynchronize();
#else
  // Without the CUDA runtime at hand, a device-to-host copy waits for the
  // queue just as well.
  torch::zeros({1}, torch::TensorOptions().device(settings.device)).cpu();
#endif
}

absl::StatusOr<DeviceSettings> ConfigureDevice(const TrialConfig& config) {
  DeviceSettings settings;
  if (config.device == "cuda") {
    if (!torch::cuda::is_available()) {
      return absl::FailedPreconditionError(
          "device cuda requested but no CUDA device/LibTorch build");
    }
    settings.device = torch::Device(torch::kCUDA, 0);
    settings.channels_last = true;
    at::globalContext().setBenchmarkCuDNN(true);
  } else if (config.device != "cpu") {
    return absl::InvalidArgumentError(
        absl::StrCat("device: '", config.device, "' is not one of: cpu, cuda"));
  }
  if (config.precision == "bf16") {
    settings.bf16_autocast = true;
  } else if (config.precision == "auto") {
    settings.bf16_autocast = settings.device.is_cuda();
  } else if (config.precision != "fp32") {
    return absl::InvalidArgumentError(absl::StrCat(
        "precision: '", config.precision, "' is not one of: auto, fp32, bf16"));
  }
  return settings;
}

void PlaceModel(torch::nn::Module& model, const DeviceSettings& settings) {
  model.to(settings.device);
  if (!settings.channels_last) return;
  torch::NoGradGuard no_grad;
  for (torch::Tensor& parameter : model.parameters()) {
    if (parameter.dim() == 4) {
      parameter.set_data(
          parameter.data().contiguous(at::MemoryFormat::ChannelsLast));
    }
  }
}

torch::Tensor PlaceTensor(const torch::Tensor& tensor,
                          const DeviceSettings& settings) {
  torch::Tensor placed = tensor.to(settings.device);
  if (settings.channels_last && placed.dim() == 4) {
    placed = placed.contiguous(at::MemoryFormat::ChannelsLast);
  }
  return placed;
}

// Mirrors torch.autocast's __enter__ and __exit__ (LibTorch 1.13 has no C++
// guard for it).
AutocastScope::AutocastScope(const DeviceSettings& settings)
    : active_(settings.bf16_autocast), cuda_(settings.device.is_cuda()) {
  if (!active_) return;
  if (cuda_) {
    previous_enabled_ = at::autocast::is_enabled();
    previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  } else {
    previous_enabled_ = at::autocast::is_cpu_enabled();
    previous_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  }
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (cuda_) {
    at::autocast::set_enabled(previous_enabled_);
    at::autocast::set_autocast_gpu_dtype(previous_dtype_);
  } else {
    at::autocast::set_cpu_enabled(previous_enabled_);
    at::autocast::set_autocast_cpu_dtype(previous_dtype_);
  }
}

}  // namespace sslsweep
