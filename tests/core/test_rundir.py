"""Safe run directories: one writer at a time, stale locks taken over, unwritable outputs refused up
front, file modes under the umask, train_seconds summed over resumptions."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys

import pytest

from contrastkit.core.errors import ConfigError
from contrastkit.core.rundir import LOCK_FILE, check_writable, claim_run_dir, file_mode


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _lock(run, pid: int, host: str | None = None) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                             "started": "2026-01-01T00:00:00"}))


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_claim_is_exclusive_and_released(tmp_path):
    run = tmp_path / "run"
    lock = claim_run_dir(run)
    holder = json.loads((run / LOCK_FILE).read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    with pytest.raises(ConfigError, match=r"another run \(pid \d+, started .*\) is writing there"):
        claim_run_dir(run)
    lock.release()
    assert not run.exists()  # made by the claim and left empty: removed
    run.mkdir()
    (run / "keep").write_text("x")
    with claim_run_dir(run):
        pass
    assert sorted(p.name for p in run.iterdir()) == ["keep"]


def test_stale_lock_taken_over_with_a_note(tmp_path, capsys):
    run = tmp_path / "run"
    pid = _dead_pid()
    _lock(run, pid)
    lock = claim_run_dir(run)
    err = capsys.readouterr().err
    assert f"note: {run}: took over the lock of a run that is no longer alive (pid {pid}" in err
    assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (run / LOCK_FILE).exists()


def test_lock_of_another_host_is_refused(tmp_path):
    run = tmp_path / "run"
    _lock(run, 1, host="elsewhere.example")
    with pytest.raises(ConfigError, match="on host elsewhere.example"):
        claim_run_dir(run)


def test_second_pretrain_into_a_live_run_is_refused(cli, tmp_path, tiny_data, tiny_recipe):
    """Two pretrain into one --out: the second (here: a live holder of the lock, this process) is refused."""
    run = tmp_path / "run"
    _lock(run, os.getpid())
    r = cli("pretrain", "timeseries", "--data", tiny_data, "--config", tiny_recipe, "--out", run, "--epochs", "1",
            "--no-progress")
    line = r.one_error_line()
    assert "another run" in line and "is writing there" in line and str(run) in line
    assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]  # nothing written by the refused run


def test_unwritable_out_for_pretrain(cli, tmp_path, tiny_data):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out in (blocker / "run", "/proc/contrastkit-no/run"):
        r = cli("pretrain", "timeseries", "--data", tiny_data, "--out", out, "--epochs", "1")
        line = r.one_error_line()
        assert line.startswith(f"error: --out {out}: "), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "series.parquet"]


def test_check_writable(tmp_path):
    check_writable(tmp_path / "new" / "deeper" / "x.parquet")  # creatable
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_writable(tmp_path / "f", folder=True)
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_writable(tmp_path / "f" / "x.parquet")
    with pytest.raises(ConfigError, match="cannot write in /proc"):
        check_writable("/proc/contrastkit-no/x.parquet")
    assert not list(p for p in tmp_path.iterdir() if p.name.startswith(".contrastkit-probe"))


@pytest.mark.slow
def test_modes_and_unwritable_embed_evaluate_out(cli, tmp_path, tiny_data, tiny_recipe, umask022):
    run = tmp_path / "run"
    r = cli("pretrain", "timeseries", "--data", tiny_data, "--config", tiny_recipe, "--out", run, "--epochs", "1",
            "--no-progress")
    assert r.code == 0, r
    assert not (run / LOCK_FILE).exists()  # released at the end
    r = cli("config", "show", run, "--epochs", "5", "--json")
    assert r.code == 0, r
    shown = json.loads(r.out)
    saved = json.loads((run / "config.json").read_text())
    assert shown["config"] == {**saved, "epochs": 5}
    assert shown["config_hash"] == json.loads((run / "run.json").read_text())["config_hash"]
    assert {s for k, s in shown["sources"].items() if k not in ("plugin", "epochs")} == {"saved run"}
    emb = tmp_path / "e.parquet"
    r = cli("embed", run, "--data", tiny_data, "--out", emb)
    assert r.code == 0, r
    files = [run / "config.json", run / "run.json", run / "metrics.jsonl", emb,
             *sorted((run / "checkpoints").iterdir())]
    assert file_mode() == 0o644
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, (f, oct(f.stat().st_mode))
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for cmd, name in (("embed", "e.parquet"), ("evaluate", "r.json")):
        for out in (blocker / name, f"/proc/contrastkit-no/{name}"):
            r = cli(cmd, run, "--data", tiny_data, "--out", out)
            line = r.one_error_line()
            assert line.startswith(f"error: --out {out}: "), line


@pytest.mark.slow
def test_train_seconds_summed_over_an_interrupted_and_resumed_run(cli, tmp_path, tiny_data, tiny_recipe,
                                                                  monkeypatch, capsys):
    run = tmp_path / "run"
    common = ["--data", tiny_data, "--config", tiny_recipe, "--no-progress", "--epochs", "3", "--out", run]
    monkeypatch.setenv("CONTRASTKIT_STOP_AFTER_EPOCH", "2")
    r = cli("pretrain", "timeseries", *common)
    assert r.code == 3, r
    assert not (run / LOCK_FILE).exists()
    card = json.loads((run / "run.json").read_text())
    assert card["status"] == "running" and "train_seconds" not in card
    monkeypatch.delenv("CONTRASTKIT_STOP_AFTER_EPOCH")
    _lock(run, _dead_pid())  # as if the run had been killed: its lock stays behind
    r = cli("pretrain", "timeseries", *common, "--resume")
    assert r.code == 0, r
    assert "took over the lock of a run that is no longer alive" in r.err
    seconds = [json.loads(l)["seconds"] for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(seconds) == 3
    card = json.loads((run / "run.json").read_text())
    assert card["train_seconds"] == pytest.approx(sum(seconds), abs=2e-3)
    assert card["train_seconds"] > seconds[-1] + 0.5 * (seconds[0] + seconds[1])


@pytest.mark.slow
def test_two_real_pretrains_into_one_out(cli, tmp_path, tiny_data, tiny_recipe, contrastkit_exe):
    """A live run holds the lock: a second pretrain is refused; once it is killed, its lock is taken over."""
    import signal
    import time

    run = tmp_path / "run"
    cmd = [*contrastkit_exe, "pretrain", "timeseries", "--data", str(tiny_data), "--config", str(tiny_recipe),
           "--out", str(run), "--epochs", "200", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not (run / "checkpoints" / "last.ckpt").exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, "no checkpoint within 120 s"
            time.sleep(0.2)
        assert json.loads((run / LOCK_FILE).read_text())["pid"] == proc.pid
        before = (run / "config.json").read_bytes()
        for extra in ([], ["--resume"]):
            r = cli("pretrain", "timeseries", "--data", tiny_data, "--config", tiny_recipe, "--out", run,
                    "--epochs", "200", "--no-progress", *extra)
            line = r.one_error_line()
            if extra:
                assert f"another run (pid {proc.pid}, started" in line, line
            else:  # without --resume the run that is there is refused first
                assert "already holds a run" in line or f"pid {proc.pid}" in line, line
        assert (run / "config.json").read_bytes() == before
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (run / LOCK_FILE).exists()  # a killed run cannot release its lock
    _, killed_at = torch_epoch(run)
    r = cli("pretrain", "timeseries", "--data", tiny_data, "--config", tiny_recipe, "--out", run, "--epochs",
            str(killed_at + 1), "--resume", "--no-progress")
    assert r.code == 0, r
    assert f"took over the lock of a run that is no longer alive (pid {proc.pid}" in r.err
    assert not (run / LOCK_FILE).exists()


def torch_epoch(run):
    import torch

    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return ckpt["model"], ckpt["epoch"]
