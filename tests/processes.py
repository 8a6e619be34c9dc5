"""Helpers for tests and benchmarks that run the app as real processes on loopback: their
environment, ports, starting and waiting for readiness, CPU accounting. No pytest here: the
scripts' benchmarks use them too."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from webapp.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def clean_environment() -> dict[str, str]:
    """This environment without any of the app's settings: a developer's own must not leak in."""
    names = {name.upper() for name in Settings.model_fields}
    return {k: v for k, v in os.environ.items() if k not in names}


def app_env(mongodb_uri: str, chroma_path, twilio_base: str, account_sid: str, auth_token: str, sender: str,
            **extra: str) -> dict[str, str]:
    """The environment of the app's processes (gunicorn, the worker) against local servers; `extra`
    adds settings or replaces these."""
    return {
        **clean_environment(),
        "PYTHONPATH": str(ROOT),
        "MONGODB_URI": mongodb_uri,
        "CHROMA_PATH": str(chroma_path),
        "TWILIO_ACCOUNT_SID": account_sid,
        "TWILIO_AUTH_TOKEN": auth_token,
        "TWILIO_WHATSAPP_FROM": sender,
        "TWILIO_API_BASE": twilio_base,
        "TWILIO_CONTENT_API_BASE": twilio_base,  # the fake Twilio serves both
        "COMPANY_NAME": "Fibra Clara",
        **extra,
    }


def database_uri(server_uri: str, name: str, options: str = "") -> str:
    """`server_uri` with its database replaced by `name`, its options kept and `options` added."""
    parts = urlsplit(server_uri)
    query = "&".join(part for part in (parts.query, options) if part)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, query, ""))


def start_process(command: list[str], env: dict, cwd: Path, log_file: Path) -> subprocess.Popen:
    # Own session: Ctrl-C reaches only the script that started it, which stops them in order.
    with log_file.open("ab") as log:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def start_gunicorn(env: dict, cwd: Path, log_file: Path, workers: int, timeout_seconds: float,
                   target: str = "wsgi:app") -> subprocess.Popen:
    """gunicorn serving `target` with gunicorn.conf.py, env's BIND and `workers` workers, once every
    worker has built the app and it answers. `cwd` should not be the repository, so a developer's own .env is
    not read."""
    process = start_process([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), target],
                            dict(env, WEB_CONCURRENCY=str(workers)), cwd, log_file)
    try:
        wait_until(lambda: log_count(log_file, r"Worker \d+ ready") >= workers
                   and answers_http(f"http://{env['BIND']}/"), "gunicorn", timeout_seconds, 0.2, (process,))
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process


CHROMA_CLI = Path(sys.executable).parent / "chroma"


def start_chroma_server(path: Path, port: int, log_file: Path, timeout_seconds: float = 30) -> subprocess.Popen:
    """`chroma run` (Chroma's own server, as production runs it) on 127.0.0.1:`port` with its data
    in `path`, once it answers its heartbeat."""
    command = [str(CHROMA_CLI if CHROMA_CLI.exists() else "chroma"), "run", "--path", str(path),
               "--host", "127.0.0.1", "--port", str(port)]
    process = start_process(command, dict(os.environ, ANONYMIZED_TELEMETRY="False"), path.parent, log_file)
    try:
        wait_until(lambda: heartbeat_ok(f"http://127.0.0.1:{port}"), "chroma run", timeout_seconds, 0.2, (process,))
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process


NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "assistant.conf.template"
# The official nginx image's /etc/nginx/nginx.conf with its paths moved into `{folder}`: the
# template's server part must sit beside what that file already sets in `http`.
NGINX_MAIN_CONF = """
worker_processes auto;
error_log stderr notice;
pid {folder}/nginx.pid;
daemon off;
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
    access_log {folder}/access.log;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/assistant.conf;
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def render_template(text: str, variables: dict[str, str]) -> str:
    """`${NAME}` replaced for each of `variables`, as the official nginx image's envsubst does."""
    for name, value in variables.items():
        text = text.replace("${%s}" % name, value)
    return text


def start_nginx(folder: Path, http_port: int, https_port: int, upstream: str, certificate: Path, key: Path,
                timeout_seconds: float = 20) -> subprocess.Popen:
    """Debian's nginx running the project's proxy configuration (NGINX_TEMPLATE) in front of
    `upstream`, on 127.0.0.1, once it answers; its files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    server = render_template(NGINX_TEMPLATE.read_text(), {
        "ASSISTANT_UPSTREAM": upstream, "SERVER_NAME": "_", "TLS_CERTIFICATE": str(certificate),
        "TLS_CERTIFICATE_KEY": str(key)})
    server = server.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    server = server.replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    server = server.replace("/var/log/nginx/access.log", str(folder / "access.log"))
    (folder / "assistant.conf").write_text(server)
    (folder / "nginx.conf").write_text(NGINX_MAIN_CONF.format(folder=folder))
    process = start_process([nginx_binary(), "-p", str(folder), "-c", str(folder / "nginx.conf")], dict(os.environ),
                            folder, folder / "nginx.log")
    try:
        wait_until(lambda: listening(http_port) and listening(https_port), "nginx", timeout_seconds, 0.1, (process,))
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process


def self_signed_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for `host` and its key (openssl), valid for a day."""
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={host}",
                    "-addext", f"subjectAltName=IP:{host}", "-keyout", str(key), "-out", str(certificate)],
                   check=True, capture_output=True, timeout=60)
    return certificate, key


def heartbeat_ok(chroma_url: str) -> bool:
    try:
        return requests.get(chroma_url + "/api/v2/heartbeat", timeout=1).ok
    except requests.RequestException:
        return False


def log_count(path: Path, pattern: str) -> int:
    try:
        return len(re.findall(pattern, path.read_text(errors="replace")))
    except FileNotFoundError:
        return 0


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class SlowClients:
    """What a slowloris does: `count` connections to 127.0.0.1:`port` (TLS when `tls`), each sending
    a request's headers one line at a time, a line every `every` seconds, for at most `seconds`."""

    REQUEST_LINE = b"POST /api/v1/whatsapp/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"

    def __init__(self, port: int, count: int, tls: bool = False, every: float = 1.0, seconds: float = 60):
        self.port, self.count, self.tls, self.every, self.seconds = port, count, tls, every, seconds
        self.sockets: list[socket.socket] = []
        self.closed_by_server = 0
        self.all_closed_after: float | None = None  # seconds from opening until the server had closed every one
        self._stop = threading.Event()
        self._feeder = threading.Thread(target=self._feed, daemon=True)

    def __enter__(self) -> "SlowClients":
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            if self.tls:
                sock = context.wrap_socket(sock)
            sock.sendall(self.REQUEST_LINE)
            self.sockets.append(sock)
        self._feeder.start()
        return self

    def _feed(self) -> None:
        started = time.monotonic()
        line = 0
        while self.sockets and not self._stop.wait(self.every) and time.monotonic() < started + self.seconds:
            line += 1
            for sock in list(self.sockets):
                try:
                    sock.sendall(b"X-Slow-%d: 1\r\n" % line)
                except OSError:  # the server gave up on it
                    self.sockets.remove(sock)
                    self.closed_by_server += 1
        if not self.sockets:
            self.all_closed_after = time.monotonic() - started

    def wait_closed(self, seconds: float) -> bool:
        """Wait (at most `seconds`) until the server has closed every connection."""
        self._feeder.join(timeout=seconds)
        return not self.sockets

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._feeder.join(timeout=self.every + 5)
        for sock in self.sockets:
            sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers_http(url: str) -> bool:
    """Whether something listening at `url` answers at all (any status)."""
    try:
        requests.get(url, timeout=2)
        return True
    except requests.RequestException:  # not listening yet, or a worker still booting
        return False


def wait_until(condition, what: str, seconds: float = 60, every: float = 0.05,
               processes: tuple[subprocess.Popen, ...] = ()):
    """Poll `condition` until it returns something truthy (returned), failing fast if one of
    `processes` exits meanwhile; TimeoutError after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{what}: a process exited with code {process.returncode} while waiting")
        result = condition()
        if result:
            return result
        time.sleep(every)
    raise TimeoutError(f"timed out after {seconds:.0f} s waiting for {what}")


def _proc_stats() -> dict[int, list[str]]:
    """Every running process's /proc/<pid>/stat fields after the command name (Linux)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # exited meanwhile
                continue
    return found


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants still running, the process first."""
    children: dict[int, list[int]] = {}
    for child, fields in _proc_stats().items():
        children.setdefault(int(fields[1]), []).append(child)
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += sorted(children.get(current, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants still running (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = _proc_stats()
    return sum((int(stats[p][11]) + int(stats[p][12])) / ticks for p in process_tree(pid) if p in stats)


def rss_mb(pid: int) -> float:
    """Resident memory of one process, in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def json_lines(output: str) -> list[dict]:
    """The JSON objects among a process's output lines (LOG_FORMAT=json), in order."""
    found = []
    for line in output.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found
