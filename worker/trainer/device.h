// Where a trial computes, and at which precision: the trainer's only
// knowledge of CUDA.
//
// `device: cuda` puts the model and the data on the first CUDA device, in
// channels_last layout for 4-D tensors, with cuDNN's autotuner on;
// `device: cpu` keeps everything on the CPU in the default layout. Forward
// passes run under bf16 autocast when precision is bf16, or auto on CUDA;
// parameters, gradients and optimiser state stay fp32 either way. This file
// compiles against a CPU-only LibTorch too: there ConfigureDevice refuses
// cuda at run time.
//
// Bitwise-reproducible training (and resume) is a CPU property: on CUDA,
// cuDNN's autotuner and atomics make runs differ in the last bits.
//
// Thread contract: ConfigureDevice and AutocastScope change LibTorch's
// global (and thread-local) state; use them from the training thread.

#ifndef SSLSWEEP_WORKER_TRAINER_DEVICE_H_
#define SSLSWEEP_WORKER_TRAINER_DEVICE_H_

#include <string>

#include <torch/torch.h>

#include "analysis/compute_threads.h"

#include "absl/status/statusor.h"
#include "worker/trial_config.h"

namespace sslsweep {

struct DeviceSettings {
  torch::Device device = torch::kCPU;
  bool bf16_autocast = false;  // forward passes under bf16 autocast
  bool channels_last = false;  // 4-D parameters and inputs in NHWC
};

// Resolves config.device and config.precision, and on CUDA turns cuDNN's
// benchmark mode on. FailedPrecondition "device cuda requested but no CUDA
// device/LibTorch build" when CUDA is asked for and unavailable;
// InvalidArgument for a device or precision name outside the schema.
absl::StatusOr<DeviceSettings> ConfigureDevice(const TrialConfig& config);

// "cpu", or on CUDA the device with its name, memory and compute capability
// (the last two only in builds with SSLSWEEP_CUDA, which link the CUDA
// runtime), for logs and benchmark reports.
std::string DescribeDevice(const DeviceSettings& settings);

// Waits until the device has finished all queued work (CUDA kernels are
// asynchronous), so that wall-clock timings are true. No-op on the CPU.
void SynchronizeDevice(const DeviceSettings& settings);

// SetComputeThreads: analysis/compute_threads.h.

// Process-wide: keeps freed blocks of up to 1 GiB in the malloc heap
// instead of handing them back to the kernel. LibTorch allocates each step's
// activations afresh (tens of MiB per tensor at batch 256), and glibc serves
// any block over its mmap threshold (at most 32 MiB when adaptive) with a
// fresh mmap and returns it with munmap, so every step paid page faults for
// its whole working set (measured: VICReg ResNet-18 step, batch 256, 2
// threads, 11.3 s -> 8.7 s). The cost is that the heap stays at its peak
// size, which a trainer reaches every step anyway. Call once, early.
void KeepLargeAllocationsInHeap();

// Moves `model`'s parameters and buffers to the device, and its 4-D
// parameters to channels_last when the settings ask for it. Parameters keep
// their identity (set_data), so an optimiser built over them stays valid.
void PlaceModel(torch::nn::Module& model, const DeviceSettings& settings);

// `tensor` on the device, 4-D tensors in channels_last when asked for.
torch::Tensor PlaceTensor(const torch::Tensor& tensor,
                          const DeviceSettings& settings);

// Turns bf16 autocast on for the device's type for its lifetime when
// settings.bf16_autocast, restoring the previous state and clearing the cast
// cache at the end; does nothing otherwise. Outputs computed inside may be
// bf16: convert them to float before a loss that needs fp32.
class AutocastScope {
 public:
  explicit AutocastScope(const DeviceSettings& settings);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  const bool active_;
  const bool cuda_;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_DEVICE_H_
