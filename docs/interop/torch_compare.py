#!/usr/bin/env python3
"""Every layer kind and mode of convbn's compare command against PyTorch on the same float64 tensors.

  python3 docs/interop/torch_compare.py [--jar convbn-bench/target/convbn-bench.jar] [--dir /tmp/convbn-compare]

For conv2d, conv_transpose2d (grouped, strided, with output padding) and linear ([N, I] and [N, I, L]) it writes a
case with PyTorch's modules, runs `compare` in train, eval, tune and deploy, and prints the largest absolute
difference of every result against PyTorch's: the output and input gradient, the gradients of the layer and BN
parameters (train, eval, tune), the running statistics (train), and in deploy the folded weight and bias and their
gradients against the module PyTorch's own fusion makes (torch.nn.utils.fusion). Where PyTorch's fusion fails, it
says so and compares with the fold written out: W' = W * s over each group's output channels.
"""
import argparse
import os
import subprocess
import sys

import torch
from torch.nn.utils import fusion

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "transfer"))
from torch_safetensors import load, save  # noqa: E402  (a reader/writer of the format when safetensors is absent)

torch.manual_seed(0)


def randomize_bn(bn):
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 1.5)


def cases():
    conv = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2, bias=True).double()
    yield ("conv2d", "conv", conv, torch.nn.BatchNorm2d(16).double(), torch.randn(2, 8, 9, 7, dtype=torch.float64),
           {"stride": "2,2", "padding": "1,1", "dilation": "1,1", "groups": "2"})
    up = torch.nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1, groups=2, bias=True).double()
    yield ("conv_transpose2d", "conv", up, torch.nn.BatchNorm2d(8).double(),
           torch.randn(2, 8, 5, 4, dtype=torch.float64),
           {"layer": "conv_transpose2d", "stride": "2,2", "padding": "1,1", "output_padding": "1,1",
            "dilation": "1,1", "groups": "2"})
    yield ("linear [N, I]", "linear", torch.nn.Linear(12, 10).double(), torch.nn.BatchNorm1d(10).double(),
           torch.randn(6, 12, dtype=torch.float64), {"layer": "linear"})
    # BatchNorm1d on [N, C, L]: the linear layer works on the last dimension, so the features move to dimension 1
    # around it; convbn's linear block reads [N, I, L] directly.
    yield ("linear [N, I, L]", "linear", torch.nn.Linear(12, 10).double(), torch.nn.BatchNorm1d(10).double(),
           torch.randn(3, 12, 5, dtype=torch.float64), {"layer": "linear"})


def apply(layer, x):
    if isinstance(layer, torch.nn.Linear) and x.dim() == 3:
        return layer(x.transpose(1, 2)).transpose(1, 2)
    return layer(x)


def fused(layer, bn):
    """PyTorch's fusion of the pair for inference, or the fold written out where that fails."""
    try:
        if isinstance(layer, torch.nn.Linear):
            return fusion.fuse_linear_bn_eval(layer, bn), "torch.nn.utils.fusion"
        return fusion.fuse_conv_bn_eval(layer, bn, transpose=isinstance(layer, torch.nn.ConvTranspose2d)), \
            "torch.nn.utils.fusion"
    except Exception as e:  # noqa: BLE001  (reported, then replaced)
        failure = f"{type(e).__name__}: {str(e).splitlines()[0]}"
    import copy
    f = copy.deepcopy(layer)
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    g = layer.groups
    with torch.no_grad():
        w = layer.weight  # [C, O/g, kH, kW]
        c, opg = w.shape[0], w.shape[1]
        f.weight.copy_((w.view(g, c // g, opg, *w.shape[2:]) * s.view(g, 1, opg, 1, 1)).view_as(w))
        b = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
        f.bias = torch.nn.Parameter((b - bn.running_mean) * s + bn.bias)
    return f, "PyTorch's fusion failed (" + failure + "); the fold written out"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jar", default="convbn-bench/target/convbn-bench.jar")
    ap.add_argument("--dir", default="/tmp/convbn-compare")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    worst = 0.0
    for name, prefix, layer, bn, x, meta in cases():
        randomize_bn(bn)
        z0 = bn.eval()(apply(layer, x))
        g = torch.randn_like(z0)
        tensors = {"input": x, prefix + ".weight": layer.weight.detach(), prefix + ".bias": layer.bias.detach(),
                   "bn.weight": bn.weight.detach(), "bn.bias": bn.bias.detach(),
                   "bn.running_mean": bn.running_mean.clone(), "bn.running_var": bn.running_var.clone(),
                   "grad_output": g}
        case = os.path.join(a.dir, name.replace(" ", "").replace(",", "") + ".safetensors")
        save(tensors, case, dict(meta, eps=str(bn.eps), momentum=str(bn.momentum)))
        for mode in ("train", "eval", "tune", "deploy"):
            out = case.replace(".safetensors", "-" + mode + ".out.safetensors")
            subprocess.run(["java", "-jar", a.jar, "compare", "--in", case, "--mode", mode, "--out", out],
                           check=True, stdout=subprocess.DEVNULL)
            r = load(out)
            lt, bt = __import__("copy").deepcopy(layer), __import__("copy").deepcopy(bn)
            xi = x.clone().requires_grad_(True)
            want = {}
            note = ""
            if mode == "deploy":
                f, note = fused(lt.eval(), bt.eval())
                z = apply(f, xi)
                z.backward(g)
                want = {"folded.weight": f.weight.detach(), "folded.bias": f.bias.detach(),
                        "grad.folded.weight": f.weight.grad, "grad.folded.bias": f.bias.grad}
            else:
                bt.train(mode == "train")
                z = bt(apply(lt, xi))
                z.backward(g)
                want = {"grad." + prefix + ".weight": lt.weight.grad, "grad." + prefix + ".bias": lt.bias.grad,
                        "grad.bn.weight": bt.weight.grad, "grad.bn.bias": bt.bias.grad}
                if mode == "train":
                    want["bn.running_mean"] = bt.running_mean
                    want["bn.running_var"] = bt.running_var
            want["output"] = z.detach()
            want["grad_input"] = xi.grad
            diffs = {k: (r[k] - v).abs().max().item() for k, v in want.items()}
            worst = max(worst, max(diffs.values()))
            print(f"{name:18s} {mode:6s} max |convbn - PyTorch| {max(diffs.values()):.2e}"
                  + (f"  [{note}]" if note else ""))
    print(f"worst over every kind, mode and tensor: {worst:.2e}")
    return 0 if worst <= 1e-10 else 1


if __name__ == "__main__":
    sys.exit(main())
