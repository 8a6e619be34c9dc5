"""scripts/pypi_advisories.py against a local stand-in for PyPI's JSON API."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scripts.pypi_advisories import main

ADVISORY = {"id": "GHSA-xxxx-yyyy-zzzz", "aliases": ["CVE-2026-0001"], "fixed_in": []}
PROJECTS = {
    "flask": {"info": {"version": "3.1.3"}, "vulnerabilities": []},
    "chromadb": {"info": {"version": "1.5.9"}, "vulnerabilities": [ADVISORY]},
    "numpy": {"info": {"version": "2.5.5"}, "vulnerabilities": []},
}


@pytest.fixture
def pypi():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.strip("/").removesuffix("/json")
            body = json.dumps(PROJECTS[name]).encode() if name in PROJECTS else b"{}"
            self.send_response(200 if name in PROJECTS else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(5)


def run(pypi, tmp_path, capsys, pins: str) -> tuple[int, str]:
    path = tmp_path / "constraints.txt"
    path.write_text(pins)
    code = main([str(path), "--index", pypi])
    return code, capsys.readouterr().out


def test_a_latest_pin_with_an_advisory_fails_and_older_pins_are_named(pypi, tmp_path, capsys):
    code, out = run(pypi, tmp_path, capsys, "# pins\nflask==3.1.3\nchromadb[extra]==1.5.9 ; python_version>'3'\n"
                                            "numpy==2.4.6  # older\n-e .\n")

    assert code == 1
    assert out.splitlines()[0] == ("pins 3: 2 at their latest release (checked), 1 older (not checkable this way), "
                                   "0 lookups failed")
    assert "  chromadb==1.5.9\n    GHSA-xxxx-yyyy-zzzz (CVE-2026-0001); fixed in: no fixed release" in out
    assert "older pins: numpy==2.4.6 (latest 2.5.5)" in out


def test_clean_pins_pass_and_a_failed_lookup_is_reported(pypi, tmp_path, capsys):
    assert run(pypi, tmp_path, capsys, "flask==3.1.3\n")[0] == 0
    code, out = run(pypi, tmp_path, capsys, "flask==3.1.3\nnot-on-pypi==1.0\n")
    assert code == 2
    assert "lookup failed: not-on-pypi: HTTPError: 404" in out
