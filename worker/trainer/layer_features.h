// Layer features: what the trainer hands to the metric suite
// (analysis/metric_suite.h) after an epoch, apart from the metrics
// themselves:
//   - the network's layer taps (the backbone's, then the projector's
//     "projector1".."projectorK") and the selection analysis.layers makes,
//   - the features of those taps for a set of images, from one no-grad
//     forward pass,
//   - the rows that are measured and the label sets (targets) on them:
//     fine, coarse, random, the user's label files, and the `sample`
//     target's fixed augmented views.
// PrepareMeasurement builds the fixed parts once per trial;
// CollectLayerFeatures runs at each measured epoch.
//
// Thread contract: the functions use the modules they are given and
// PrepareMeasurement uses LibTorch's global generators (restoring them);
// call them from the training thread.

#ifndef SSLSWEEP_WORKER_TRAINER_LAYER_FEATURES_H_
#define SSLSWEEP_WORKER_TRAINER_LAYER_FEATURES_H_

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "analysis/metric_suite.h"
#include "worker/trainer/backbone.h"
#include "worker/trainer/dataset.h"
#include "worker/trainer/device.h"
#include "worker/trainer/ssl_method.h"
#include "worker/trial_config.h"

namespace sslsweep {

// Seeds of the trial's fixed random parts: config.seed plus these offsets,
// so that they are the same at every epoch and after a resume, and apart
// from the training generator's stream.
inline constexpr uint64_t kRandomTrainLabelsSeedOffset = 0x5eed0001;
inline constexpr uint64_t kRandomTestLabelsSeedOffset = 0x5eed0002;
inline constexpr uint64_t kSampleViewsSeedOffset = 0x5eed0003;

// Every tap of the network, in forward order: backbone.tap_names() (ending
// with "embedding"), then method.projector_tap_names().
std::vector<std::string> NetworkTapNames(const Backbone& backbone, const SslMethod& method);

// analysis.layers resolved against `taps`: "all" is every tap; otherwise the
// named taps, in the network's order. InvalidArgument "analysis.layers: the
// network has no tap 'x'; its taps: stage1, ..., projector3" for a name
// `taps` lacks (or a malformed list).
absl::StatusOr<std::vector<std::string>> SelectTaps(const std::string& layers,
                                                    const std::vector<std::string>& taps);

// The features of `images` at `taps`, float32 [N, D_tap] on the device, in
// `taps` order: one forward of the backbone per batch of `batch_rows`
// images (and of the projector, only when a projector tap is selected)
// under NoGradGuard and the device's autocast. Taps with spatial dimensions
// ([B, C, H, W]) are averaged over them to [B, C]; 2-D taps are kept.
// REQUIRES: the modules in eval() (running BatchNorm statistics) and on
// settings.device; `taps` a subset of NetworkTapNames; images [N, C, H, W]
// with N > 0; batch_rows > 0.
std::vector<torch::Tensor> CollectLayerFeatures(Backbone& backbone, SslMethod& method,
                                                const torch::Tensor& images,
                                                const std::vector<std::string>& taps,
                                                const DeviceSettings& settings,
                                                int64_t batch_rows = 256);

// The fixed parts of a trial's measurement.
struct MeasurementPlan {
  std::vector<std::string> taps;  // selected, in the network's order
  SuiteOptions suite;
  // The first analysis.max_samples (0: all) training and test images:
  // slices of the trial's images, on their device, unaugmented.
  torch::Tensor train_images;
  torch::Tensor test_images;
  // The selected targets other than `sample`, in analysis.targets order,
  // labels on the images' device.
  std::vector<Target> targets;
  // The `sample` target when selected (else sample_train_images is
  // undefined): the first analysis.sample_images training images (at most
  // all of them), analysis.sample_views augmented views each for the train
  // rows and as many other views for the test rows, view-major (row
  // v * S + i is view v of image i); labels are the image index.
  torch::Tensor sample_train_images;
  torch::Tensor sample_test_images;
  Target sample;
};

// Builds the plan of `config` for `data` (images on the device, labels on
// the CPU) and the network's taps (NetworkTapNames). The random partition
// and the sample views are seeded from config.seed (the offsets above); the
// views come from AugmentView with config.augment (alternately the recipe's
// view 1 and 2), drawn from the global generators reseeded for the purpose
// and then restored, so that the training's random stream is untouched.
// User label files are read here. Fails with:
//   InvalidArgument  analysis keys out of range or inconsistent, an unknown
//                    tap (see SelectTaps); a label file that is not a 1-D
//                    integer array, has fewer labels than the rows used or
//                    a label outside [0, 100000) (the message names the
//                    file); analysis.max_samples 1
//   NotFound         a label file does not exist (named)
//   DataLoss         a label file is not a readable .npy file (named)
absl::StatusOr<MeasurementPlan> PrepareMeasurement(const TrialConfig& config,
                                                   const TrialData& data,
                                                   const std::vector<std::string>& network_taps,
                                                   const DeviceSettings& settings);

// The features of a plan's measured images at its taps, each set from
// CollectLayerFeatures; sample_train and sample_test are empty when the
// plan has no `sample` target.
struct PlanFeatures {
  std::vector<torch::Tensor> train;
  std::vector<torch::Tensor> test;
  std::vector<torch::Tensor> sample_train;
  std::vector<torch::Tensor> sample_test;
};
PlanFeatures CollectPlanFeatures(Backbone& backbone, SslMethod& method,
                                 const MeasurementPlan& plan, const DeviceSettings& settings,
                                 int64_t batch_rows);

// Every selected (tap, target, metric) value of `plan` (MeasureLayer), tap
// by tap: the `sample` target's (on its views) first, then the other
// targets'. Values the suite leaves undefined are included as it gives
// them (non-finite); the caller decides what to write.
std::vector<MetricValue> MeasurePlan(const MeasurementPlan& plan, const PlanFeatures& features);

// Writes, into `dir` (created if missing), `<tap>.train.npy` and
// `<tap>.test.npy` for each tap (float32 [rows, D]) and labels.fine.train.npy,
// labels.fine.test.npy, labels.coarse.train.npy, labels.coarse.test.npy
// (int64 [rows]) of the measured rows. Unavailable naming the path on a
// write failure.
// REQUIRES: train_features/test_features from CollectLayerFeatures of
// plan.train_images/test_images at plan.taps; labels of the full subsets
// in `data`.
absl::Status ExportLayerFeatures(const std::string& dir, const MeasurementPlan& plan,
                                 const std::vector<torch::Tensor>& train_features,
                                 const std::vector<torch::Tensor>& test_features,
                                 const TrialData& data);

// Saves the global CPU generator's state (and that of `device` when it is a
// CUDA device) and restores it at the end of the scope.
class GlobalGeneratorsGuard {
 public:
  explicit GlobalGeneratorsGuard(torch::Device device);
  ~GlobalGeneratorsGuard();
  GlobalGeneratorsGuard(const GlobalGeneratorsGuard&) = delete;
  GlobalGeneratorsGuard& operator=(const GlobalGeneratorsGuard&) = delete;

 private:
  const torch::Device device_;
  torch::Tensor cpu_state_;
  torch::Tensor device_state_;  // undefined on the CPU
};

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_LAYER_FEATURES_H_
