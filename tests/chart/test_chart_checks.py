"""The CI checks of the Helm chart, offline: `helm lint`, render, strict Kubernetes schema
validation of every rendered object, yamllint on the values files, and the values schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from tests.chart.render import (
    ALL_FEATURES,
    CHART,
    NAMESPACE,
    RELEASE,
    Release,
    load_values,
    parse,
    render,
)

KUBERNETES_VERSION = "1.33.0"
VALUES_FILES = {"default": CHART / "values.yaml", "all-features": ALL_FEATURES}


@pytest.mark.parametrize("values_file", list(VALUES_FILES))
def test_lint_strict_has_no_warnings(values_file: str) -> None:
    values = None if values_file == "default" else load_values(ALL_FEATURES)
    report = helm.lint(CHART, values, strict=True, kube_version=f"v{KUBERNETES_VERSION}")
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 2 warning, 3 error
    assert problems == []


def test_manifests_validate_strictly(release: Release) -> None:
    """Every object, hooks and the test pod included, against the 1.33 schemas (no extra keys)."""
    assert len(release.objects) >= 8
    for obj in release.objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where}: {exc.message} at {'.'.join(map(str, exc.path))}")


VARIANTS: dict[str, dict[str, Any]] = {
    "network-policies": {"networkPolicy": {"enabled": True, "allowFrom": [{"podSelector": {}}]}},
    "temporal-cloud-api-key": {
        "temporal": {
            "address": "us-east-1.aws.api.temporal.io:7233",
            "apiKey": {"value": "key"},
            "bundled": {"enabled": False},
        }
    },
    "temporal-tls-from-values": {
        "temporal": {
            "address": "temporal.example.com:7233",
            "tls": {"cert": "C", "key": "K", "ca": "A"},
            "bundled": {"enabled": False},
        }
    },
    "gpu-pool-on-bundled-services": {
        "gpuWorker": {"enabled": True, "modelCache": {"preload": ["org/model"]}},
        "setup": {"schedules": [{"workload": "w", "cron": ["0 1 * * *"], "pool": "gpu"}]},
        "artifacts": {"persistence": {"existingClaim": "shared"}},
        "apiKeys": {"NVIDIA_API_KEY": {"value": "nv"}},
    },
    "nothing-to-set-up": {"setup": {"registerSearchAttributes": False}},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_other_feature_combinations_validate_strictly(variant: str) -> None:
    release = render(VARIANTS[variant])
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(VARIANTS[variant])
    for obj in release.objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_kubernetes_validate_command_line(release: Release, tmp_path: Path) -> None:
    """The command CI documents: `kubernetes-validate --strict -k 1.33.0 rendered.yaml`."""
    tool = Path(sys.executable).parent / "kubernetes-validate"
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(release.objects), encoding="utf-8")
    command = [str(tool), "--strict", "-k", KUBERNETES_VERSION, str(rendered)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed for resource ") == len(release.objects)
    # The check bites: an unknown field fails strict validation.
    broken = {**release.objects[0], "spec_typo": {}}
    rendered.write_text(yaml.safe_dump(broken), encoding="utf-8")
    assert subprocess.run(command, capture_output=True, timeout=60).returncode != 0


def test_chart_packages_without_dev_files(tmp_path: Path, default_release: Release) -> None:
    archive = helm.package(CHART, destination=tmp_path)
    assert Path(archive).name == "data-flywheel-0.1.0.tgz"
    with helm.Chart.load(archive) as chart:
        names = {f["name"] for f in chart.files}
        assert ".yamllint.yaml" not in names
        assert {"README.md", "ci/all-features-values.yaml"} <= names
        packaged = parse(chart.render(None, name=RELEASE, namespace=NAMESPACE))
    assert packaged.objects == default_release.objects


@pytest.mark.parametrize("path", list(VALUES_FILES.values()), ids=list(VALUES_FILES))
def test_values_files_pass_yamllint(path: Path) -> None:
    config = YamlLintConfig(file=str(CHART / ".yamllint.yaml"))
    problems = list(linter.run(path.read_text(encoding="utf-8"), config, str(path)))
    assert [f"{p.line}:{p.column} {p.message}" for p in problems] == []


def test_values_files_validate_against_the_schema() -> None:
    with helm.Chart.load(CHART) as chart:
        assert chart.schema is not None
        chart.validate_schema(None)
        chart.validate_schema(load_values(ALL_FEATURES))


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"worker": {"replicas": "x"}}, "/worker/replicas"),
        ({"worker": {"replicas": -1}}, "/worker/replicas"),
        ({"gpuWorker": {"gpusPerPod": 0}}, "/gpuWorker/gpusPerPod"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"temporal": {"address": "https://temporal:7233"}}, "/temporal/address"),
        ({"elasticsearch": {"url": "https://user:pw@es:9200"}}, "/elasticsearch/url"),
        ({"mongodb": {"url": "mongodb://user:pw@mongo:27017"}}, "/mongodb/url"),
        ({"apiKeys": {"not-an-env-name": {"value": "x"}}}, "not-an-env-name"),
        ({"workers": {"replicas": 2}}, "workers"),  # a typo of `worker`
        ({"nemo": {"enabled": True}}, "/nemo"),
        ({"setup": {"schedules": [{"workload": "w"}]}}, "/setup/schedules/0"),
        ({"setup": {"schedules": [{"workload": "a b", "every": "1d"}]}}, "/setup/schedules/0"),
        ({"setup": {"schedules": [{"workload": "w", "every": "daily"}]}}, "/setup/schedules/0"),
        ({"setup": {"schedules": [{"workload": "w", "every": "1d", "pool": "tpu"}]}}, "pool"),
        ({"worker": {"resources": {"requests": {"cpu": "two"}}}}, "/worker/resources"),
    ],
)
def test_schema_rejects_bad_values(values: dict[str, Any], complaint: str) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as caught:
        chart.validate_schema(values)
    assert complaint in str(caught.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"temporal": {"address": "temporal:7233"}}, "set temporal.bundled.enabled=false"),
        ({"temporal": {"bundled": {"enabled": False}}}, "set temporal.address"),
        ({"elasticsearch": {"url": "http://es:9200"}}, "use one of elasticsearch.bundled"),
        ({"mongodb": {"bundled": {"enabled": False}}}, "set mongodb.url"),
        ({"artifacts": {"persistence": {"enabled": False}}}, "every worker must reach"),
        ({"config": {"temporal": {"address": "x:1"}}}, "config.temporal is set by the chart"),
        ({"config": {"log_store_url": "sqlite:///x"}}, "config.log_store_url is set by the chart"),
        (
            {"setup": {"schedules": [{"workload": "w", "every": "1d", "pool": "gpu"}]}},
            "gpuWorker.enabled is false",
        ),
        ({"temporal": {"tls": {"cert": "PEM"}}}, "cert needs key"),
    ],
)
def test_inconsistent_values_fail_with_a_clear_message(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(values)
