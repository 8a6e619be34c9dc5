# The app image: gunicorn serves the webhook; the same image runs the worker with
#   docker run … IMAGE python -m webapp.worker
# Configuration comes from the environment at run time (see .env.example); no secret is baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BIND=0.0.0.0:8000 \
    CHROMA_PATH=/data/chroma

WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt

COPY webapp ./webapp
COPY rag ./rag
COPY scripts ./scripts
COPY sample_kb ./sample_kb
COPY wsgi.py gunicorn.conf.py ./

RUN useradd --create-home --uid 10001 app && mkdir -p /data && chown app /data
USER app

EXPOSE 8000
# For the web container; run the worker container (same image) with --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; port = os.environ['BIND'].rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=3)"
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
