"""Helpers shared by the benchmarks: device choice, timing, peak-memory readings.

Nothing here names a particular accelerator: the device comes from
``torch.accelerator`` (through contrastkit's own ``default_device``), and the
accelerator's memory counters are looked up on ``torch.accelerator`` or, on
older torch, on the module of the device type.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

#: glibc returns blocks above this size to the OS on free, so the process's
#: resident set size follows the live tensors (set for the child processes).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def pick_device(name: str) -> torch.device:
    """``auto``: the accelerator torch reports (as contrastkit's trainer does), else the CPU."""
    if name != "auto":
        return torch.device(name)
    from contrastkit.core.runs import default_device

    return default_device()


def set_threads(args) -> None:
    """Apply ``--threads`` (None: 1 on the CPU, torch's choice elsewhere; 0: torch's choice) and store it back."""
    if args.threads is None:
        args.threads = 1 if pick_device(args.device).type == "cpu" else 0
    if args.threads > 0:
        torch.set_num_threads(args.threads)


def _acc_module(device: torch.device):
    acc = getattr(torch, "accelerator", None)
    if acc is not None and hasattr(acc, "max_memory_allocated"):
        return acc
    return getattr(torch, device.type)


def sync(device: torch.device) -> None:
    if device.type == "cpu":
        return
    acc = getattr(torch, "accelerator", None)
    if acc is not None and hasattr(acc, "synchronize"):
        acc.synchronize()
    else:
        getattr(torch, device.type).synchronize()


def median_ms(fns: dict[str, Callable[[], object]], device: torch.device, repeats: int,
              warmup: int = 1) -> dict[str, tuple[float, list[float]]]:
    """Median wall time in ms of each of ``fns`` over ``repeats`` calls, after ``warmup`` untimed calls each.

    The calls are interleaved (a, b, a, b, ...) so that the load of a shared
    machine falls on every function alike.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: (statistics.median(ts), ts) for name, ts in times.items()}


# ---------------------------------------------------------------- accelerator memory

def acc_reset_peak(device: torch.device) -> int:
    """Reset the accelerator's peak counter; returns the bytes allocated now."""
    sync(device)
    mod = _acc_module(device)
    if hasattr(mod, "empty_cache"):
        mod.empty_cache()
    mod.reset_peak_memory_stats()
    return int(mod.memory_allocated())


def acc_peak_since(device: torch.device, base: int) -> int:
    """Bytes allocated at the peak since :func:`acc_reset_peak`, above ``base``."""
    sync(device)
    return int(_acc_module(device).max_memory_allocated()) - base


# ---------------------------------------------------------------- process memory (Linux)

def _status_kib(key: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{key}:\s+(\d+)\s+kB", text, re.M)
    return int(m.group(1)) if m else None


def rss_reset_peak() -> tuple[int | None, bool]:
    """Reset the process's high-water mark (VmHWM) to its current RSS where Linux allows it.

    Returns (RSS now in KiB, whether the reset worked).  Without the reset,
    VmHWM still holds the peak since the process started.
    """
    ok = False
    try:
        with open("/proc/self/clear_refs", "w") as fh:  # "5": reset the peak RSS (Linux ≥ 4.0)
            fh.write("5")
        ok = True
    except OSError:
        pass
    return _status_kib("VmRSS"), ok


def rss_peak_kib() -> int | None:
    return _status_kib("VmHWM")


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(MALLOC_ENV)
    return env


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def mib(nbytes: float | None) -> float | None:
    return None if nbytes is None else nbytes / 2**20


def fmt(v: float | None, spec: str = ".1f") -> str:
    return "n/a" if v is None else format(v, spec)


def emit_json(dest: str, result: dict) -> None:
    """Write a benchmark's result as JSON to ``dest`` ('-' for stdout)."""
    import json

    blob = json.dumps(result, indent=2)
    if dest == "-":
        print(blob)
    else:
        Path(dest).write_text(blob + "\n")
