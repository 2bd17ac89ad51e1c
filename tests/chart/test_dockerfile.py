"""The Dockerfile's essentials (no Docker engine here, so the file is read, not built): a
multi-stage build, a non-root runtime user, the `flywheel` CLI as entrypoint running `worker`, the
build arguments for the local platform's torch, and a build context that holds what it copies."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass, field

import pytest

from tests.chart.render import ROOT

DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} in stage {self.name}"
        return found[-1]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages) of a Dockerfile; continuation lines joined, comments gone."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        part = stripped.removesuffix("\\").strip()
        current = f"{current} {part}" if current else part
        if not stripped.endswith("\\"):
            lines.append(current)
            current = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, arg = line.partition(" ")
        keyword, arg = keyword.upper(), arg.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", arg, flags=re.IGNORECASE)
            assert match, line
            stages.append(Stage(base=match.group(1), name=match.group(2)))
        elif not stages:
            assert keyword == "ARG", f"only ARG may precede FROM: {line}"
            name, _, default = arg.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append((keyword, arg))
    return global_args, stages


def stage_args(stage: Stage) -> dict[str, str]:
    return {name: default for name, _, default in (a.partition("=") for a in stage.all("ARG"))}


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


def test_multi_stage_on_a_supported_python(dockerfile) -> None:
    global_args, stages = dockerfile
    assert len(stages) >= 2
    build, runtime = stages[0], stages[-1]
    assert build.name == "build"
    assert runtime.all("COPY") == ["--from=build /opt/venv /opt/venv"]
    base = global_args["PYTHON_IMAGE"]
    version = re.match(r"python:(\d+)\.(\d+)", base)
    assert version, base
    minimum = re.search(r">=\s*(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert minimum
    assert tuple(map(int, version.groups())) >= tuple(map(int, minimum.groups()))
    assert {s.base for s in stages} == {"${PYTHON_IMAGE}"}  # the venv's python is the same one


def test_runtime_stage_holds_runtime_dependencies_only(dockerfile) -> None:
    _, stages = dockerfile
    runtime = stages[-1]
    run = " ".join(runtime.all("RUN"))
    assert "pip install" not in run  # the environment comes ready-made from the build stage
    for tool in ("build-essential", "gcc", "git", "curl"):
        assert tool not in run
    assert "--no-install-recommends tini" in run
    assert "rm -rf /var/lib/apt/lists/*" in run


def test_runs_as_a_non_root_user(dockerfile) -> None:
    _, stages = dockerfile
    user = stages[-1].last("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) >= 1000  # numeric, so runAsNonRoot can verify it
    assert gid.isdigit() and int(gid) >= 1000
    run = " ".join(stages[-1].all("RUN"))
    assert f"--uid {uid}" in run and f"--gid {gid}" in run
    assert "ENV" in {kw for kw, _ in stages[-1].instructions}


def test_entrypoint_is_the_flywheel_cli_running_a_worker(dockerfile) -> None:
    _, stages = dockerfile
    runtime = stages[-1]
    entrypoint = json.loads(runtime.last("ENTRYPOINT"))  # exec form: signals reach the process
    assert entrypoint[-1] == "flywheel"
    assert entrypoint[:2] == ["/usr/bin/tini", "--"]  # PID 1 forwards SIGTERM, reaps children
    assert "flywheel" in PYPROJECT["project"]["scripts"]
    assert json.loads(runtime.last("CMD")) == ["worker"]
    env = " ".join(runtime.all("ENV"))
    assert "PATH=/opt/venv/bin:$PATH" in env


def test_build_args_for_the_local_platform_torch(dockerfile) -> None:
    _, stages = dockerfile
    build = stages[0]
    args = stage_args(build)
    assert args["EXTRAS"] == '""'
    assert args["TORCH_INDEX_URL"].startswith("https://download.pytorch.org/whl/")
    assert {"TORCH_VERSION", "EXTRA_PACKAGES"} <= set(args)
    run = " ".join(build.all("RUN"))
    assert '--index-url "${TORCH_INDEX_URL}" "torch${TORCH_VERSION}"' in run
    assert 'pip install "/src${EXTRAS:+[${EXTRAS}]}"' in run
    assert "local" in PYPROJECT["project"]["optional-dependencies"]
    assert any(
        d.startswith("torch") for d in PYPROJECT["project"]["optional-dependencies"]["local"]
    )


def test_build_context_holds_what_the_build_copies() -> None:
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def included(path: str) -> bool:
        keep = True
        for pattern in ignore:
            negate = pattern.startswith("!")
            pattern = pattern.removeprefix("!").rstrip("/")
            if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
                keep = negate
        return keep

    for needed in ("pyproject.toml", "README.md", "flywheel/starter.py", "flywheel/py.typed"):
        assert included(needed), needed
    for left_out in (".venv/bin/python", "tests/conftest.py", ".git/HEAD", "charts/x"):
        assert not included(left_out), left_out
    _, stages = parse(DOCKERFILE.read_text(encoding="utf-8"))
    copies = stages[0].all("COPY")
    assert copies == ["pyproject.toml README.md ./", "flywheel ./flywheel"]
