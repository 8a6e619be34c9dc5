"""docker-compose.yml, read as Compose reads it (no Docker engine runs here): the app image as web
and worker, the official MongoDB image as a replica set of one, the official Chroma image of the
release the client pins, and no secret in it."""
from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_web_and_workers_run_the_app_image_against_the_shared_services():
    services = compose()["services"]
    assert {"web", "worker", "mongo", "chroma"} <= set(services)
    for name in ("web", "worker"):
        service = services[name]
        assert service["build"] == "."
        assert service["environment"]["MONGODB_URI"].startswith("mongodb://mongo:27017/") and \
            "replicaSet=rs0" in service["environment"]["MONGODB_URI"]
        assert service["environment"]["CHROMA_URL"] == "http://chroma:8000"
        assert service["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/metrics"
    assert services["worker"]["command"] == ["python", "-m", "webapp.worker"]
    assert services["worker"]["healthcheck"] == {"disable": True}  # the image's HEALTHCHECK probes web's /healthz
    assert services["web"]["ports"] == ["8000:8000"] and "ports" not in services["mongo"] | services["chroma"]


def test_mongodb_is_a_replica_set_of_one_and_chroma_the_pinned_release():
    services = compose()["services"]
    assert services["mongo"]["image"].startswith("mongo:") and "--replSet" in services["mongo"]["command"]
    assert "rs.initiate" in " ".join(services["mongo"]["healthcheck"]["test"])
    pinned = re.search(r"^chromadb==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert services["chroma"]["image"] == f"chromadb/chroma:{pinned}"


def test_no_secret_is_written_in_it():
    text = (ROOT / "docker-compose.yml").read_text()
    for service in compose()["services"].values():
        for name in service.get("environment", {}):
            assert not re.search(r"TOKEN|SECRET|PASSWORD|API_KEY|AUTH_TOKEN", name), name
    assert "env_file: .env" in text
