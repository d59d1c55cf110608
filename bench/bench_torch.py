#!/usr/bin/python3
"""bench_torch.py: the PyTorch side of `make bench` (run by noether-bench, not by hand).

The same problem as bench.c, exactly: nn.Sequential(Linear(784,256), ReLU, Linear(256,256),
ReLU, Linear(256,10)) in float64, mean cross-entropy over the first N Fashion-MNIST training
images (pixels/255), with the parameters noether used (theta.npy, flat, in parameters()
order: W0 (out x in, row-major), b0, W1, b1, W2, b2).  It times

  grad     loss -> torch.autograd.grad
  hvp      one Hessian-vector product by double backward (create_graph, then grad of g.v)
  hvp16    16 products: a loop of 16 double-backward products on one create_graph gradient,
           and torch.func/functorch vmap(jvp(grad)) (forward-over-reverse); the faster counts

and writes H v for the fixed v of v.npy (and the gradient) so noether-bench can compare whole
vectors.  OMP_WAIT_POLICY defaults to PASSIVE (see below).  Output: one "key value" line
per number on stdout.  Without torch it prints
"torch_skip <reason>" and exits 0.
"""
import argparse
import gzip
import os
import statistics
import struct
import sys
import time

# Debian's torch runs its ops on libgomp threads and its GEMMs on OpenBLAS's own pthreads.
# With libgomp's default (spinning) wait policy the idle OpenMP threads compete with
# OpenBLAS's for the 2 cores and every time is 2-4x slower and erratic; passive waiting is
# PyTorch's best configuration here, so it is the one compared (must be set before import).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except Exception as exc:  # noqa: BLE001 - any failure to import means "no PyTorch here"
    print(f"torch_skip cannot import numpy and torch ({type(exc).__name__}: {exc})")
    sys.exit(0)


def read_idx(path, limit):
    """First `limit` items of a gzipped (or plain) ubyte IDX file, as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        magic = f.read(4)
        if magic[0] != 0 or magic[1] != 0 or magic[2] != 0x08:
            raise ValueError(f"{path}: not a ubyte IDX file")
        ndim = magic[3]
        dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        n = min(dims[0], limit)
        per = int(np.prod(dims[1:])) if ndim > 1 else 1
        data = np.frombuffer(f.read(n * per), dtype=np.uint8)
    return data.reshape((n,) + tuple(dims[1:]))


def mlp_problem(images, labels, n, theta_path):
    """The bench's problem in PyTorch: nn.Sequential 784-256-256-10 ReLU in float64 with the
    parameters of theta.npy, the first n Fashion-MNIST images (pixels / 255) and labels;
    returns (model, params, x, y)."""
    x = torch.from_numpy(read_idx(images, n).reshape(n, -1).astype(np.float64) / 255.0)
    y = torch.from_numpy(read_idx(labels, n).astype(np.int64))
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10)).double()
    params = list(model.parameters())
    torch.nn.utils.vector_to_parameters(torch.from_numpy(np.load(theta_path).astype(np.float64).reshape(-1)), params)
    return model, params, x, y


def median_ms(fn, reps, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--theta", required=True, help="flat parameters (.npy)")
    ap.add_argument("--v", required=True, help="16 x d tangents (.npy); row 0 is the checked v")
    ap.add_argument("--hv-out", required=True, help="where to write H v_0 (.npy)")
    ap.add_argument("--g-out", required=True, help="where to write the gradient (.npy)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = torch.from_numpy(read_idx(a.images, a.n).reshape(a.n, -1).astype(np.float64) / 255.0)
    y = torch.from_numpy(read_idx(a.labels, a.n).astype(np.int64))

    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 10)).double()
    params = list(model.parameters())
    d = sum(p.numel() for p in params)

    def unflatten(flat):
        out, at = [], 0
        for p in params:
            out.append(flat[at:at + p.numel()].view_as(p))
            at += p.numel()
        return out

    theta = torch.from_numpy(np.load(a.theta).astype(np.float64).reshape(-1))
    if theta.numel() != d:
        raise SystemExit(f"bench_torch.py: {a.theta} has {theta.numel()} numbers, the model {d}")
    with torch.no_grad():
        for p, t in zip(params, unflatten(theta)):
            p.copy_(t)
    V = torch.from_numpy(np.load(a.v).astype(np.float64)).reshape(-1, d)
    k = V.shape[0]
    Vs = [unflatten(V[j]) for j in range(k)]

    def loss_fn():
        return F.cross_entropy(model(x), y)

    def grad():
        return torch.autograd.grad(loss_fn(), params)

    def hvp(v):  # double backward
        g = torch.autograd.grad(loss_fn(), params, create_graph=True)
        gv = sum((gi * vi).sum() for gi, vi in zip(g, v))
        return torch.autograd.grad(gv, params)

    def hvp_loop():  # what a PyTorch user writes for k products: one graph, k backward passes
        g = torch.autograd.grad(loss_fn(), params, create_graph=True)
        return [torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v)), params,
                                    retain_graph=True) for v in Vs]

    # the numbers checked against noether
    loss = loss_fn().item()
    g = torch.cat([t.reshape(-1) for t in grad()])
    hv = torch.cat([t.reshape(-1) for t in hvp(Vs[0])])
    np.save(a.g_out, g.numpy())
    np.save(a.hv_out, hv.numpy())
    print(f"torch_version {torch.__version__}")
    print(f"torch_threads {torch.get_num_threads()}")
    print(f"torch_omp_wait_policy {os.environ.get('OMP_WAIT_POLICY')}")
    print(f"torch_loss {loss:.17g}")
    print(f"torch_grad_norm {g.norm().item():.17g}")
    print(f"torch_vHv {torch.dot(V[0], hv).item():.17g}")

    t_grad = median_ms(grad, 3 * a.reps)
    t_hvp = median_ms(lambda: hvp(Vs[0]), 2 * a.reps)
    t_loop = median_ms(hvp_loop, a.reps) / k
    print(f"torch_grad_ms {t_grad:.4f}")
    print(f"torch_hvp_ms {t_hvp:.4f}")
    print(f"torch_hvp16_loop_per_vec_ms {t_loop:.4f}")
    best, method = t_loop, "double-backward loop"

    # forward-over-reverse with vmap over the k tangents, if this torch has it.  The same
    # mean cross-entropy written as mean(logsumexp(z) - z_y): torch 1.13 has no forward-mode
    # rule for the backward of nll_loss or log_softmax, which jvp(grad(F.cross_entropy)) needs.
    onehot = F.one_hot(y, 10).double()

    def xent(z):
        return (torch.logsumexp(z, dim=1) - (onehot * z).sum(dim=1)).mean()

    try:
        try:
            from torch.func import functional_call, grad as fgrad, jvp, vmap
            names = [n for n, _ in model.named_parameters()]

            def f(ps):
                return xent(functional_call(model, dict(zip(names, ps)), (x,)))
            api = "torch.func"
        except ImportError:
            from functorch import grad as fgrad, jvp, make_functional, vmap
            fmodel, _ = make_functional(model)

            def f(ps):
                return xent(fmodel(ps, x))
            api = "functorch"
        p0 = tuple(p.detach() for p in params)
        Vt = tuple(torch.stack([Vs[j][i] for j in range(k)]) for i in range(len(params)))

        def hvp_vmap():
            return vmap(lambda *v: jvp(fgrad(f), (p0,), (tuple(v),))[1])(*Vt)
        hv2 = torch.cat([t[0].reshape(-1) for t in hvp_vmap()])
        print(f"torch_func_vs_double_backward_rel {((hv2 - hv).norm() / hv.norm()).item():.3g}")
        t_vmap = median_ms(hvp_vmap, a.reps) / k
        print(f"torch_hvp16_vmap_per_vec_ms {t_vmap:.4f}")
        if t_vmap < best:
            best, method = t_vmap, f"{api} vmap(jvp(grad))"
    except Exception as exc:  # noqa: BLE001 - report, keep the loop's number
        print(f"torch_vmap_unavailable {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
    print(f"torch_hvp16_per_vec_ms {best:.4f}")
    print(f"torch_hvp16_method {method}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
