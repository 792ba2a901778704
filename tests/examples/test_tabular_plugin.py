"""The example third-party plugin ``examples/contrastkit-tabular``, installed and used as a user would.

The module installs the example into the running environment with pip
(``--no-deps``: nothing is fetched; ``--no-build-isolation`` where the
environment has a setuptools that can build it, so no build requirement is
fetched either), then drives it through the ``contrastkit`` command line in
subprocesses — which see the new entry point exactly as a user's shell would —
and runs the plugin's own test suite, built on contrastkit's conformance kit.
The example stays installed afterwards (editable), like after ``pip install -e``.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "contrastkit-tabular"


def _setuptools_can_build() -> bool:
    """Whether the environment's setuptools builds the example without an isolated build env (>= 70.1)."""
    try:
        version = md.version("setuptools")
    except md.PackageNotFoundError:
        return False
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")[:2]]
    return tuple(parts + [0] * (2 - len(parts))) >= (70, 1)


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    """Install the example (editable) and return the environment for the subprocesses."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    if _setuptools_can_build():
        cmd.append("--no-build-isolation")
    cmd += ["--editable", str(EXAMPLE)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"pip install of {EXAMPLE} failed:\n{result.stdout}\n{result.stderr}"
    # New processes find the package through the install's .pth file; this one reads .pth files only at
    # start-up, so give it the same path: a plugin host built later in this session then loads 'tabular'.
    src = str(EXAMPLE / "src")
    if src not in sys.path:
        sys.path.append(src)
    importlib.invalidate_caches()
    out = {k: v for k, v in os.environ.items() if k != "CONTRASTKIT_DISABLE_PLUGINS"}
    # one thread per process: these runs are tiny, and the test suite shares the machine
    out.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
    return out


@pytest.fixture(scope="module")
def ck(env):
    """Run the ``contrastkit`` console script in a subprocess."""
    exe = Path(sys.executable).with_name("contrastkit")
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "contrastkit.cli.main"]

    def run(*args, ok: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(base + [str(a) for a in args], capture_output=True, text=True, env=env, timeout=300)
        if ok:
            assert result.returncode == 0, f"contrastkit {' '.join(map(str, args))} failed:\n{result.stderr}"
        return result

    return run


@pytest.fixture(scope="module")
def run_dir(ck, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tabular") / "run"
    ck("pretrain", "tabular", "--out", out, "--epochs", 2, "--no-progress")
    return out


def test_plugins_lists_tabular_with_its_distribution_and_version(ck):
    listing = json.loads(ck("plugins", "--json").stdout)
    (tab,) = [p for p in listing["plugins"] if p["name"] == "tabular"]
    assert tab["status"] == "loaded", tab["error"]
    assert (tab["distribution"], tab["version"], tab["module"]) == ("contrastkit-tabular", "0.1.0",
                                                                    "contrastkit_tabular.plugin")
    registered = {(c["kind"], c["name"]) for c in tab["registered"]}
    assert {("modality", "tabular"), ("reader", "table"), ("reader", "sklearn"),
            ("augmentation", "feature_corruption"), ("encoder", "mlp"), ("evaluator", "raw_features")} <= registered
    assert all(c["modality"] == "tabular" for c in tab["registered"])
    # nothing else broke: every plugin loaded
    assert [p["name"] for p in listing["plugins"] if p["status"] != "loaded"] == []


def test_pretrain_embed_evaluate_on_the_default_data_set(ck, run_dir):
    card = json.loads((run_dir / "run.json").read_text())
    assert card["status"] == "finished" and card["plugin"] == "tabular" and card["epochs_done"] == 2
    assert card["data"]["source"] == "breast_cancer" and card["data"]["n_items"] == 569
    assert card["data"]["meta"]["in_features"] == 30

    ck("embed", run_dir)
    frame = pl.read_parquet(run_dir / "embeddings.parquet")
    assert frame.height == 569 and frame["id"].n_unique() == 569
    assert frame["embedding"].to_numpy().shape == (569, 128)
    assert set(frame["label"].unique()) == {"malignant", "benign"}

    result = json.loads(ck("evaluate", run_dir, "--json", "--seeds", "0").stdout)
    metrics = result["metrics"]
    for key in ("linear.accuracy", "knn.accuracy", "svm.accuracy", "raw_features.accuracy",
                "raw_features.raw_accuracy"):
        assert 0.5 < metrics[key] <= 1.0, (key, metrics[key])
    assert metrics["raw_features.gain"] == pytest.approx(
        metrics["raw_features.accuracy"] - metrics["raw_features.raw_accuracy"])
    assert {e["evaluator"]: e["protocol"] for e in result["evaluations"]}["raw_features"] == \
        "linear-probe-vs-raw-features"


def test_extra_command_describes_a_table(ck, tmp_path):
    path = tmp_path / "customers.csv"
    pl.DataFrame({"id": ["a", "b", "c", "d"], "age": [30, 40, None, 50], "city": ["x", "y", "x", "x"]}).write_csv(path)
    stats = {c["column"]: c for c in json.loads(ck("tabular-describe", path, "--json").stdout)["columns"]}
    assert stats["age"]["nulls"] == 1 and stats["age"]["mean"] == pytest.approx(40.0)
    assert stats["age"]["min"] == 30 and stats["age"]["max"] == 50 and stats["city"]["distinct"] == 2
    text = ck("tabular-describe", path).stdout
    assert text.splitlines()[0] == f"{path}: 4 rows, 3 columns" and "age" in text
    missing = ck("tabular-describe", tmp_path / "nope.csv", ok=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: no such file."


def test_the_plugin_passes_the_conformance_kit(env):
    """The example's own test suite: ``conformance_tests("tabular")`` and the ``contrastkit_conformance`` fixture."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=EXAMPLE,
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "test_conformance" in subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider", "tests/test_conformance.py"],
        cwd=EXAMPLE, capture_output=True, text=True, env=env, timeout=300).stdout
