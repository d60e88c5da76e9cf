#!/usr/bin/python3
"""The PyTorch eager peer of sslsweep-bench-train (bench/train_throughput.cc).

The same VICReg training step in plain PyTorch (torch and numpy only, no
torchvision), written as a PyTorch user would write it, on the same fixed
synthetic batch of 8-bit-like pixels in [0, 1]:

  * the CIFAR ResNet-18 of worker/trainer/resnet.h: 3x3 stride-1 stem, no
    max-pool, BasicBlocks in four stages of 64/128/256/512 channels times the
    width multiplier, global average pool; torchvision's initialisation;
  * the VICReg projector (Linear-BN-ReLU x2, Linear without bias) and loss as
    facebookresearch/vicreg's main_vicreg.py computes them;
  * LARS as that repository's (no weight decay or trust ratio on 1-D
    parameters), which is worker/trainer/lars.h's rule;
  * the augmentations of worker/trainer/augment.cc, the same algorithms as
    batched tensor ops (per-image randomness, no per-image Python loops):
    separable bilinear crop with the flip folded in, colour jitter in a random
    order per image, branch-free HSV hue rotation, grayscale, separable blur
    with per-image kernels and reflection, solarisation as min(x, 1 - x);
    VICReg's view 1 / view 2 probabilities.

The step: set the learning rate, two views, forward of both through the
backbone and projector, the loss, reading the total and terms back,
zero_grad (set_to_none=False, as LibTorch 1.13's C++ zero_grad), backward,
step.

Prints one JSON line: {"impl":"pytorch","threads":T,"batch":B,"steps":S,
"seconds":..,"images_per_second":..,"parts":{"augment":..,"forward":..,
"backward":..,"optimizer":..}}.
"""

import argparse
import ctypes
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- Configuration: the defaults of worker/trial_config.h (VICReg recipe) ---

AUGMENT = dict(
    crop_scale_min=0.2, crop_scale_max=1.0, flip_prob=0.5, jitter_prob=0.8,
    brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1,
    grayscale_prob=0.2, blur_prob_view1=1.0, blur_prob_view2=0.1,
    solarize_prob_view1=0.0, solarize_prob_view2=0.2)
PEAK_LR = 1e-3
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
LARS_ETA = 1e-3
SIM_COEFF, STD_COEFF, COV_COEFF = 25.0, 25.0, 1.0

# ---- Augmentations (augment.cc) ---------------------------------------------

MIN_RATIO, MAX_RATIO = 3.0 / 4.0, 4.0 / 3.0
MIN_BLUR_SIGMA, MAX_BLUR_SIGMA, BLUR_REFERENCE_SIDE = 0.1, 2.0, 224.0


def between(u, low, high):
    return u * (high - low) + low


def per_image(values):
    return values.view(-1, 1, 1, 1)


def luma(rgb):
    return rgb[:, 0:1] * 0.299 + rgb[:, 1:2] * 0.587 + rgb[:, 2:3] * 0.114


def selected(mask):
    return mask.nonzero().squeeze(1)


def replace_rows(images, rows, fn):
    if rows.numel() == 0:
        return images
    if rows.numel() == images.size(0):
        return fn(images, rows)
    return images.index_copy(0, rows, fn(images.index_select(0, rows), rows))


def resample_along(x, source, dim):
    """Bilinear resampling along dim at per-image coordinates [B, size]."""
    shape = [x.size(0), 1, 1, 1]
    size = x.size(dim)
    shape[dim] = size
    low_coordinate = torch.floor(source)
    low = low_coordinate.long()
    high = (low + 1).clamp_max(size - 1)
    weight = (source - low_coordinate).to(x.dtype).view(shape)
    a = x.gather(dim, low.view(shape).expand_as(x))
    b = x.gather(dim, high.view(shape).expand_as(x))
    return b.sub_(a).mul_(weight).add_(a)


def source_coordinates(centre, scale, size):
    grid = (torch.arange(size, dtype=torch.float64) * 2 + 1) / size - 1
    g = centre.double().view(-1, 1) + scale.double().view(-1, 1) * grid
    return (((g + 1) * size - 1) / 2).clamp(0, size - 1)


def random_resized_crop(images, cfg):
    batch = images.size(0)
    u = torch.rand(5, batch)
    area = between(u[0], cfg["crop_scale_min"], cfg["crop_scale_max"])
    log_area = torch.log(area)
    low = log_area.clamp_min(math.log(MIN_RATIO))
    high = (-log_area).clamp_max(math.log(MAX_RATIO))
    ratio = torch.exp(low + u[1] * (high - low))
    w = torch.sqrt(area * ratio).clamp_max(1.0)
    h = torch.sqrt(area / ratio).clamp_max(1.0)
    cx = (u[2] * 2 - 1) * (1 - w)
    cy = (u[3] * 2 - 1) * (1 - h)
    flip = 1 - 2 * (u[4] < cfg["flip_prob"]).to(w.dtype)
    columns = source_coordinates(cx, w * flip, images.size(3))
    rows = source_coordinates(cy, h, images.size(2))
    return resample_along(resample_along(images, columns, 3), rows, 2)


def adjust_brightness(x, factor):
    return (x * per_image(factor)).clamp_(0.0, 1.0)


def adjust_contrast(x, factor):
    mean = luma(x).mean((1, 2, 3), keepdim=True)
    return (x - mean).mul_(per_image(factor)).add_(mean).clamp_(0.0, 1.0)


def adjust_saturation(x, factor):
    gray = luma(x)
    return (x - gray).mul_(per_image(factor)).add_(gray).clamp_(0.0, 1.0)


_HUE_OFFSETS = torch.tensor([5.0 / 6, 3.0 / 6, 1.0 / 6]).view(1, 3, 1, 1)


def adjust_hue(x, shift):
    """Hue rotation by `shift` turns: RGB -> HSV -> RGB without branches."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    maximum = x.amax(1)
    minimum = x.amin(1)
    chroma = maximum - minimum
    is_r = r.eq(maximum).to(x.dtype)
    is_g = g.eq(maximum).to(x.dtype).mul_(1 - is_r)
    r_g = r - g
    turns = (g - b).sub_(r_g).mul_(is_r)
    turns.addcmul_((b - r).sub_(r_g), is_g).add_(r_g)
    turns.div_(chroma.clamp_min(1e-12)).sub_(is_r, alpha=4).sub_(is_g, alpha=2)
    turns.add_(4)
    turns.div_(6).add_(shift.view(-1, 1, 1) + 1)
    return ((turns.unsqueeze(1) + _HUE_OFFSETS).frac_().sub_(1.0 / 3).abs_()
            .mul_(6).sub_(1).clamp_(0.0, 1.0).mul_(chroma.unsqueeze(1))
            .add_(minimum.unsqueeze(1)).clamp_(0.0, 1.0))


JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation,
              adjust_hue)


def random_color_jitter(images, cfg):
    batch = images.size(0)
    u = torch.rand(1 + 4, batch)
    order = torch.rand(batch, 4).argsort(dim=1)
    strength = (cfg["brightness"], cfg["contrast"], cfg["saturation"],
                cfg["hue"])
    factor = [between(u[1 + op], -s, s) if op == 3 else
              between(u[1 + op], max(0.0, 1 - s), 1 + s)
              for op, s in enumerate(strength)]

    def jitter(chosen, rows):
        # Each slot of the per-image permutation: the images that apply one
        # adjustment there are gathered and adjusted together.
        x = chosen.clone()
        x_order = order.index_select(0, rows)
        x_factor = [f.index_select(0, rows) for f in factor]
        for slot in range(4):
            op_at_slot = x_order[:, slot]
            for op, fn in enumerate(JITTER_OPS):
                if strength[op] <= 0:
                    continue
                op_rows = selected(op_at_slot == op)
                if op_rows.numel() == 0:
                    continue
                x.index_copy_(0, op_rows,
                              fn(x.index_select(0, op_rows),
                                 x_factor[op].index_select(0, op_rows)))
        return x

    return replace_rows(images, selected(u[0] < cfg["jitter_prob"]), jitter)


def random_grayscale(images, probability):
    apply = torch.rand(images.size(0)) < probability
    return replace_rows(images, selected(apply),
                        lambda x, _: luma(x).repeat(1, 3, 1, 1))


def convolve_along(x, weights, radius, dim):
    """Per-image symmetric kernels [B, 2 radius + 1] along dim, reflecting."""
    size = x.size(dim)
    out = x * per_image(weights[:, radius])
    for d in range(1, radius + 1):
        w = per_image(weights[:, radius + d])
        out.narrow(dim, d, size - d).addcmul_(x.narrow(dim, 0, size - d), w)
        out.narrow(dim, 0, size - d).addcmul_(x.narrow(dim, d, size - d), w)
        for j in range(d):
            out.narrow(dim, j, 1).addcmul_(x.narrow(dim, d - j, 1), w)
            right = size - 1 - j
            out.narrow(dim, right, 1).addcmul_(
                x.narrow(dim, 2 * (size - 1) - right - d, 1), w)
    return out


def blur_each(x, sigma, radius):
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype).view(1, -1)
    sigmas = sigma.view(-1, 1)
    weights = torch.exp(-(offsets * offsets) / (2.0 * sigmas * sigmas))
    weights = weights / weights.sum(1, keepdim=True)
    return convolve_along(convolve_along(x, weights, radius, 2), weights,
                          radius, 3).clamp_(0.0, 1.0)


def random_gaussian_blur(images, probability):
    u = torch.rand(2, images.size(0))
    side_scale = max(images.size(2), images.size(3)) / BLUR_REFERENCE_SIDE
    sigma = between(u[1], MIN_BLUR_SIGMA * side_scale,
                    MAX_BLUR_SIGMA * side_scale)

    def blur(x, rows):
        x_sigma = sigma.index_select(0, rows)
        radius = min(int(math.ceil(3 * x_sigma.max().item())),
                     min(x.size(2), x.size(3)) - 1)
        return x.clone() if radius == 0 else blur_each(x, x_sigma, radius)

    return replace_rows(images, selected(u[0] < probability), blur)


def random_solarize(images, probability):
    apply = torch.rand(images.size(0)) < probability
    return replace_rows(images, selected(apply),
                        lambda x, _: torch.minimum(x, 1.0 - x))


def augment_view(images, cfg, view):
    x = random_resized_crop(images, cfg)
    x = random_color_jitter(x, cfg)
    x = random_grayscale(x, cfg["grayscale_prob"])
    x = random_gaussian_blur(x, cfg["blur_prob_view%d" % view])
    return random_solarize(x, cfg["solarize_prob_view%d" % view])

# ---- Model ------------------------------------------------------------------


class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class CifarResNet18(nn.Module):
    def __init__(self, width_multiplier=1.0):
        super().__init__()
        channels = [max(1, round(c * width_multiplier))
                    for c in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(3, channels[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels[0])
        self.relu = nn.ReLU(inplace=True)
        layers = []
        in_channels = channels[0]
        for out_channels, stride in zip(channels, (1, 2, 2, 2)):
            layers.append(nn.Sequential(
                BasicBlock(in_channels, out_channels, stride),
                BasicBlock(out_channels, out_channels, 1)))
            in_channels = out_channels
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.embedding_dim = in_channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out",
                                        nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean((2, 3))


def projector(in_features, width):
    return nn.Sequential(
        nn.Linear(in_features, width), nn.BatchNorm1d(width), nn.ReLU(True),
        nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(True),
        nn.Linear(width, width, bias=False))


def off_diagonal(x):
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def vicreg_loss(x, y):
    """facebookresearch/vicreg main_vicreg.py VICReg.forward, single process."""
    n, d = x.shape
    repr_loss = F.mse_loss(x, y)
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_y = torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = (torch.mean(F.relu(1 - std_x)) / 2 +
                torch.mean(F.relu(1 - std_y)) / 2)
    cov_x = (x.T @ x) / (n - 1)
    cov_y = (y.T @ y) / (n - 1)
    cov_loss = (off_diagonal(cov_x).pow_(2).sum().div(d) +
                off_diagonal(cov_y).pow_(2).sum().div(d))
    total = SIM_COEFF * repr_loss + STD_COEFF * std_loss + COV_COEFF * cov_loss
    return total, (repr_loss, std_loss, cov_loss)


class LARS(torch.optim.Optimizer):
    """facebookresearch/vicreg's LARS, 1-D parameters excluded."""

    def __init__(self, params, lr, weight_decay=0, momentum=0.9, eta=0.001):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay,
                                      momentum=momentum, eta=eta))

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            for p in g["params"]:
                dp = p.grad
                if dp is None:
                    continue
                if p.ndim != 1:
                    dp = dp.add(p, alpha=g["weight_decay"])
                    param_norm = torch.norm(p)
                    update_norm = torch.norm(dp)
                    one = torch.ones_like(param_norm)
                    q = torch.where(
                        param_norm > 0.0,
                        torch.where(update_norm > 0,
                                    (g["eta"] * param_norm / update_norm),
                                    one),
                        one)
                    dp = dp.mul(q)
                param_state = self.state[p]
                if "mu" not in param_state:
                    param_state["mu"] = torch.zeros_like(p)
                mu = param_state["mu"]
                mu.mul_(g["momentum"]).add_(dp)
                p.add_(mu, alpha=-g["lr"])


def make_optimizer(name, params):
    if name == "lars":
        return LARS(params, lr=PEAK_LR, weight_decay=WEIGHT_DECAY,
                    momentum=MOMENTUM, eta=LARS_ETA)
    if name == "sgd":
        return torch.optim.SGD(params, lr=PEAK_LR, momentum=MOMENTUM,
                               weight_decay=WEIGHT_DECAY)
    return torch.optim.AdamW(params, lr=PEAK_LR, weight_decay=WEIGHT_DECAY)


def learning_rate_at(step, total_steps, peak):
    # optimizer.h's schedule without warm-up: a per-step half cosine.
    return peak * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))

# ---- Benchmark --------------------------------------------------------------


def set_thread_count(threads):
    """As the trainer: LibTorch's intra-op threads and OpenBLAS's pool."""
    torch.set_num_threads(threads)
    try:
        ctypes.CDLL("libblas.so.3").openblas_set_num_threads(threads)
    except (OSError, AttributeError):
        pass  # not OpenBLAS: OPENBLAS_NUM_THREADS is the caller's to set


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--warmup-steps", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--width-multiplier", type=float, default=1.0)
    parser.add_argument("--projector", type=int, default=512)
    parser.add_argument("--optimizer", default="lars",
                        choices=("lars", "sgd", "adamw"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads < 1 or args.batch < 2 or args.steps < 1:
        parser.error("needs --threads >= 1, --batch >= 2, --steps >= 1")

    set_thread_count(args.threads)
    torch.manual_seed(args.seed)
    backbone = CifarResNet18(args.width_multiplier)
    head = projector(backbone.embedding_dim, args.projector)
    backbone.train()
    head.train()
    optimizer = make_optimizer(
        args.optimizer, list(backbone.parameters()) + list(head.parameters()))
    images = torch.randint(0, 256, (args.batch, 3, 32, 32),
                           dtype=torch.float32).div_(255)
    total_steps = args.warmup_steps + args.steps
    parts = dict(augment=0.0, forward=0.0, backward=0.0, optimizer=0.0)
    term_sums = [0.0, 0.0, 0.0]

    def train_step(step, timed):
        start = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, total_steps, PEAK_LR)
        view1 = augment_view(images, AUGMENT, 1)
        view2 = augment_view(images, AUGMENT, 2)
        t1 = time.perf_counter()
        z1 = head(backbone(view1))
        z2 = head(backbone(view2))
        loss, terms = vicreg_loss(z1, z2)
        total = loss.item()
        if not math.isfinite(total):
            raise SystemExit("the loss is not finite at step %d" % step)
        for i, term in enumerate(terms):
            term_sums[i] += term.item()
        t2 = time.perf_counter()
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        t3 = time.perf_counter()
        optimizer.step()
        t4 = time.perf_counter()
        if timed:
            parts["augment"] += t1 - start
            parts["forward"] += t2 - t1
            parts["backward"] += t3 - t2
            parts["optimizer"] += t4 - t3

    for step in range(args.warmup_steps):
        train_step(step, timed=False)
    start = time.perf_counter()
    for step in range(args.warmup_steps, total_steps):
        train_step(step, timed=True)
    seconds = time.perf_counter() - start
    print(json.dumps({
        "impl": "pytorch", "threads": args.threads, "batch": args.batch,
        "steps": args.steps, "seconds": round(seconds, 4),
        "images_per_second": round(args.steps * args.batch / seconds, 2),
        "parts": {k: round(v, 4) for k, v in parts.items()}},
        separators=(",", ":")))


if __name__ == "__main__":
    main()
