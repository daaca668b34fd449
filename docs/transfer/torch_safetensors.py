#!/usr/bin/env python3
"""torchvision weights of every model of convbn's zoo to and from safetensors, for convbn (finetune, StateDict).

  export: write a torchvision model's state_dict as safetensors (what --weights reads)
      python3 torch_safetensors.py export --model resnet18 --weights DEFAULT --out resnet18.safetensors
  check: load convbn's tuned weights into torchvision with load_state_dict(strict=True) and run them
      python3 torch_safetensors.py check --model resnet18 --classes 5 tuned.safetensors

Uses the safetensors package when it is installed (pip install safetensors); otherwise a small reader and
writer of the same format (8-byte little-endian header length, JSON header, raw little-endian data).
"""
import argparse
import json
import struct

import torch
import torchvision

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64"}

# convbn's zoo (org.convbn.net.Zoo.names()): every model finetune, report and Pretrained take
ZOO = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2",
       "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
       "efficientnet_b3", "regnet_y_400mf"]


def save(tensors, path, metadata=None):
    try:
        from safetensors.torch import save_file
        save_file(tensors, path, metadata=metadata)
        return
    except ImportError:
        pass
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        b = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def load(path):
    try:
        from safetensors.torch import load_file
        return load_file(path)
    except ImportError:
        pass
    types = {v: k for k, v in DTYPES.items()}
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        raw = bytearray(data[8 + n + begin:8 + n + end])
        out[name] = torch.frombuffer(raw, dtype=types[e["dtype"]]).reshape(e["shape"]).clone()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export")
    e.add_argument("--model", default="resnet18", choices=ZOO)
    e.add_argument("--weights", default=None, help="torchvision weights name, e.g. DEFAULT (downloads); "
                   "none: PyTorch's initialisation")
    e.add_argument("--out", required=True)
    c = sub.add_parser("check")
    c.add_argument("--model", default="resnet18", choices=ZOO)
    c.add_argument("--classes", type=int, required=True)
    c.add_argument("file")
    a = p.parse_args()
    if a.command == "export":
        model = getattr(torchvision.models, a.model)(weights=a.weights)
        save(model.state_dict(), a.out, {"format": "pt"})
        print(f"wrote {a.out}: {len(model.state_dict())} tensors of torchvision {a.model}")
    else:
        model = getattr(torchvision.models, a.model)(num_classes=a.classes)
        state = load(a.file)
        model.load_state_dict(state, strict=True)
        model.eval()
        with torch.no_grad():
            y = model(torch.zeros(1, 3, 64, 64, dtype=next(model.parameters()).dtype))
        print(f"{a.file}: load_state_dict(strict=True) took all {len(state)} tensors; logits {tuple(y.shape)}")


if __name__ == "__main__":
    main()
