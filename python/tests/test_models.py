"""noether.from_torch on torch models covering every supported module, sizes drawn at random
(seeded): loss, gradient, Hessian-vector products and the dense Hessian against PyTorch's
double backward to 1e-12 (relative), the identities of the catalogue holding, and the dense
spectrum's ends equal to numpy.linalg.eigvalsh of torch's Hessian."""
import numpy as np
import pytest
import torch
from torch import nn

import noether
from noether.nn import Residual, SelfAttention, MeanTokens, Square
from conftest import torch_reference, rel

torch.set_default_dtype(torch.float64)


def labels(rng, n, loss, k):
    if loss == "cross_entropy":
        return torch.tensor(rng.integers(0, k, n))
    if loss == "mse":
        return torch.tensor(rng.standard_normal((n, k)))
    return torch.tensor(rng.choice([-1.0, 1.0], n))


def mlp_relu_tanh(r):
    a, b = r.integers(3, 7, 2)
    return nn.Sequential(nn.Linear(4, a), nn.ReLU(), nn.Linear(a, b), nn.Tanh(), nn.Linear(b, 3)), (4,), "cross_entropy", 3


def mlp_smooth(r):
    a, b = r.integers(3, 6, 2)
    return (nn.Sequential(nn.Linear(3, a), nn.LeakyReLU(0.1), nn.Linear(a, b), nn.Sigmoid(), nn.Linear(b, a),
                          nn.Softplus(), nn.Linear(a, b), nn.GELU(), nn.Linear(b, 2)), (3,), "mse", 2)


def mlp_norms(r):
    a = int(r.integers(3, 6))
    return (nn.Sequential(nn.Linear(5, a), nn.LayerNorm(a), nn.ReLU(), nn.Linear(a, a), nn.BatchNorm1d(a),
                          nn.Tanh(), nn.Linear(a, 3)), (5,), "cross_entropy", 3)


def cnn_pools(r):
    c = int(r.integers(2, 4))
    return (nn.Sequential(nn.Conv2d(2, c, 3, stride=1, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(c, 2, 2, stride=2, bias=False), nn.Tanh(), nn.AvgPool2d(1), nn.Flatten(),
                          nn.Linear(2 * 2 * 2, 3)), (2, 8, 8), "cross_entropy", 3)


def cnn_norms(r):
    c = int(r.integers(2, 4))
    return (nn.Sequential(nn.Conv2d(1, c, 3), nn.BatchNorm2d(c), nn.ReLU(), nn.LayerNorm([c, 4, 4]),
                          nn.AvgPool2d(2, stride=2), nn.Flatten(), nn.Linear(c * 4, 2)), (1, 6, 6), "mse", 2)


def residual_mlp(r):
    a = int(r.integers(3, 6))
    return (nn.Sequential(nn.Linear(4, a), Residual(nn.Linear(a, a), nn.ReLU(), nn.Linear(a, a)), nn.Identity(),
                          nn.Tanh(), nn.Linear(a, 1)), (4,), "logistic", 1)


def attention(r):
    t, D, h = int(r.integers(3, 5)), 4, int(r.choice([1, 2]))
    return (nn.Sequential(nn.Linear(3, D), SelfAttention(D, h, causal=True),
                          Residual(nn.LayerNorm(D), SelfAttention(D, 2, bias=False)), nn.GELU(), MeanTokens(),
                          nn.Linear(D, 3)), (t, 3), "cross_entropy", 3)


def nested_square(r):
    a = int(r.integers(3, 6))
    inner = nn.Sequential(nn.Linear(3, a, bias=False), Square(), nn.Sequential(nn.Linear(a, a), nn.Identity()))
    return nn.Sequential(inner, nn.Tanh(), nn.Linear(a, 1)), (3,), "exponential", 1


def deep_linear(r):
    a, b = r.integers(2, 5, 2)
    return (nn.Sequential(nn.Linear(3, a), nn.Identity(), nn.Linear(a, b), nn.Identity(), nn.Linear(b, 2)),
            (3,), "mse", 2)


MODELS = [mlp_relu_tanh, mlp_smooth, mlp_norms, cnn_pools, cnn_norms, residual_mlp, attention, nested_square,
          deep_linear]


def build(make, seed, wd):
    r = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model, shape, loss, k = make(r)
    model = model.double().train()
    n = int(r.integers(12, 20))
    X = torch.tensor(r.standard_normal((n,) + shape))
    y = labels(r, n, loss, k)
    return model, X, y, loss, noether.from_torch(model, X, y, loss=loss, weight_decay=wd)


@pytest.mark.parametrize("make", MODELS, ids=[m.__name__ for m in MODELS])
def test_exact_against_torch(make):
    wd = 0.01
    model, X, y, loss, p = build(make, 1, wd)
    L, g, H = torch_reference(model, X, y if loss != "cross_entropy" else y, loss, wd)
    assert p.d == H.shape[0]
    assert abs(p.loss() - L) <= 1e-12 * abs(L)
    l2, g2 = p.grad()
    assert l2 == p.loss()
    assert rel(g2, g) <= 1e-12
    V = np.random.default_rng(2).standard_normal((3, p.d))
    assert rel(p.hvp(V), V @ H) <= 1e-12
    assert rel(p.hvp(V[0]), H @ V[0]) <= 1e-12 and p.hvp(V[0]).shape == (p.d,)
    Hn = p.hessian()
    assert rel(Hn, H) <= 1e-12
    # the negative control: a product of a perturbed Hessian fails the same bound
    assert rel(p.hvp(V) * (1 + 1e-9), V @ H) > 1e-12


@pytest.mark.parametrize("make", MODELS, ids=[m.__name__ for m in MODELS])
def test_identities_and_spectrum(make):
    model, X, y, loss, p = build(make, 3, 0.001)
    doc = p.check()
    assert doc["all_hold"], [t for t in doc["transformations"] if not t["holds"]]
    assert doc["entries"] is doc["transformations"]
    assert len(doc["transformations"]) >= 1
    _, _, H = torch_reference(model, X, y, loss, 0.001)
    lam = np.linalg.eigvalsh((H + H.T) / 2)
    s = p.spectrum(top=4, bottom=4, method="dense")
    scale = np.abs(lam).max()
    assert s["method"] == "dense"
    assert np.abs(np.array(s["top"]) - lam[::-1][:4]).max() <= 1e-12 * scale
    assert np.abs(np.array(s["bottom"]) - lam[:4]).max() <= 1e-12 * scale
    assert np.abs(np.array(s["eigenvalues"]) - lam).max() <= 1e-12 * scale


def test_a_broken_identity_fails():
    """negative control: a tolerance below the round-off makes identities fail"""
    _, _, _, _, p = build(mlp_relu_tanh, 4, 0.0)
    assert p.check()["all_hold"]
    doc = p.check(tol=1e-300)
    assert not doc["all_hold"]


def test_theta_changed_in_place():
    model, X, y, loss, p = build(mlp_relu_tanh, 5, 0.0)
    v = np.random.default_rng(0).standard_normal(p.d)
    hv0 = p.hvp(v)
    g0 = p.grad()[1]
    p.theta[:] += 0.05 * np.random.default_rng(1).standard_normal(p.d)
    torch.nn.utils.vector_to_parameters(torch.tensor(p.theta), model.parameters())
    _, g, H = torch_reference(model, X, y, loss, 0.0)
    assert rel(p.hvp(v), H @ v) <= 1e-12 and rel(p.hvp(v), hv0) > 1e-6
    assert rel(p.grad()[1], g) <= 1e-12 and rel(g0, g) > 1e-6
    th = p.theta.copy()
    assert rel(p.hvp(v, theta=th), H @ v) <= 1e-12


def test_float32_module_and_tensors():
    """a float32 model and data are converted to float64: the same numbers as the double model"""
    model, X, y, loss, p = build(mlp_relu_tanh, 6, 0.0)
    m32 = model.float()
    p32 = noether.from_torch(m32, X.float(), y.int(), loss=loss)
    assert p32.theta.dtype == np.float64
    assert np.array_equal(p32.theta, np.concatenate([t.detach().double().reshape(-1).numpy() for t in m32.parameters()]))
    assert abs(p32.loss(p.theta.astype(np.float32).astype(np.float64)) - p32.loss()) == 0


def test_repr_and_layout_order():
    model, X, y, loss, p = build(cnn_norms, 7, 0.0)
    text = repr(p)
    assert f"d = {p.d}" in text and "0.weight" in text and len(text.splitlines()) < 25
    sizes = [t.numel() for t in model.parameters()]
    assert [t["offset"] for t in p.layout] == list(np.cumsum([0] + sizes[:-1]))
    assert [int(np.prod(t["shape"])) for t in p.layout] == sizes
    # conv weight C_out x C_in x kh x kw, as torch's
    assert p.layout[0]["shape"] == list(model[0].weight.shape)
