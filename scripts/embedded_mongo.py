"""Start SecantusDB, the MongoDB-protocol server used for the embedded default and the tests.

It is GPL-2.0 beta software, so it is only ever a separate process started from here: the app
imports nothing of it and in production talks to a real MongoDB through MONGODB_URI.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

# SecantusDB advertises a replica set it is not, and scans every retryable-write record it keeps on
# each write (16 ms per write past 10,000 writes): with one local server, retrying a write buys
# nothing. A real MongoDB needs neither option.
CLIENT_OPTIONS = "directConnection=true&retryWrites=false"


def client_uri(port: int, database: str = "") -> str:
    """The URI clients use for the server started here on `port`."""
    return f"mongodb://127.0.0.1:{port}/{database}?{CLIENT_OPTIONS}"


def server_command() -> str:
    local = Path(sys.executable).parent / "secantusd-py"
    found = str(local) if local.exists() else shutil.which("secantusd-py")
    if not found:
        raise RuntimeError("secantusd-py not found: run `make install` (it is in requirements-dev.txt)")
    return found


def start(port: int, data_dir: Path, log_file: Path) -> subprocess.Popen:
    """Start the server on 127.0.0.1:port with its data under data_dir, durable on every commit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [server_command(), "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(data_dir),
         "--sync-on-commit", "--log-level", "WARNING"],
        stdout=log_file.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def is_up(uri: str, timeout_seconds: float = 0.5) -> bool:
    client = MongoClient(uri, serverSelectionTimeoutMS=int(timeout_seconds * 1000))
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def wait_until_up(uri: str, process: subprocess.Popen | None = None, timeout_seconds: float = 30) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the database server exited with code {process.returncode}")
        if is_up(uri):
            return
        time.sleep(0.2)
    raise TimeoutError(f"no MongoDB-protocol server answered at {uri} within {timeout_seconds:.0f} s")
