#!/usr/bin/python3
"""bench_pyhessian.py: the peer of `make bench`'s first command: PyHessian's method for the
top eigenvalues (hessian.eigenvalues: power iteration with deflation against the
eigenvectors already found, relative tolerance 1e-3, at most 100 iterations each) over a
PyTorch Hessian-vector product (double backward), written out here because PyHessian is not
packaged in Debian; the same model, data and parameters as noether's (nn.Sequential
784-256-256-10 ReLU, float64, mean cross-entropy over the first N Fashion-MNIST training
images, theta.npy).  Prints "key value" lines: pyhessian_seconds (the eigenvalues alone),
pyhessian_products, pyhessian_values (comma-separated); "pyhessian_skip <reason>" without
torch."""
import argparse
import os
import sys
import time

t_start = time.perf_counter()
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # PyTorch's best setting here (see bench_torch.py)
try:
    import torch
    import torch.nn.functional as F
except Exception as exc:  # noqa: BLE001
    print(f"pyhessian_skip cannot import numpy and torch ({type(exc).__name__}: {exc})")
    sys.exit(0)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import mlp_problem  # noqa: E402  (the same problem)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--theta", required=True)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--max-iter", type=int, default=100)
    a = ap.parse_args()
    torch.manual_seed(0)
    model, params, x, y = mlp_problem(a.images, a.labels, a.n, a.theta)
    count = [0]

    def hvp(v):   # PyHessian's hessian_vector_product over the whole batch
        count[0] += 1
        g = torch.autograd.grad(F.cross_entropy(model(x), y), params, create_graph=True)
        return torch.autograd.grad(g, params, grad_outputs=v)

    def dot(u, v):
        return sum(torch.sum(a * b) for a, b in zip(u, v))

    def normalize(v):
        s = torch.sqrt(dot(v, v))
        return [t / (s + 1e-6) for t in v]

    t0 = time.perf_counter()
    values, vectors = [], []
    while len(values) < a.k:   # pyhessian.hessian.eigenvalues
        value = None
        v = normalize([torch.randn_like(p) for p in params])
        for _ in range(a.max_iter):
            for u in vectors:   # orthnormal(v, eigenvectors)
                c = dot(v, u)
                v = [vi - c * ui for vi, ui in zip(v, u)]
            v = normalize(v)
            hv = hvp(v)
            tmp = dot(hv, v).item()
            v = normalize(hv)
            if value is not None and abs(value - tmp) / (abs(value) + 1e-6) < a.tol:
                break
            value = tmp
        values.append(value)
        vectors.append(v)
    print(f"pyhessian_seconds {time.perf_counter() - t0:.4f}")
    print(f"pyhessian_startup_seconds {t0 - t_start:.4f}")
    print(f"pyhessian_products {count[0]}")
    print("pyhessian_values " + ",".join(f"{v:.17g}" for v in values))


if __name__ == "__main__":
    main()
