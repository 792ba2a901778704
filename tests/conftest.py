"""Shared fixtures: small generated time-series data and an in-process CLI runner."""

from __future__ import annotations

import os
import sys

# Tests start training subprocesses beside the in-process CLI (DDP ranks, a live run holding a lock) on
# two cores: OpenMP threads that spin while they wait then steal the cores the other process needs (a
# dilated-CNN step measured 3.6 s instead of 0.2 s). Waiting threads sleep instead; results are unchanged.
# Set before torch is first imported (this file is loaded before any test module).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from pathlib import Path

import numpy as np
import polars as pl
import pytest

TINY_RECIPE = """
epochs = 2
batch_size = 8
lr = 0.003
[encoder]
name = "dilated_conv"
hidden = 16
out_dim = 32
depth = 2
[head]
out_dim = 16
[evaluate]
evaluators = ["svm", "knn"]
seeds = [0]
"""


def make_long_series(path: Path, n: int = 40, length: int = 32, seed: int = 0, nan: bool = False,
                     fmt: str = "parquet") -> Path:
    """Two classes of series in long format: sines (label a) and square waves (label b)."""
    rng = np.random.default_rng(seed)
    rows = {"id": [], "time": [], "value": [], "label": []}
    t = np.arange(length)
    for i in range(n):
        label = "a" if i % 2 == 0 else "b"
        freq, phase = rng.uniform(0.1, 0.3), rng.uniform(0, 6.28)
        base = np.sin(freq * t + phase)
        x = base if label == "a" else np.sign(base)
        x = x + 0.1 * rng.standard_normal(length)
        if nan and i == 3:
            x[5] = np.nan
        rows["id"] += [f"s{i:03d}"] * length
        rows["time"] += t.tolist()
        rows["value"] += x.tolist()
        rows["label"] += [label] * length
    frame = pl.DataFrame(rows)
    if fmt == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    return make_long_series(tmp_path / "series.parquet")


@pytest.fixture
def tiny_recipe(tmp_path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY_RECIPE)
    return p


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out!r}, err={self.err!r})"

    def one_error_line(self) -> str:
        """The one ``error:`` line of a failed command (exit code 1, no traceback)."""
        assert self.code == 1, self
        assert "Traceback" not in self.err, self.err
        lines = [l for l in self.err.strip().splitlines() if l.startswith("error:")]
        assert len(lines) == 1, self.err
        return lines[0]


@pytest.fixture
def cli(capsys):
    """Run the contrastkit CLI in-process; returns exit code, stdout and stderr."""
    from contrastkit.cli.main import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def contrastkit_exe() -> list[str]:
    """The console script as a subprocess command (for DDP and kill tests)."""
    exe = Path(sys.executable).with_name("contrastkit")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "contrastkit.cli.main"]
