"""scripts/bench_gaps.py, the knowledge gaps benchmark, in small: it starts its own database, seeds
it, and the gaps it times count what it seeded."""
from __future__ import annotations

import re

from tests.conftest import script_output


def test_a_small_gaps_benchmark_prints_the_timings_and_their_ratio():
    output = script_output("bench_gaps.py", "--messages", "2000", "--customers", "50", "--repeats", "2", timeout=300)

    seeded = re.search(r"^seeded 2,000 messages from 50 customers in [\d.]+ s: (\d+) unanswered \((\d+) of "
                       r"them answered since\), (\d+) disliked", output, re.M)
    assert seeded, output
    unanswered, closed, disliked = map(int, seeded.groups())
    for name in ("GET knowledge/gaps", "  reading the questions", "  grouping them", "baseline count_documents"):
        assert re.search(rf"^{name} +\d+ms +\d+ms$", output, re.M), name
    assert re.search(r"^ratio gaps/baseline \(median\) \d+\.\d$", output, re.M)
    # those answered since are left out (the script itself checks this against the route's count)
    open_gaps = unanswered - closed + disliked
    assert re.search(rf"^gaps answered: {open_gaps:,} questions in \d+ groups; the biggest: \d+ × ", output, re.M)
