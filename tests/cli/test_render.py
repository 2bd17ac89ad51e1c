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


# --- results that decide ---------------------------------------------------------------------


def _text(renderable: object) -> str:
    from rich.console import Console

    console = Console(width=220, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_results_view_shows_the_recommendation_first() -> None:
    from flywheel.cli.render import results_view
    from tests.report.builders import finished_run

    lines = _text(results_view(finished_run())).splitlines()
    assert lines[0].startswith("Run flywheel-support-20261120T031500Z")
    assert lines[1].startswith("Recommendation: small (base, model model-base)")
    text = "\n".join(lines)
    assert "1.000 [0.91, 1.00]" in text  # scores carry their intervals
    assert "below name+args ≥ 0.8" in text  # and the verdicts
    assert "Cost (USD per 1,000 requests) and latency" in text
    assert "Production (big-70b): $1.35 per 1,000 requests" in text
    assert "at the measured 12 requests/s at concurrency 8" in text


def test_results_view_of_a_running_run_says_so_far() -> None:
    from flywheel.cli.render import results_view
    from flywheel.schemas import RunStatus
    from tests.report.builders import finished_run

    running = finished_run(assess=False).model_copy(update={"status": RunStatus.RUNNING})
    text = _text(results_view(running))
    assert "(so far; the run is still running) Recommendation: small (base" in text


def test_examples_view() -> None:
    from flywheel.cli.render import examples_view

    text = _text(
        examples_view(
            {
                "small/base": [
                    {
                        "index": 4,
                        "divergence": 0.75,
                        "reason": "wrong arguments to lookup: id",
                        "prompt": "where is order 7?",
                        "expected": {"tool_calls": [{"name": "lookup", "arguments": {"id": 7}}]},
                        "candidate": {
                            "content": "Let me check.",
                            "tool_calls": [{"name": "lookup", "arguments": {"id": 8}}],
                        },
                    }
                ]
            }
        )
    )
    assert "Divergent examples: small/base (1)" in text
    assert "#4 [wrong arguments to lookup: id] divergence 0.75" in text
    assert 'production: lookup({"id":7})' in text
    assert 'candidate:  Let me check. lookup({"id":8})' in text
    assert "no divergent examples" in _text(examples_view({}))


def test_customization_line_leaves_out_unfinished_epochs() -> None:
    capped = CustomizationResult(status=StepStatus.COMPLETED, steps_completed=16)
    assert customization_line(capped) == "LoRA 16 steps"


def test_cost_table_shows_ttft_only_when_streamed_and_each_note_once() -> None:
    from rich.console import Console

    from flywheel.cli.render import cost_notes, cost_table
    from tests.report.builders import finished_run

    assessment = finished_run().assessment
    assert assessment is not None
    headers = [column.header for column in cost_table(assessment).columns]
    assert "TTFT p50" not in headers and "cost/1k" in headers
    same_note = [
        e.model_copy(update={"cost": e.cost.model_copy(update={"note": "no price for x"})})
        for e in assessment.evals
    ]
    notes = cost_notes(assessment.model_copy(update={"evals": same_note}))
    assert [note.plain for note in notes] == ["Cost: no price for x"]
    streamed = [e.model_copy(update={"ttft_p50_s": 0.25}) for e in assessment.evals]
    table = cost_table(assessment.model_copy(update={"evals": streamed}))
    assert "TTFT p50" in [column.header for column in table.columns]
    Console(width=200, file=None, record=True).print(table)  # renders
