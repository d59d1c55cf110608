#!/usr/bin/python3
"""bench_eigsh.py: the PyHessian-style side of `make bench`'s spectrum comparison (run by
noether-bench): SciPy's eigsh (ARPACK) over a PyTorch Hessian-vector product (double
backward), for the K largest ("LA") and K smallest ("SA") eigenvalues of the same Hessian
noether analyses: nn.Sequential 784-256-256-10 ReLU, float64, mean cross-entropy over the
first N Fashion-MNIST training images, the parameters of theta.npy.  Prints "key value"
lines: eigsh_<end>_seconds, eigsh_<end>_products, eigsh_<end>_values (comma-separated).
Without torch or scipy it prints "eigsh_skip <reason>" and exits 0."""
import argparse
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # PyTorch's best setting here (see bench_torch.py)
try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from scipy.sparse.linalg import LinearOperator, eigsh
except Exception as exc:  # noqa: BLE001
    print(f"eigsh_skip cannot import numpy, torch and scipy ({type(exc).__name__}: {exc})")
    sys.exit(0)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import mlp_problem  # noqa: E402  (the same problem)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--theta", required=True)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, params, x, y = mlp_problem(a.images, a.labels, a.n, a.theta)
    d = sum(p.numel() for p in params)
    count = [0]

    def hvp(v):
        count[0] += 1
        vt = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64).reshape(-1))
        g = torch.autograd.grad(F.cross_entropy(model(x), y), params, create_graph=True)
        gv = torch.dot(torch.cat([t.reshape(-1) for t in g]), vt)
        return torch.cat([t.reshape(-1) for t in torch.autograd.grad(gv, params)]).numpy()

    op = LinearOperator((d, d), matvec=hvp, dtype=np.float64)
    v0 = np.random.default_rng(0).uniform(-0.5, 0.5, d)
    for which in ("LA", "SA"):
        count[0] = 0
        t0 = time.perf_counter()
        vals = eigsh(op, k=a.k, which=which, v0=v0, ncv=max(3 * a.k + 10, 40), return_eigenvectors=False)
        end = "top" if which == "LA" else "bottom"
        vals = sorted(vals, reverse=(which == "LA"))
        print(f"eigsh_{end}_seconds {time.perf_counter() - t0:.4f}")
        print(f"eigsh_{end}_products {count[0]}")
        print(f"eigsh_{end}_values " + ",".join(f"{v:.17g}" for v in vals))


if __name__ == "__main__":
    main()
