#!/usr/bin/python3
"""torch_spec.py: a noether model spec built in PyTorch (float64), for `make bench`
(bench/bench_layers.c).  Not run by hand.

    torch_spec.py MODEL.json THETA.npy V.npy X.npy Y.npy OUT.npy WEIGHT_DECAY [--time]

MODEL.json is the spec's "model" object (docs/layers.md).  The network is nn.Sequential of
nn.Linear, activations, nn.LayerNorm, nn.BatchNorm1d/2d (training mode: batch statistics),
nn.Conv2d, nn.MaxPool2d/AvgPool2d, nn.Flatten, nn.MultiheadAttention (batch_first, causal
mask when asked), a mean over tokens and a residual wrapper x + body(x); its parameters are
filled from THETA in parameters() order, the order of noether's layout.  V is (d,) or (k, d).
OUT receives [loss, gradient, H v_0] of the loss with (wd/2)|theta|^2.  With --time it also
prints "key value" lines: torch_grad_ms, torch_hvp_ms (double backward), torch_hvp16_per_vec_ms
(a loop of double-backward products on one graph).  Without torch: "torch_skip <reason>", exit 0.
"""
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # see bench/bench_torch.py
try:
    import numpy as np
    import torch
except Exception as exc:  # noqa: BLE001 - no PyTorch here
    print(f"torch_skip cannot import numpy and torch ({type(exc).__name__}: {exc})")
    sys.exit(0)

torch.set_default_dtype(torch.float64)
nn = torch.nn


class Res(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


class Attn(nn.Module):
    def __init__(self, dim, heads, causal, bias):
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, heads, bias=bias, batch_first=True)
        self.causal = causal

    def forward(self, x):
        t = x.shape[1]
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1) if self.causal else None
        return self.mha(x, x, x, attn_mask=mask, need_weights=False)[0]


class Lambda(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(x)


ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "softplus": nn.Softplus,
        "gelu": nn.GELU, "identity": nn.Identity}


def build(layers, shape):
    """nn.Sequential of the layers, for a per-sample input of this shape; and its output shape."""
    mods = []
    for L in layers:
        if "dense" in L:
            mods.append(nn.Linear(shape[-1], L["dense"], bias=L.get("bias", True)))
            shape = shape[:-1] + [L["dense"]]
        elif "act" in L:
            a = L["act"]
            if a == "leaky_relu":
                mods.append(nn.LeakyReLU(L.get("alpha", 0.01)))
            elif a == "square":
                mods.append(Lambda(lambda t: t * t))
            else:
                mods.append(ACTS[a]())
        elif "norm" in L:
            eps, aff = L.get("eps", 1e-5), L.get("affine", True)
            if L["norm"] == "layer":
                mods.append(nn.LayerNorm(shape if len(shape) == 3 else shape[-1], eps=eps, elementwise_affine=aff))
            elif len(shape) == 1:
                mods.append(nn.BatchNorm1d(shape[0], eps=eps, affine=aff))
            else:
                mods.append(nn.BatchNorm2d(shape[0], eps=eps, affine=aff))
        elif "conv" in L:
            k, s, p = L["kernel"], L.get("stride", 1), L.get("padding", 0)
            mods.append(nn.Conv2d(shape[0], L["conv"], k, stride=s, padding=p, bias=L.get("bias", True)))
            shape = [L["conv"], (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1]
        elif "pool" in L:
            if L["pool"] == "tokens":
                mods.append(Lambda(lambda t: t.mean(1)))
                shape = [shape[-1]]
                continue
            k = L["kernel"]
            s = L.get("stride", k)
            mods.append((nn.MaxPool2d if L["pool"] == "max" else nn.AvgPool2d)(k, s))
            shape = [shape[0], (shape[1] - k) // s + 1, (shape[2] - k) // s + 1]
        elif "flatten" in L:
            mods.append(nn.Flatten())
            shape = [int(np.prod(shape))]
        elif "attention" in L:
            mods.append(Attn(shape[-1], L["attention"], L.get("causal", False), L.get("bias", True)))
        elif "residual" in L:
            body, _ = build(L["residual"], shape)
            mods.append(Res(body))
    return nn.Sequential(*mods), shape


def median_ms(fn, reps, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main(argv):
    spec = json.load(open(argv[1]))
    th = torch.tensor(np.load(argv[2]))
    V = torch.tensor(np.load(argv[3])).reshape(-1, th.numel())
    x, y, wd = torch.tensor(np.load(argv[4])), torch.tensor(np.load(argv[5])), float(argv[7])
    shape = spec["input"] if isinstance(spec["input"], list) else [spec["input"]]
    net, _ = build(spec["layers"], list(shape))
    net.train()
    params = list(net.parameters())
    torch.nn.utils.vector_to_parameters(th, params)
    xs = x.reshape([x.shape[0]] + list(shape))
    lossname = spec["loss"]

    def loss_fn():
        f = net(xs)
        if lossname == "mse":
            l = 0.5 * ((f - y) ** 2).sum(1).mean()
        elif lossname == "cross_entropy":
            l = nn.functional.cross_entropy(f, y[:, 0].long())
        elif lossname == "logistic":
            l = nn.functional.softplus(-y * f).mean()
        else:
            l = torch.exp(-y * f).mean()
        return l + 0.5 * wd * sum((p ** 2).sum() for p in params) if wd else l

    def flat(ts):
        return torch.cat([t.reshape(-1) for t in ts])

    def grad():
        return torch.autograd.grad(loss_fn(), params)

    def hvps(vs):
        g = flat(torch.autograd.grad(loss_fn(), params, create_graph=True))
        return [flat(torch.autograd.grad(g @ v, params, retain_graph=True)) for v in vs]

    l = loss_fn()
    g = flat(torch.autograd.grad(l, params, create_graph=True))
    hv = flat(torch.autograd.grad(g @ V[0], params))
    np.save(argv[6], np.concatenate([[l.item()], g.detach().numpy(), hv.numpy()]))
    if "--time" in argv:
        torch.set_num_threads(2)
        print(f"torch_version {torch.__version__}")
        print(f"torch_grad_ms {median_ms(grad, 9):.4f}")
        print(f"torch_hvp_ms {median_ms(lambda: hvps(V[:1]), 7):.4f}")
        print(f"torch_hvp16_per_vec_ms {median_ms(lambda: hvps(V), 3) / V.shape[0]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
