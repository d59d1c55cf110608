"""noether.results: the documents a Problem returns (the JSON documents of the noether
commands, docs/interface.md, as dicts), to_spec, the main job, and the one-screen summary."""
import base64
import json
import math
import os
import re
import shutil
import subprocess

import numpy as np

from ._noether import Error


def _kind(discrete):
    return "discrete" if discrete else "continuous"


def _type(equivariance):
    return "equivariance" if equivariance else "symmetry"


def symmetries_doc(d, entries, listed, independent):
    """`noether symmetries --json`"""
    tr = []
    for name, discrete, equivariance, generators in entries:
        o = {"name": name, "kind": _kind(discrete), "type": _type(equivariance)}
        if not discrete:
            o["generators"] = generators
        tr.append(o)
    return {"d": d, "transformations": tr, "conserved_quantities": listed,
            "independent_quantities": independent if independent >= 0 else None}


def check_doc(d, tol, result, entries):
    """`noether check --json` (and "entries", the same list as "transformations")"""
    loss, grad_norm, seconds, gradients, rows = result
    tr = []
    for name, entry, first, second, s1, s2, fix_g, fix_h, holds in rows:
        _, discrete, equivariance, _ = entries[entry]
        o = {"name": name, "kind": _kind(discrete), "type": _type(equivariance),
             "first_order_residual": first, "second_order_residual": second}
        for key, v in (("s1_residual", s1), ("s2_residual", s2), ("fixed_point_gradient_residual", fix_g),
                       ("fixed_point_hessian_residual", fix_h)):
            if not math.isnan(v):
                o[key] = v
        o["holds"] = bool(holds)
        tr.append(o)
    return {"d": d, "loss": loss, "grad_norm": grad_norm, "tol": tol, "ranks": 1,   # one process: the module does not shard
            "all_hold": all(o["holds"] for o in tr),
            "seconds": seconds, "gradients": gradients, "transformations": tr, "entries": tr}


LOG_KEYS = ("step", "loss", "loss_gamma", "accuracy", "test_loss", "test_accuracy", "norm2", "margin", "seconds")


def train_doc(spec, d, theta, rows, ledger, quantities, listed, independent, stopped, optimizer, lr):
    """summary.json of `noether train`, with the logged rows ("log") and the ledger's columns
    ("ledger": measured, predicted, gradient_flow, each rows x quantities) as arrays, and
    the final parameters ("params_final")"""
    last = dict(zip(LOG_KEYS, rows[-1])) if rows else {k: math.nan for k in LOG_KEYS}
    doc = {"spec": "<python>", "d": d, "optimizer": optimizer, "lr": lr,
           "weight_decay": spec.get("weight_decay", 0.0), "steps": int(last["step"]) if rows else 0,
           "stopped": stopped, "final_loss": last["loss"], "final_loss_gamma": last["loss_gamma"]}
    for key, src in (("train_accuracy", "accuracy"), ("test_loss", "test_loss"), ("test_accuracy", "test_accuracy"),
                     ("normalized_margin", "margin")):
        if not math.isnan(last[src]):
            doc[key] = last[src]
    doc["seconds"] = last["seconds"]
    per = [{"name": q[0], "type": _type(q[1]), "initial": q[2], "measured": q[3], "predicted": q[4],
            "gradient_flow": q[5], "max_gap": q[6], "size": q[10], "first_order": q[7], "weight_decay": q[8],
            "second_order": q[9]}
           for q in quantities]
    L = np.array(ledger, dtype=np.float64).reshape(len(rows), len(quantities), 3)
    doc["ledger"] = {"quantities": len(quantities), "max_gap": max([q[6] for q in quantities], default=0.0),
                     "conserved": listed, "conserved_independent": independent if independent >= 0 else None,
                     "per_quantity": per, "names": [q[0] for q in quantities],
                     "measured": L[:, :, 0], "predicted": L[:, :, 1], "gradient_flow": L[:, :, 2]}
    R = np.array(rows, dtype=np.float64).reshape(len(rows), len(LOG_KEYS))
    doc["log"] = {k: R[:, i] for i, k in enumerate(LOG_KEYS)}
    doc["params_final"] = theta
    return doc


def to_spec(p, path):
    """spec JSON at path; STEM_x.npy, STEM_y.npy and STEM_theta.npy beside it"""
    folder, name = os.path.split(os.path.abspath(path))
    stem = os.path.splitext(name)[0]
    os.makedirs(folder, exist_ok=True)
    files = {k: f"{stem}_{k}.npy" for k in ("x", "y", "theta")}
    loss = p.spec["model"]["loss"]
    y = p._Y if loss == "mse" else p._Y[:, 0]
    if loss == "cross_entropy":
        y = y.astype(np.int64)
    np.save(os.path.join(folder, files["x"]), p._X)
    np.save(os.path.join(folder, files["y"]), np.ascontiguousarray(y))
    np.save(os.path.join(folder, files["theta"]), p.theta)
    spec = dict(p.spec, data={"source": "npy", "x": files["x"], "y": files["y"]})
    with open(path, "w") as f:
        json.dump(spec, f, indent=2)
    return {"spec": os.path.abspath(path), "params": os.path.join(folder, files["theta"])}


def noether_binary():
    """the noether command: $NOETHER_BIN, the build's (beside build/python), or on PATH"""
    env = os.environ.get("NOETHER_BIN")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    built = os.path.normpath(os.path.join(here, "..", "..", "noether"))
    if os.path.isfile(built) and os.access(built, os.X_OK):
        return built
    found = shutil.which("noether")
    if not found:
        raise Error("noether: the noether command is not built or not on PATH (set NOETHER_BIN)")
    return found


class RunResult(dict):
    """summary.json of `noether run`; out_dir and report (its report.html), shown inline by Jupyter"""

    def _repr_html_(self):
        with open(self.report) as f:
            html = f.read()

        def inline(m):
            src = os.path.join(self.out_dir, m.group(2))
            if not os.path.isfile(src):
                return m.group(0)
            with open(src, "rb") as f:
                data = base64.b64encode(f.read()).decode()
            kind = "svg+xml" if src.endswith(".svg") else "png"
            return f'{m.group(1)}="data:image/{kind};base64,{data}"'
        return re.sub(r'(src)="([^":]+\.(?:png|svg))"', inline, html)


def run(p, out_dir, keys):
    """`noether run` (the main job) on p's spec, data and theta, in out_dir"""
    os.makedirs(out_dir, exist_ok=True)
    saved = p.spec
    try:
        p.spec = dict(p.spec, **keys)
        files = to_spec(p, os.path.join(out_dir, "input", "spec.json"))
    finally:
        p.spec = saved
    cmd = [noether_binary(), "run", files["spec"], "-o", out_dir, "--params", files["params"], "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in (0, 3):   # 3: an identity did not hold, still a result
        lines = proc.stderr.strip().splitlines()
        raise Error(lines[-1] if lines else f"noether run: exit {proc.returncode}")
    with open(os.path.join(out_dir, "summary.json")) as f:
        res = RunResult(json.load(f))
    res.out_dir, res.report = os.path.abspath(out_dir), os.path.join(os.path.abspath(out_dir), "report.html")
    return res


def _layer_text(L):
    return json.dumps(L, separators=(",", ":"))


def describe(p):
    """one screen: the model, its layout, the data"""
    m = p.spec["model"]
    lines = [f"noether.Problem: d = {p.d} parameters, {p.n} samples of input {m['input']}, {m['loss']} loss "
             f"with {p.output} outputs, weight decay {p.spec.get('weight_decay', 0.0)}"]
    lines += ["  layers: " + ", ".join(_layer_text(L) for L in m["layers"])]
    shown = p.layout[:12]
    lines += [f"  {t['name']:<24} offset {t['offset']:<10} shape {tuple(t['shape'])}" for t in shown]
    if len(p.layout) > len(shown):
        lines.append(f"  ... {len(p.layout) - len(shown)} more tensors")
    lines.append(f"  |theta| = {float(np.linalg.norm(p.theta)):.6g}")
    return "\n".join(lines)
