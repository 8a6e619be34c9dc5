"""Helpers for tests and benchmarks that run the app as real processes on loopback: ports,
waiting for readiness, CPU accounting. No pytest here: scripts/bench_load.py uses them too."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers_http(url: str) -> bool:
    """Whether something listening at `url` answers at all (any status)."""
    try:
        requests.get(url, timeout=2)
        return True
    except requests.RequestException:  # not listening yet, or a worker still booting
        return False


def wait_until(condition, what: str, seconds: float = 60, every: float = 0.05,
               processes: tuple[subprocess.Popen, ...] = ()):
    """Poll `condition` until it returns something truthy (returned), failing fast if one of
    `processes` exits meanwhile; TimeoutError after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{what}: a process exited with code {process.returncode} while waiting")
        result = condition()
        if result:
            return result
        time.sleep(every)
    raise TimeoutError(f"timed out after {seconds:.0f} s waiting for {what}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants still running (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo += children.get(current, [])
    return total
