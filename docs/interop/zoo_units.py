#!/usr/bin/env python3
"""One small unit of each family of convbn's zoo, built by torchvision and run in float64: the committed reference
ZooUnitsTest (convbn-networks) checks convbn's MBConv against in every mode.

  python3 docs/interop/zoo_units.py convbn-networks/src/test/resources/torchvision/units.safetensors

Units, under their prefix: `v2.` MobileNetV2's InvertedResidual (8 -> 8 channels, expansion 6, residual); `v3.`
MobileNetV3's (8 -> 8, expanded 24, 3x3, gate with hardsigmoid, hardswish, residual); `b0.` EfficientNet's MBConv
(8 -> 16, expansion 4, 3x3/2, gate with SiLU and sigmoid); `y.` RegNet's ResBottleneckBlock (8 -> 16, stride 2,
groups of 8, gate, projection shortcut). Per unit: its state_dict with random BN affine and running statistics, an
input `<p>input` [2, C, 6, 6], a direction `<p>r` (the loss is sum(out * r)), and per case (`eval`: BN on running
statistics, `train`: batch statistics) `<p><case>.out`, `<p><case>.grad.input`, `<p><case>.grad.<name>` and for
train `<p>train.after.<name>` (running statistics after the step). The gate's hardsigmoid is relu6(x + 3) / 6: the same
function with an exact backward (PyTorch's float64 hardsigmoid backward multiplies by float32's 1/6).
"""
import os
import sys

import torch
import torchvision
from torchvision.models.efficientnet import MBConv, MBConvConfig
from torchvision.models.mobilenetv2 import InvertedResidual as InvertedResidualV2
from torchvision.models.mobilenetv3 import InvertedResidual as InvertedResidualV3, InvertedResidualConfig
from torchvision.models.regnet import ResBottleneckBlock

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "transfer"))
from torch_safetensors import save  # noqa: E402


class ExactHardsigmoid(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.relu6(x + 3) / 6


torch.manual_seed(0)
norm = torch.nn.BatchNorm2d
units = {
    "v2.": (InvertedResidualV2(8, 8, 1, 6), 8),
    "v3.": (InvertedResidualV3(InvertedResidualConfig(8, 3, 24, 8, True, "HS", 1, 1, 1.0),
                               lambda c: torch.nn.BatchNorm2d(c, eps=0.001, momentum=0.01)), 8),
    "b0.": (MBConv(MBConvConfig(4, 3, 2, 8, 16, 1), 0.0, norm), 8),
    "y.": (ResBottleneckBlock(8, 16, 2, norm, torch.nn.ReLU, 8, 1.0, 0.25), 8),
}
out_path = sys.argv[1]
g = torch.Generator().manual_seed(1)
tensors = {}
for prefix, (unit, channels) in units.items():
    unit = unit.double()
    for mod in unit.modules():
        if isinstance(mod, torchvision.ops.SqueezeExcitation) and isinstance(mod.scale_activation,
                                                                              torch.nn.Hardsigmoid):
            mod.scale_activation = ExactHardsigmoid()
        if isinstance(mod, torch.nn.BatchNorm2d):
            with torch.no_grad():
                n = mod.num_features
                mod.weight.copy_(0.5 + torch.rand(n, generator=g, dtype=torch.float64))
                mod.bias.copy_(0.4 * (torch.rand(n, generator=g, dtype=torch.float64) - 0.5))
                mod.running_mean.copy_(0.2 * (torch.rand(n, generator=g, dtype=torch.float64) - 0.5))
                mod.running_var.copy_(0.5 + torch.rand(n, generator=g, dtype=torch.float64))
    state = {k: v.clone() for k, v in unit.state_dict().items() if not k.endswith("num_batches_tracked")}
    x = torch.rand(2, channels, 6, 6, generator=g, dtype=torch.float64) - 0.5
    for k, v in state.items():
        tensors[prefix + k] = v
    tensors[prefix + "input"] = x
    for case in ("eval", "train"):
        unit.load_state_dict(state, strict=False)
        unit.zero_grad()
        unit.train(case == "train")
        xi = x.clone().requires_grad_(True)
        out = unit(xi)
        if case == "eval":
            r = torch.rand(out.shape, generator=g, dtype=torch.float64) - 0.5
            tensors[prefix + "r"] = r
        (out * tensors[prefix + "r"]).sum().backward()
        tensors[prefix + case + ".out"] = out.detach().clone()
        tensors[prefix + case + ".grad.input"] = xi.grad.detach().clone()
        for name, p in unit.named_parameters():
            tensors[prefix + case + ".grad." + name] = p.grad.detach().clone()
        if case == "train":
            for name, b in unit.named_buffers():
                if not name.endswith("num_batches_tracked"):
                    tensors[prefix + "train.after." + name] = b.detach().clone()
save(tensors, out_path, {"torch": torch.__version__, "torchvision": torchvision.__version__})
print("wrote", out_path, len(tensors), "tensors,", os.path.getsize(out_path), "bytes")
