"""Results that decide, end to end on the Temporal dev server: two runs of one workload against
a scripted OpenAI-compatible candidate, then what a person sees.

Run 1: the candidate answers about three in four records with the right tool, and the run ends
with a recommendation, costs, latencies and intervals; the BestCandidate / BestEvalKind /
BestScore search attributes are set and queryable; the webhook is called; divergent examples
are saved. Run 2: the candidate has got worse (it calls no tool at all), so nothing is
recommended and ``flywheel history`` flags the regression. The CLI (a real subprocess, pointed
at the same server and data directory) shows all of it, and writes the HTML report.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from flywheel.api import FlywheelClient
from flywheel.sample_data import generate_customer_service_logs
from flywheel.schemas import EvalKind, RunStatus, Verdict
from flywheel.worker import WORKFLOWS
from tests.cli.test_cli import Cli, clean_env
from tests.e2e.test_endpoints_run import MAX_PAYLOAD, _payloads
from tests.support.flywheel_env import load_records, running_worker
from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.scripts import build_script
from tests.support.webhook_server import WebhookServer

WORKLOAD = "results-agent"
PRODUCTION = "meta/llama-3.3-70b-instruct"
HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None

pytestmark = pytest.mark.slow


async def _visible(fw: FlywheelClient, query: str, run_id: str) -> list[str]:
    """Run ids the visibility query finds (retried: visibility is eventually consistent)."""
    found: list[str] = []
    for _ in range(100):
        found = [w.id async for w in fw.client.list_workflows(query)]
        if run_id in found:
            break
        await asyncio.sleep(0.1)
    return found


async def test_runs_end_with_a_recommendation_people_can_see(
    dev_env: WorkflowEnvironment,
    settings_for,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logs = generate_customer_service_logs(
        160, seed=21, workload_id=WORKLOAD, client_id="app-1", production_model=PRODUCTION
    )
    script, _ = build_script(logs)
    mlflow: dict[str, Any] = {}
    if HAS_MLFLOW:
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow = {"enabled": True, "tracking_uri": (tmp_path / "mlruns").as_uri()}
    with ScriptedOpenAIServer(script) as server, WebhookServer() as hook:
        monkeypatch.setenv("FLYWHEEL_TEST_WEBHOOK", hook.url)
        settings = settings_for(
            "unused",
            candidates=[{"name": "small", "model": "small-1b", "base_url": server.base_url}],
            evaluation={"concurrency": 4, "retry_backoff_s": 0.05, "divergent_examples": 5},
            acceptance={"targets": {"function_name_accuracy": ">= 0.4"}},
            pricing={
                "models": {
                    PRODUCTION: {"input_per_1m": 0.88, "output_per_1m": 0.88},
                    "small": {"input_per_1m": 0.02, "output_per_1m": 0.04},
                }
            },
            notifications={"webhook_url_env": "FLYWHEEL_TEST_WEBHOOK"},
            mlflow_config=mlflow or {"enabled": False},
        )
        await load_records(settings, logs)
        fw = FlywheelClient(dev_env.client, settings)
        async with running_worker(dev_env.client, settings):
            first_id = await fw.start_run(WORKLOAD, "app-1")
            first = await fw.wait(first_id)
            server.script = {}  # run 2: the candidate now answers "I don't know." to everything
            second_id = await fw.start_run(WORKLOAD, "app-1")
            second = await fw.wait(second_id)

        # --- run 1: a recommendation with costs, latencies and intervals ---
        assert first.status == RunStatus.COMPLETED
        rec = first.recommendation
        assert rec is not None and (rec.candidate, rec.kind) == ("small", EvalKind.BASE)
        assert rec.metric == "function_name_and_args_accuracy"
        assert rec.interval is not None and rec.interval.n == 20
        assert rec.cost_per_1k is not None and rec.savings_fraction is not None
        assert 0.9 < rec.savings_fraction < 1.0  # $0.02 against $0.88 per 1M input tokens
        assessment = first.assessment
        assert assessment is not None and assessment.production is not None
        assert assessment.production.model == PRODUCTION
        assert assessment.production.requests == 20 and assessment.production.cost_per_1k
        base = first.candidates[0].eval(EvalKind.BASE)
        assert base is not None and base.latency is not None and base.latency.n == 20
        assert base.intervals["function_name_accuracy"].n == 20
        assert base.throughput_rps is not None and base.tokens_per_s is not None
        assert all(
            v.verdict is Verdict.MEETS
            for e in assessment.evals
            if e.kind is EvalKind.BASE
            for v in e.verdicts
        )
        examples = await fw.examples(first)
        assert 0 < len(examples["small/base"]) <= 5
        assert all(line["divergence"] > 0 for line in examples["small/base"])

        # --- the search attributes: set on the run, queryable ---
        description = await dev_env.client.get_workflow_handle(first_id).describe()
        attributes = {key.name: value for key, value in description.typed_search_attributes}
        assert attributes["BestCandidate"] == "small"
        assert attributes["BestEvalKind"] == "base"
        assert attributes["BestScore"] == pytest.approx(rec.score)
        assert await _visible(
            fw, f'BestCandidate = "small" AND WorkloadId = "{WORKLOAD}"', first_id
        ) == [first_id]
        assert first_id in await _visible(fw, "BestScore > 0.1", first_id)
        assert await _visible(
            fw, f'BestCandidate = "none" AND WorkloadId = "{WORKLOAD}"', second_id
        ) == [second_id]
        listed = {r.run_id: r for r in await fw.list_runs(workload_id=WORKLOAD)}
        assert listed[first_id].best_candidate == "small"
        assert listed[first_id].best_score == pytest.approx(rec.score)

        # --- run 2: nothing recommendable; the change and the regression are said ---
        assert second.status == RunStatus.COMPLETED
        assert second.recommendation is not None and second.recommendation.candidate is None
        assert second.recommendation.previous_run_id == first_id
        assert second.recommendation.changed
        assert "small/base below" in second.recommendation.reason
        history = await fw.history(WORKLOAD)
        assert [h.run_id for h in history] == [first_id, second_id]
        assert history[0].recommended == "small/base" and history[0].regression is None
        assert history[1].recommended is None
        assert history[1].regression is not None and "small/base" in history[1].regression

        # --- notifications: one webhook call per run, Slack-compatible ---
        assert [b["run_id"] for b in hook.bodies] == [first_id, second_id]
        assert "Recommendation: small (base" in hook.bodies[0]["text"]
        assert hook.bodies[1]["text"].startswith(f"data-flywheel run {second_id}")
        assert "No recommendation" in hook.bodies[1]["text"]

        # --- no payload in the run's history over 64 KiB; no webhook URL in it; and the
        # history of the new steps (assess, upsert, publish) replays deterministically ---
        replayer = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter)
        for workflow_id in (first_id, f"{first_id}/small", second_id):
            history_events = await dev_env.client.get_workflow_handle(workflow_id).fetch_history()
            assert "secret-token" not in history_events.to_json()
            for event in history_events.events:
                for payload in _payloads(event):
                    assert len(payload.data) <= MAX_PAYLOAD, (workflow_id, event.event_type)
            replayed = await replayer.replay_workflow(history_events, raise_on_replay_failure=False)
            assert replayed.replay_failure is None, replayed.replay_failure

        if HAS_MLFLOW:
            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=mlflow["tracking_uri"])
            experiment = client.get_experiment_by_name(f"data-flywheel-{first_id}")
            assert experiment is not None
            (logged,) = client.search_runs(
                [experiment.experiment_id], filter_string="tags.`flywheel.eval` = 'small/base'"
            )
            assert logged.data.metrics["total_evaluations"] == 20

        # --- the command line, as a person runs it ---
        cli = Cli(tmp_path, clean_env(settings.data_dir))
        env = {"FLYWHEEL_TEMPORAL__ADDRESS": dev_env.client.service_client.config.target_host}

        shown = await cli.run("results", first_id, env=env)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert lines[0].startswith(f"Run {first_id}")
        assert lines[1].startswith("Recommendation: small (base, model small-1b)")  # first
        assert re.search(
            r"small\W+base\W+completed\W+\d\.\d{3} \[\d\.\d\d, \d\.\d\d\]", shown.stdout
        ), shown.stdout
        assert "Cost (USD per 1,000 requests) and latency" in shown.stdout
        assert re.search(r"Production \(meta/llama-3\.3-70b-instruct\): \$\d", shown.stdout)

        with_examples = await cli.run("results", first_id, "--examples", env=env)
        assert with_examples.returncode == 0, with_examples.stderr
        assert "Divergent examples: small/base" in with_examples.stdout
        assert "production:" in with_examples.stdout and "candidate:" in with_examples.stdout
        as_json = await cli.run("results", first_id, "--json", "--examples", env=env)
        data = json.loads(as_json.stdout)
        assert data["recommendation"]["candidate"] == "small"
        assert data["examples"]["small/base"]

        table = await cli.run("history", WORKLOAD)  # needs no Temporal server
        assert table.returncode == 0, table.stderr
        assert "REGRESSION: small/base" in table.stdout
        assert f"regression in {second_id}" in table.stdout
        entries = json.loads((await cli.run("history", WORKLOAD, "--json")).stdout)
        assert [e["recommended"] for e in entries] == ["small/base", None]

        listed_cli = await cli.run("list", "--workload", WORKLOAD, env=env)
        assert listed_cli.returncode == 0, listed_cli.stderr
        assert re.search(rf"{re.escape(first_id)}.*small \(base\) \d\.\d{{3}}", listed_cli.stdout)

        out = tmp_path / "report.html"
        written = await cli.run("report", first_id, "--out", str(out), env=env)
        assert written.returncode == 0, written.stderr
        assert f"wrote {out}" in written.stdout
        page = out.read_text()
        ids = _ids(page)
        for section in (
            "recommendation",
            "scores",
            "per-tool",
            "latency",
            "curation",
            "examples",
            "configuration",
        ):
            assert section in ids
        assert "Recommendation: small (base" in page and "<svg" in page
        assert "<script" not in page and " src=" not in page and " href=" not in page
        await fw.aclose()


def _ids(page: str) -> set[str]:
    found: set[str] = set()

    class Ids(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.update(value for name, value in attrs if name == "id" and value)

    Ids().feed(page)
    return found
