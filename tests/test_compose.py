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
    published = {name for name, service in services.items() if "ports" in service}
    assert published == {"proxy"}, "only the proxy is reachable: gunicorn, MongoDB and Chroma never are"


def test_nginx_serves_the_project_s_proxy_configuration_in_front_of_web():
    services = compose()["services"]
    proxy = services["proxy"]
    assert re.fullmatch(r"nginx:\d+\.\d+\.\d+(-alpine)?", proxy["image"])  # the official image, pinned
    assert sorted(proxy["ports"]) == ["443:443", "80:80"]
    assert "./deploy/nginx/assistant.conf.template:/etc/nginx/templates/default.conf.template:ro" in proxy["volumes"]
    assert proxy["environment"]["ASSISTANT_UPSTREAM"] == f"web:{services['web']['environment']['BIND'].split(':')[1]}"
    template = (ROOT / "deploy" / "nginx" / "assistant.conf.template").read_text()
    assert set(re.findall(r"\$\{(\w+)\}", template)) == set(proxy["environment"])  # every variable is given
    assert services["web"]["environment"]["TRUSTED_PROXY_HOPS"] == "1"


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
