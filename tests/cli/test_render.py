"""Pieces of the CLI's result rendering that have their own rules."""

from __future__ import annotations

from flywheel.cli.render import customization_line
from flywheel.schemas import CustomizationResult, StepStatus


def test_customization_line_says_what_training_did() -> None:
    fresh = CustomizationResult(
        status=StepStatus.COMPLETED, steps_completed=40, epochs_completed=2, train_loss=0.4123
    )
    assert customization_line(fresh) == "LoRA 40 steps, 2 epoch(s), train loss 0.412"
    resumed = fresh.model_copy(update={"val_loss": 0.5, "resumed_from_step": 20, "job_id": "j-1"})
    assert customization_line(resumed) == (
        "LoRA 40 steps, 2 epoch(s), train loss 0.412, val loss 0.500, "
        "resumed from the step-20 checkpoint, job j-1"
    )
