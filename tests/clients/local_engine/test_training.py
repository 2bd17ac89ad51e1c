"""LoRA training: loss masking, learning, adapters, checkpoints, crash and resume, caps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from flywheel.clients.local_engine import (
    LoadedModel,
    LoraOptions,
    ModelSpec,
    TrainProgress,
    encode_example,
    generate_replies,
    load_model,
    train_lora,
)
from flywheel.clients.local_engine.training import IGNORE_INDEX, default_target_modules
from flywheel.errors import ConfigError, InvalidDataError
from tests.clients.local_engine.conftest import WEATHER_TOOL

CALL_LINE: dict[str, Any] = {
    "messages": [
        {"role": "user", "content": "weather in paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "paris"}},
                }
            ],
        },
    ],
    "tools": [WEATHER_TOOL],
}
TEXT_LINES: list[dict[str, Any]] = [
    {
        "messages": [
            {"role": "user", "content": f"question {i}"},
            {"role": "assistant", "content": f"answer {i} is sunny"},
        ]
    }
    for i in range(6)
]
FAST = LoraOptions(rank=4, alpha=8, dropout=0.1, batch_size=2, learning_rate=5e-3, epochs=2)


class Recorder:
    """An on_progress callback that records reports and can crash after a given step."""

    def __init__(self, crash_after: int | None = None) -> None:
        self.reports: list[TrainProgress] = []
        self.crash_after = crash_after

    def __call__(self, progress: TrainProgress) -> None:
        self.reports.append(progress)
        if progress.step == self.crash_after:
            raise RuntimeError(f"simulated crash after step {progress.step}")

    @property
    def steps(self) -> list[int]:
        return [r.step for r in self.reports]


def _labels_text(loaded: LoadedModel, line: dict[str, Any]) -> tuple[str, str]:
    example = encode_example(loaded, line, max_length=512)
    assert len(example.labels) == len(example.input_ids)
    first = next(i for i, label in enumerate(example.labels) if label != IGNORE_INDEX)
    assert all(label == IGNORE_INDEX for label in example.labels[:first])
    assert example.labels[first:] == example.input_ids[first:]
    decode = loaded.tokenizer.decode
    return decode(example.input_ids[:first]), decode(example.labels[first:])


def test_loss_covers_only_the_assistant_answer(tiny: LoadedModel) -> None:
    prompt, target = _labels_text(tiny, TEXT_LINES[0])
    assert prompt.endswith("<|im_start|>assistant\n")
    assert "question 0" in prompt
    assert target == "answer 0 is sunny<|im_end|>\n"


def test_tool_call_targets_use_the_template_format(tiny: LoadedModel, plain: LoadedModel) -> None:
    expected = '<tool_call>{"name": "get_weather", "arguments": {"city": "paris"}}</tool_call>'
    for loaded in (tiny, plain):
        prompt, target = _labels_text(loaded, CALL_LINE)
        assert target == f"{expected}<|im_end|>\n"
        assert prompt == loaded.renderer.render_prompt(CALL_LINE["messages"][:1], [WEATHER_TOOL])


def test_long_examples_keep_the_answer(tiny: LoadedModel) -> None:
    line = {
        "messages": [{"role": "user", "content": "word " * 300}, *TEXT_LINES[0]["messages"][1:]]
    }
    example = encode_example(tiny, line, max_length=32)
    assert len(example.input_ids) == 32
    assert tiny.tokenizer.decode([t for t in example.labels if t != IGNORE_INDEX]).startswith(
        "answer 0"
    )


def test_a_line_without_an_answer_is_invalid(tiny: LoadedModel, tmp_path: Path) -> None:
    bad = {"messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(InvalidDataError, match="train line 1"):
        train_lora(tiny, [TEXT_LINES[0], bad], options=FAST, checkpoint_dir=tmp_path)


def test_default_targets() -> None:
    assert default_target_modules("llama") == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert default_target_modules("something-new") == "all-linear"


def _logits(loaded: LoadedModel, text: str) -> torch.Tensor:
    ids = loaded.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        return loaded.model(input_ids=ids).logits


def test_training_learns_and_the_adapter_changes_outputs(
    tiny: LoadedModel, tiny_model_dir: Path, tmp_path: Path
) -> None:
    before = _logits(tiny, "weather in paris?")
    recorder = Recorder()
    options = replace(FAST, epochs=40, batch_size=1, learning_rate=3e-2, dropout=0.0)
    result = train_lora(
        tiny,
        [CALL_LINE],
        [CALL_LINE],
        options=options,
        checkpoint_dir=tmp_path,
        on_progress=recorder,
    )
    assert result.steps == result.total_steps == 40
    assert recorder.reports[-1].loss < recorder.reports[0].loss / 4
    assert result.val_loss is not None and result.val_loss < recorder.reports[0].loss / 4
    assert result.adapter_dir == tmp_path / "adapter"
    assert (result.adapter_dir / "adapter_config.json").is_file()
    # The cached base model is untouched by training.
    assert torch.equal(_logits(tiny, "weather in paris?"), before)

    adapted = load_model(ModelSpec(str(tiny_model_dir), device="cpu"), result.adapter_dir)
    assert not torch.allclose(_logits(adapted, "weather in paris?"), before)
    request = {"messages": CALL_LINE["messages"][:1], "tools": [WEATHER_TOOL]}
    (reply,) = generate_replies(adapted, [request], max_new_tokens=40)
    assert (
        reply.text
        == '<tool_call>{"name": "get_weather", "arguments": {"city": "paris"}}</tool_call>'
    )
    assert reply.finish_reason == "stop"


def test_checkpoints_every_n_steps_keep_only_the_latest(tiny: LoadedModel, tmp_path: Path) -> None:
    recorder = Recorder()
    options = replace(FAST, checkpoint_every=2)  # 6 lines / 2 per batch × 2 epochs = 6 steps
    result = train_lora(
        tiny,
        TEXT_LINES,
        TEXT_LINES[:2],
        options=options,
        checkpoint_dir=tmp_path,
        on_progress=recorder,
    )
    assert recorder.steps == [1, 2, 3, 4, 5, 6]
    assert [r.val_loss is not None for r in recorder.reports] == [False, True] * 3
    assert [r.epoch for r in recorder.reports] == [0, 0, 0, 1, 1, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "step-00000006"]
    assert result.val_loss == recorder.reports[-1].val_loss


def _adapter_weights(adapter_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(adapter_dir / "adapter_model.safetensors")


def test_resume_after_a_crash_continues_and_matches_an_uninterrupted_run(
    tiny: LoadedModel, tmp_path: Path
) -> None:
    options = replace(FAST, checkpoint_every=2)
    reference = train_lora(tiny, TEXT_LINES, options=options, checkpoint_dir=tmp_path / "ref")

    crashing = Recorder(crash_after=3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_lora(
            tiny, TEXT_LINES, options=options, checkpoint_dir=tmp_path / "run", on_progress=crashing
        )
    assert crashing.steps == [1, 2, 3]
    assert (tmp_path / "run" / "step-00000002").is_dir()

    resumed = Recorder()
    result = train_lora(
        tiny,
        TEXT_LINES,
        options=options,
        checkpoint_dir=tmp_path / "run",
        resume=True,
        on_progress=resumed,
    )
    assert resumed.steps == [3, 4, 5, 6]
    assert result.resumed_from_step == 2
    assert result.steps == result.total_steps == reference.steps == 6
    assert result.train_loss == pytest.approx(reference.train_loss, rel=1e-5)
    ours, theirs = _adapter_weights(result.adapter_dir), _adapter_weights(reference.adapter_dir)
    assert ours.keys() == theirs.keys()
    for name, tensor in ours.items():
        torch.testing.assert_close(tensor, theirs[name], rtol=1e-5, atol=1e-6)


def test_resume_of_a_finished_run_does_no_steps(tiny: LoadedModel, tmp_path: Path) -> None:
    first = train_lora(tiny, TEXT_LINES, TEXT_LINES[:1], options=FAST, checkpoint_dir=tmp_path)
    again = Recorder()
    result = train_lora(
        tiny,
        TEXT_LINES,
        TEXT_LINES[:1],
        options=FAST,
        checkpoint_dir=tmp_path,
        resume=True,
        on_progress=again,
    )
    assert again.steps == []
    assert (result.steps, result.val_loss) == (first.steps, first.val_loss)


def test_resume_with_other_data_is_refused(tiny: LoadedModel, tmp_path: Path) -> None:
    train_lora(tiny, TEXT_LINES, options=FAST, checkpoint_dir=tmp_path)
    with pytest.raises(ConfigError, match="other training data or options"):
        train_lora(tiny, TEXT_LINES[:4], options=FAST, checkpoint_dir=tmp_path, resume=True)


def test_a_fresh_start_discards_old_checkpoints(tiny: LoadedModel, tmp_path: Path) -> None:
    train_lora(tiny, TEXT_LINES, options=replace(FAST, max_steps=2), checkpoint_dir=tmp_path)
    recorder = Recorder()
    train_lora(tiny, TEXT_LINES, options=FAST, checkpoint_dir=tmp_path, on_progress=recorder)
    assert recorder.steps[0] == 1


def test_max_steps_caps_the_total(tiny: LoadedModel, tmp_path: Path) -> None:
    recorder = Recorder()
    options = replace(FAST, max_steps=4)
    result = train_lora(
        tiny, TEXT_LINES, options=options, checkpoint_dir=tmp_path, on_progress=recorder
    )
    assert (result.steps, result.total_steps) == (4, 4)
    assert recorder.steps == [1, 2, 3, 4]
    assert all(r.total_steps == 4 for r in recorder.reports)


def test_max_seconds_stops_early_and_resume_finishes(tiny: LoadedModel, tmp_path: Path) -> None:
    capped = train_lora(
        tiny, TEXT_LINES, options=replace(FAST, max_seconds=0.0), checkpoint_dir=tmp_path
    )
    assert capped.stopped_early
    assert (capped.steps, capped.total_steps) == (1, 6)
    assert (capped.adapter_dir / "adapter_config.json").is_file()
    recorder = Recorder()
    done = train_lora(
        tiny, TEXT_LINES, options=FAST, checkpoint_dir=tmp_path, resume=True, on_progress=recorder
    )
    assert recorder.steps == [2, 3, 4, 5, 6]
    assert not done.stopped_early and done.steps == 6


def test_invalid_options_are_config_errors(tiny: LoadedModel, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        train_lora(tiny, TEXT_LINES, options=replace(FAST, batch_size=0), checkpoint_dir=tmp_path)
