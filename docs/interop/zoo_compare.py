#!/usr/bin/env python3
"""A torchvision model against convbn's network of the same name, float64: writes what ZooTorchvisionTest
(convbn-networks) checks convbn against.

  python3 docs/interop/zoo_compare.py MODEL /tmp/MODEL_reference.safetensors [RESOLUTION]
  mvn -B test -pl convbn-networks -Dtest=ZooTorchvisionTest -Dconvbn.torchvision.reference=/tmp/MODEL_reference.safetensors

MODEL is any name of convbn's zoo (resnet18 .. wide_resnet50_2, mobilenet_v2, efficientnet_b0 .. b3). The file holds
the model's state_dict (num_batches_tracked left out), a batch of 2 random images `input` (64x64 unless RESOLUTION
says otherwise), a random direction `r` (the loss is sum(logits * r)), and per case `eval.*` (BN with running
statistics: what convbn's EVAL, TUNE and DEPLOY compute) and `train.*` (BN with batch statistics): the logits, every
parameter's gradient (`<case>.grad.<name>`) and, for train, the running statistics after the step
(`train.after.<name>`). Dropout and stochastic depth are off in both (p = 0): they draw from different generators.
BN gamma and beta are random, and the running statistics are set by one train-mode forward at momentum 1 over 4
other images, so that the signal survives the depth as in a trained network. The metadata names the model.

PyTorch's float64 hardsigmoid backward multiplies by float32's 1/6 (1.0f / 6.0f, 2.98e-8 relative off the exact
derivative), so MobileNetV3's gates compute hardsigmoid here as relu6(x + 3) / 6: the same function, with an exact
backward.
"""
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "transfer"))
from torch_safetensors import save  # noqa: E402

model, out = sys.argv[1], sys.argv[2]
side = int(sys.argv[3]) if len(sys.argv) > 3 else 64
torch.manual_seed(0)
m = getattr(torchvision.models, model)(num_classes=10).double()


class ExactHardsigmoid(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.relu6(x + 3) / 6


for mod in m.modules():
    if isinstance(mod, (torch.nn.Dropout, torchvision.ops.StochasticDepth)):
        mod.p = 0.0
    if isinstance(mod, torchvision.ops.SqueezeExcitation) and isinstance(mod.scale_activation, torch.nn.Hardsigmoid):
        mod.scale_activation = ExactHardsigmoid()
g = torch.Generator().manual_seed(1)
momentum = {}  # each BN's own (0.1, MobileNetV3's 0.01), put back after the calibration
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.weight.copy_(0.5 + torch.rand(mod.num_features, generator=g, dtype=torch.float64))
            mod.bias.copy_(0.2 * (torch.rand(mod.num_features, generator=g, dtype=torch.float64) - 0.5))
            momentum[mod] = mod.momentum
            mod.momentum = 1.0
    m.train()
    m(torch.rand(4, 3, side, side, generator=g, dtype=torch.float64) - 0.5)
    for mod, value in momentum.items():
        mod.momentum = value

tensors = {k: v.clone() for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}
x = torch.rand(2, 3, side, side, generator=g, dtype=torch.float64) - 0.5
r = torch.rand(2, 10, generator=g, dtype=torch.float64) - 0.5
tensors["input"] = x
tensors["r"] = r
for case in ("eval", "train"):
    m.load_state_dict({k: v for k, v in tensors.items() if k not in ("input", "r")}, strict=False)
    m.zero_grad()
    m.train(case == "train")
    logits = m(x)
    (logits * r).sum().backward()
    tensors[case + ".logits"] = logits.detach().clone()
    for name, p in m.named_parameters():
        tensors[case + ".grad." + name] = p.grad.detach().clone()
    if case == "train":
        for name, b in m.named_buffers():
            if not name.endswith("num_batches_tracked"):
                tensors["train.after." + name] = b.detach().clone()
save(tensors, out, {"model": model, "torch": torch.__version__, "torchvision": torchvision.__version__})
print("wrote", out, len(tensors), "tensors")
