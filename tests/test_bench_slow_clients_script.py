"""scripts/bench_slow_clients.py in small: slow clients silence gunicorn alone, not gunicorn behind
the project's nginx, and it prints both, with their baselines."""
from __future__ import annotations

import re
import shutil

import pytest

from tests.conftest import script_output
from tests.processes import nginx_binary


@pytest.mark.skipif(nginx_binary() is None or shutil.which("openssl") is None,
                    reason="nginx or openssl is not installed (.ci/run installs Debian's)")
def test_a_small_slow_clients_benchmark_prints_each_way_in_alone_and_under_slow_clients():
    output = script_output("bench_slow_clients.py", "--slow", "64", "--requests", "2", "--timeout", "1", timeout=300)

    rows = re.findall(r"^  (gunicorn directly|behind nginx \(TLS\)|) +(GET /healthz|signed webhook|) +(alone|slow): +"
                      r"answered +(\d+) of +2", output, re.M)
    answered = [int(row[3]) for row in rows]
    assert answered == [2, 0, 2, 0, 2, 2, 2, 2], output  # gunicorn alone answers nothing under slow clients
    assert re.search(r"^  nginx closed every slow client after \d+\.\d s$", output, re.M)
