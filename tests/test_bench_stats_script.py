"""scripts/bench_stats.py, the stats benchmark, in small: it starts its own database, seeds it,
and the stats it times agree with what it seeded."""
from __future__ import annotations

import re

from tests.conftest import script_output


def test_a_small_stats_benchmark_prints_both_timings_and_their_ratio():
    output = script_output("bench_stats.py", "--messages", "2000", "--customers", "50", "--repeats", "2", timeout=300)

    assert re.search(r"^seeded 2,000 messages from 50 customers", output, re.M)
    assert re.search(r"^GET stats, first \(roll-up\) +\d+ms$", output, re.M)
    assert re.search(r"^GET stats +\d+ms +\d+ms$", output, re.M)
    assert re.search(r"^baseline count_documents +\d+ms +\d+ms$", output, re.M)
    assert re.search(r"^ratio stats/baseline \(median\) \d+\.\d$", output, re.M)
    assert "'total': 50" in output and "messages in 1000 out 1000" in output
    answers = re.search(r"answers (\{.*?\})", output).group(1)
    assert sum(int(n) for n in re.findall(r": (\d+)", answers)) == 1000  # each answer's outcome, rolled up or not
