#!/usr/bin/python3
"""bench_python.py: the per-call cost of Problem.hvp against the library's call (nt_hvp timed in
C, in the same process, on the same engine and arrays), on the bench problem of
bench/bench.c: MLP 784-256-256-10 ReLU, cross-entropy, the first 512 Fashion-MNIST images,
float64.  Prints the medians and their ratio; never fails on timing.

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_python.py [REPS]
"""
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

import noether

FMNIST = "/usr/share/datasets/fashion-mnist/"


def main(argv):
    reps = int(argv[1]) if len(argv) > 1 else 40
    spec = {"model": {"input": 784, "layers": [{"dense": 256}, {"act": "relu"}, {"dense": 256}, {"act": "relu"},
                                               {"dense": 10}], "loss": "cross_entropy"},
            "data": {"source": "idx", "images": FMNIST + "train-images-idx3-ubyte.gz",
                     "labels": FMNIST + "train-labels-idx1-ubyte.gz", "limit": 512},
            "init": {"seed": 0, "scheme": "he", "bias_std": 0.1}}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        p = noether.load(path)
    v = np.random.default_rng(0).standard_normal(p.d)
    HV = np.empty(p.d)
    p.hvp(v)   # warm-up
    c_times, py_times = [], []
    for r in range(reps):   # interleaved, alternating which goes first, so that both see the same machine
        if r % 2:
            c_times += p._c.hvp_seconds(p.theta, v, HV, 1)
        t0 = time.perf_counter()
        hv = p.hvp(v)
        py_times.append(time.perf_counter() - t0)
        if not r % 2:
            c_times += p._c.hvp_seconds(p.theta, v, HV, 1)
    assert np.array_equal(hv, HV)
    c, py = statistics.median(c_times), statistics.median(py_times)
    print(f"bench problem: d = {p.d}, n = {p.n}, {reps} products each")
    print(f"library nt_hvp (timed in C)  median {c * 1e3:.3f} ms")
    print(f"Problem.hvp (timed in Python) median {py * 1e3:.3f} ms")
    print(f"per-call overhead            {(py - c) * 1e6:.1f} us = {100 * (py - c) / c:.2f} %")
    # the wrapper's own cost, where the product costs next to nothing: a 2-2-2 model, 2 samples
    tiny = noether.Problem({"model": {"input": 2, "layers": [{"dense": 2}, {"act": "tanh"}, {"dense": 2}],
                                      "loss": "mse"}, "data": {"source": "npy", "x": "x.npy", "y": "y.npy"}},
                           np.ones((2, 2)), np.ones((2, 2)))
    w, tv, tHV = 20000, np.ones(tiny.d), np.empty(tiny.d)
    tc = statistics.median(tiny._c.hvp_seconds(tiny.theta, tv, tHV, w))
    t0 = time.perf_counter()
    for _ in range(w):
        tiny.hvp(tv)
    tpy = (time.perf_counter() - t0) / w
    print(f"wrapper cost (d = {tiny.d} model)  Problem.hvp {tpy * 1e6:.2f} us, nt_hvp {tc * 1e6:.2f} us: "
          f"{(tpy - tc) * 1e6:.2f} us a call = {100 * (tpy - tc) / c:.4f} % of the bench problem's product")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
