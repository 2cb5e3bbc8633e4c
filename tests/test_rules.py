"""Issue 26 item 5: declarative rename/transform rules and their derived inverse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st

import tfckpt
from tfckpt.cli import main
from tfckpt.rules import Rules, load_rules

BERT_RULES = EXAMPLES / "bert_tf_to_pytorch.json"


def rules(*entries: dict[str, object]) -> Rules:
    return Rules.from_json({"tfckpt_rules": 1, "rules": list(entries)})


def test_the_bert_example_maps_tf_names_to_pytorch_names_and_back() -> None:
    tf_names = {
        "bert/encoder/layer_0/attention/self/query/kernel": np.arange(6, dtype=np.float32).reshape(2, 3),
        "bert/encoder/layer_11/attention/output/LayerNorm/gamma": np.ones(3, np.float32),
        "bert/encoder/layer_3/intermediate/dense/bias": np.zeros(4, np.float32),
        "bert/embeddings/word_embeddings": np.ones((5, 2), np.float32),
        "cls/predictions/output_bias": np.ones(5, np.float32),  # no rule: kept as it is
    }
    forward = load_rules(BERT_RULES).apply(tf_names)
    assert sorted(forward) == ["bert.embeddings.word_embeddings.weight",
                               "bert.encoder.layer.0.attention.self.query.weight",
                               "bert.encoder.layer.11.attention.output.LayerNorm.weight",
                               "bert.encoder.layer.3.intermediate.dense.bias", "cls/predictions/output_bias"]
    np.testing.assert_array_equal(forward["bert.encoder.layer.0.attention.self.query.weight"],
                                  tf_names["bert/encoder/layer_0/attention/self/query/kernel"].T)
    back = load_rules(BERT_RULES, reverse=True).apply(forward)
    assert sorted(back) == sorted(tf_names)
    for name, value in tf_names.items():
        np.testing.assert_array_equal(back[name], value)


def test_a_many_to_one_rule_has_no_inverse_and_the_error_names_it() -> None:
    ok = {"match": "a/(\\d+)", "name": "a.{1}"}
    with pytest.raises(tfckpt.InvalidArgumentError, match="rule 2 has no inverse: its match 'x/.*' has '.'"):
        rules(ok, {"match": "x/.*", "name": "y"}).inverse()
    with pytest.raises(tfckpt.InvalidArgumentError, match=re.escape("rule 1 has no inverse: the name 'b.{1}' does not use group 2")):
        rules({"match": "(a|b)/(\\d+)", "name": "b.{1}"}).inverse()
    assert rules(ok).inverse().apply({"a.7": np.ones(1)}).keys() == {"a/7"}  # forward rules work


def test_bad_rule_files_are_refused_with_the_rule_named(tmp_path: Path) -> None:
    for entry, message in [({"match": "a", "name": "{2}"}, "uses {2}"),
                           ({"match": "a", "name": "b", "transpose": [0, 0]}, "not a permutation"),
                           ({"match": "a", "name": ["b", "c"]}, "goes with split"),
                           ({"match": "(", "name": "b"}, "not a regex"),
                           ({"match": "a", "name": "b", "bogus": 1}, "unknown field 'bogus'")]:
        with pytest.raises(tfckpt.InvalidArgumentError, match=f"rule 1: .*{re.escape(message)}"):
            rules(entry)
    path = tmp_path / "r.json"
    path.write_text("[" * 100000)
    with pytest.raises(tfckpt.InvalidArgumentError, match="r.json"):
        load_rules(path)


def test_an_incomplete_concatenation_and_a_shape_a_rule_cannot_take_are_errors() -> None:
    joined = rules({"match": ["(\\w+)/q", "(\\w+)/k"], "name": "{1}/qk", "concat": 0})
    with pytest.raises(tfckpt.InvalidArgumentError, match="'a/q' matched, but nothing matches .*/k' with the same groups"):
        joined.apply({"a/q": np.ones(2)})
    with pytest.raises(tfckpt.InvalidArgumentError, match="transpose \\[1, 0\\] of a rank-1 tensor"):
        rules({"match": "w", "name": "v", "transpose": [1, 0]}).apply({"w": np.ones(2)})


transforms = st.sampled_from(["transpose", "reshape", "split", "concat", "dtype"])


@settings(max_examples=60, deadline=None)
@given(kind=transforms, rows=st.integers(1, 4), cols=st.integers(1, 4), pieces=st.integers(2, 3),
       layer=st.integers(0, 30), seed=st.integers(0, 2**16))
def test_forward_then_inverse_is_the_identity(kind: str, rows: int, cols: int, pieces: int, layer: int,
                                              seed: int) -> None:
    rng = np.random.default_rng(seed)
    if kind == "transpose":
        entry: dict[str, object] = {"match": "enc/layer_(\\d+)/kernel", "name": "enc.{1}.weight", "transpose": [1, 0]}
        arrays = {f"enc/layer_{layer}/kernel": rng.standard_normal((rows, cols)).astype(np.float32)}
    elif kind == "reshape":
        entry = {"match": "enc/layer_(\\d+)/kernel", "name": "enc.{1}.weight",
                 "reshape": [[rows, cols * pieces], [rows, pieces, -1]]}
        arrays = {f"enc/layer_{layer}/kernel": rng.standard_normal((rows, cols * pieces)).astype(np.float32)}
    elif kind == "split":
        names = [f"enc.{{1}}.part{i}" for i in range(pieces)]
        entry = {"match": "enc/layer_(?P<n>\\d+)/fused".replace("?P<n>", ""), "name": names, "split": 1,
                 "transpose": [1, 0]}
        arrays = {f"enc/layer_{layer}/fused": rng.standard_normal((cols * pieces, rows)).astype(np.float32)}
    elif kind == "concat":
        entry = {"match": [f"enc/layer_(?P<n>\\d+)/part{i}" for i in range(pieces)], "name": "enc.{n}.fused",
                 "concat": 0}
        arrays = {f"enc/layer_{layer}/part{i}": rng.standard_normal((rows, cols)).astype(np.float32)
                  for i in range(pieces)}
    else:
        entry = {"match": "enc/layer_(\\d+)/kernel", "name": "enc.{1}.weight", "dtype": ["float16", "float32"]}
        arrays = {f"enc/layer_{layer}/kernel": rng.standard_normal((rows, cols)).astype(np.float16)}
    arrays["untouched"] = np.arange(3)
    forward = rules(entry)
    there = forward.apply(arrays)
    assert "untouched" in there and not set(there) & (set(arrays) - {"untouched"})
    back = forward.inverse().apply(there)
    assert list(back) == list(arrays) or sorted(back) == sorted(arrays)
    for name, value in arrays.items():
        assert back[name].dtype == value.dtype and back[name].shape == value.shape
        np.testing.assert_array_equal(back[name], value)


def test_load_and_convert_take_rules_both_ways(tmp_path: Path) -> None:
    kernel = np.arange(6, dtype=np.float32).reshape(2, 3)
    prefix = tfckpt.save({"bert/pooler/dense/kernel": kernel, "bert/pooler/dense/bias": np.ones(3, np.float32)},
                         tmp_path / "tf" / "ckpt")
    loaded = tfckpt.load(prefix, rules=load_rules(BERT_RULES))
    np.testing.assert_array_equal(loaded["bert.pooler.dense.weight"], kernel.T)
    st_path = tmp_path / "pt.safetensors"
    report = tfckpt.convert_checkpoint(prefix, st_path, rules=load_rules(BERT_RULES))
    assert dict(report.written)["bert/pooler/dense/kernel"] == "bert.pooler.dense.weight"
    assert main(["convert", str(st_path), str(tmp_path / "back" / "ckpt"), "--rules", str(BERT_RULES),
                 "--reverse"]) == 0
    back = tfckpt.load(tmp_path / "back" / "ckpt")
    assert sorted(back) == ["bert/pooler/dense/bias", "bert/pooler/dense/kernel"]
    np.testing.assert_array_equal(back["bert/pooler/dense/kernel"], kernel)


def test_rules_renaming_a_tf2_checkpoint_keep_its_structure(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"tfckpt_rules": 1, "rules": [
        {"match": "optimizer/_trainable_variables/(\\d+)/\\.ATTRIBUTES/VARIABLE_VALUE", "name": "w.{1}"}]}))
    st_path = tmp_path / "w.safetensors"
    tfckpt.convert_checkpoint(EXAMPLES / "keras_mlp", st_path, rules=load_rules(path))
    tfckpt.convert_checkpoint(st_path, tmp_path / "back")  # the metadata knows w.0's key
    original, back = tfckpt.load(EXAMPLES / "keras_mlp"), tfckpt.load(tmp_path / "back")
    assert sorted(back) == sorted(original)
