"""noether.walk: a torch nn.Module read as the "model" of a noether spec (docs/layers.md).

The walk follows nn.Sequential (nested) in order and turns each supported module into one
spec layer, tracking the per-sample shape (a vector (w,), an image (C, H, W), a sequence
(T, D)).  Whatever the engine does not compute exactly as torch does is refused by name,
with the module's path in the model ("features.3: nn.Embedding is not supported; ...").
The parameter order of the spec's layout is torch's parameters() order (docs/interface.md,
"Parameter layout"); noether.from_torch checks it tensor by tensor against the module.
"""
from torch import nn

from ._noether import Error
from . import nn as nnt

SUPPORTED = ("nn.Sequential, nn.Linear, nn.Conv2d, nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, "
             "nn.Softplus, nn.GELU, nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool2d, "
             "nn.AvgPool2d, nn.Flatten, nn.Identity, noether.nn.Residual, noether.nn.SelfAttention, "
             "noether.nn.MeanTokens, noether.nn.Square")

ACTS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.Identity: "identity", nnt.Square: "square"}


def _refuse(path, mod, what):
    raise Error(f"{path or 'model'}: {type(mod).__name__}: {what} is not supported by noether's engine")


def _pair(path, mod, name, v):
    """an int or a square pair of ints, as one int"""
    if isinstance(v, str):
        _refuse(path, mod, f"{name}={v!r}")
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            _refuse(path, mod, f"{name}={tuple(v)} (not square)")
        v = v[0]
    return int(v)


def _image(path, mod, shape):
    if len(shape) != 3:
        raise Error(f"{path or 'model'}: {type(mod).__name__} needs an image (C, H, W); the value here has shape {tuple(shape)}")


def _conv(path, m, shape):
    _image(path, m, shape)
    if m.in_channels != shape[0]:
        raise Error(f"{path}: nn.Conv2d: in_channels {m.in_channels}, the value here has {shape[0]} channels")
    if _pair(path, m, "dilation", m.dilation) != 1:
        _refuse(path, m, f"dilation={m.dilation}")
    if m.groups != 1:
        _refuse(path, m, f"groups={m.groups}")
    if m.padding_mode != "zeros":
        _refuse(path, m, f"padding_mode={m.padding_mode!r}")
    k, s, p = _pair(path, m, "kernel_size", m.kernel_size), _pair(path, m, "stride", m.stride), _pair(path, m, "padding", m.padding)
    layer = {"conv": int(m.out_channels), "kernel": k, "stride": s, "padding": p, "bias": m.bias is not None}
    return layer, [int(m.out_channels), (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1]


def _pool(path, m, shape):
    _image(path, m, shape)
    if m.ceil_mode:
        _refuse(path, m, "ceil_mode=True")
    if _pair(path, m, "padding", m.padding) != 0:
        _refuse(path, m, f"padding={m.padding}")
    if isinstance(m, nn.MaxPool2d):
        if _pair(path, m, "dilation", m.dilation) != 1:
            _refuse(path, m, f"dilation={m.dilation}")
        if m.return_indices:
            _refuse(path, m, "return_indices=True")
    elif m.divisor_override is not None:
        _refuse(path, m, f"divisor_override={m.divisor_override}")
    k = _pair(path, m, "kernel_size", m.kernel_size)
    s = _pair(path, m, "stride", m.stride if m.stride is not None else k)
    layer = {"pool": "max" if isinstance(m, nn.MaxPool2d) else "avg", "kernel": k, "stride": s}
    return layer, [shape[0], (shape[1] - k) // s + 1, (shape[2] - k) // s + 1]


def _norm(path, m, shape):
    if not m.training:
        _refuse(path, m, "eval mode (the engine computes normalizations with batch statistics: call .train())")
    if isinstance(m, nn.LayerNorm):
        want = tuple(shape) if len(shape) != 2 else (shape[-1],)
        if tuple(m.normalized_shape) != want:
            raise Error(f"{path}: nn.LayerNorm: normalized_shape {tuple(m.normalized_shape)}; noether normalizes "
                        f"over {want} here")
        return {"norm": "layer", "eps": float(m.eps), "affine": bool(m.elementwise_affine)}
    if isinstance(m, nn.BatchNorm2d):
        _image(path, m, shape)
    elif len(shape) != 1:
        raise Error(f"{path}: nn.BatchNorm1d needs a flat vector; the value here has shape {tuple(shape)}")
    if m.num_features != shape[0]:
        raise Error(f"{path}: {type(m).__name__}: num_features {m.num_features}, the value here has {shape[0]}")
    return {"norm": "batch", "eps": float(m.eps), "affine": bool(m.affine)}


def _attention(path, m, shape):
    a = m.mha
    if len(shape) != 2:
        raise Error(f"{path}: SelfAttention needs a sequence (T, D); the value here has shape {tuple(shape)}")
    if a.embed_dim != shape[1]:
        raise Error(f"{path}: SelfAttention: dim {a.embed_dim}, the tokens here have {shape[1]} features")
    if a.dropout:
        _refuse(path, m, f"dropout={a.dropout}")
    if a.bias_k is not None or a.add_zero_attn or not a._qkv_same_embed_dim or not a.batch_first:
        _refuse(path, m, "add_bias_kv, add_zero_attn, kdim/vdim or batch_first=False")
    return {"attention": int(a.num_heads), "causal": m.causal, "bias": a.in_proj_bias is not None}


def _leaf(path, m, shape):
    """(spec layer, shape after it) for one module that is not a container"""
    if isinstance(m, nn.Linear):
        if m.in_features != shape[-1]:
            raise Error(f"{path}: nn.Linear: in_features {m.in_features}, the value here has {shape[-1]} features")
        if len(shape) == 3:
            raise Error(f"{path}: nn.Linear on an image: put nn.Flatten() before it")
        return {"dense": int(m.out_features), "bias": m.bias is not None}, shape[:-1] + [int(m.out_features)]
    if type(m) in ACTS:
        return {"act": ACTS[type(m)]}, shape
    if isinstance(m, nn.LeakyReLU):
        return {"act": "leaky_relu", "alpha": float(m.negative_slope)}, shape
    if isinstance(m, nn.Softplus):
        if m.beta != 1:
            _refuse(path, m, f"beta={m.beta}")
        return {"act": "softplus"}, shape
    if isinstance(m, nn.GELU):
        if m.approximate != "none":
            _refuse(path, m, f"approximate={m.approximate!r} (only the exact, erf GELU)")
        return {"act": "gelu"}, shape
    if isinstance(m, nn.Conv2d):
        return _conv(path, m, shape)
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        return _pool(path, m, shape)
    if isinstance(m, (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d)):
        return _norm(path, m, shape), shape
    if isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            _refuse(path, m, f"start_dim={m.start_dim}, end_dim={m.end_dim}")
        n = 1
        for s in shape:
            n *= s
        return {"flatten": True}, [n]
    if isinstance(m, nnt.SelfAttention):
        return _attention(path, m, shape), shape
    if isinstance(m, nnt.MeanTokens):
        if len(shape) != 2:
            raise Error(f"{path}: MeanTokens needs a sequence (T, D); the value here has shape {tuple(shape)}")
        return {"pool": "tokens"}, [shape[1]]
    raise Error(f"{path or 'model'}: {_torch_name(m)} is not supported; supported: {SUPPORTED}")


def _torch_name(m):
    mod = type(m).__module__
    return f"nn.{type(m).__name__}" if mod.startswith("torch.nn") else f"{mod}.{type(m).__name__}"


def walk(module, shape, path=""):
    """The spec layers of module for a per-sample input of this shape (a list); and the
    shape after them."""
    layers = []
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            sub, shape = walk(child, shape, f"{path}.{name}" if path else name)
            layers += sub
        return layers, shape
    if isinstance(module, nnt.Residual):
        sub, out = walk(module.body, shape, f"{path}.body" if path else "body")
        if out != shape:
            raise Error(f"{path or 'model'}: Residual: its layers change the shape {tuple(shape)} to {tuple(out)}")
        return [{"residual": sub}], shape
    layer, shape = _leaf(path, module, list(shape))
    return [layer], shape
