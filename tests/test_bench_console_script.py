"""scripts/bench_console.py, the console pages benchmark, in small: it starts its own database, seeds
it, signs in, and every page it times answered and showed what it should (the script checks that)."""
from __future__ import annotations

import re

from tests.conftest import script_output

PAGES = ("inbox", "inbox?status=handoff", "inbox?q=number", "inbox?q=name", "conversation", "conversation/live",
         "dashboard", "knowledge", "settings")


def test_a_small_console_benchmark_prints_each_pages_timings_commands_and_ratio():
    output = script_output("bench_console.py", "--messages", "2000", "--customers", "50", "--repeats", "2",
                           timeout=300)

    assert re.search(r"^seeded 2,000 messages from 50 customers in [\d.]+ s$", output, re.M), output
    assert re.search(r"^\d+ conversations in handoff; \d+ named; searched '\d{4}' \([1-9]\d* found\) and "
                     r"'\w+' \([1-9]\d* found\); the long conversation has [\d,]+ messages$", output, re.M), output
    for page in PAGES:
        assert re.search(rf"^GET {re.escape(page)} +\d+ms +\d+ms +[1-9]\d*$", output, re.M), page
        assert re.search(rf"^ratio {re.escape(page)}/baseline \(median\) \d+\.\d{{3}}$", output, re.M), page
    assert re.search(r"^baseline count_documents +\d+ms +\d+ms$", output, re.M)
    slowest = re.search(r"\nslowest page: (\S+), ratio \d+\.\d{3} of the baseline \(median\)\n$", output)
    assert slowest and slowest.group(1) in PAGES, output
