"""What every CLI command shares: settings from the global options, errors, exit codes."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from flywheel.config import (
    Settings,
    deep_merge,
    format_validation_error,
    load_settings,
    parse_set_option,
    read_yaml_file,
)
from flywheel.errors import ConfigError, FlywheelError

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
"""The command ran but what it did failed: a run failed, a server is unreachable, no such run."""
EXIT_USAGE = 2
"""The command was given something invalid: bad configuration, bad option values."""

console = Console()
err_console = Console(stderr=True)


@dataclass
class CliState:
    """The global options, resolved lazily into settings."""

    config_file: Path | None = None
    data_dir: Path | None = None
    verbose: bool = False
    _settings: Settings | None = None

    def settings(self, **extra: Any) -> Settings:
        if self._settings is None or extra:
            overrides: dict[str, Any] = dict(extra)
            if self.data_dir is not None:
                overrides.setdefault("data_dir", self.data_dir)
            try:
                settings = load_settings(self.config_file, **overrides)
            except ConfigError as exc:
                fail(str(exc), EXIT_USAGE)
            if extra:
                return settings
            self._settings = settings
        return self._settings


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState()
        ctx.find_root().obj = obj
    return obj


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; user errors become one line on stderr and an exit code."""
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except FlywheelError as exc:
        fail(str(exc), EXIT_FAILED)
    except ValidationError as exc:
        fail(format_validation_error(exc, prefix="invalid input"), EXIT_USAGE)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None


def run_overrides(
    set_options: Sequence[str] | None, config_files: Sequence[Path] | None
) -> dict[str, Any]:
    """Per-run overrides from ``--config-file`` files (in order) then ``--set`` options."""
    merged: dict[str, Any] = {}
    try:
        for path in config_files or ():
            merged = deep_merge(merged, read_yaml_file(path))
        for option in set_options or ():
            merged = deep_merge(merged, parse_set_option(option))
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    return merged


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        logging.getLogger("temporalio").setLevel(logging.ERROR)
