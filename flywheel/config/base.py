"""The base of every configuration section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: unknown keys are errors, so typos are caught and named."""

    model_config = ConfigDict(extra="forbid", frozen=True)
