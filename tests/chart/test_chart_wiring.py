"""What the rendered chart wires together: image, configuration (loaded with the project's own
settings loader), secrets on every pod that needs them, schedules, the GPU pool, disruption
budgets, security contexts and labels."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from flywheel.config import Platform, load_settings
from flywheel.starter import app
from tests.chart.render import (
    FLYWHEEL_COMPONENTS,
    FULLNAME,
    RELEASE,
    Release,
    containers,
    env_of,
    literal_env,
    pod_labels,
    pod_spec,
    render,
    secret_ref,
)

CHART_SECRET = f"{FULLNAME}-secrets"
WORKER_COMPONENTS = ("worker", "gpu-worker")


def component_of(obj: dict[str, Any]) -> str:
    return obj["metadata"]["labels"]["app.kubernetes.io/component"]


def flywheel_pods(release: Release) -> list[dict[str, Any]]:
    return [o for o in release.pod_objects() if component_of(o) in FLYWHEEL_COMPONENTS]


def workers(release: Release) -> list[dict[str, Any]]:
    return [o for o in release.all("Deployment") if component_of(o) in WORKER_COMPONENTS]


def worker_container(deployment: dict[str, Any]) -> dict[str, Any]:
    [container] = [c for c in pod_spec(deployment)["containers"] if c["name"] == "worker"]
    return container


def temporal_clients(release: Release) -> list[dict[str, Any]]:
    """Every container that connects to Temporal: workers, setup steps, the helm test."""
    found = [worker_container(w) for w in workers(release)]
    if release.has("Job", "setup"):
        found += containers(release.component("Job", "setup"))
    found += containers(release.component("Pod", "test"))
    return found


def settings_in_pod(
    release: Release, container: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The settings a container's `flywheel` process loads: the ConfigMap's file plus the
    container's literal FLYWHEEL_... environment, through the project's own loader."""
    config_file = tmp_path / "flywheel.yaml"
    config_file.write_text(release.config_map_data()["flywheel.yaml"], encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("FLYWHEEL_")]:
        monkeypatch.delenv(name)
    env = literal_env(container)
    assert env["FLYWHEEL_CONFIG"] == "/etc/flywheel/config/flywheel.yaml"
    for name, value in env.items():
        if name.startswith("FLYWHEEL_") and name != "FLYWHEEL_CONFIG":
            monkeypatch.setenv(name, value)
    return load_settings(config_file)


# --- image ---------------------------------------------------------------------------------------


def test_default_image_is_the_app_version(default_release: Release) -> None:
    for obj in flywheel_pods(default_release):
        for container in containers(obj):
            assert container["image"] == "ghcr.io/data-flywheel/data-flywheel:0.1.0"


def test_configured_image_everywhere_and_gpu_override(all_features: Release) -> None:
    for obj in flywheel_pods(all_features):
        for container in containers(obj):
            expected = "registry.example.com/ml/data-flywheel:0.1.0"
            if component_of(obj) == "gpu-worker":
                expected += "-cuda"
            assert container["image"] == expected, container["name"]
            assert container["imagePullPolicy"] == "Always"
        assert pod_spec(obj)["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_digest_pins_the_image() -> None:
    digest = "sha256:" + "a" * 64
    release = render({"image": {"digest": digest}})
    images = {c["image"] for o in flywheel_pods(release) for c in containers(o)}
    assert images == {f"ghcr.io/data-flywheel/data-flywheel@{digest}"}


def test_workers_run_the_worker_command(release: Release) -> None:
    for deployment in workers(release):
        container = worker_container(deployment)
        assert container["args"] == ["worker"]
        assert "command" not in container  # the image's entrypoint: the `flywheel` CLI


# --- configuration -------------------------------------------------------------------------------


def test_default_config_loads_and_points_at_the_bundled_services(
    default_release: Release, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = worker_container(default_release.component("Deployment", "worker"))
    settings = settings_in_pod(default_release, worker, tmp_path, monkeypatch)
    assert settings.temporal.address == f"{FULLNAME}-temporal:7233"
    assert settings.temporal.task_queue == "flywheel"
    assert not settings.temporal.uses_tls and settings.temporal.api_key_env is None
    assert settings.log_store_url == f"http://{FULLNAME}-elasticsearch:9200/flywheel"
    assert settings.result_store_url == f"mongodb://{FULLNAME}-mongodb:27017"
    assert settings.artifact_store_uri == "file:///var/lib/flywheel/artifacts"
    assert str(settings.data_dir) == "/var/lib/flywheel"
    assert settings.worker.curation_processes == 2
    assert settings.worker.graceful_shutdown_s == 120
    assert settings.run_config().max_parallel_candidates == 2


def test_all_features_config_loads_in_each_pool(
    all_features: Release, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = worker_container(all_features.component("Deployment", "worker"))
    settings = settings_in_pod(all_features, main, tmp_path, monkeypatch)
    temporal = settings.temporal
    assert temporal.address == "flywheel-prod.a1b2c.tmprl.cloud:7233"
    assert temporal.namespace == "flywheel-prod.a1b2c"
    assert temporal.task_queue == "flywheel"
    assert str(temporal.tls_client_cert_path) == "/etc/flywheel/temporal-tls/tls.crt"
    assert str(temporal.tls_client_key_path) == "/etc/flywheel/temporal-tls/tls.key"
    assert temporal.uses_tls
    assert settings.log_store_url == "https://logs.es.example.com:9200/flywheel-prod"
    assert settings.log_store_api_key_env == "ELASTICSEARCH_API_KEY"
    assert settings.mongodb_db == "flywheel_prod"
    assert settings.artifact_store_uri == "s3://ml-artifacts/data-flywheel"
    assert settings.nmp_config is not None
    assert settings.nmp_config.nemo_base_url == "http://nemo.nemo.svc:8000"
    assert settings.worker.max_concurrent_activities == 100
    run = settings.run_config()
    platforms = {c.name: c.platform for c in run.candidates}
    assert platforms == {
        "llama-3.2-1b": Platform.ENDPOINTS,
        "qwen-local": Platform.LOCAL,
        "meta-llama-3.2-3b-instruct": Platform.NEMO,
    }
    assert run.llm_judge_config is not None
    assert run.llm_judge_config.api_key_env == "LLM_JUDGE_API_KEY"
    assert run.curation_config.pii.enabled

    gpu = worker_container(all_features.component("Deployment", "gpu-worker"))
    gpu_settings = settings_in_pod(all_features, gpu, tmp_path, monkeypatch)
    assert gpu_settings.temporal.task_queue == "flywheel-gpu"
    assert gpu_settings.worker.max_concurrent_activities == 4
    assert gpu_settings.worker.graceful_shutdown_s == 600


def test_config_is_mounted_where_flywheel_config_points(release: Release) -> None:
    for obj in flywheel_pods(release):
        if component_of(obj) == "temporal":
            continue
        volumes = {v["name"]: v for v in pod_spec(obj)["volumes"]}
        assert volumes["config"]["configMap"]["name"] == f"{FULLNAME}-config"
        for container in containers(obj):
            if container["name"].startswith("preload"):
                continue
            mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
            assert mounts["config"] == "/etc/flywheel/config", container["name"]


def test_config_change_rolls_the_workers() -> None:
    before = render()
    after = render({"config": {"max_parallel_candidates": 3}})
    for component in ("worker",):
        old = before.component("Deployment", component)["spec"]["template"]["metadata"]
        new = after.component("Deployment", component)["spec"]["template"]["metadata"]
        assert old["annotations"]["checksum/config"] != new["annotations"]["checksum/config"]


# --- secrets -------------------------------------------------------------------------------------


def test_api_keys_reach_every_worker_pod(all_features: Release) -> None:
    expected = {
        "NVIDIA_API_KEY": ("nvidia-api", "NVIDIA_API_KEY"),
        "NGC_API_KEY": ("ngc-api", "NGC_API_KEY"),
        "LLM_JUDGE_API_KEY": (CHART_SECRET, "LLM_JUDGE_API_KEY"),  # created from values
        "HF_TOKEN": ("nemo-datastore", "token"),
        "OPENAI_API_KEY": ("openai", "api-key"),
        "ELASTICSEARCH_API_KEY": ("flywheel-elasticsearch", "api-key"),
        "FLYWHEEL_RESULT_STORE_URL": ("flywheel-mongodb", "url"),
    }
    deployments = workers(all_features)
    assert {component_of(d) for d in deployments} == set(WORKER_COMPONENTS)
    for deployment in deployments:
        container = worker_container(deployment)
        for name, ref in expected.items():
            assert secret_ref(container, name) == ref, (component_of(deployment), name)
    secret = all_features.get("Secret", CHART_SECRET)
    assert secret["stringData"] == {"LLM_JUDGE_API_KEY": "judge-key-from-values"}


def test_api_keys_stay_out_of_pods_that_do_not_need_them(all_features: Release) -> None:
    others = [*containers(all_features.component("Job", "setup"))]
    others += containers(all_features.component("Pod", "test"))
    for container in others:
        assert not {"NVIDIA_API_KEY", "HF_TOKEN", "FLYWHEEL_RESULT_STORE_URL"} & set(
            env_of(container)
        )


def test_no_secret_without_values(default_release: Release) -> None:
    assert default_release.all("Secret") == []
    for deployment in workers(default_release):
        assert not any("valueFrom" in e for e in env_of(worker_container(deployment)).values())


def test_temporal_mtls_certificate_on_every_temporal_client(all_features: Release) -> None:
    for obj in [*workers(all_features), all_features.component("Job", "setup")]:
        volumes = {v["name"]: v for v in pod_spec(obj)["volumes"]}
        assert volumes["temporal-tls"]["secret"]["secretName"] == "temporal-client-cert"
        items = {i["path"]: i["key"] for i in volumes["temporal-tls"]["secret"]["items"]}
        assert items == {"tls.crt": "tls.crt", "tls.key": "tls.key"}
    for container in temporal_clients(all_features):
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["temporal-tls"] == "/etc/flywheel/temporal-tls"
        assert mounts["ca-bundle"] == "/etc/flywheel/ca"
        assert literal_env(container)["SSL_CERT_FILE"] == "/etc/flywheel/ca/ca.crt"


def test_temporal_cloud_api_key_from_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = render(
        {
            "temporal": {
                "address": "eu-west-1.aws.api.temporal.io:7233",
                "namespace": "flywheel.a1b2c",
                "apiKey": {"value": "tc-key"},
                "bundled": {"enabled": False},
            }
        }
    )
    assert release.get("Secret", CHART_SECRET)["stringData"] == {"TEMPORAL_API_KEY": "tc-key"}
    clients = temporal_clients(release)
    assert len(clients) == 4  # the worker, search attributes, schedule list, the test pod
    for container in clients:
        assert secret_ref(container, "TEMPORAL_API_KEY") == (CHART_SECRET, "TEMPORAL_API_KEY")
    worker = worker_container(release.component("Deployment", "worker"))
    temporal = settings_in_pod(release, worker, tmp_path, monkeypatch).temporal
    assert temporal.api_key_env == "TEMPORAL_API_KEY"
    assert temporal.address == "eu-west-1.aws.api.temporal.io:7233"
    assert not release.has("StatefulSet", "temporal")


def test_temporal_api_key_and_mtls_from_existing_secrets() -> None:
    release = render(
        {
            "temporal": {
                "address": "temporal-frontend.temporal:7233",
                "bundled": {"enabled": False},
                "apiKey": {"existingSecret": "tc", "key": "token"},
                "tls": {"existingSecret": "ca-only", "certKey": "", "caKey": "ca.pem"},
            }
        }
    )
    assert release.all("Secret") == []
    for container in temporal_clients(release):
        assert secret_ref(container, "TEMPORAL_API_KEY") == ("tc", "token")
    worker = release.component("Deployment", "worker")
    [tls] = [v for v in pod_spec(worker)["volumes"] if v["name"] == "temporal-tls"]
    assert tls["secret"]["items"] == [{"key": "ca.pem", "path": "ca.crt"}]  # CA only, no mTLS
    temporal = release.flywheel_yaml()["temporal"]
    assert temporal["tls_server_ca_path"] == "/etc/flywheel/temporal-tls/ca.crt"
    assert "tls_client_cert_path" not in temporal


def test_temporal_mtls_certificate_from_values() -> None:
    release = render(
        {
            "temporal": {
                "address": "temporal.example.com:7233",
                "bundled": {"enabled": False},
                "tls": {"cert": "CERT", "key": "KEY", "ca": "CA", "serverName": "t.internal"},
            }
        }
    )
    secret = release.get("Secret", f"{FULLNAME}-temporal-tls")
    assert secret["stringData"] == {"tls.crt": "CERT", "tls.key": "KEY", "ca.crt": "CA"}
    worker = release.component("Deployment", "worker")
    [tls] = [v for v in pod_spec(worker)["volumes"] if v["name"] == "temporal-tls"]
    assert tls["secret"]["secretName"] == f"{FULLNAME}-temporal-tls"
    assert {i["path"] for i in tls["secret"]["items"]} == {"tls.crt", "tls.key", "ca.crt"}
    temporal = release.flywheel_yaml()["temporal"]
    assert temporal["tls_server_name"] == "t.internal"
    assert temporal["tls_server_ca_path"] == "/etc/flywheel/temporal-tls/ca.crt"
    assert temporal["tls_client_key_path"] == "/etc/flywheel/temporal-tls/tls.key"


def test_store_urls_with_credentials_come_from_secrets() -> None:
    release = render(
        {
            "elasticsearch": {"bundled": {"enabled": False}, "urlSecret": {"name": "es-url"}},
            "mongodb": {"bundled": {"enabled": False}, "urlSecret": {"name": "mongo-url"}},
        }
    )
    for deployment in workers(release):
        container = worker_container(deployment)
        assert secret_ref(container, "FLYWHEEL_LOG_STORE_URL") == ("es-url", "url")
        assert secret_ref(container, "FLYWHEEL_RESULT_STORE_URL") == ("mongo-url", "url")
    config = release.flywheel_yaml()
    assert "log_store_url" not in config and "result_store_url" not in config
    assert not release.has("StatefulSet", "elasticsearch")
    assert not release.has("StatefulSet", "mongodb")


# --- schedules and the setup Job -----------------------------------------------------------------


def parse_cli(args: list[str]) -> Any:
    """Parse ``args`` with the real `flywheel` command line down to the subcommand, and return
    its click context (a usage error for an unknown option or a bad value). Typer may bundle its
    own click, so the command objects are used as they come."""
    command = typer.main.get_command(app)
    rest = list(args)
    while hasattr(command, "get_command"):  # a group
        name, *rest = rest
        sub = command.get_command(command.context_class(command), name)
        assert sub is not None, f"no command {name!r}"
        command = sub
    return command.make_context(command.name or "", rest)


def test_setup_job_registers_attributes_and_upserts_schedules(
    all_features: Release, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = all_features.component("Job", "setup")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "post-install,post-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
    steps = pod_spec(job)["initContainers"]
    assert [s["name"] for s in steps] == ["schedule-0", "schedule-1"]  # registration off (Cloud)
    first, second = (s["args"] for s in steps)
    assert first == [
        "schedule", "create", "customer-service", "--update-existing",
        "--client-id", "support-app", "--every", "1d",
        "--config-file", "/etc/flywheel/config/schedule-0.yaml",
        "--note", "nightly distillation check",
    ]  # fmt: skip
    assert second == [
        "schedule", "create", "order-agent", "--update-existing",
        "--cron", "0 3 * * 1", "--candidate", "qwen-local", "--paused",
    ]  # fmt: skip
    assert literal_env(steps[0])["FLYWHEEL_TEMPORAL__TASK_QUEUE"] == "flywheel"
    assert literal_env(steps[1])["FLYWHEEL_TEMPORAL__TASK_QUEUE"] == "flywheel-gpu"  # pool: gpu
    assert pod_spec(job)["containers"][0]["args"] == ["schedule", "list"]

    for step in steps:  # the real CLI accepts every option the chart passes
        params = parse_cli(step["args"]).params
        assert params["update_existing"] is True
    # The per-run overrides file is valid for the configured settings.
    overrides = yaml.safe_load(all_features.config_map_data()["schedule-0.yaml"])
    assert overrides == {"data_split_config": {"eval_size": 50}}
    settings = settings_in_pod(all_features, steps[0], tmp_path, monkeypatch)
    assert settings.run_config(overrides).data_split_config.eval_size == 50


def test_default_setup_job_registers_search_attributes_only(default_release: Release) -> None:
    job = default_release.component("Job", "setup")
    steps = pod_spec(job)["initContainers"]
    assert [(s["name"], s["args"]) for s in steps] == [("search-attributes", ["setup"])]
    parse_cli(steps[0]["args"])


def test_setup_job_can_be_turned_off() -> None:
    release = render({"setup": {"enabled": False}})
    assert not release.has("Job", "setup")


# --- worker pools --------------------------------------------------------------------------------


def test_graceful_shutdown_outlasts_the_worker_drain(release: Release) -> None:
    for deployment in workers(release):
        spec = pod_spec(deployment)
        drain = float(
            literal_env(worker_container(deployment))["FLYWHEEL_WORKER__GRACEFUL_SHUTDOWN_S"]
        )
        assert spec["terminationGracePeriodSeconds"] >= drain + 30


def test_gpu_pool(all_features: Release) -> None:
    deployment = all_features.component("Deployment", "gpu-worker")
    spec = pod_spec(deployment)
    container = worker_container(deployment)
    assert deployment["spec"]["replicas"] == 2
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert literal_env(container)["FLYWHEEL_TEMPORAL__TASK_QUEUE"] == "flywheel-gpu"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"]["claimName"] == "hf-model-cache"
    assert volumes["shm"]["emptyDir"]["medium"] == "Memory"
    [preload] = spec["initContainers"]
    assert preload["command"] == ["hf", "download", "Qwen/Qwen2.5-0.5B-Instruct"]
    assert secret_ref(preload, "HF_TOKEN") == ("hf-hub", "token")
    main = worker_container(all_features.component("Deployment", "worker"))
    assert "nvidia.com/gpu" not in main["resources"].get("limits", {})


def test_no_gpu_pool_by_default(default_release: Release) -> None:
    assert [component_of(d) for d in workers(default_release)] == ["worker"]


def test_disruption_budget_per_pool(release: Release) -> None:
    budgets = {b["metadata"]["name"]: b for b in release.all("PodDisruptionBudget")}
    for deployment in workers(release):
        budget = budgets[deployment["metadata"]["name"]]
        assert budget["spec"]["maxUnavailable"] == 1
        selector = budget["spec"]["selector"]["matchLabels"]
        assert selector == deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels(deployment).items()


def test_placement_and_replicas(all_features: Release) -> None:
    deployment = all_features.component("Deployment", "worker")
    spec = pod_spec(deployment)
    assert deployment["spec"]["replicas"] == 4
    assert spec["nodeSelector"] == {"workload": "cpu"}
    assert spec["tolerations"][0]["key"] == "dedicated"
    assert spec["priorityClassName"] == "batch-high"
    assert "podAntiAffinity" in spec["affinity"]
    assert worker_container(deployment)["resources"]["requests"] == {"cpu": "4", "memory": "8Gi"}


# --- storage -------------------------------------------------------------------------------------


def test_bundled_services_keep_their_data_on_volumes(default_release: Release) -> None:
    for component, path in (
        ("temporal", "/var/lib/temporal"),
        ("elasticsearch", "/usr/share/elasticsearch/data"),
        ("mongodb", "/data/db"),
    ):
        statefulset = default_release.component("StatefulSet", component)
        [claim] = statefulset["spec"]["volumeClaimTemplates"]
        assert claim["metadata"]["name"] == "data"
        mounts = {m["name"]: m["mountPath"] for m in containers(statefulset)[0]["volumeMounts"]}
        assert mounts["data"] == path
    pvc = default_release.component("PersistentVolumeClaim", "artifacts")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    for deployment in workers(default_release):
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        assert volumes["artifacts"]["persistentVolumeClaim"]["claimName"] == f"{FULLNAME}-artifacts"


def test_object_store_needs_no_volume(all_features: Release) -> None:
    assert all_features.all("PersistentVolumeClaim") == []
    for deployment in workers(all_features):
        assert "artifacts" not in {v["name"] for v in pod_spec(deployment)["volumes"]}


# --- security and labels -------------------------------------------------------------------------


def test_pods_run_as_non_root_without_privileges(release: Release) -> None:
    for obj in release.pod_objects():
        spec = pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for container in containers(obj):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            if component_of(obj) in FLYWHEEL_COMPONENTS:
                assert context["readOnlyRootFilesystem"] is True
                assert spec["securityContext"]["runAsUser"] == 10001
                assert spec["serviceAccountName"] == FULLNAME


def test_recommended_labels_on_every_object(release: Release) -> None:
    required = {
        "app.kubernetes.io/name": "data-flywheel",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/part-of": "data-flywheel",
    }
    for obj in release.objects:
        labels = obj["metadata"]["labels"]
        assert required.items() <= labels.items(), obj["metadata"]["name"]
        assert labels["app.kubernetes.io/version"]
        assert labels["helm.sh/chart"] == "data-flywheel-0.1.0"
        if obj["kind"] in {"Deployment", "StatefulSet", "Job"}:
            assert required.items() <= pod_labels(obj).items()
            assert pod_labels(obj)["app.kubernetes.io/component"] == component_of(obj)


def test_network_policies_guard_the_bundled_services() -> None:
    release = render({"networkPolicy": {"enabled": True}})
    policies = {p["metadata"]["name"]: p for p in release.all("NetworkPolicy")}
    assert set(policies) == {f"{FULLNAME}-{c}" for c in ("temporal", "elasticsearch", "mongodb")}
    peer = policies[f"{FULLNAME}-mongodb"]["spec"]["ingress"][0]["from"][0]["podSelector"]
    assert peer["matchLabels"]["app.kubernetes.io/instance"] == RELEASE


# --- NOTES ---------------------------------------------------------------------------------------


def test_notes_explain_the_web_ui_and_a_first_run(
    default_release: Release, all_features: Release
) -> None:
    notes = default_release.notes
    assert f"port-forward svc/{FULLNAME}-temporal 8233:8233" in notes
    assert f"exec deploy/{FULLNAME}-worker -- flywheel run WORKLOAD" in notes
    assert "WorkloadId = " in notes
    cloud = all_features.notes
    assert "https://cloud.temporal.io/namespaces/flywheel-prod.a1b2c/workflows" in cloud
    assert "flywheel-gpu" in cloud and "2 schedule(s)" in cloud
