#!/usr/bin/env python3
"""torchvision's state_dict names and shapes for every model of convbn's zoo: the lists ZooTest (convbn-networks)
checks convbn's networks against.

  python3 docs/interop/zoo_names.py convbn-networks/src/test/resources/torchvision

Writes <dir>/<model>.tsv per model: a comment line with the torchvision version and the parameter count, then one
line per state_dict entry (num_batches_tracked left out): name, tab, shape as comma-separated sizes.
"""
import os
import sys

import torchvision

MODELS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2",
          "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
          "efficientnet_b3", "regnet_y_400mf"]

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name in MODELS:
    m = getattr(torchvision.models, name)()
    params = sum(p.numel() for p in m.parameters())
    with open(os.path.join(out, name + ".tsv"), "w") as f:
        f.write(f"# torchvision {torchvision.__version__} {name}().state_dict(): name, shape (num_batches_tracked "
                f"omitted); {params} parameters\n")
        for k, v in m.state_dict().items():
            if not k.endswith("num_batches_tracked"):
                f.write(k + "\t" + ",".join(str(s) for s in v.shape) + "\n")
    print(name, params)
