"""scripts/bench_retrieval_scale.py in small: it builds a synthetic index of the size asked and
times the app's retrieve path against the raw embedder + Chroma query on it."""
from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT, script_output

CORPUS = ROOT.parent / "shared" / "corpus" / "cuidadodesalud"


@pytest.mark.skipif(not CORPUS.exists(), reason="the shared corpus is not beside the project")
def test_a_small_scale_benchmark_prints_both_paths_and_their_ratio():
    output = script_output("bench_retrieval_scale.py", "--sizes", "2000", "--base-vectors", "10", timeout=600)

    assert re.search(r"^corpus: \d+ chunks; 10 embedded for real", output, re.M)
    assert re.search(r"^2,000 chunks \(built in \d+ s; the app's warm-up \d+\.\d s\)$", output, re.M)
    for path in ("raw embed \\+ Chroma", "app retrieve path"):
        assert re.search(rf"^  {path} +p50 +\d+\.\d ms   p95 +\d+\.\d ms   mean +\d+\.\d ms$", output, re.M)
    assert re.search(r"^  app / raw:  p50 \d\.\d\d   p95 \d\.\d\d   mean \d\.\d\d", output, re.M)
