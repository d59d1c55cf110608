"""What noether cannot compute exactly is refused by name (noether.Error naming the module's
class and its path in the model), and bad inputs raise the library's message, never crash."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import noether
from noether.nn import SelfAttention, MeanTokens

torch.set_default_dtype(torch.float64)
X4 = torch.randn(6, 4)
Y3 = torch.tensor([0, 1, 2, 0, 1, 2])
IMG = torch.randn(6, 2, 6, 6)
SEQ = torch.randn(6, 3, 4)


def refused(model, X, *words):
    with pytest.raises(noether.Error) as e:
        noether.from_torch(model, X, Y3)
    for w in words:
        assert w in str(e.value), str(e.value)
    return str(e.value)


def test_unsupported_modules_named_with_their_path():
    refused(nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), nn.Dropout(0.1))), X4, "1.1", "nn.Dropout",
            "supported:", "nn.Linear")
    refused(nn.Sequential(nn.Embedding(10, 4)), X4, "0: nn.Embedding is not supported")
    refused(nn.Sequential(nn.Conv1d(4, 4, 1)), X4, "nn.Conv1d")
    refused(nn.Sequential(nn.Linear(4, 3), nn.Softmax(1)), X4, "1: nn.Softmax")
    refused(nn.Sequential(nn.Linear(4, 3), nn.ELU()), X4, "nn.ELU")
    refused(nn.LSTM(4, 3), X4, "model: nn.LSTM")


def test_unsupported_options_named():
    def conv(**kw):
        return nn.Sequential(nn.Conv2d(2, 2, 3, **kw), nn.Flatten(), nn.Linear(8, 3))
    refused(conv(dilation=2), IMG, "0: Conv2d", "dilation")
    refused(nn.Sequential(nn.Conv2d(2, 2, 3, groups=2), nn.Flatten(), nn.Linear(32, 3)), IMG, "groups=2")
    refused(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")), IMG, "padding_mode='reflect'")
    refused(nn.Sequential(nn.Conv2d(2, 2, 3, padding="same")), IMG, "padding='same'")
    refused(nn.Sequential(nn.Conv2d(2, 2, (3, 2))), IMG, "kernel_size=(3, 2) (not square)")
    refused(nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), IMG, "ceil_mode")
    refused(nn.Sequential(nn.AvgPool2d(2, padding=1)), IMG, "padding=1")
    refused(nn.Sequential(nn.AvgPool2d(2, divisor_override=3)), IMG, "divisor_override")
    refused(nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3).eval()), X4, "1: BatchNorm1d", "eval mode")
    refused(nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3).eval()), X4, "eval mode")
    refused(nn.Sequential(nn.Linear(4, 3), nn.GELU(approximate="tanh")), X4, "approximate='tanh'")
    refused(nn.Sequential(nn.Linear(4, 3), nn.Softplus(beta=2)), X4, "beta=2")
    refused(nn.Sequential(nn.Flatten(0)), X4, "start_dim=0")
    refused(nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(2)), X4, "normalized_shape")
    refused(nn.Sequential(nn.Linear(4, 5)), torch.randn(6, 3), "in_features 4")
    att = SelfAttention(4, 2)
    att.mha.dropout = 0.1
    refused(nn.Sequential(att, MeanTokens(), nn.Linear(4, 3)), SEQ, "0: SelfAttention", "dropout")
    refused(nn.Sequential(nn.Linear(4, 3)), SEQ, "must be a vector")


def test_bad_inputs_raise_the_library_message():
    m = nn.Sequential(nn.Linear(4, 3))
    Xn = X4.clone()
    Xn[2, 1] = math.nan
    with pytest.raises(noether.Error, match="feature 1 of sample 2 is not finite"):
        noether.from_torch(m, Xn, Y3)
    with pytest.raises(noether.Error, match="label 5 of sample 3 is not a class id in 0..2"):
        noether.from_torch(m, X4, torch.tensor([0, 1, 2, 5, 1, 2]))
    with pytest.raises(noether.Error, match="label 0.5 of sample 0"):
        noether.from_torch(m, X4, np.array([0.5, 1, 2, 0, 1, 2]))
    with pytest.raises(noether.Error, match="y: 5 samples, X has 6"):
        noether.from_torch(m, X4, Y3[:5])
    with pytest.raises(noether.Error, match="loss: 'hinge'"):
        noether.from_torch(m, X4, Y3, loss="hinge")
    with pytest.raises(noether.Error, match="must be -1 or \\+1"):
        noether.from_torch(nn.Sequential(nn.Linear(4, 1)), X4, np.array([2.0, 1, 1, -1, 1, 1]), loss="logistic")
    p = noether.from_torch(m, X4, Y3)
    with pytest.raises(noether.Error, match=f"V: shape \\(3,\\), expected \\({p.d},\\)"):
        p.hvp(np.ones(3))
    with pytest.raises(noether.Error, match="V: shape"):
        p.hvp(np.ones((2, 2, p.d)))
    with pytest.raises(noether.Error, match="theta: shape"):
        p.loss(np.ones(p.d + 1))
    with pytest.raises(noether.Error, match="theta: shape"):
        p.theta = np.ones(2)
    bad = p.theta.copy()
    bad[0] = math.nan
    with pytest.raises(noether.Error, match="loss.*not finite"):
        p.grad(bad)
    with pytest.raises(noether.Error, match="not finite"):
        p.hvp(np.ones(p.d), theta=bad)
    with pytest.raises(noether.Error, match="not finite"):
        p.hessian(theta=bad)
    with pytest.raises(noether.Error, match="not finite"):
        p.check(theta=bad)
    with pytest.raises(noether.Error, match="not finite"):
        p.spectrum(theta=bad)
    with pytest.raises(noether.Error, match="method: 'qr'"):
        p.spectrum(method="qr")
    with pytest.raises(noether.Error, match="tol"):
        p.check(tol=-1)
    with pytest.raises(noether.Error, match="V: not an array of numbers"):
        p.hvp(["a"] * p.d)
    assert isinstance(noether.Error("x"), ValueError)
    assert np.isfinite(p.loss())   # still usable after every refusal


def test_hessian_refused_when_too_large():
    """a Problem whose dense Hessian would not fit in half the machine's memory: refused with
    the bytes it needs, before anything of that size is allocated"""
    w = 20000
    m = nn.Sequential(nn.Linear(8, w), nn.ReLU(), nn.Linear(w, 3))
    p = noether.from_torch(m, torch.randn(4, 8), Y3[:4])
    with pytest.raises(noether.Error, match="the dense Hessian of d = .* needs .* bytes"):
        p.hessian()


def test_threads_share_a_problem_safely():
    """the GIL is released during the library's work: a second call on the same Problem from
    another thread is refused (noether.Error), never run on the engine at the same time"""
    import threading
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 3))
    p = noether.from_torch(m, torch.randn(256, 16), torch.randint(0, 3, (256,)))
    v = np.random.default_rng(0).standard_normal((8, p.d))
    want = p.hvp(v)
    errors, results = [], []

    def work():
        for _ in range(20):
            try:
                results.append(p.hvp(v))
            except noether.Error as exc:
                errors.append(str(exc))
    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all("in use by another thread" in e for e in errors)
    assert len(results) + len(errors) == 60 and results
    assert all(np.array_equal(r, want) for r in results)
