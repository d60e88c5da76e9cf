#include "worker/trainer/backbone.h"

#include "worker/trainer/convnet.h"
#include "worker/trainer/mlp.h"
#include "worker/trainer/resnet.h"

namespace sslsweep {

std::shared_ptr<Backbone> MakeBackbone(const BackboneConfig& config,
                                       const ImageShape& shape) {
  TORCH_CHECK(shape.channels >= 1 && shape.height >= 1 && shape.width >= 1,
              "MakeBackbone: image shape must be positive, got ",
              shape.channels, "x", shape.height, "x", shape.width);
  if (config.name == "convnet") {
    TORCH_CHECK(config.depth >= 1 && config.width >= 1,
                "backbone.depth and backbone.width must be >= 1 for convnet");
    return std::make_shared<ConvNetImpl>(
        ConvNetOptions{shape.channels, config.depth, config.width});
  }
  if (config.name == "mlp") {
    TORCH_CHECK(config.depth >= 1 && config.width >= 1,
                "backbone.depth and backbone.width must be >= 1 for mlp");
    return std::make_shared<Mlp>(
        MlpOptions{shape.channels * shape.height * shape.width, config.depth,
                   config.width});
  }
  if (config.name == "resnet18" || config.name == "resnet34") {
    TORCH_CHECK(config.width_multiplier > 0,
                "backbone.width_multiplier must be > 0, got ",
                config.width_multiplier);
    return std::make_shared<ResNet>(ResNetOptions{
        shape.channels,
        config.name == "resnet18" ? kResNet18Stages : kResNet34Stages,
        config.width_multiplier});
  }
  TORCH_CHECK(false, "backbone.name: '", config.name,
              "' is not one of: convnet, mlp, resnet18, resnet34");
}

}  // namespace sslsweep
