"""noether.problem: Problem, a model, its data and theta, with every computation of libnoether.

The arrays cross into the library without copies where their layout allows (float64,
C-contiguous): theta, V and the results (allocated here, filled in place by the library).
X and y are held for the Problem's life; one engine, sized once, serves every call.
"""
import json
import os

import numpy as np

from . import _noether
from ._noether import Error
from . import results

IDENTITY_TOL = 1e-8


def _f64(a, what):
    """a float64 C-contiguous view of a (a copy only when the dtype or layout needs one)"""
    if hasattr(a, "detach"):   # a torch tensor
        a = a.detach().cpu().numpy()
    try:
        return np.ascontiguousarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise Error(f"{what}: not an array of numbers ({exc})") from None


class Problem:
    """A noether problem: L_gamma(theta) = mean loss of the model on (X, y) + (gamma/2)|theta|^2.

    Built by noether.from_torch(module, X, y, ...) or noether.load(spec_path).  theta=None in
    every call means p.theta (used in place: change it and the next call sees the change).
    """

    def __init__(self, spec, X, Y, theta=None, path="<python>", labels=None):
        self.spec = spec
        self._path = path
        self._X = _f64(X, "X").reshape(len(X), -1)
        self._Y = _f64(Y, "y").reshape(len(Y), -1)
        self._labels = labels   # the labels as given (for to_spec), or None
        self._c = _noether.Problem(json.dumps(spec), path, self._X, self._Y)
        self.d, self.input, self.output, self.n, layout = self._c.layout()
        self.layout = [{"name": n, "offset": o, "shape": list(s)} for n, o, s in layout]
        if theta is None:
            self._theta = np.empty(self.d)
            self._c.init_theta(self._theta)
        else:
            self.theta = theta

    @property
    def theta(self):
        """float64 ndarray (d,): the parameters, in module.parameters() order"""
        return self._theta

    @theta.setter
    def theta(self, value):
        t = _f64(value, "theta")
        if t.shape != (self.d,):
            raise Error(f"theta: shape {t.shape}, expected ({self.d},)")
        self._theta = t

    def _th(self, theta):
        if theta is None:
            return self._theta
        t = _f64(theta, "theta")
        if t.shape != (self.d,):
            raise Error(f"theta: shape {t.shape}, expected ({self.d},)")
        return t

    def loss(self, theta=None):
        """L_gamma(theta)"""
        return self._c.loss(self._th(theta))

    def grad(self, theta=None):
        """(L_gamma, gradient (d,))"""
        g = np.empty(self.d)
        return self._c.grad(self._th(theta), g), g

    def hvp(self, V, theta=None):
        """H_gamma V, exact (forward-over-reverse); V (d,) or (k, d), the result V's shape"""
        V = _f64(V, "V")
        if V.ndim not in (1, 2) or V.shape[-1] != self.d or V.size == 0:
            raise Error(f"V: shape {V.shape}, expected ({self.d},) or (k, {self.d})")
        HV = np.empty_like(V)
        self._c.hvp(self._th(theta), V, HV)
        return HV

    def hessian(self, theta=None):
        """the dense d x d Hessian of L_gamma (refused, naming the bytes, beyond half the memory)"""
        th = self._th(theta)
        self._c.hessian_fits()
        H = np.empty((self.d, self.d))
        self._c.hessian(th, H)
        return H

    def symmetries(self):
        """the catalogue, as the transformations of `noether symmetries --json`"""
        return results.symmetries_doc(self.d, *self._c.symmetries())

    def check(self, theta=None, tol=IDENTITY_TOL):
        """every identity of every transformation at theta, as `noether check --json`"""
        if not tol > 0:
            raise Error(f"tol: {tol} is not a positive number")
        return results.check_doc(self.d, tol, self._c.check(self._th(theta), float(tol)), self._c.symmetries()[0])

    def spectrum(self, theta=None, top=5, bottom=5, method="auto", density=False, trace=False, sectors=False):
        """both ends of the spectrum of H_gamma and the symmetries' predictions, as
        `noether spectrum --json` (with every eigenvalue under "eigenvalues" when dense)"""
        text = self._c.spectrum(self._th(theta), int(top), int(bottom), str(method), bool(density), bool(trace),
                                bool(sectors))
        return json.loads(text)

    def train(self, **train_keys):
        """trains a copy of theta with the spec's train keys (optimizer, lr, steps, batch, seed,
        momentum, beta1, beta2, eps, log_every); returns the summary of `noether train` with
        the ledger as arrays and the final parameters (p.theta is left as it was)"""
        spec = dict(self.spec, train=dict(self.spec.get("train", {}), **train_keys))
        theta = self._theta.copy()
        out = self._c.train(json.dumps(spec), self._path, theta)
        return results.train_doc(spec, self.d, theta, *out)

    def run(self, out_dir, **keys):
        """the main job (`noether run`) on this problem at p.theta, its report in out_dir;
        keys replace top-level spec keys (train, analysis, init, weight_decay, transformations)"""
        return results.run(self, out_dir, keys)

    def to_spec(self, path):
        """writes path (spec JSON) with x.npy, y.npy and theta.npy beside it: `noether CMD path
        --params theta.npy` computes the same numbers"""
        return results.to_spec(self, path)

    def __repr__(self):
        return results.describe(self)
