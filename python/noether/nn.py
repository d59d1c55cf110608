"""noether.nn: the torch modules that stand for noether layers with no single torch module.

    Residual(*layers)                     x + f(x), f = nn.Sequential(*layers)   {"residual": [...]}
    SelfAttention(dim, heads, causal=False, bias=True)
                                          nn.MultiheadAttention(dim, heads, bias=bias,
                                          batch_first=True) applied as self-attention
                                          (need_weights=False; causal: the mask
                                          torch.triu(ones(T, T), 1))      {"attention": heads, ...}
    MeanTokens()                          the mean over tokens, x.mean(1)  {"pool": "tokens"}
    Square()                              x * x                            {"act": "square"}

Each computes in torch exactly what the engine computes (docs/layers.md), so a model built
from them trains and evaluates in PyTorch as usual, and noether.from_torch reads it.
"""
import torch
from torch import nn


class Residual(nn.Module):
    """x + f(x) with f = nn.Sequential(*layers); f must keep the width."""

    def __init__(self, *layers):
        super().__init__()
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.body(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention on (N, T, D) sequences, noether's {"attention": heads}."""

    def __init__(self, dim, heads, causal=False, bias=True):
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, heads, bias=bias, batch_first=True)
        self.causal = bool(causal)

    def forward(self, x):
        t = x.shape[1]
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), 1) if self.causal else None
        return self.mha(x, x, x, attn_mask=mask, need_weights=False)[0]


class MeanTokens(nn.Module):
    """(N, T, D) -> (N, D): the mean over tokens."""

    def forward(self, x):
        return x.mean(1)


class Square(nn.Module):
    """x * x elementwise (noether's even activation "square")."""

    def forward(self, x):
        return x * x
