"""Shared fixtures of the Python tests: the built module (PYTHONPATH=build/python, set by
`make test`), the built noether binary, and PyTorch's loss, gradient and Hessian of a model
by double backward (the reference every exact number is compared with)."""
import os
import sys

import numpy as np
import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("NOETHER_BUILD", os.path.join(HERE, "..", "..", "build"))
sys.path.insert(0, os.path.join(BUILD, "python"))

import noether  # noqa: E402


@pytest.fixture
def binary():
    return os.path.join(BUILD, "noether")


def torch_loss(model, X, y, loss, wd):
    """L_gamma of the model in torch, with noether's loss definitions (docs/interface.md)"""
    f = model(X)
    if loss == "mse":
        L = 0.5 * ((f - y) ** 2).sum(1).mean()
    elif loss == "cross_entropy":
        L = torch.nn.functional.cross_entropy(f, y)
    elif loss == "logistic":
        L = torch.nn.functional.softplus(-y * f[:, 0]).mean()
    else:
        L = torch.exp(-y * f[:, 0]).mean()
    return L + 0.5 * wd * sum((p ** 2).sum() for p in model.parameters())


def torch_reference(model, X, y, loss, wd):
    """(L, g, H) of the model in torch: g by backward, H row by row by double backward"""
    params = list(model.parameters())
    L = torch_loss(model, X, y, loss, wd)
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(L, params, create_graph=True)])
    d = g.numel()
    H = np.empty((d, d))
    for i in range(d):
        row = torch.autograd.grad(g[i], params, retain_graph=True, allow_unused=True)
        H[i] = torch.cat([(r if r is not None else torch.zeros_like(p)).reshape(-1)
                          for r, p in zip(row, params)]).numpy()
    return L.item(), g.detach().numpy(), H


def rel(a, b):
    """|a - b| / |b| (max norms)"""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))
