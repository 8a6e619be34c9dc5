"""scripts/bench_webhook.py in small: both servers answer every webhook, and it prints both
throughputs and their ratio."""
from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_a_small_webhook_benchmark_prints_both_servers_and_the_ratio():
    result = subprocess.run([sys.executable, "scripts/bench_webhook.py", "--requests", "40", "--rounds", "2",
                             "--concurrency", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^40 webhooks per server, 2 at a time, 2 rounds", result.stdout, re.M)
    for server in ("webhook \\(the app\\)", "bare insert \\(baseline\\)"):
        assert re.search(rf"^  {server} +\d+\.\d req/s   p50 +\d+\.\d ms   p99 +\d+\.\d ms$", result.stdout, re.M)
    assert re.search(r"^  app / baseline throughput: \d\.\d\d \(target >= 0\.6\)$", result.stdout, re.M)
