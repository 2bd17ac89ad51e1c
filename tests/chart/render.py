"""Render the Helm chart offline (helm-python-sdk) and pick objects out of the manifests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "data-flywheel"
ALL_FEATURES = CHART / "ci" / "all-features-values.yaml"
RELEASE = "fw"
NAMESPACE = "flywheel"
FULLNAME = f"{RELEASE}-data-flywheel"

POD_KINDS = {"Deployment", "StatefulSet", "Job", "Pod"}
FLYWHEEL_COMPONENTS = {"worker", "gpu-worker", "setup", "test", "temporal"}
"""Components whose pods run the flywheel image (the bundled stores run their own images)."""


def load_values(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@dataclass
class Release:
    """A rendered release: every object, and NOTES.txt."""

    objects: list[dict[str, Any]]
    notes: str

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.all(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: found {len(found)}"
        return found[0]

    def component(self, kind: str, component: str) -> dict[str, Any]:
        return self.get(kind, f"{FULLNAME}-{component}")

    def has(self, kind: str, component: str) -> bool:
        return any(o["metadata"]["name"] == f"{FULLNAME}-{component}" for o in self.all(kind))

    def config_map_data(self) -> dict[str, str]:
        return self.component("ConfigMap", "config")["data"]

    def flywheel_yaml(self) -> dict[str, Any]:
        return yaml.safe_load(self.config_map_data()["flywheel.yaml"])

    def pod_objects(self) -> Iterator[dict[str, Any]]:
        return (o for o in self.objects if o["kind"] in POD_KINDS)


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj["metadata"] if obj["kind"] == "Pod" else obj["spec"]["template"]["metadata"]
    return meta["labels"]


def containers(obj: dict[str, Any], *, init: bool = True) -> list[dict[str, Any]]:
    spec = pod_spec(obj)
    return [*(spec.get("initContainers", []) if init else []), *spec["containers"]]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Environment entries by name (each the whole entry: value or valueFrom)."""
    return {e["name"]: e for e in container.get("env", [])}


def literal_env(container: dict[str, Any]) -> dict[str, str]:
    return {name: e["value"] for name, e in env_of(container).items() if "value" in e}


def secret_ref(container: dict[str, Any], name: str) -> tuple[str, str]:
    ref = env_of(container)[name]["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def parse(manifests: dict[str, str]) -> Release:
    """helm's rendered templates (path → text) as objects, in template order."""
    objects = [
        doc
        for path, text in sorted(manifests.items())
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    notes = next((t for p, t in manifests.items() if p.endswith("NOTES.txt")), "")
    return Release(objects, notes)


def render(values: dict[str, Any] | None = None) -> Release:
    with helm.Chart.load(CHART) as chart:
        return parse(chart.render(values, name=RELEASE, namespace=NAMESPACE))
