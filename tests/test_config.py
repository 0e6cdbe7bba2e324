"""Typed configuration: validation messages name the key and what was expected; overrides; round trip."""

from __future__ import annotations

import pytest

from seqlab.config import (
    ExperimentConfig,
    RecurrentConfig,
    TransformerConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)
from seqlab.errors import ConfigError


def _error(data: dict, path: str | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, path)
    return info.value


def test_unknown_key_names_the_dotted_key_and_lists_the_valid_ones():
    err = _error({"train": {"max_step": 10}})
    assert err.key == "train.max_step"
    assert "key 'train.max_step': unknown key" in str(err)
    assert "max_steps" in str(err) and "warmup_steps" in str(err)


def test_unknown_model_key_lists_only_that_architectures_keys():
    err = _error({"model": {"type": "transformer", "hidden": 16}})
    assert err.key == "model.hidden"
    listed = str(err).split("valid keys here are: ", 1)[1].split(", ")
    assert "d_model" in listed and "heads" in listed
    assert "hidden" not in listed and "attention" not in listed


def test_wrong_type_names_key_and_expected_type():
    err = _error({"model": {"layers": "two"}})
    assert err.key == "model.layers"
    assert str(err) == "key 'model.layers': expected an integer, got 'two'"


def test_bool_is_not_accepted_as_an_integer():
    assert _error({"train": {"max_steps": True}}).key == "train.max_steps"


def test_unknown_model_type_lists_the_types():
    err = _error({"model": {"type": "lstmm"}})
    assert err.key == "model.type"
    assert "'lstmm'" in str(err)
    assert "transformer, rnn, lstm, gru" in str(err)


def test_bad_literal_lists_the_choices():
    err = _error({"model": {"type": "gru", "attention": "bahdanau"}})
    assert err.key == "model.attention"
    assert "one of 'none', 'dot', 'general', 'additive', got 'bahdanau'" in str(err)


def test_error_from_a_file_names_the_file(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("model:\n  type: transformer\n  layers: 1\n  heads: three\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: key 'model.heads': expected an integer")


def test_invalid_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nmodel:\n  layers: 2\n   heads: 4\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:4: invalid YAML")


def test_missing_config_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_apply_and_parse_scalars(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("model: {type: transformer, layers: 2}\ntrain: {lr: 0.001}\n", encoding="utf-8")
    cfg = load_config(path, ["model.layers=4", "train.lr=3e-4", "train.clip_norm=null",
                             "tokenizer.joint=false", "data.train=[a.txt, b.txt]", "name=demo"])
    assert cfg.model.layers == 4 and isinstance(cfg.model.layers, int)
    assert cfg.train.lr == pytest.approx(3e-4) and isinstance(cfg.train.lr, float)
    assert cfg.train.clip_norm is None
    assert cfg.tokenizer.joint is False
    assert cfg.data.train == ["a.txt", "b.txt"]
    assert cfg.name == "demo"


def test_override_switches_the_model_section_to_the_recurrent_schema():
    cfg = load_config(None, ["model.type=gru", "model.attention=general", "model.hidden=32"])
    assert isinstance(cfg.model, RecurrentConfig)
    assert (cfg.model.type, cfg.model.attention, cfg.model.hidden) == ("gru", "general", 32)


@pytest.mark.parametrize("override, key, phrase", [
    ("model.layer=4", "model.layer", "unknown key"),
    ("train.lr=fast", "train.lr", "expected a number, got 'fast'"),
    ("name.first=x", "name", "expected a string"),
])
def test_bad_override_names_the_key(override, key, phrase):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert info.value.key == key and phrase in str(info.value)


def test_override_without_equals_sign_is_rejected():
    with pytest.raises(ConfigError, match="'model.layers' is not of the form key.sub=value"):
        apply_overrides({}, ["model.layers"])


@pytest.mark.parametrize("model", [
    {"type": "transformer", "layers": 1, "d_model": 32, "heads": 4, "norm": "pre"},
    {"type": "lstm", "attention": "additive", "hidden": 24, "bidirectional": False},
])
def test_config_round_trips_through_save_and_load(tmp_path, model):
    cfg = config_from_dict({"name": "rt", "model": model, "train": {"betas": [0.8, 0.9], "max_epochs": 3},
                            "data": {"train": ["s.txt", "t.txt"], "dev": None}})
    path = tmp_path / "saved.yaml"
    save_config(cfg, path)
    loaded = load_config(path)
    assert loaded == cfg
    assert config_to_dict(loaded) == config_to_dict(cfg)
    assert type(loaded.model) is type(cfg.model)


def test_defaults_are_valid():
    cfg = load_config(None)
    assert isinstance(cfg, ExperimentConfig) and isinstance(cfg.model, TransformerConfig)


def test_transformer_rejects_scheduled_sampling():
    err = _error({"model": {"type": "transformer"}, "train": {"teacher_forcing": 0.5}})
    assert err.key == "train.teacher_forcing" and "teacher forcing only" in str(err)
    # the same value is fine for a recurrent model
    cfg = config_from_dict({"model": {"type": "gru"}, "train": {"teacher_forcing": 0.5}})
    assert cfg.train.teacher_forcing == 0.5


def test_share_embeddings_needs_a_joint_vocabulary():
    err = _error({"tokenizer": {"joint": False}, "model": {"share_embeddings": True}})
    assert err.key == "model.share_embeddings" and "tokenizer.joint" in str(err)


def test_consistency_error_from_a_file_names_the_file(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("model: {d_model: 30, heads: 4}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: key 'model.heads': d_model=30 must be divisible by heads=4")


def test_betas_must_be_two_numbers():
    assert _error({"train": {"betas": [0.9]}}).key == "train.betas"


@pytest.mark.parametrize("overrides, key, phrase", [
    (["train.teacher_forcing_min=1.5"], "train.teacher_forcing_min", "must be in [0, 1], got 1.5"),
    (["train.teacher_forcing_decay_steps=-1"], "train.teacher_forcing_decay_steps", "must be 0 or more"),
    (["train.clip_norm=0"], "train.clip_norm", "must be positive, or null"),
    (["train.clip_value=-1"], "train.clip_value", "must be positive, or null"),
    # a decay towards a ratio below 1 would fail only once training reached it
    (["train.teacher_forcing_min=0.5", "train.teacher_forcing_decay_steps=100"],
     "train.teacher_forcing_min", "trained with teacher forcing only"),
])
def test_training_options_are_checked_on_load(overrides, key, phrase):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert info.value.key == key and phrase in str(info.value)


def test_scheduled_sampling_and_value_clipping_load_for_recurrent_models():
    cfg = load_config(None, ["model.type=gru", "train.teacher_forcing_min=0.5",
                             "train.teacher_forcing_decay_steps=100", "train.clip_value=5", "train.clip_norm=null"])
    assert (cfg.train.teacher_forcing_min, cfg.train.clip_value, cfg.train.clip_norm) == (0.5, 5.0, None)


@pytest.mark.parametrize("override, phrase", [
    ("train.lr=-1", "must be positive, got -1.0"),
    ("train.lr=0", "must be positive"),
    ("train.eps=0", "must be positive"),
    ("train.betas=[0.9, 1.0]", "must be in [0, 1), got [0.9, 1.0]"),
    ("train.betas=[-0.1, 0.98]", "must be in [0, 1)"),
    ("train.weight_decay=-0.01", "must be 0 or more"),
    ("train.label_smoothing=1", "must be in [0, 1)"),
    ("train.min_lr_ratio=1.5", "must be in [0, 1]"),
    ("train.warmup_steps=-1", "must be 0 or more"),
    ("train.max_steps=0", "must be at least 1"),
    ("train.max_epochs=0", "must be at least 1, or null"),
    ("train.max_minutes=0", "must be positive, or null"),
    ("train.eval_every=0", "must be at least 1"),
    ("train.log_every=0", "must be at least 1"),
    ("train.checkpoint_every=0", "must be at least 1, or null"),
    ("train.patience=0", "must be at least 1, or null"),
    ("train.threads=0", "must be at least 1, or null"),
    ("train.seed=-1", "must be 0 or more"),
    ("train.batch_tokens=0", "must be at least 1"),
    ("model.dropout=1.0", "must be in [0, 1)"),
    ("model.attention_dropout=-0.1", "must be in [0, 1)"),
    ("model.heads=0", "must be at least 1"),
    ("model.d_model=0", "must be at least 1"),
    ("model.ffn=0", "must be at least 1"),
    ("model.layers=0", "must be at least 1"),
    ("model.decoder_layers=0", "must be at least 1, or null"),
    ("model.max_positions=0", "must be at least 1"),
    ("decode.beam=0", "must be at least 1"),
    ("decode.length_penalty=-0.5", "must be 0 or more"),
    ("decode.max_len_ratio=0", "must be positive"),
    ("decode.max_len_offset=-1", "must be 0 or more"),
    ("decode.n_best=0", "must be at least 1"),
    ("data.max_len=0", "must be at least 1"),
    ("data.dev_size=0", "must be at least 1"),
    ("tokenizer.vocab_size=4", "must be at least 8"),
    ("tokenizer.min_frequency=0", "must be at least 1"),
])
def test_numbers_outside_their_range_are_errors_naming_the_key(override, phrase):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert info.value.key == override.split("=")[0] and phrase in str(info.value)


@pytest.mark.parametrize("overrides, key", [
    (["model.type=lstm", "model.hidden=0"], "model.hidden"),
    (["model.type=gru", "model.embedding=0"], "model.embedding"),
    (["model.type=lstm", "model.dropout=1"], "model.dropout"),
    (["decode.beam=2", "decode.n_best=3"], "decode.n_best"),
    (["task=lm", "model.type=gpt", "model.dropout=1.5"], "model.dropout"),
    (["task=lm", "model.type=gpt", "model.heads=0"], "model.heads"),
    (["task=classification", "model.type=lstm", "model.hidden=0"], "model.hidden"),
    (["task=classification", "model.type=transformer", "model.ffn=0"], "model.ffn"),
])
def test_recurrent_sizes_and_n_best_are_checked_on_load(overrides, key):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert info.value.key == key


def test_values_on_the_edge_of_their_range_load():
    cfg = load_config(None, ["train.betas=[0.0, 0.999]", "train.weight_decay=0", "train.label_smoothing=0",
                             "train.warmup_steps=0", "train.schedule=constant", "model.dropout=0",
                             "decode.length_penalty=0", "train.min_lr_ratio=1"])
    assert cfg.train.betas == [0.0, 0.999] and cfg.model.dropout == 0.0


def test_precision_defaults_to_auto_and_accepts_the_four_choices():
    cfg = load_config(None)
    assert cfg.train.precision == cfg.decode.precision == "auto"
    assert load_config(None, ["train.precision=bf16", "decode.precision=fp32"]).train.precision == "bf16"
    with pytest.raises(ConfigError) as info:
        load_config(None, ["train.precision=fp8"])
    assert info.value.key == "train.precision" and "'auto', 'fp32', 'bf16', 'fp16'" in str(info.value)


def test_unknown_task_lists_the_tasks():
    err = _error({"task": "poetry"})
    assert err.key == "task"
    assert "'poetry'" in str(err) and "translation" in str(err)


def test_a_config_without_task_is_translation_with_bleu_as_best_metric():
    cfg = config_from_dict({"model": {"type": "gru"}})
    assert cfg.task == "translation" and cfg.train.best_metric == "bleu"
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_best_metric_must_be_one_the_task_reports():
    err = _error({"train": {"best_metric": "accuracy"}})
    assert err.key == "train.best_metric"
    assert "bleu" in str(err) and "'accuracy'" in str(err)
