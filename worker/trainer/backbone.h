// Backbone: the network whose representations a trial studies, with named
// layer taps for the layer-wise analysis.
//
// Implementations: ConvNet (convnet.h), MLP (mlp.h), the CIFAR variant of
// ResNet-18/34 (resnet.h). ForwardTaps returns every tap by name in order
// from input to output; the last one is always "embedding" ([B, D], the
// representation the SSL head sees). MakeBackbone builds the one a
// configuration names.
//
// Thread contract: a module is not thread-safe; confine each instance to one
// thread (LibTorch parallelises inside each operation).

#ifndef SSLSWEEP_WORKER_TRAINER_BACKBONE_H_
#define SSLSWEEP_WORKER_TRAINER_BACKBONE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "worker/trial_config.h"

namespace sslsweep {

class Backbone : public torch::nn::Module {
 public:
  // Every tap for images [B, C, H, W], ending with "embedding" [B, D].
  virtual torch::OrderedDict<std::string, torch::Tensor> ForwardTaps(
      const torch::Tensor& images) = 0;
  // The embedding alone (cheaper: no taps kept), [B, embedding_dim()].
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
  virtual int64_t embedding_dim() const = 0;
  // The names ForwardTaps returns, in order.
  virtual std::vector<std::string> tap_names() const = 0;
};

// The input a backbone is built for.
struct ImageShape {
  int64_t channels = 1;
  int64_t height = 28;
  int64_t width = 28;
};

// Builds config.name ("convnet", "mlp", "resnet18", "resnet34") for images of
// `shape`, initialised from the global LibTorch generator.
std::shared_ptr<Backbone> MakeBackbone(const BackboneConfig& config, const ImageShape& shape);

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_TRAINER_BACKBONE_H_
