"""scripts/bench_webhook.py in small: both servers answer every webhook, and it prints both
throughputs and their ratio."""
from __future__ import annotations

import re

from tests.conftest import script_output


def test_a_small_webhook_benchmark_prints_both_servers_and_the_ratio():
    output = script_output("bench_webhook.py", "--requests", "40", "--rounds", "2", "--concurrency", "2", timeout=300)

    assert re.search(r"^40 webhooks per server, 2 at a time, 2 rounds", output, re.M)
    for server in ("webhook \\(the app\\)", "bare insert \\(baseline\\)"):
        assert re.search(rf"^  {server} +\d+\.\d req/s   p50 +\d+\.\d ms   p99 +\d+\.\d ms$", output, re.M)
    assert re.search(r"^  app / baseline throughput: \d\.\d\d \(target >= 0\.6\)$", output, re.M)
