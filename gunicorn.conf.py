"""gunicorn settings; each can be overridden with the environment variable named beside it."""
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 30
graceful_timeout = 20
# The app is built in each worker, after fork: pymongo clients must not cross a fork.
preload_app = False
accesslog = "-"
# The path without its query: queries can carry phone numbers (send-test's `to`).
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms pid=%(p)s'
errorlog = "-"
# gunicorn 27 opens ~/.gunicorn/gunicorn.ctl by default; containers and tests need no such socket.
control_socket_disable = True


def worker_exit(server, worker):
    """Close the app's MongoDB clients before interpreter shutdown would collect them noisily."""
    app = getattr(worker, "wsgi", None)
    if app is not None and "whatsapp_assistant" in getattr(app, "extensions", {}):
        app.extensions["whatsapp_assistant"].close()
