# The report's PyTorch peer: one fine-tuning step of a torchvision model (in train(): dropout and stochastic depth
# drawn, as convbn's networks do in the report), the step convbn's `report` measures:
# forward, cross-entropy over 1000 classes, backward, SGD with Nesterov momentum 0.9 and weight decay 1e-4
# (lr 1e-3), in one of the four modes:
#   train   BatchNorm in training mode (batch statistics)
#   eval    BatchNorm with its running statistics frozen, gamma and beta trained (the usual fine-tuning)
#   tune    BatchNorm folded into the conv on every forward (W' = s W, b' = beta + s (b - mean)), eager
#   deploy  BatchNorm folded once; the folded weight and bias are the parameters
# Weights start from PyTorch's default layer initialisation (as convbn's networks do), running statistics and gamma
# spread like a pretrained network's, as in convbn's report.
# Time: each measured step; peak: the rise of VmHWM over the VmRSS at the start of the step (run it with
# MALLOC_MMAP_THRESHOLD_=65536 for memory, so that freed memory returns to the OS, as the report does).
# AUTOCAST bf16 runs the forward and the loss under torch.autocast("cpu", dtype=torch.bfloat16) (mixed precision:
# convolutions and their saved inputs in bfloat16, parameters and the optimizer in float32); none (the default) does not.
# Usage: python3 torch_step.py MODE MODEL BATCH RESOLUTION WARMUP STEPS THREADS RESULT.json [AUTOCAST]
import json, sys, time
import torch, torch.nn as nn, torch.nn.functional as F, torchvision

mode, model, batch, res, warmup, steps, threads, out = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:8]), sys.argv[8]
autocast = sys.argv[9] if len(sys.argv) > 9 else "none"
if autocast not in ("none", "bf16"):
    sys.exit(f"AUTOCAST: expected none or bf16, got {autocast}")
name = "PYTORCH_" + mode.upper() + ("@bf16" if autocast == "bf16" else "")
torch.manual_seed(42)
torch.set_num_threads(threads)
m = getattr(torchvision.models, model)(num_classes=1000)
g = torch.Generator().manual_seed(7)
for mod in m.modules():
    if isinstance(mod, nn.Conv2d):
        mod.reset_parameters()  # torchvision draws kaiming_normal(fan_out); convbn and nn.Conv2d's default do not
    if isinstance(mod, nn.BatchNorm2d):
        n = mod.num_features
        mod.running_var.copy_(0.05 + 1.95 * torch.rand(n, generator=g))
        mod.running_mean.copy_(0.2 * (torch.rand(n, generator=g) - 0.5))
        mod.weight.data.copy_(0.2 + 1.3 * torch.rand(n, generator=g))
m.train()

pairs = []
def collect(parent):
    children = list(parent._modules.items())
    for (n1, a), (n2, b) in zip(children, children[1:]):
        if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
            pairs.append((parent, n1, n2, a, b))
    for _, c in children:
        collect(c)
collect(m)  # the downsample branches and EfficientNet's Conv2dNormActivation are Sequential(conv, bn, ...): covered

def tune_forward(conv, bn):
    def forward(x):
        s = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        w = conv.weight * s.reshape(-1, 1, 1, 1)
        b = bn.bias + s * ((conv.bias if conv.bias is not None else 0) - bn.running_mean)
        return F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)
    return forward

if mode in ("eval", "tune", "deploy"):
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.eval()
if mode in ("tune", "deploy"):
    for parent, n1, n2, conv, bn in pairs:
        if mode == "tune":
            conv.forward = tune_forward(conv, bn)
        else:
            with torch.no_grad():
                s = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
                conv.weight.mul_(s.reshape(-1, 1, 1, 1))
                conv.bias = nn.Parameter(bn.bias - s * bn.running_mean)
        setattr(parent, n2, nn.Identity())

x = torch.randn(batch, 3, res, res, generator=g)
y = torch.randint(0, 1000, (batch,), generator=g)
opt = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4)

def step():
    opt.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast == "bf16"):
        loss = F.cross_entropy(m(x), y)
    loss.backward()
    opt.step()
    return loss.item()

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return -1

times, peaks, loss, base = [], [], float("nan"), -1
for i in range(warmup + steps):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = status("VmRSS:")
    t = time.perf_counter()
    loss = step()
    ms = (time.perf_counter() - t) * 1000
    peak = status("VmHWM:") - base
    print(f"  [{name}] step {i + 1}/{warmup + steps}{'' if i >= warmup else ' (warm-up)'}: "
          f"{ms:.0f} ms, peak +{peak / 2**20:.1f} MiB, loss {loss:.4f}", file=sys.stderr, flush=True)
    if i >= warmup:
        times.append(ms)
        peaks.append(peak)
s = sorted(times)
median = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
with open(out, "w") as f:
    json.dump({"mode": name, "step_ms_median": median, "step_ms_min": s[0], "step_ms_max": s[-1],
               "peak_bytes": max(peaks), "retained_bytes": -1, "retained_activation_bytes": -1,
               "baseline_rss_bytes": base, "steps_ms": times, "peaks_bytes": peaks, "final_loss": loss,
               "backend": "PyTorch " + torch.__version__ + (" oneDNN" if torch.backends.mkldnn.is_available() else ""),
               "threads": torch.get_num_threads()}, f)
