"""Slow clients (a slowloris) against gunicorn alone and against gunicorn behind the project's nginx.

    python scripts/bench_slow_clients.py [--slow 96] [--requests 10] [--timeout 2]

Starts, on 127.0.0.1 and in a scratch folder removed afterwards: a MongoDB-protocol server
(SecantusDB), gunicorn as production runs it (2 workers x 4 threads; dry-run; TRUSTED_PROXY_HOPS=1,
so the signed URL is the one nginx says the client called) and Debian's nginx with
deploy/nginx/assistant.conf.template and a self-signed certificate. For each way in (gunicorn
directly over http, nginx over https) it sends `--requests` GET /healthz and as many signed
webhooks, one at a time: first with no other client (the baseline, measured in the same run), then
while `--slow` connections send a request's headers one line a second. A request not answered
within `--timeout` seconds counts as unanswered. Prints, for each, the answered count and the
median and slowest latency, and how long nginx kept the slow clients before closing them. Exits 1
if a request through nginx went unanswered, 130 on Ctrl-C.
"""
from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import embedded_mongo, run_local  # noqa: E402
from scripts.chat import twilio_form  # noqa: E402
from tests.processes import (SlowClients, app_env, database_uri, free_port, nginx_binary,  # noqa: E402
                             self_signed_certificate, start_gunicorn, start_nginx)

SENDER = "whatsapp:+14155238886"
ACCOUNT_SID = "AC" + "e" * 32
WEBHOOK = "/api/v1/whatsapp/webhook"
WEB_WORKERS = 2
START_TIMEOUT_SECONDS = 120
CLOSE_WAIT_SECONDS = 30  # nginx gives a client 10 s for its headers


class Probe:
    """GET /healthz and signed webhooks against one base URL, one at a time, each timed."""

    def __init__(self, base_url: str, auth_token: str, verify: str | bool, timeout: float):
        self.base_url, self.verify, self.timeout = base_url, verify, timeout
        self.validator = RequestValidator(auth_token)
        self.sent = 0

    def health(self) -> float | None:
        return self._timed(lambda: requests.get(self.base_url + "/healthz", timeout=self.timeout, verify=self.verify))

    def webhook(self) -> float | None:
        self.sent += 1
        url = self.base_url + WEBHOOK
        form = twilio_form(f"whatsapp:+3460{self.sent:07d}", SENDER, "hola", "Bench", ACCOUNT_SID)
        form["MessageSid"] = form["SmsMessageSid"] = form["SmsSid"] = "SM" + secrets.token_hex(16)
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, form)}
        return self._timed(lambda: requests.post(url, data=form, headers=headers, timeout=self.timeout,
                                                 verify=self.verify))

    def _timed(self, call) -> float | None:
        started = time.perf_counter()
        try:
            response = call()
        except requests.RequestException:
            return None
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.method} {response.url} answered {response.status_code}")
        return time.perf_counter() - started


def measure(probe: Probe, requests_count: int) -> dict[str, list[float | None]]:
    return {kind: [getattr(probe, kind)() for _ in range(requests_count)] for kind in ("health", "webhook")}


def summary(seconds: list[float | None]) -> str:
    answered = [s for s in seconds if s is not None]
    if not answered:
        return f"answered  0 of {len(seconds):>3}"
    return (f"answered {len(answered):>2} of {len(seconds):>3}   p50 {statistics.median(answered) * 1000:7.1f} ms   "
            f"max {max(answered) * 1000:7.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slow", type=int, default=96, help="slow connections held open")
    parser.add_argument("--requests", type=int, default=10, help="requests of each kind per measurement")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds before a request counts as unanswered")
    args = parser.parse_args(argv)
    if min(args.slow, args.requests) < 1 or args.timeout <= 0:
        parser.error("--slow, --requests and --timeout must be positive")
    if nginx_binary() is None or shutil.which("openssl") is None:
        parser.error("needs nginx and openssl (Debian: apt-get install nginx openssl)")

    run_local.interrupt_on_signals()
    scratch = Path(tempfile.mkdtemp(prefix="bench_slow_clients_"))
    processes = []
    try:
        def note(text: str) -> None:
            print(text, file=sys.stderr, flush=True)

        mongo_port, gunicorn_port, http_port, https_port = (free_port() for _ in range(4))
        mongodb_uri = database_uri(embedded_mongo.client_uri(mongo_port), f"slow_{secrets.token_hex(4)}")
        note(f"starting SecantusDB, gunicorn ({WEB_WORKERS} workers) and nginx on 127.0.0.1")
        processes.append(embedded_mongo.start(mongo_port, scratch / "mongo", scratch / "mongo.log"))
        embedded_mongo.wait_until_up(mongodb_uri, processes[0])
        auth_token = secrets.token_hex(16)
        env = app_env(mongodb_uri, scratch / "chroma", "http://127.0.0.1:9", "", auth_token, SENDER,
                      BIND=f"127.0.0.1:{gunicorn_port}", TRUSTED_PROXY_HOPS="1", LOG_LEVEL="WARNING")
        processes.append(start_gunicorn(env, scratch, scratch / "gunicorn.log", WEB_WORKERS, START_TIMEOUT_SECONDS))
        certificate, key = self_signed_certificate(scratch)
        processes.append(start_nginx(scratch / "nginx", http_port, https_port, f"127.0.0.1:{gunicorn_port}",
                                     certificate, key))

        ways = {"gunicorn directly": (Probe(f"http://127.0.0.1:{gunicorn_port}", auth_token, False, args.timeout),
                                      gunicorn_port, False),
                "behind nginx (TLS)": (Probe(f"https://127.0.0.1:{https_port}", auth_token, str(certificate),
                                             args.timeout), https_port, True)}
        results, kept_for = {}, None
        for way, (probe, port, tls) in ways.items():
            note(f"{way}: {args.requests} x /healthz and webhook alone, then with {args.slow} slow clients")
            baseline = measure(probe, args.requests)
            with SlowClients(port, args.slow, tls=tls, seconds=CLOSE_WAIT_SECONDS + 5) as slow:
                time.sleep(1.5)
                attacked = measure(probe, args.requests)
                if tls and slow.wait_closed(CLOSE_WAIT_SECONDS):
                    kept_for = slow.all_closed_after
            results[way] = (baseline, attacked)

        print(f"{args.slow} slow clients (a header line a second each); gunicorn {WEB_WORKERS} workers x 4 threads; "
              f"a request unanswered after {args.timeout:.0f} s counts as unanswered")
        for way, (baseline, attacked) in results.items():
            for kind, label in (("health", "GET /healthz"), ("webhook", "signed webhook")):
                print(f"  {way:19} {label:15} alone:  {summary(baseline[kind])}")
                print(f"  {'':19} {'':15} slow:   {summary(attacked[kind])}")
        print(f"  nginx closed every slow client after {kept_for:.1f} s" if kept_for is not None else
              f"  nginx had not closed every slow client after {CLOSE_WAIT_SECONDS} s")
        through_nginx = results["behind nginx (TLS)"][1]
        return 0 if all(s is not None for kind in through_nginx.values() for s in kind) else 1
    except KeyboardInterrupt:
        return 130
    finally:
        run_local.ignore_signals()
        run_local.stop_all(processes[::-1])
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
