"""to_spec + the noether command give the same numbers as the Problem; noether.load reads a
spec; train() against noether train; run() the main job; python3 -m noether export."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import noether
from noether.nn import Residual
from conftest import BUILD

torch.set_default_dtype(torch.float64)


def problem(seed=0, wd=0.001, n=24):
    r = np.random.default_rng(seed)
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), Residual(nn.Linear(6, 6), nn.Tanh()), nn.Linear(6, 3))
    X = torch.tensor(r.standard_normal((n, 4)))
    y = torch.tensor(r.integers(0, 3, n))
    return m, X, y, noether.from_torch(m, X, y, weight_decay=wd)


def same(a, b):
    """equal documents; a number as the command prints it (cJSON keeps 15 digits when they
    read back within one ulp) within 2 ulps of the Problem's"""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return abs(a - b) <= 4.5e-16 * max(abs(a), abs(b))
    return a == b


def cli(binary, *args, ok=(0,)):
    proc = subprocess.run([binary, *args], capture_output=True, text=True)
    assert proc.returncode in ok, proc.stderr
    return proc


def test_to_spec_and_the_cli_agree(tmp_path, binary):
    _, _, _, p = problem()
    files = p.to_spec(str(tmp_path / "model.json"))
    spec, params = files["spec"], files["params"]
    g = json.loads(cli(binary, "grad", spec, "--params", params, "--out", str(tmp_path / "g.npy"), "--json").stdout)
    loss, grad = p.grad()
    assert g["d"] == p.d and same(g["loss"], loss)
    assert np.array_equal(np.load(tmp_path / "g.npy"), grad)
    V = np.random.default_rng(1).standard_normal((2, p.d))
    np.save(tmp_path / "V.npy", V)
    cli(binary, "hvp", spec, "--params", params, "--vectors", str(tmp_path / "V.npy"), "--out", str(tmp_path / "HV.npy"))
    assert np.array_equal(np.load(tmp_path / "HV.npy"), p.hvp(V))
    sym = json.loads(cli(binary, "symmetries", spec, "--json").stdout)
    assert sym == p.symmetries()
    chk = json.loads(cli(binary, "check", spec, "--params", params, "--json").stdout)
    mine = p.check()
    for key in ("d", "loss", "grad_norm", "tol", "all_hold"):
        assert same(chk[key], mine[key]), key
    drop = ("seconds", "gradients")
    assert same(chk["transformations"], mine["transformations"])
    assert set(chk) - set(drop) == set(mine) - set(drop) - {"entries"}
    sp = json.loads(cli(binary, "spectrum", spec, "--params", params, "--top", "4", "--bottom", "3", "--json",
                        "--density", "--trace").stdout)
    mine = p.spectrum(top=4, bottom=3, density=True, trace=True)
    assert same(sp["top"], mine["top"]) and same(sp["bottom"], mine["bottom"])
    assert same(sp["density"], mine["density"]) and same(sp["trace"], mine["trace"])
    assert same(sp["predictions"], mine["predictions"])
    assert not same(sp["top"], [x * (1 + 1e-14) for x in mine["top"]])   # the comparison's negative control
    assert set(mine) - set(sp) == {"eigenvalues"}


def test_load_reads_a_spec(tmp_path):
    _, _, _, p = problem(2)
    path = p.to_spec(str(tmp_path / "s.json"))["spec"]
    q = noether.load(path)
    assert q.d == p.d and q.n == p.n
    assert q.loss(p.theta) == p.loss()
    assert not np.array_equal(q.theta, p.theta)   # the spec's seeded initialization, not p's theta
    with pytest.raises(noether.Error, match="nowhere.json"):
        noether.load(str(tmp_path / "nowhere.json"))


def test_declared_transformations_are_checked(tmp_path):
    """a spec read by noether.load keeps its declared transformations; a random generator
    (not a symmetry: the negative control) fails its identities while the catalogue holds"""
    _, _, _, p = problem(6, wd=0.0)
    path = p.to_spec(str(tmp_path / "s.json"))["spec"]
    spec = json.load(open(path))
    np.save(tmp_path / "A.npy", np.random.default_rng(0).standard_normal((p.d, p.d)))
    spec["transformations"] = [{"name": "random_flow", "kind": "continuous", "generator": "A.npy"}]
    json.dump(spec, open(path, "w"))
    q = noether.load(path)
    doc = q.check(p.theta)
    bad = [t["name"] for t in doc["transformations"] if not t["holds"]]
    assert bad == ["random_flow"] and not doc["all_hold"]
    assert doc["transformations"][-1]["first_order_residual"] > 1e-3
    assert "random_flow" in [t["name"] for t in q.symmetries()["transformations"]]


def test_train_equals_noether_train(tmp_path, binary):
    _, _, _, p = problem(3)
    keys = {"optimizer": "momentum", "lr": 0.05, "steps": 60, "batch": 8, "seed": 4, "log_every": 20}
    t = p.train(**keys)
    p.spec["train"] = keys
    files = p.to_spec(str(tmp_path / "t.json"))
    del p.spec["train"]
    out = tmp_path / "out"
    cli(binary, "train", files["spec"], "--params", files["params"], "-o", str(out), "--quiet")
    summary = json.load(open(out / "summary.json"))
    assert np.array_equal(np.load(out / "params_final.npy"), t["params_final"])
    for key in ("d", "optimizer", "lr", "weight_decay", "steps", "stopped", "final_loss", "final_loss_gamma",
                "train_accuracy"):
        assert same(summary[key], t[key]), key
    assert same(summary["ledger"]["per_quantity"], t["ledger"]["per_quantity"])
    assert same(summary["ledger"]["max_gap"], t["ledger"]["max_gap"]) and t["ledger"]["max_gap"] < 1e-8
    assert list(t["log"]["step"]) == [0, 20, 40, 60]
    assert t["ledger"]["measured"].shape == (4, t["ledger"]["quantities"])
    # the ledger's columns: measured and predicted agree to round-off at every logged step
    assert np.abs(t["ledger"]["measured"] - t["ledger"]["predicted"]).max() < 1e-10
    assert not np.array_equal(t["params_final"], p.theta)   # p.theta is left as it was


def test_run_writes_the_report(tmp_path):
    _, _, _, p = problem(4)
    r = p.run(str(tmp_path / "run"), train={"optimizer": "gd", "lr": 0.1, "steps": 40},
              analysis={"every": 20, "spectrum": {"top": 3, "bottom": 3}})
    assert r["analysis"]["all_identities_hold"] is True
    assert os.path.isfile(r.report)
    html = r._repr_html_()
    assert "<html" in html.lower() and "data:image/" in html


def test_export_a_whole_module_and_a_state_dict(tmp_path, binary):
    m, X, y, p = problem(5)
    p.theta = torch.tensor(p.theta, requires_grad=True)   # a tensor is taken as theta too
    np.save(tmp_path / "X.npy", X.numpy())
    np.save(tmp_path / "y.npy", y.numpy())
    torch.save(m, tmp_path / "model.pt")
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    run = subprocess.run([sys.executable, "-m", "noether", "export", str(tmp_path / "model.pt"), "--data",
                          str(tmp_path / "X.npy"), str(tmp_path / "y.npy"), "--weight-decay", "0.001", "-o",
                          str(tmp_path / "exp")], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    g = json.loads(cli(binary, "grad", str(tmp_path / "exp/spec.json"), "--params",
                       str(tmp_path / "exp/spec_theta.npy"), "--json").stdout)
    assert same(g["loss"], p.loss())
    # a state_dict needs the architecture: refused without it, naming the flag
    torch.save(m.state_dict(), tmp_path / "sd.pt")
    args = [sys.executable, "-m", "noether", "export", str(tmp_path / "sd.pt"), "--data", str(tmp_path / "X.npy"),
            str(tmp_path / "y.npy"), "-o", str(tmp_path / "exp2"), "--weight-decay", "0.001"]
    run = subprocess.run(args, capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "--arch" in run.stderr
    run = subprocess.run(args + ["--arch", str(tmp_path / "exp/spec.json")], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert np.array_equal(np.load(tmp_path / "exp2/spec_theta.npy"), p.theta)
