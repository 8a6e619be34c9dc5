"""scripts/bench_stats.py, the stats benchmark, in small: it starts its own database, seeds it,
and the stats it times agree with what it seeded."""
from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_a_small_stats_benchmark_prints_both_timings_and_their_ratio():
    result = subprocess.run([sys.executable, "scripts/bench_stats.py", "--messages", "2000", "--customers", "50",
                             "--repeats", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^seeded 2,000 messages from 50 customers", result.stdout, re.M)
    assert re.search(r"^GET stats, first \(roll-up\) +\d+ms$", result.stdout, re.M)
    assert re.search(r"^GET stats +\d+ms +\d+ms$", result.stdout, re.M)
    assert re.search(r"^baseline count_documents +\d+ms +\d+ms$", result.stdout, re.M)
    assert re.search(r"^ratio stats/baseline \(median\) \d+\.\d$", result.stdout, re.M)
    assert "'total': 50" in result.stdout and "messages in 1000 out 1000" in result.stdout
    answers = re.search(r"answers (\{.*?\})", result.stdout).group(1)
    assert sum(int(n) for n in re.findall(r": (\d+)", answers)) == 1000  # each answer's outcome, rolled up or not
