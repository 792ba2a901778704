"""How much memory this process can still use: MemAvailable, lowered by a cgroup (v2 or v1) limit.

Beside :mod:`.allocator` (what the process does with memory it frees).  Plugins read it through
``contrastkit.core.available_memory`` (the events plugin decides with it whether a table is read
out of core).
"""

from __future__ import annotations

import os
from pathlib import Path


def _cgroup_memory_files() -> list[tuple[str, str]]:
    """(limit file, usage file) of this process's memory cgroup, v2 and v1, where they can be found."""
    out = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        rel = rel.lstrip("/")
        if controllers == "":  # v2
            base = Path("/sys/fs/cgroup") / rel
            out.append((str(base / "memory.max"), str(base / "memory.current")))
        elif "memory" in controllers.split(","):
            for base in (Path("/sys/fs/cgroup/memory") / rel, Path("/sys/fs/cgroup/memory")):
                out.append((str(base / "memory.limit_in_bytes"), str(base / "memory.usage_in_bytes")))
    return out


def available_memory() -> int:
    """Bytes this process can still use: MemAvailable, lowered by a cgroup (v2 or v1) limit."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 8 << 30
    for limit_f, usage_f in _cgroup_memory_files():
        try:
            limit = Path(limit_f).read_text().strip()
            if limit != "max" and int(limit) < (1 << 60):
                used = int(Path(usage_f).read_text().strip())
                stat = dict(line.split() for line in (Path(usage_f).parent / "memory.stat").read_text().splitlines()
                            if len(line.split()) == 2)
                # the page cache counts as used but is given back under pressure
                used -= int(stat.get("total_cache", stat.get("cache", stat.get("file", 0))))
                avail = min(avail, int(limit) - max(used, 0))
        except (OSError, ValueError):
            continue
    return max(int(avail), 64 << 20)
