"""python3 -m noether export MODEL.pt --data X.npy Y.npy -o DIR [--input-shape C,H,W]
[--loss L] [--weight-decay G] [--arch SPEC.json]

Writes DIR/spec.json with DIR/spec_x.npy, spec_y.npy and spec_theta.npy for the noether
command (`noether check DIR/spec.json --params DIR/spec_theta.npy`).  MODEL.pt is a whole
module saved with torch.save(model, ...) (read through noether.from_torch), or a state_dict
with the architecture given as a noether spec (--arch: its "model" is used, the tensors
taken by their names in noether's layout, docs/interface.md)."""
import argparse
import json
import sys

import numpy as np

from . import Error, Problem, from_torch, targets


BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def state_tensors(path, sd, layout):
    """the state_dict's parameters in noether's layout: by name when every layout name is in
    it (a flat nn.Sequential), else in the state_dict's order of parameters (its buffers, the
    batch norms' running statistics, left out): torch's parameters() order"""
    if all(t["name"] in sd for t in layout):
        tensors = [(t["name"], sd[t["name"]]) for t in layout]
    else:
        tensors = [(k, v) for k, v in sd.items() if not k.endswith(BUFFERS)]
        if len(tensors) != len(layout):
            raise Error(f"{path}: {len(tensors)} parameter tensors, the architecture has {len(layout)}")
    parts = []
    for (name, v), t in zip(tensors, layout):
        v = v.detach().double().numpy()
        if v.size != int(np.prod(t["shape"])) or (len(t["shape"]) > 1 and list(v.shape) != t["shape"]):
            raise Error(f"{path}: {name}: shape {tuple(v.shape)}, the architecture's {t['name']} has {tuple(t['shape'])}")
        parts.append(v.reshape(-1))
    return parts


def export(a):
    import torch
    X = np.load(a.data[0])
    if a.input_shape:
        X = X.reshape([len(X)] + [int(s) for s in a.input_shape.split(",")])
    y = np.load(a.data[1])
    obj = torch.load(a.model, map_location="cpu")
    if isinstance(obj, torch.nn.Module):
        p = from_torch(obj, X, y, loss=a.loss, weight_decay=a.weight_decay)
    else:
        if not a.arch:
            raise Error(f"{a.model}: a state_dict: give the architecture as a spec (--arch SPEC.json)")
        with open(a.arch) as f:
            spec = json.load(f)
        spec = {"model": spec["model"], "data": {"source": "npy", "x": "x.npy", "y": "y.npy"},
                "weight_decay": a.weight_decay if a.weight_decay else spec.get("weight_decay", 0.0)}
        model = spec["model"]
        p = Problem(spec, X.reshape(len(X), -1), targets(y, len(X), model["loss"], 1 if model["loss"] != "mse"
                                                          else np.load(a.data[1]).reshape(len(X), -1).shape[1]))
        p.theta = np.concatenate(state_tensors(a.model, obj, p.layout))
    out = p.to_spec(f"{a.out}/spec.json")
    print(f"{out['spec']} (d = {p.d}); theta in {out['params']}")


def main(argv):
    ap = argparse.ArgumentParser(prog="python3 -m noether", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="a torch model and its data as a noether spec")
    e.add_argument("model")
    e.add_argument("--data", nargs=2, required=True, metavar=("X.npy", "Y.npy"))
    e.add_argument("-o", "--out", required=True)
    e.add_argument("--input-shape", help="per-sample shape, e.g. 1,28,28 (default: X.npy's)")
    e.add_argument("--loss", default="cross_entropy")
    e.add_argument("--weight-decay", type=float, default=0.0)
    e.add_argument("--arch", help="a noether spec whose model is the architecture of a state_dict")
    a = ap.parse_args(argv)
    try:
        export(a)
    except (Error, OSError) as exc:
        print(f"noether export: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
