"""gunicorn settings; each can be overridden with the environment variable named beside it."""
import os
import shutil
import tempfile

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 30
graceful_timeout = 20
# The app is built in each worker, after fork: pymongo clients must not cross a fork.
preload_app = False
accesslog = "-"
# With LOG_FORMAT=text. The path without its query: queries can carry phone numbers (send-test's `to`).
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms pid=%(p)s request_id=%({x-request-id}o)s'
errorlog = "-"
# Both logs in the app's format (LOG_FORMAT), phone numbers in paths masked.
logger_class = "webapp.logs.GunicornLogger"
# Forwarded headers (X-Forwarded-Proto, X-Forwarded-Ssl…) are read by the app alone, and only from
# TRUSTED_PROXY_HOPS proxies (werkzeug's ProxyFix): gunicorn's default trusts them from 127.0.0.1,
# which would let anyone on the host switch the scheme a Twilio signature is checked against.
forwarded_allow_ips = ""
# gunicorn 27 opens ~/.gunicorn/gunicorn.ctl by default; containers and tests need no such socket.
control_socket_disable = True


def post_worker_init(worker):
    """"Booting worker" comes before the app is built; this line says the worker now serves."""
    worker.log.info("Worker %s ready", worker.pid)


def worker_exit(server, worker):
    """Close the app's MongoDB clients before interpreter shutdown would collect them noisily."""
    app = getattr(worker, "wsgi", None)
    if app is not None and "whatsapp_assistant" in getattr(app, "extensions", {}):
        app.extensions["whatsapp_assistant"].close()


# /metrics sums every worker's counts, which prometheus-client keeps in files in this directory.
# Set PROMETHEUS_MULTIPROC_DIR (empty at start) to share one with the reply worker on this host.
# Made in the master before any worker starts (reading this file must change nothing).
_own_metrics_dir = []


def on_starting(server):
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _own_metrics_dir.append(tempfile.mkdtemp(prefix="whatsapp-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir[0]


def on_exit(server):
    for directory in _own_metrics_dir:
        shutil.rmtree(directory, ignore_errors=True)
