"""Unit tests of flywheel/config/: loading, precedence, validation messages, per-run overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from flywheel.config import (
    CONFIG_FILE_ENV,
    RUN_OVERRIDABLE_KEYS,
    Platform,
    Settings,
    deep_merge,
    find_config_file,
    load_settings,
    parse_set_option,
    read_secret,
)
from flywheel.errors import ConfigError

BLUEPRINT_CONFIG = Path(__file__).parent / "fixtures" / "blueprint-config.yaml"
NMP = {
    "nemo_base_url": "http://nemo.test",
    "nim_base_url": "http://nim.test",
    "datastore_base_url": "http://data-store.test",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No FLYWHEEL_* variable from the outside, and a working directory without config files."""
    for name in list(os.environ):
        if name.startswith("FLYWHEEL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def settings_from(tmp_path: Path, data: dict[str, Any], **overrides: Any) -> Settings:
    """Settings loaded from a YAML file holding ``data`` (data dir in tmp_path)."""
    path = write_yaml(tmp_path / "config.yaml", {"data_dir": str(tmp_path / "data"), **data})
    return load_settings(path, **overrides)


def config_error(func: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as info:
        func(*args, **kwargs)
    return str(info.value)


# --- the blueprint's config.yaml ---------------------------------------------------------------


def test_blueprint_config_loads_with_one_nemo_candidate() -> None:
    settings = load_settings(BLUEPRINT_CONFIG)
    run = settings.run_config()

    (candidate,) = run.candidates  # the duplicate nims entry is dropped: the first one wins
    assert candidate.name == "meta-llama-3.2-1b-instruct"
    assert candidate.model == "meta/llama-3.2-1b-instruct"
    assert candidate.platform == Platform.NEMO
    assert candidate.context_length == 8192  # not the duplicate's 4096
    assert candidate.customization_enabled is True
    assert candidate.customizer is not None
    assert candidate.customizer.target == "meta/llama-3.2-1b-instruct@2.0"
    assert candidate.customizer.gpus == 1
    assert candidate.customizer.max_seq_length == 8192
    assert candidate.nim is not None
    assert (candidate.nim.tag, candidate.nim.gpus, candidate.nim.pvc_size) == ("1.8.3", 1, "25Gi")
    assert candidate.nim.registry_base == "nvcr.io/nim"

    # The file's other sections are carried over, not the code defaults.
    assert run.nmp_config is not None and run.nmp_config.nemo_base_url == "http://nemo.test"
    assert run.data_split_config.eval_size == 100
    assert run.data_split_config.limit == 1000
    assert run.icl_config.example_selection == "semantic_similarity"
    assert run.icl_config.max_context_length == 32768
    assert run.llm_judge_config is not None
    assert run.llm_judge_config.deployment_type == "local"
    assert run.llm_judge_config.context_length == 32768
    assert settings.logging_config.level == "INFO"  # "info" in the file


def test_embedding_nims_are_not_candidates(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        {
            "nmp_config": NMP,
            "nims": [
                {"model_name": "nvidia/embed-1b", "model_type": "embedding", "context_length": 512},
                {"model_name": "meta/llama-3.2-3b-instruct", "context_length": 4096},
                {"model_name": "meta/llama-3.1-8b-instruct", "context_length": 8192},
            ],
        },
    )
    names = [c.name for c in settings.run_config().candidates]
    assert names == ["meta-llama-3.2-3b-instruct", "meta-llama-3.1-8b-instruct"]


def test_inline_api_keys_in_yaml_are_accepted_and_dropped(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        {
            "llm_judge_config": {
                "deployment_type": "remote",
                "model_name": "judge",
                "url": "https://judge.test/v1/chat/completions",
                "api_key": "sk-in-the-file",
            },
            "icl_config": {
                "example_selection": "semantic_similarity",
                "similarity_config": {
                    "embedding_nim_config": {
                        "model_name": "embed",
                        "url": "https://embed.test/v1/embeddings",
                        "api_key": "sk-embed-in-the-file",
                    }
                },
            },
        },
    )
    run = settings.run_config()
    assert run.llm_judge_config is not None
    assert run.llm_judge_config.model_name == "judge"
    dumped = repr(run.model_dump()) + repr(settings.model_dump())
    assert "api_key'" not in dumped
    assert "sk-in-the-file" not in dumped
    assert "sk-embed-in-the-file" not in dumped


def test_code_defaults_without_a_file(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    run = settings.run_config()
    assert run.data_split_config.eval_size == 20
    assert run.data_split_config.limit == 10000
    assert run.data_split_config.val_ratio == pytest.approx(0.1)
    assert run.candidates == []
    assert run.nmp_config is None
    assert settings.temporal.address == "127.0.0.1:7233"


# --- precedence: defaults < file < environment < per-run overrides -----------------------------

SPLIT = {"eval_size": 100, "limit": 1000, "val_ratio": 0.2, "random_seed": 11}


def test_file_overrides_defaults(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, {"data_split_config": SPLIT})
    split = settings.run_config().data_split_config
    assert (split.eval_size, split.limit, split.random_seed) == (100, 1000, 11)
    assert split.val_ratio == pytest.approx(0.2)
    assert split.min_total_records == 50  # the code default for a key the file leaves out


def test_environment_overrides_the_file_key_by_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLYWHEEL_DATA_SPLIT_CONFIG__EVAL_SIZE", "42")
    monkeypatch.setenv("FLYWHEEL_TEMPORAL__ADDRESS", "temporal.test:7233")
    settings = settings_from(tmp_path, {"data_split_config": SPLIT})
    split = settings.run_config().data_split_config
    assert split.eval_size == 42
    assert (split.limit, split.val_ratio, split.random_seed) == (1000, 0.2, 11)  # from the file
    assert settings.temporal.address == "temporal.test:7233"


def test_settings_given_in_code_override_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLYWHEEL_DATA_SPLIT_CONFIG__EVAL_SIZE", "42")
    monkeypatch.setenv("FLYWHEEL_DATA_SPLIT_CONFIG__MIN_TOTAL_RECORDS", "60")
    settings = settings_from(
        tmp_path, {"data_split_config": SPLIT}, data_split_config={"eval_size": 7, "limit": 500}
    )
    split = settings.data_split_config
    # Code (CLI options) wins over the environment (eval_size), which wins over the file
    # (min_total_records); the file's other values stay (val_ratio).
    assert (split.eval_size, split.limit, split.min_total_records, split.val_ratio) == (
        7,
        500,
        60,
        0.2,
    )


def test_per_run_override_keeps_the_files_other_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from(tmp_path, {"data_split_config": SPLIT})
    split = settings.run_config({"data_split_config": {"val_ratio": 0.3}}).data_split_config
    assert split.val_ratio == pytest.approx(0.3)
    assert (split.eval_size, split.limit, split.random_seed) == (100, 1000, 11)  # not 20 / 10000

    monkeypatch.setenv("FLYWHEEL_DATA_SPLIT_CONFIG__EVAL_SIZE", "42")
    settings = settings_from(tmp_path, {"data_split_config": SPLIT})
    assert settings.run_config().data_split_config.eval_size == 42
    run = settings.run_config({"data_split_config": {"eval_size": 5}})
    assert run.data_split_config.eval_size == 5  # the per-run override wins over the environment
    assert run.data_split_config.limit == 1000
    # run_config does not change the settings it was derived from.
    assert settings.data_split_config.eval_size == 42


def test_per_run_candidates_replace_the_configured_list(tmp_path: Path) -> None:
    configured = [
        {"name": "a", "model": "model-a", "base_url": "http://a.test/v1"},
        {"name": "b", "model": "model-b", "base_url": "http://b.test/v1"},
    ]
    settings = settings_from(tmp_path, {"candidates": configured})
    assert [c.name for c in settings.run_config().candidates] == ["a", "b"]
    override = {"candidates": [{"name": "c", "model": "model-c", "base_url": "http://c.test/v1"}]}
    assert [c.name for c in settings.run_config(override).candidates] == ["c"]


def test_per_run_candidates_replace_the_nims_of_the_file() -> None:
    settings = load_settings(BLUEPRINT_CONFIG)
    override = {"candidates": [{"name": "c", "model": "model-c", "base_url": "http://c.test/v1"}]}
    assert [c.name for c in settings.run_config(override).candidates] == ["c"]


# --- invalid configuration: ConfigError naming the key and the rule ----------------------------


@pytest.mark.parametrize(
    ("data", "key", "rule"),
    [
        ({"data_split_config": {"eval_size": -5}}, "data_split_config.eval_size", "greater than"),
        ({"data_split_config": {"val_ratio": 1.5}}, "data_split_config.val_ratio", "less than 1"),
        ({"data_split_config": {"eval_sise": 5}}, "data_split_config.eval_sise", "unknown key"),
        ({"temporal": {"adress": "x:1"}}, "temporal.adress", "unknown key"),
        ({"evaluaton": {}}, "evaluaton", "unknown key"),
        (
            {"data_split_config": {"limit": 10, "min_total_records": 50}},
            "data_split_config",
            "limit (10) cannot be less than min_total_records (50)",
        ),
        (
            {"candidates": [{"name": "small", "model": "m"}]},
            "candidates[0]",
            "needs `base_url`",
        ),
        (
            {"candidates": [{"name": "bad name!", "model": "m", "base_url": "http://h/v1"}]},
            "candidates[0].name",
            "must start with a letter or digit",
        ),
        (
            {"nims": [{"model_name": "meta/x", "context_length": 0}]},
            "nims[0].context_length",
            "greater than or equal to 1",
        ),
        (
            {
                "nims": [
                    {"model_name": "meta/x", "context_length": 1, "customization_enabled": True}
                ]
            },
            "nims[0]",
            "customizer_configs is required",
        ),
        ({"logging_config": {"level": "LOUD"}}, "logging_config.level", "'LOUD'"),
    ],
)
def test_invalid_file_names_key_and_rule(
    tmp_path: Path, data: dict[str, Any], key: str, rule: str
) -> None:
    message = config_error(settings_from, tmp_path, data)
    assert f"{key}:" in message
    assert rule in message
    assert str(tmp_path / "config.yaml") in message  # and the file
    assert "Traceback" not in message and "errors.pydantic.dev" not in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"data_split_config": {"eval_size": -1}}, "data_split_config.eval_size:"),
        ({"data_split_config": {"val_ratio": 1.5}}, "data_split_config.val_ratio:"),
        ({"icl_config": {"max_exampels": 2}}, "icl_config.max_exampels: unknown key"),
        (
            {"candidates": [{"name": "a", "model": "m"}]},
            "candidates[0]: an `endpoints` candidate needs `base_url`",
        ),
        (
            {
                "candidates": [
                    {"name": "dup", "model": "m1", "base_url": "http://h/v1"},
                    {"name": "dup", "model": "m2", "base_url": "http://h/v1"},
                ]
            },
            "candidate names must be unique; repeated: dup",
        ),
        (
            {"candidates": [{"name": "n", "model": "m", "platform": "nemo"}]},
            "candidates on the `nemo` platform need `nmp_config`",
        ),
        (
            {"candidates": [{"name": "-n", "model": "m", "base_url": "http://h/v1"}]},
            "candidates[0].name: must start with a letter or digit",
        ),
        (
            {"candidates": [{"name": "n", "model": "m", "platform": "cloud", "base_url": "u"}]},
            "candidates[0].platform:",
        ),
        ({"max_parallel_candidates": 0}, "max_parallel_candidates:"),
    ],
)
def test_invalid_run_override_names_key_and_rule(
    tmp_path: Path, override: dict[str, Any], expected: str
) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    message = config_error(settings.run_config, override)
    assert message.startswith("invalid run configuration")
    assert expected in message


def test_duplicate_candidate_names_in_file_are_rejected(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        {
            "nmp_config": NMP,
            "nims": [{"model_name": "meta/llama-3.2-1b-instruct", "context_length": 8192}],
            "candidates": [
                {"name": "meta-llama-3.2-1b-instruct", "model": "x", "base_url": "http://h/v1"}
            ],
        },
    )
    message = config_error(settings.run_config)
    assert "candidate names must be unique; repeated: meta-llama-3.2-1b-instruct" in message


def test_several_errors_are_all_listed(tmp_path: Path) -> None:
    message = config_error(
        settings_from,
        tmp_path,
        {
            "data_split_config": {"eval_size": -1, "val_ratio": 1.5, "typo": 1},
            "timeouts": {"poll_interval_s": 0},
        },
    )
    lines = message.splitlines()
    assert lines[0].startswith("invalid configuration in ")
    body = "\n".join(lines[1:])
    for key in (
        "data_split_config.eval_size:",
        "data_split_config.val_ratio:",
        "data_split_config.typo: unknown key",
        "timeouts.poll_interval_s:",
    ):
        assert key in body
    assert len(lines) == 5


def test_invalid_environment_value_names_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLYWHEEL_DATA_SPLIT_CONFIG__EVAL_SIZE", "many")
    message = config_error(load_settings, data_dir=tmp_path)
    assert "data_split_config.eval_size:" in message and "'many'" in message
    monkeypatch.delenv("FLYWHEEL_DATA_SPLIT_CONFIG__EVAL_SIZE")
    monkeypatch.setenv("FLYWHEEL_DATA_SPLIT_CONFIG__EVAL_SIZ", "3")  # a typo is caught too
    message = config_error(load_settings, data_dir=tmp_path)
    assert "data_split_config.eval_siz: unknown key" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "must hold a mapping of keys, not list"),
        ("just a string\n", "must hold a mapping of keys, not str"),
        ("data_split_config: {eval_size: [1,\n", "is not valid YAML"),
        ("a: b: c\n", "is not valid YAML"),
    ],
)
def test_file_that_is_not_a_yaml_mapping(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    message = config_error(load_settings, path)
    assert expected in message
    assert str(path) in message


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n", encoding="utf-8")
    assert load_settings(path, data_dir=tmp_path).data_split_config.eval_size == 20


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert config_error(load_settings, missing) == f"config file not found: {missing}"


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    message = config_error(load_settings, tmp_path)  # a directory
    assert f"cannot read config file {tmp_path}" in message


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("# café\ndata_split_config: {eval_size: 5}\n".encode("latin-1"))
    message = config_error(load_settings, path)
    assert str(path) in message


# --- where the file comes from -------------------------------------------------------------------


def test_config_file_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_config_file() is None
    (tmp_path / "config").mkdir()
    write_yaml(tmp_path / "config" / "config.yaml", {"data_split_config": {"eval_size": 31}})
    assert find_config_file() == Path("config/config.yaml")
    write_yaml(tmp_path / "flywheel.yaml", {"data_split_config": {"eval_size": 32}})
    assert find_config_file() == Path("flywheel.yaml")
    assert load_settings(data_dir=tmp_path).data_split_config.eval_size == 32
    other = write_yaml(tmp_path / "other.yaml", {"data_split_config": {"eval_size": 33}})
    monkeypatch.setenv(CONFIG_FILE_ENV, str(other))
    assert load_settings(data_dir=tmp_path).data_split_config.eval_size == 33
    explicit = write_yaml(tmp_path / "explicit.yaml", {"data_split_config": {"eval_size": 34}})
    assert load_settings(explicit, data_dir=tmp_path).data_split_config.eval_size == 34


def test_missing_file_named_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_FILE_ENV, str(tmp_path / "gone.yaml"))
    assert "config file not found" in config_error(load_settings)


# --- per-run overrides ---------------------------------------------------------------------------


def test_unknown_top_level_override_is_rejected_naming_allowed_keys(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    message = config_error(settings.run_config, {"temporal": {"address": "elsewhere:7233"}})
    assert "temporal cannot be set per run" in message
    for key in RUN_OVERRIDABLE_KEYS:
        assert key in message
    message = config_error(settings.run_config, {"data_dir": "/x", "log_store_url": "sqlite://"})
    assert "data_dir, log_store_url cannot be set per run" in message


def test_every_allowed_override_key_is_accepted(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    override = {
        "data_split_config": {"eval_size": 3},
        "curation_config": {"near_duplicate_threshold": 0.9, "pii": {"enabled": True}},
        "icl_config": {"max_examples": 1},
        "training_config": {"epochs": 1},
        "lora_config": {"adapter_dim": 8},
        "llm_judge_config": {"deployment_type": "remote", "model_name": "j", "url": "http://j"},
        "mlflow_config": {"enabled": False},
        "evaluation": {"concurrency": 2},
        "acceptance": {"targets": {"function_name_accuracy": 0.9}},
        "pricing": {"models": {"m": {"gpu_hour": 1.0}}},
        "notifications": {"webhook_url_env": "HOOK"},
        "timeouts": {"poll_interval_s": 0.1},
        "max_parallel_candidates": 3,
        "candidates": [],
        "nims": [],
    }
    assert set(override) == RUN_OVERRIDABLE_KEYS
    run = settings.run_config(override)
    assert run.data_split_config.eval_size == 3
    assert run.lora_config.adapter_dim == 8
    assert run.curation_config.near_duplicate_threshold == 0.9 and run.curation_config.pii.enabled
    assert run.evaluation.concurrency == 2
    assert run.max_parallel_candidates == 3


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("data_split_config.eval_size=50", {"data_split_config": {"eval_size": 50}}),
        ("a.b.c=1.5", {"a": {"b": {"c": 1.5}}}),
        ("a=null", {"a": None}),
        ("a=~", {"a": None}),
        ("a=[1, x, 2.5]", {"a": [1, "x", 2.5]}),
        ("a={x: 1, y: [true]}", {"a": {"x": 1, "y": [True]}}),
        ("a=hello world", {"a": "hello world"}),
        ("a='007'", {"a": "007"}),
        ("a=true", {"a": True}),
        ("a=", {"a": ""}),
        ("a=b=c", {"a": "b=c"}),
        (" a.b = 7 ", {"a": {"b": 7}}),
        ("model=meta/llama-3.2-1b-instruct", {"model": "meta/llama-3.2-1b-instruct"}),
    ],
)
def test_parse_set_option(option: str, expected: dict[str, Any]) -> None:
    assert parse_set_option(option) == expected


@pytest.mark.parametrize("option", ["eval_size", "=5", " =5", "a..b=1", "a.=1", ".a=1", ""])
def test_parse_set_option_rejects_malformed(option: str) -> None:
    message = config_error(parse_set_option, option)
    assert f"invalid --set {option!r}: expected KEY=VALUE" in message


def test_parse_set_option_rejects_bad_yaml() -> None:
    message = config_error(parse_set_option, "a=[1, 2")
    assert "invalid --set 'a=[1, 2': value is not valid YAML" in message


def test_set_options_merge_into_a_valid_override(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, {"data_split_config": SPLIT})
    override: dict[str, Any] = {}
    for option in ("data_split_config.eval_size=7", "data_split_config.random_seed=null"):
        override = deep_merge(override, parse_set_option(option))
    split = settings.run_config(override).data_split_config
    assert (split.eval_size, split.random_seed, split.limit) == (7, None, 1000)


def test_deep_merge_semantics() -> None:
    base = {"a": {"x": 1, "y": {"p": 1, "q": 2}}, "lst": [1, 2, 3], "keep": "k", "m": {"z": 1}}
    override = {"a": {"y": {"q": 20, "r": 30}}, "lst": [9], "new": 1, "m": None}
    merged = deep_merge(base, override)
    assert merged == {
        "a": {"x": 1, "y": {"p": 1, "q": 20, "r": 30}},  # mappings merge key by key
        "lst": [9],  # lists replace
        "keep": "k",
        "m": None,  # anything that is not a mapping replaces
        "new": 1,
    }
    # A mapping replaces a scalar and vice versa; the inputs are not changed.
    assert deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert deep_merge({"a": {"b": 2}}, {"a": 1}) == {"a": 1}
    assert base["a"] == {"x": 1, "y": {"p": 1, "q": 2}}
    assert base["lst"] == [1, 2, 3]
    assert deep_merge({}, {}) == {}


# --- secrets and store defaults ------------------------------------------------------------------


def test_read_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_TEST_SECRET_A", "sk-a")
    monkeypatch.setenv("FLYWHEEL_TEST_SECRET_B", "sk-b")
    monkeypatch.setenv("FLYWHEEL_TEST_SECRET_EMPTY", "")
    monkeypatch.delenv("FLYWHEEL_TEST_SECRET_UNSET", raising=False)
    assert read_secret("FLYWHEEL_TEST_SECRET_A") == "sk-a"
    assert read_secret("FLYWHEEL_TEST_SECRET_B") == "sk-b"
    assert read_secret("FLYWHEEL_TEST_SECRET_EMPTY") is None
    assert read_secret("FLYWHEEL_TEST_SECRET_UNSET") is None
    assert read_secret(None) is None
    assert read_secret("") is None


def test_store_defaults_derive_from_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "state dir"
    settings = load_settings(data_dir=data_dir)
    assert settings.data_dir == data_dir
    assert settings.log_store_url == f"sqlite:///{data_dir}/flywheel.db"
    assert settings.log_store_url.startswith("sqlite:////")  # an absolute path
    assert settings.result_store_url == settings.log_store_url
    assert settings.artifact_store_uri == (data_dir / "artifacts").as_uri()
    assert settings.artifact_store_uri.startswith("file:///")
    assert "%20" in settings.artifact_store_uri  # a real URI, quoted


def test_store_defaults_follow_data_dir_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLYWHEEL_DATA_DIR", str(tmp_path / "env-dir"))
    settings = load_settings()
    assert settings.data_dir == tmp_path / "env-dir"
    assert settings.log_store_url == f"sqlite:///{tmp_path}/env-dir/flywheel.db"
    assert load_settings(data_dir=tmp_path / "code-dir").data_dir == tmp_path / "code-dir"


def test_explicit_store_urls_are_kept(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        {
            "log_store_url": "sqlite:////srv/logs.db",
            "result_store_url": "mongodb://127.0.0.1:27017/fw",
            "artifact_store_uri": "s3://bucket/flywheel",
        },
    )
    assert settings.log_store_url == "sqlite:////srv/logs.db"
    assert settings.result_store_url == "mongodb://127.0.0.1:27017/fw"
    assert settings.artifact_store_uri == "s3://bucket/flywheel"


def test_home_in_data_dir_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings(data_dir=Path("~/fw"))
    assert settings.data_dir == tmp_path / "fw"
    assert settings.log_store_url == f"sqlite:///{tmp_path}/fw/flywheel.db"


def test_relative_data_dir_gives_absolute_store_urls(tmp_path: Path) -> None:
    settings = load_settings(data_dir=Path("rel"))
    assert settings.log_store_url == f"sqlite:///{tmp_path}/rel/flywheel.db"


def test_the_example_configuration_file_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "flywheel.example.yaml"
    settings = load_settings(config_file=example, data_dir=tmp_path)
    run = settings.run_config()
    assert run.curation_config.leakage_guard and not run.curation_config.pii.enabled
    assert [c.name for c in run.candidates] == ["llama-1b"]


# --- nmp_config (the nemo platform) ----------------------------------------------------------


def test_nmp_config_defaults_to_the_builtin_evaluator(tmp_path: Path) -> None:
    nmp = settings_from(tmp_path, {"nmp_config": NMP}).run_config().nmp_config
    assert nmp is not None
    assert nmp.evaluator == "builtin"
    assert nmp.api_key_env is None and nmp.hf_token_env == "HF_TOKEN"
    assert nmp.max_retries >= 1 and nmp.scheduling_timeout_s > 0


def test_nmp_config_evaluator_and_secret_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLYWHEEL_NMP_CONFIG__EVALUATOR", "nemo")
    settings = settings_from(
        tmp_path, {"nmp_config": {**NMP, "api_key_env": "NMP_KEY", "hf_token_env": "DS_TOKEN"}}
    )
    nmp = settings.run_config().nmp_config
    assert nmp is not None
    assert (nmp.evaluator, nmp.api_key_env, nmp.hf_token_env) == ("nemo", "NMP_KEY", "DS_TOKEN")


def test_nmp_config_rejects_an_unknown_evaluator_and_inline_keys(tmp_path: Path) -> None:
    message = config_error(settings_from, tmp_path, {"nmp_config": {**NMP, "evaluator": "x"}})
    assert "nmp_config.evaluator" in message and "'builtin' or 'nemo'" in message
    message = config_error(settings_from, tmp_path, {"nmp_config": {**NMP, "api_key": "sk-1"}})
    assert "nmp_config.api_key: unknown key" in message
    assert "sk-1" not in message


# --- results: acceptance targets, pricing, notifications ---------------------------------------


@pytest.mark.parametrize(
    ("metric", "spec", "op", "value"),
    [
        ("function_name_and_args_accuracy", ">= 0.95", ">=", 0.95),
        ("function_name_and_args_accuracy", "≥0.95", ">=", 0.95),
        ("function_name_and_args_accuracy", 0.95, ">=", 0.95),
        ("function_name_and_args_accuracy", "0.95", ">=", 0.95),
        ("latency_p95_s", 2, "<=", 2.0),  # lower is better: a bare number is a maximum
        ("latency_p95_s", "<= 1.5", "<=", 1.5),
        ("unexpected_tool_rate", "≤ .05", "<=", 0.05),
        ("llm_judge_score", ">= 7", ">=", 7.0),
        ("tokens_per_s", "1e2", ">=", 100.0),
    ],
)
def test_acceptance_targets_are_read(metric: str, spec: Any, op: str, value: float) -> None:
    run = Settings(data_dir="/tmp/x").run_config({"acceptance": {"targets": {metric: spec}}})
    (target,) = run.acceptance.target_list("rouge_l")
    assert (target.metric, target.op, target.value) == (metric, op, value)


def test_without_targets_the_headline_metric_is_held_to_the_minimum_score() -> None:
    run = Settings(data_dir="/tmp/x").run_config({"acceptance": {"min_headline_score": 0.8}})
    (target,) = run.acceptance.target_list("rouge_l")
    assert (target.metric, target.op, target.value) == ("rouge_l", ">=", 0.8)
    assert str(target) == "rouge_l ≥ 0.8"


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ({"function_name_accuracy": "about 0.9"}, "must be a number or '>= N' / '<= N'"),
        ({"function_name_accuracy": True}, "must be a number or '>= N' / '<= N'"),
        ({"bad name!": 0.9}, "is not a metric name"),
        ({"function_name_accuracy": "> 0.9"}, "must be a number or '>= N' / '<= N'"),
    ],
)
def test_unreadable_targets_name_the_key(tmp_path: Path, targets: Any, message: str) -> None:
    settings = load_settings(data_dir=tmp_path)
    error = config_error(settings.run_config, {"acceptance": {"targets": targets}})
    assert error.startswith("invalid run configuration: acceptance.targets")
    assert message in error


def test_price_table_entries(tmp_path: Path) -> None:
    path = tmp_path / "flywheel.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "pricing": {
                    "currency": "EUR",
                    "production_model": "gpt-4o",
                    "models": {
                        "gpt-4o": {"input_per_1m": 2.5, "output_per_1m": 10},
                        "llama-1b": {"gpu_hour": 1.2, "gpus": 1},
                    },
                }
            }
        )
    )
    run = load_settings(path, data_dir=tmp_path).run_config(
        {"pricing": {"models": {"llama-1b": {"gpu_hour": 1.5, "throughput_rps": 20}}}}
    )
    assert run.pricing.currency == "EUR" and run.pricing.production_model == "gpt-4o"
    assert run.pricing.models["gpt-4o"].output_per_1m == 10
    # A per-run override merges onto the file's table, key by key.
    assert run.pricing.models["llama-1b"].gpu_hour == 1.5
    assert run.pricing.models["llama-1b"].gpus == 1
    assert run.pricing.models["llama-1b"].throughput_rps == 20


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"input_per_1m": 1, "gpu_hour": 2}, "give token prices or gpu_hour, not both"),
        ({"gpus": 2}, "give input_per_1m/output_per_1m (hosted) or gpu_hour (self-hosted)"),
        ({"input_per_1m": -1}, "greater than or equal to 0"),
        ({"gpu_hour": 1, "throughput_rps": 0}, "greater than 0"),
    ],
)
def test_bad_price_entries_name_the_model(tmp_path: Path, entry: Any, message: str) -> None:
    settings = load_settings(data_dir=tmp_path)
    error = config_error(settings.run_config, {"pricing": {"models": {"m": entry}}})
    assert "pricing.models.m" in error and message in error


def test_notifications_hold_the_name_of_the_variable_never_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_URL", "https://hooks.example.com/secret-token")
    run = load_settings(data_dir=tmp_path).run_config(
        {"notifications": {"webhook_url_env": "HOOK_URL", "events": ["failed"]}}
    )
    assert run.notifications.webhook_url_env == "HOOK_URL"
    assert run.notifications.events == ["failed"]
    assert "secret-token" not in run.model_dump_json()
    error = config_error(
        load_settings(data_dir=tmp_path).run_config,
        {"notifications": {"events": ["exploded"]}},
    )
    assert "notifications.events[0]" in error
    url_key = config_error(
        load_settings(data_dir=tmp_path).run_config,
        {"notifications": {"webhook_url": "https://x"}},
    )
    assert "notifications.webhook_url: unknown key" in url_key


def test_results_settings_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLYWHEEL_ACCEPTANCE__MIN_HEADLINE_SCORE", "0.75")
    monkeypatch.setenv("FLYWHEEL_EVALUATION__DIVERGENT_EXAMPLES", "3")
    run = load_settings(data_dir=tmp_path).run_config()
    assert run.acceptance.min_headline_score == 0.75
    assert run.evaluation.divergent_examples == 3
    assert run.evaluation.confidence_level == 0.95 and run.evaluation.bootstrap_resamples == 2000


def test_the_example_file_documents_the_results_sections(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "flywheel.example.yaml"
    text = example.read_text()
    for key in (
        "acceptance:",
        "pricing:",
        "notifications:",
        "webhook_url_env",
        "divergent_examples",
    ):
        assert key in text
    run = load_settings(config_file=example, data_dir=tmp_path).run_config()
    assert run.acceptance.target_list("x")[0].metric == "function_name_and_args_accuracy"
    assert run.pricing.models


def test_a_local_judge_lives_for_the_run_unless_kept(tmp_path: Path) -> None:
    judge = {"deployment_type": "local", "model_name": "meta/llama-3.3-70b-instruct", "tag": "1"}
    config = settings_from(tmp_path, {"llm_judge_config": judge}).run_config()
    assert config.llm_judge_config is not None and config.llm_judge_config.lifetime == "run"
    kept = settings_from(tmp_path, {"llm_judge_config": {**judge, "lifetime": "kept"}})
    assert kept.run_config().llm_judge_config.lifetime == "kept"
    message = config_error(
        settings_from, tmp_path, {"llm_judge_config": {**judge, "lifetime": "forever"}}
    )
    assert "llm_judge_config.lifetime" in message
