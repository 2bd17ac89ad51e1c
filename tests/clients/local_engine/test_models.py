"""Loading local models: directories, bad paths, devices, the cache and adapters."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from flywheel.clients.local_engine import LoadedModel, ModelCache, ModelSpec, load_model
from flywheel.clients.local_engine.models import require_torch_stack, resolve_source
from flywheel.errors import ConfigError


def test_loads_a_saved_directory_on_cpu_in_fp32(tiny: LoadedModel) -> None:
    assert tiny.device.type == "cpu"
    assert tiny.dtype == torch.float32
    assert next(tiny.model.parameters()).dtype == torch.float32
    assert tiny.tokenizer.pad_token is not None
    assert tiny.tokenizer.padding_side == "left"
    assert not tiny.model.training


def test_detects_whether_the_template_renders_tools(tiny: LoadedModel, plain: LoadedModel) -> None:
    assert tiny.renderer.tools_in_template and tiny.renderer.tool_calls_in_template
    assert not plain.renderer.tools_in_template
    assert not plain.renderer.tool_calls_in_template


def test_missing_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_model(ModelSpec(str(tmp_path / "nope" / "model")))


def test_directory_without_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no config\.json"):
        load_model(ModelSpec(str(tmp_path)))


def test_missing_gguf_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"GGUF file 'model\.gguf' not found"):
        resolve_source(ModelSpec(str(tmp_path), gguf_file="model.gguf"))


def test_gguf_path_splits_into_directory_and_file(tmp_path: Path) -> None:
    (tmp_path / "m.gguf").write_bytes(b"")
    assert resolve_source(ModelSpec(str(tmp_path / "m.gguf"))) == (str(tmp_path), "m.gguf")


def test_uncached_hub_id_is_a_config_error_without_download(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="offline"):
        load_model(ModelSpec("flywheel-tests/no-such-model", device="cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu_is_a_config_error(tiny_model_dir: Path) -> None:
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        load_model(ModelSpec(str(tiny_model_dir), device="cuda"))


def test_missing_transformers_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ConfigError, match=r"pip install 'data-flywheel\[local\]'"):
        require_torch_stack()


def test_cache_loads_once_and_releases(tiny_model_dir: Path) -> None:
    cache = ModelCache()
    spec = ModelSpec(str(tiny_model_dir), device="cpu")
    first = cache.get(spec)
    assert cache.get(spec) is first
    assert cache.loaded() == [(spec, None)]
    assert cache.release(spec) == 1
    assert cache.loaded() == []
    assert cache.get(spec) is not first
    cache.clear()
    assert cache.loaded() == []


def test_adapter_dir_without_config_is_a_config_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a LoRA adapter"):
        load_model(ModelSpec(str(tiny_model_dir), device="cpu"), adapter_dir=tmp_path)
