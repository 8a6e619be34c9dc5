"""scripts/bench_gaps.py, the knowledge gaps benchmark, in small: it starts its own database, seeds
it, and the gaps it times count what it seeded."""
from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_a_small_gaps_benchmark_prints_the_timings_and_their_ratio():
    result = subprocess.run([sys.executable, "scripts/bench_gaps.py", "--messages", "2000", "--customers", "50",
                             "--repeats", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stdout + result.stderr
    seeded = re.search(r"^seeded 2,000 messages from 50 customers in [\d.]+ s: (\d+) unanswered \((\d+) of "
                       r"them answered since\), (\d+) disliked", result.stdout, re.M)
    assert seeded, result.stdout
    unanswered, closed, disliked = map(int, seeded.groups())
    for name in ("GET knowledge/gaps", "  reading the questions", "  grouping them", "baseline count_documents"):
        assert re.search(rf"^{name} +\d+ms +\d+ms$", result.stdout, re.M), name
    assert re.search(r"^ratio gaps/baseline \(median\) \d+\.\d$", result.stdout, re.M)
    # those answered since are left out (the script itself checks this against the route's count)
    assert re.search(rf"^gaps answered: {unanswered - closed + disliked:,} questions in \d+ groups; the biggest: \d+ × ",
                     result.stdout, re.M)
