"""noether: the symmetries of a neural network, measured exactly (libnoether from Python).

    import noether
    p = noether.from_torch(model, X, y, loss="cross_entropy", weight_decay=1e-4)
    loss, g = p.grad()
    HV = p.hvp(V)                 # V (d,) or (k, d)
    p.check()["all_hold"]         # every identity of the catalogue at p.theta
    p.spectrum(top=5, bottom=5)   # both ends of the Hessian spectrum, with what symmetry predicts

from_torch reads nn.Sequential models (noether.walk lists the modules); noether.load reads
a spec file.  Failures raise noether.Error (a ValueError) with the library's one line.
"""
import json

import numpy as np

from ._noether import Error
from ._noether import version as __version__   # NT_VERSION: meson.build's project version
from .problem import Problem
from .walk import walk, SUPPORTED
from . import nn

__all__ = ["Error", "Problem", "from_torch", "load", "nn", "SUPPORTED"]

LOSSES = ("mse", "cross_entropy", "logistic", "exponential")


def _numpy(a, what):
    if hasattr(a, "detach"):   # a torch tensor
        a = a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except Exception as exc:  # noqa: BLE001 - anything that is not an array
        raise Error(f"{what}: not an array ({exc})") from None


def targets(y, n, loss, outputs):
    """the engine's targets (n, ydim) from labels or targets y (docs/interface.md, "Losses")"""
    y = _numpy(y, "y")
    if y.dtype == object or y.dtype.kind not in "biuf":
        raise Error(f"y: dtype {y.dtype} is not numeric")
    if len(y) != n if y.ndim else True:
        raise Error(f"y: {len(y) if y.ndim else 0} samples, X has {n}")
    if loss == "mse":
        if y.dtype.kind in "biu" and y.ndim == 1 and outputs > 1:   # integer labels: their one-hot code
            if y.min() < 0 or y.max() >= outputs:
                raise Error(f"y: label {int(y.min() if y.min() < 0 else y.max())} is not a class id in 0..{outputs - 1}")
            return np.eye(outputs)[y]
        if y.size != n * outputs:
            raise Error(f"y: shape {y.shape}; mse with {outputs} outputs takes ({n}, {outputs})")
        return y.astype(np.float64).reshape(n, outputs)
    if y.size != n:
        raise Error(f"y: shape {y.shape}; {loss} takes one label per sample ({n},)")
    y = y.astype(np.float64).reshape(n, 1)
    if loss in ("logistic", "exponential") and np.all((y == 0) | (y == 1)):
        y = 2 * y - 1   # 0/1 labels as -1/+1, as the spec's data sources do
    return y


def from_torch(module, X, y, loss="cross_entropy", weight_decay=0.0):
    """A Problem from a torch module (nn.Sequential of supported layers, noether.SUPPORTED),
    its data X (N, ...) and labels or targets y; theta = the module's parameters, in
    module.parameters() order."""
    import torch
    if not isinstance(module, torch.nn.Module):
        raise Error(f"module: {type(module).__name__} is not a torch nn.Module")
    if loss not in LOSSES:
        raise Error(f"loss: '{loss}' is not one of {', '.join(LOSSES)}")
    X = _numpy(X, "X")
    if X.dtype == object or X.dtype.kind not in "biuf":
        raise Error(f"X: dtype {X.dtype} is not numeric")
    if X.ndim < 2 or X.ndim > 4 or len(X) == 0:
        raise Error(f"X: shape {X.shape}; expected (N, features), (N, C, H, W) or (N, T, D) with N >= 1")
    shape = [int(s) for s in X.shape[1:]]
    layers, out = walk(module, shape)
    if len(out) != 1:
        raise Error(f"model: its output has shape {tuple(out)} per sample; it must be a vector "
                    "(end with nn.Flatten and nn.Linear, or noether.nn.MeanTokens)")
    model = {"input": shape[0] if len(shape) == 1 else shape, "layers": layers, "loss": loss}
    spec = {"model": model, "data": {"source": "npy", "x": "x.npy", "y": "y.npy"},
            "weight_decay": float(weight_decay)}
    params = list(module.parameters())
    theta = np.concatenate([p.detach().cpu().double().reshape(-1).numpy() for p in params]) if params else np.zeros(0)
    p = Problem(spec, X.reshape(len(X), -1), targets(y, len(X), loss, out[0]), theta=theta)
    names = [n for n, _ in module.named_parameters()]
    if len(params) != len(p.layout):
        raise Error(f"model: {len(params)} parameter tensors, noether's layout has {len(p.layout)}")
    for name, t, lay in zip(names, params, p.layout):
        # a layer norm over an image holds its (C, H, W) weight flat, in the same C order
        if t.numel() != int(np.prod(lay["shape"])) or (len(lay["shape"]) > 1 and tuple(t.shape) != tuple(lay["shape"])):
            raise Error(f"{name}: shape {tuple(t.shape)}, noether's layout has {lay['name']} {tuple(lay['shape'])}")
    return p


def load(spec_path):
    """A Problem from a spec file: its model, its training set (as noether's commands load
    it) and its seeded initial theta."""
    from . import _noether
    x, yb, n, dim, ydim = _noether.load_data(str(spec_path))   # the library's reading, with its messages
    with open(spec_path) as f:
        spec = json.load(f)
    X = np.frombuffer(x, dtype=np.float64).reshape(n, dim)
    Y = np.frombuffer(yb, dtype=np.float64).reshape(n, ydim)
    return Problem(spec, X, Y, path=spec_path)
