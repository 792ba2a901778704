"""Training on Fabric: resume reproduces an uninterrupted run; a killed run resumes; DDP on 2 CPU processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch


def _weights(run):
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return ckpt["model"], ckpt["epoch"]


@pytest.mark.slow
def test_resume_reproduces_uninterrupted_run(cli, tmp_path, tiny_data, tiny_recipe, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    common = ["--data", tiny_data, "--config", tiny_recipe, "--no-progress", "--epochs", "3"]
    assert cli("pretrain", "timeseries", *common, "--out", a).code == 0
    monkeypatch.setenv("CONTRASTKIT_STOP_AFTER_EPOCH", "1")  # as if preempted after epoch 1
    r = cli("pretrain", "timeseries", *common, "--out", b)
    assert r.code == 3 and "stopped after epoch 1" in r.err, r
    assert json.loads((b / "run.json").read_text())["status"] == "running"
    monkeypatch.delenv("CONTRASTKIT_STOP_AFTER_EPOCH")
    r = cli("pretrain", "timeseries", *common, "--out", b, "--resume")
    assert r.code == 0, r
    wa, ea = _weights(a)
    wb, eb = _weights(b)
    assert ea == eb == 3
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=1e-6, msg=key)
    la = [json.loads(l)["loss"] for l in (a / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(l)["loss"] for l in (b / "metrics.jsonl").read_text().splitlines()]
    assert la == pytest.approx(lb, abs=1e-6)


@pytest.mark.slow
def test_killed_run_resumes(tmp_path, tiny_data, tiny_recipe, contrastkit_exe):
    run = tmp_path / "run"
    cmd = [*contrastkit_exe, "pretrain", "timeseries", "--data", str(tiny_data), "--config", str(tiny_recipe),
           "--out", str(run), "--epochs", "200", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (run / "checkpoints" / "last.ckpt").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "no checkpoint within 120 s"
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, killed_at = _weights(run)
    assert 1 <= killed_at < 200
    # No half-written checkpoint is ever visible under its final name.
    assert all(not p.name.endswith(".tmp") or p.name.startswith(".") for p in (run / "checkpoints").iterdir())
    done = subprocess.run([*cmd[:-3], "--epochs", str(killed_at + 2), "--resume", "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    _, epoch = _weights(run)
    assert epoch == killed_at + 2
    epochs = [json.loads(l)["epoch"] for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, killed_at + 3))
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path, tiny_data, tiny_recipe, contrastkit_exe):
    run = tmp_path / "ddp"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([*contrastkit_exe, "pretrain", "timeseries", "--data", str(tiny_data), "--config",
                           str(tiny_recipe), "--out", str(run), "--devices", "2", "--no-progress"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    card = json.loads((run / "run.json").read_text())
    assert card["world_size"] == 2 and card["status"] == "finished"
    metrics = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    # 32 training items (hash split of 40) sharded over 2 ranks at batch 8: each rank takes half.
    n_train = card["data"]["n_train"]
    assert metrics[0]["steps"] == n_train // (8 * 2)
    assert done.stdout.count("pretrained 'timeseries'") == 1  # only rank 0 reports
