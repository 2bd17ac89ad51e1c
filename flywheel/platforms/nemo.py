"""The ``nemo`` platform: candidates deployed, fine-tuned and evaluated on NeMo Microservices.

Deploy creates (or re-attaches to) the model's NIM deployment in DMS and waits until the NIM
lists the model. Customize publishes the run's train/val sets to the Data Store, makes a
versioned Customizer config and one LoRA job per candidate (found again by id or name when a
step is retried), follows it and waits for the customized model on the NIM. Evaluate runs the
built-in evaluator against the NIM, or NeMo Evaluator jobs (``nmp_config.evaluator``). Teardown
deletes the deployment. Remote jobs are cancelled when their step is cancelled.

Settings come from the run's ``nmp_config``; API keys from the environment variables it names.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from flywheel.clients.artifacts import ArtifactStore
from flywheel.clients.embeddings import EmbedderCache
from flywheel.clients.nemo import DatasetFile, DeploymentSpec, NemoClient, nim_v1
from flywheel.clients.nemo.customizer import CustomizationStuck, hyperparameters
from flywheel.clients.nemo.customizer import training_option as customizer_option
from flywheel.clients.nemo.datastore import files_url
from flywheel.clients.nemo.evaluator import (
    UNUSABLE,
    EvaluationTimedOut,
    evaluation_config,
    has_fields,
    judge_model,
    scores_from_results,
)
from flywheel.clients.nemo.names import (
    RUN_FIELD,
    RunNames,
    customizer_config_name,
    deployment_name,
    judge_deployment_name,
)
from flywheel.config import (
    Candidate,
    EmbeddingConfig,
    LLMJudgeConfig,
    NMPConfig,
    RunConfig,
    read_secret,
)
from flywheel.errors import ConfigError, FlywheelError, UnsupportedOperation
from flywheel.platforms.base import StepContext
from flywheel.platforms.evaluator import evaluate_over_http
from flywheel.schemas import (
    CustomizationResult,
    CustomizeInput,
    DatasetRef,
    DeployInput,
    Deployment,
    EvalKind,
    EvalResult,
    EvaluateInput,
    Platform,
    StepStatus,
    TeardownInput,
    utcnow,
)

__all__ = ["NemoPlatform"]

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 5.0
NEMO_EVALUATOR = "nemo-evaluator"
EVAL_FILE = "eval_data.jsonl"
"""The file of an eval (or ICL) dataset repo, as NeMo Evaluator reads it."""
CANDIDATE_FIELD = "flywheel_candidate"
KIND_FIELD = "flywheel_eval"
MODEL_FIELD = "flywheel_model"


class NemoPlatform:
    """:class:`~flywheel.platforms.base.ModelPlatform` on NeMo Microservices."""

    name = Platform.NEMO

    def __init__(self, artifacts: ArtifactStore) -> None:
        self.artifacts = artifacts
        self._clients: dict[NMPConfig, NemoClient] = {}
        self._embedders = EmbedderCache()

    # --- the protocol ---

    async def deploy(self, request: DeployInput, ctx: StepContext) -> Deployment:
        """Create or re-attach to the candidate's NIM deployment; wait until the NIM serves it."""
        candidate, config = request.candidate, request.config
        nmp = self.client(config)
        spec = DeploymentSpec.for_candidate(candidate, request.run_id)
        timeouts = config.timeouts
        deadline = time.monotonic() + timeouts.deploy_timeout_s
        async with _beating(ctx, {"stage": "deploying", "model": candidate.model}) as beat:
            await nmp.deployments.ensure(spec)
            await nmp.deployments.wait_ready(
                spec, deadline=deadline, poll_s=timeouts.poll_interval_s, on_status=beat.update
            )
        reason = _customization_unsupported(candidate)
        return Deployment(
            candidate=candidate.name,
            platform=Platform.NEMO,
            model=candidate.model,
            base_url=nim_v1(nmp.conn.config),
            supports_customization=reason is None,
            unsupported_reason=reason,
            details={"deployment": f"{nmp.conn.namespace}/{spec.name}"},
        )

    @contextlib.asynccontextmanager
    async def embedding_nim(
        self, config: RunConfig, run_id: str, ctx: StepContext
    ) -> AsyncIterator[EmbeddingConfig]:
        """Deploy the run's embedding NIM (``embedding_nim_config.deployment_type: local``) for
        the length of the block; yields the remote-endpoint configuration that reaches it.

        Named per run (``…-embedding``), so a retried curation re-attaches; deleted on the way
        out, also on failure or cancellation (shielded), as the blueprint does after curation.
        """
        similarity = config.icl_config.similarity_config
        embedding = similarity.embedding_nim_config if similarity else None
        if embedding is None or embedding.deployment_type != "local":
            raise ConfigError("no embedding NIM to deploy: embedding_nim_config is not local")
        if not embedding.tag:
            raise ConfigError(
                "icl_config.similarity_config.embedding_nim_config.tag is needed to deploy the "
                "embedding NIM (the image tag, for example 1.3.0)"
            )
        nmp = self.client(config)
        spec = _helper_nim_spec(deployment_name(run_id, "embedding"), embedding)
        try:
            await _deploy_and_wait(nmp, spec, config, ctx, "deploying the embedding NIM")
            yield embedding.model_copy(
                update={
                    "deployment_type": "remote",
                    "url": f"{nim_v1(nmp.conn.config)}/embeddings",
                    "api_key_env": nmp.conn.config.api_key_env,
                }
            )
        finally:
            await asyncio.shield(nmp.deployments.delete(spec.name))

    async def judge_nim(self, config: RunConfig, run_id: str, ctx: StepContext) -> LLMJudgeConfig:
        """Deploy (or re-attach to) the judge NIM of ``llm_judge_config.deployment_type: local``
        and wait until it serves; the remote-endpoint configuration that reaches it.

        ``lifetime: run`` names it after the run (every candidate of the run shares it; the run
        deletes it when it ends, see :meth:`release_judge`); ``kept`` names it after the model,
        so later runs re-attach to it and nothing deletes it.
        """
        judge = config.llm_judge_config
        if judge is None or judge.deployment_type != "local":
            raise ConfigError("no judge NIM to deploy: llm_judge_config is not local")
        if not judge.tag:
            raise ConfigError(
                "llm_judge_config.tag is needed to deploy the judge NIM (the image tag, for "
                "example 1.8.3)"
            )
        nmp = self.client(config)
        spec = _helper_nim_spec(judge_deployment_name(judge, run_id), judge)
        await _deploy_and_wait(nmp, spec, config, ctx, "deploying the judge NIM")
        return judge.model_copy(
            update={
                "deployment_type": "remote",
                "url": f"{nim_v1(nmp.conn.config)}/chat/completions",
                "api_key_env": nmp.conn.config.api_key_env,
            }
        )

    async def release_judge(self, config: RunConfig, run_id: str) -> bool:
        """Delete the run's judge NIM (``lifetime: run``); False when there was none."""
        judge = config.llm_judge_config
        if judge is None or judge.deployment_type != "local" or judge.lifetime != "run":
            return False
        return await self.client(config).deployments.delete(judge_deployment_name(judge, run_id))

    async def teardown(self, request: TeardownInput, ctx: StepContext) -> None:
        """Delete the candidate's deployment (already gone counts as done).

        The customized model stays in the Entity Store (it is a result a person may promote);
        ``delete_run`` removes it.
        """
        nmp = self.client(request.config)
        name = deployment_name(request.run_id, request.candidate.name)
        deleted = await nmp.deployments.delete(name)
        ctx.heartbeat({"stage": "teardown", "deployment": name, "deleted": deleted})

    async def customize(self, request: CustomizeInput, ctx: StepContext) -> CustomizationResult:
        """Run (or re-attach to) the candidate's LoRA job and wait for its model on the NIM."""
        candidate, config = request.candidate, request.config
        reason = _customization_unsupported(candidate)
        if reason is not None:
            raise UnsupportedOperation(reason)
        nmp = self.client(config)
        timeouts = config.timeouts
        deadline = time.monotonic() + timeouts.customization_timeout_s
        started = utcnow()
        async with _beating(ctx, {"stage": "preparing customization"}) as beat:
            job = await self._customization_job(nmp, request, ctx)
            job_id, model = str(job.id), str(job.output_model)
            what = f"NeMo Customizer job {job_id} ({job.name}) for candidate {candidate.name}"
            beat.update({"stage": "training", "job_id": job_id, "model": model})

            async def follow() -> Any:
                progress = await nmp.customizer.wait(
                    job_id,
                    what=what,
                    deadline=deadline,
                    scheduling_timeout_s=nmp.conn.config.scheduling_timeout_s,
                    poll_s=timeouts.poll_interval_s,
                    on_progress=lambda p: beat.update(
                        {"stage": "training", "job_id": job_id, **p.details()}
                    ),
                )
                beat.update({"stage": "model sync", "job_id": job_id, "model": model})
                await nmp.conn.wait_until_served(
                    model,
                    deadline=deadline,
                    poll_s=timeouts.poll_interval_s,
                    on_wait=beat.tick,
                    what=what,
                )
                return progress

            progress = await _cancelling_on_exit(
                follow(),
                cancel=lambda: nmp.customizer.cancel(job_id),
                what=what,
                ctx=ctx,
                stuck=(CustomizationStuck,),
            )
        return CustomizationResult(
            status=StepStatus.COMPLETED,
            model=model,
            job_id=job_id,
            epochs_completed=progress.epochs,
            steps_completed=progress.steps,
            train_loss=progress.train_loss,
            val_loss=progress.val_loss,
            started_at=started,
            finished_at=utcnow(),
        )

    async def evaluate(self, request: EvaluateInput, ctx: StepContext) -> EvalResult:
        """Score the deployed (or customized, ``request.model``) model, with the evaluator
        ``nmp_config.evaluator`` names."""
        nmp = self.client(request.config)
        if nmp.conn.config.evaluator == "nemo":
            return await self._evaluate_with_nemo(nmp, request, ctx)
        return await self._evaluate_builtin(nmp, request, ctx)

    async def aclose(self) -> None:
        """Close the NMP clients and release in-process embedding models."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
        self._embedders.clear()

    # --- clean-up of a whole run ---

    async def delete_run(self, run_id: str, config: RunConfig) -> list[str]:
        """Remove what run ``run_id`` created on NMP; one line per thing removed.

        Evaluation jobs (cancelled first when active), customization jobs' customized models
        (jobs still running are cancelled; the Customizer has no job delete), and the run's
        datasets (Data Store repos and Entity Store entries). Deployments are per model and
        shared, and torn down by each candidate's teardown; Customizer configs are shared by
        runs with the same options. Idempotent: a second call finds nothing and says nothing.
        """
        if config.nmp_config is None:
            return []
        nmp = self.client(config)
        names = RunNames(run_id)
        lines = await nmp.evaluator.remove_tagged({RUN_FIELD: names.key})
        lines += await nmp.customizer.remove_jobs(names.owns)
        datasets = {n for n in await nmp.datasets.names_containing(names.key) if names.owns(n)}
        datasets |= {names.dataset("eval"), names.dataset("train")}
        datasets |= {
            names.dataset(f"icl-{_icl_context(c, config)}")
            for c in config.candidates
            if c.platform == Platform.NEMO
        }
        for dataset in sorted(datasets):
            lines.extend(await nmp.datasets.delete(dataset))
        return lines

    # --- helpers ---

    def client(self, config: RunConfig) -> NemoClient:
        """The NMP client for the run's ``nmp_config`` (one per distinct config, kept open)."""
        nmp = config.nmp_config
        if nmp is None:
            raise ConfigError("candidates on the `nemo` platform need `nmp_config`")
        client = self._clients.get(nmp)
        if client is None:
            client = self._clients[nmp] = NemoClient.from_config(nmp)
        return client

    async def _publish(
        self, nmp: NemoClient, names: RunNames, part: str, files: list[tuple[str, DatasetRef]]
    ) -> str:
        """Publish the artifact-store datasets ``files`` (path in repo, ref) as dataset
        ``part`` of the run; its name."""
        name = names.dataset(part)
        contents = [DatasetFile(path, await self._read(ref)) for path, ref in files]
        await nmp.datasets.publish(
            name,
            contents,
            custom_fields={RUN_FIELD: names.key, "flywheel_set": part},
            description=f"flywheel run {names.run_id}: {part}",
        )
        return name

    async def _customization_job(
        self, nmp: NemoClient, request: CustomizeInput, ctx: StepContext
    ) -> Any:
        """The candidate's job: the one a previous attempt heartbeated or named, else a new one.

        A job found cancelled was stopped while no step followed it (a worker shut down
        mid-step), so a restart replaces it (``….r1``); a cancel that arrives while the job is
        being created cancels whatever the create made.
        """
        names = RunNames(request.run_id)
        base = names.candidate(request.candidate.name)
        job = await _resumed(ctx, nmp.customizer.get)
        if job is None or not RunNames.is_attempt(job.name, base):
            job = await nmp.customizer.latest(base)
        if job is not None and job.status != "cancelled":
            return job
        name = RunNames.next_attempt(base, job.name if job is not None else None)
        try:
            return await self._start_customization(nmp, request, names, name)
        except asyncio.CancelledError:
            if _cancel_is_final(ctx):
                await _shielded_cancel(
                    lambda: nmp.customizer.cancel_named(name), f"NeMo Customizer job {name}"
                )
            raise

    async def _start_customization(
        self, nmp: NemoClient, request: CustomizeInput, names: RunNames, job_name: str
    ) -> Any:
        """Publish the train/val sets, ensure the versioned config, create (or find) the job."""
        candidate, config = request.candidate, request.config
        training, lora = config.training_config, config.lora_config
        assert candidate.customizer is not None
        files = [("training/train_data.jsonl", request.train)]
        if request.val.n_records:
            files.append(("validation/val_data.jsonl", request.val))
        dataset = await self._publish(nmp, names, "train", files)
        options = {
            "model": candidate.model,
            "resources": candidate.customizer.model_dump(mode="json"),
            "option": customizer_option(training, candidate.customizer),
            "hyperparameters": hyperparameters(training, lora),
        }
        config_ref = await nmp.customizer.ensure_config(
            customizer_config_name(candidate.model, options),
            training=training,
            resources=candidate.customizer,
        )
        job, _ = await nmp.customizer.ensure_job(
            name=job_name,
            config=config_ref,
            dataset=dataset,
            output_model=f"{nmp.conn.namespace}/{job_name}",
            hyperparameters=hyperparameters(training, lora),
            custom_fields={RUN_FIELD: names.key, CANDIDATE_FIELD: candidate.name},
            description=f"flywheel run {request.run_id}, candidate {candidate.name}",
        )
        return job

    async def _read(self, ref: DatasetRef) -> bytes:
        data = await self.artifacts.read_bytes(ref.uri)
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise FlywheelError(f"dataset {ref.uri} does not match its sha256: it was modified")
        return data

    async def _evaluate_builtin(
        self, nmp: NemoClient, request: EvaluateInput, ctx: StepContext
    ) -> EvalResult:
        """The built-in evaluator against the NIM (checkpointed, resumable)."""
        return await evaluate_over_http(
            self.artifacts,
            request,
            ctx,
            base_url=request.deployment.base_url or nim_v1(nmp.conn.config),
            api_key=nmp.conn.api_key,
            embedders=self._embedders,
        )

    async def _evaluate_with_nemo(
        self, nmp: NemoClient, request: EvaluateInput, ctx: StepContext
    ) -> EvalResult:
        """A NeMo Evaluator job on the published eval (or ICL) set; resumes by job id."""
        candidate, config = request.candidate, request.config
        names = RunNames(request.run_id)
        target = request.model or request.deployment.model
        judge_config = config.llm_judge_config
        judge_key = _judge_key(judge_config)
        judge = judge_model(judge_config, judge_key) if judge_config is not None else None
        fields = {
            RUN_FIELD: names.key,
            CANDIDATE_FIELD: candidate.name,
            KIND_FIELD: request.kind.value,
            MODEL_FIELD: target,
        }
        label = f"{candidate.name} {request.kind.value}"
        deadline = time.monotonic() + config.timeouts.evaluation_timeout_s
        started = utcnow()
        details = {"stage": "evaluating", "engine": NEMO_EVALUATOR}
        async with _beating(ctx, {**details, "stage": "preparing evaluation"}) as beat:
            job = await _resumed(ctx, nmp.evaluator.get)
            if job is not None and (job.status in UNUSABLE or not has_fields(job, fields)):
                job = None
            if job is None:
                part = "eval"
                if request.kind == EvalKind.ICL:
                    part = f"icl-{_icl_context(candidate, config)}"
                eval_config = evaluation_config(  # raises ConfigError before anything is made
                    request.workload_type,
                    files_url=f"{files_url(nmp.conn.namespace, names.dataset(part))}/{EVAL_FILE}",
                    limit=max(1, request.dataset.n_records),
                    judge=judge,
                )
                await self._publish(nmp, names, part, [(EVAL_FILE, request.dataset)])
                try:
                    job, _ = await nmp.evaluator.ensure(
                        config=eval_config,
                        target_model=target,
                        fields=fields,
                        description=f"flywheel {names.prefix} {label}",
                        secrets=(judge_key,) if judge_key else (),
                    )
                except asyncio.CancelledError:  # the create may have made the job: cancel it
                    if _cancel_is_final(ctx):
                        await _shielded_cancel(
                            lambda: nmp.evaluator.cancel_tagged(fields), f"NeMo Evaluator {label}"
                        )
                    raise
            job_id = str(job.id)
            what = f"NeMo Evaluator job {job_id} ({label}) for candidate {candidate.name}"
            beat.update({**details, "job_id": job_id})
            await _cancelling_on_exit(
                nmp.evaluator.wait(
                    job_id,
                    what=what,
                    deadline=deadline,
                    poll_s=config.timeouts.poll_interval_s,
                    on_progress=lambda p: beat.update({**details, "job_id": job_id, **p}),
                ),
                cancel=lambda: nmp.evaluator.cancel(job_id),
                what=what,
                ctx=ctx,
                stuck=(EvaluationTimedOut,),
            )
            results = await nmp.evaluator.results(job_id)
        metrics, scored = scores_from_results(results)
        total = request.dataset.n_records
        return EvalResult(
            kind=request.kind,
            status=StepStatus.COMPLETED if metrics else StepStatus.FAILED,
            model=target,
            metrics=metrics,
            n_total=total,
            n_scored=min(total, scored) if scored is not None else total,
            error=None if metrics else f"{what} returned no scores the flywheel knows",
            started_at=started,
            finished_at=utcnow(),
        )


# --- pieces ----------------------------------------------------------------------------------


def _customization_unsupported(candidate: Candidate) -> str | None:
    if not candidate.customization_enabled:
        return f"customization_enabled is false for candidate {candidate.name!r}"
    if candidate.customizer is None:
        return (
            f"candidate {candidate.name!r} has no customizer settings (target, gpus): "
            "NeMo Customizer needs them"
        )
    return None


def _icl_context(candidate: Candidate, config: RunConfig) -> int:
    """The context length the candidate's ICL set was built for (as the dataset builder does)."""
    return min(candidate.context_length, config.icl_config.max_context_length)


def _judge_key(config: Any) -> str | None:
    if config is None or not config.api_key_env:
        return None
    key = read_secret(config.api_key_env)
    if key is None:
        raise ConfigError(
            f"llm_judge_config names api_key_env {config.api_key_env}, but that environment "
            "variable is not set on the worker: set it where the worker runs"
        )
    return key


async def _resumed(ctx: StepContext, get: Callable[[str], Awaitable[Any]]) -> Any:
    """The remote job a previous attempt of this step heartbeated (``job_id``), if it exists."""
    job_id = ctx.resume.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        return None
    return await get(job_id)


def _helper_nim_spec(name: str, nim: LLMJudgeConfig | EmbeddingConfig) -> DeploymentSpec:
    """The deployment of a judge or embedding NIM the run deploys for itself."""
    return DeploymentSpec(
        name=name,
        model=nim.model_name,
        image_name=f"{nim.registry_base.rstrip('/')}/{nim.model_name}",
        image_tag=nim.tag or "",
        gpus=nim.gpus if nim.gpus is not None else 1,
        pvc_size=nim.pvc_size,
    )


async def _deploy_and_wait(
    nmp: NemoClient, spec: DeploymentSpec, config: RunConfig, ctx: StepContext, stage: str
) -> None:
    """Create (or re-attach to) ``spec`` and wait until the NIM serves it, heartbeating."""
    deadline = time.monotonic() + config.timeouts.deploy_timeout_s
    async with _beating(ctx, {"stage": stage}) as beat:
        await nmp.deployments.ensure(spec)
        await nmp.deployments.wait_ready(
            spec, deadline=deadline, poll_s=config.timeouts.poll_interval_s, on_status=beat.update
        )


def _cancel_is_final(ctx: StepContext) -> bool:
    """Whether a cancelled step should cancel its remote job: not when the worker is shutting
    down (the next attempt re-attaches to the job), see :attr:`StepContext.cancel_is_final`."""
    return ctx.cancel_is_final()


async def _cancelling_on_exit(
    waiting: Awaitable[Any],
    *,
    cancel: Callable[[], Awaitable[bool]],
    what: str,
    ctx: StepContext,
    stuck: tuple[type[BaseException], ...],
) -> Any:
    """Await ``waiting``; if the step is cancelled, or it raises one of ``stuck`` (the job is
    still active but will not finish), cancel the remote job first (shielded), then re-raise."""
    try:
        return await waiting
    except asyncio.CancelledError:
        if _cancel_is_final(ctx):
            await _shielded_cancel(cancel, what)
        raise
    except stuck:
        await _shielded_cancel(cancel, what)
        raise


async def _shielded_cancel(cancel: Callable[[], Awaitable[bool]], what: str) -> None:
    """Run ``cancel()`` to completion even while this task is being cancelled; failures are
    logged, not raised (the step is ending either way)."""
    task = asyncio.ensure_future(cancel())

    def report(done: asyncio.Future[bool]) -> None:
        if done.cancelled():
            return
        error = done.exception()
        if error is not None:
            log.warning("%s: could not cancel it: %s", what, error)
        elif done.result():
            log.info("%s: cancelled", what)

    task.add_done_callback(report)
    with contextlib.suppress(Exception):
        await asyncio.shield(task)


class _Beat:
    """The latest heartbeat details of a long wait; sent at every update and every few seconds."""

    def __init__(self, ctx: StepContext, details: dict[str, Any]) -> None:
        self.ctx = ctx
        self.details = dict(details)

    def update(self, details: dict[str, Any]) -> None:
        self.details = dict(details)
        self.ctx.heartbeat(dict(self.details))

    def tick(self) -> None:
        self.ctx.heartbeat(dict(self.details))


@contextlib.asynccontextmanager
async def _beating(ctx: StepContext, details: dict[str, Any]) -> AsyncIterator[_Beat]:
    """Heartbeat the latest details at least every HEARTBEAT_EVERY_S during a step, so a slow
    NMP call (with its retries) never looks like a dead worker."""
    beat = _Beat(ctx, details)

    async def ticker() -> None:
        with contextlib.suppress(Exception):  # a failing heartbeat surfaces on the next update
            while True:
                beat.tick()
                await asyncio.sleep(HEARTBEAT_EVERY_S)

    task = asyncio.create_task(ticker())
    try:
        yield beat
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
