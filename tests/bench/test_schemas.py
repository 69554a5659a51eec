"""The JSON Schema benchmark's schemas and a smoke run of its core on the tiny model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import jsonschema

from diagrammar.bench.schemas import FEATURES, generate_schemas, schema_features

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "json_schema_bench.py"


def _bench_module():
    spec = importlib.util.spec_from_file_location("json_schema_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("json_schema_bench", module)
    spec.loader.exec_module(module)
    return module


def test_at_least_100_deterministic_schemas():
    schemas = generate_schemas(100)
    assert len(schemas) == 100
    assert len({s.name for s in schemas}) == 100
    assert generate_schemas(100) == schemas
    assert generate_schemas(100, seed=1) != schemas
    assert {s.family for s in schemas} >= {"user_profile", "order", "config", "geo"}


def test_schemas_are_valid_draft_2020_12():
    for item in generate_schemas(120):
        jsonschema.Draft202012Validator.check_schema(item.schema)
        assert item.schema["x-guidance"] == {"whitespace_flexible": False}


def test_every_feature_is_used():
    schemas = generate_schemas(100)
    for feature in FEATURES:
        assert sum(feature in s.features for s in schemas) >= 5, feature


def test_feature_tags():
    schema = {"type": "object", "properties": {
        "when": {"type": "string", "format": "date"},
        "home": {"$ref": "#/$defs/place"},
        "n": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]}},
        "required": ["when", "home", "n"],
        "$defs": {"place": {"type": "object", "properties": {
            "code": {"type": "string", "pattern": "^[0-9]{5}$"}}, "required": ["code"]}}}
    assert schema_features(schema) == {"format", "ref", "anyOf", "numeric_bounds", "nullable",
                                       "pattern", "open_object"}
    nested = {"type": "object", "properties": {"inner": {
        "type": "object", "properties": {"flag": {"type": "boolean"}},
        "additionalProperties": False}}, "required": ["inner"]}
    assert schema_features(nested) == {"nested_object", "boolean", "optional",
                                       "additional_false", "open_object"}
    item = generate_schemas(12)[1]             # an order: items array of line items
    assert item.family == "order"
    assert {"array", "enum", "pattern", "numeric_bounds"} <= set(item.features)


def test_check_output():
    bench = _bench_module()
    schema = {"type": "object", "properties": {"d": {"type": "string", "format": "date"}},
              "required": ["d"]}
    assert bench.check_output('{"d":"2024-01-31"}', schema)[0] == "valid"
    assert bench.check_output('{"d":"2024-13-31"}', schema)[0] == "invalid"
    assert bench.check_output('{"d":"2024-', schema)[0] == "incomplete"
    stamp = {"type": "string", "format": "date-time"}
    assert bench.check_output('"2024-01-31T10:00:00Z"', stamp)[0] == "valid"
    assert bench.check_output('"2024-01-31T25:00:00Z"', stamp)[0] == "invalid"


def test_bench_core_smoke(bench_tiny_lm):
    bench = _bench_module()
    records = [bench.bench_schema(bench_tiny_lm, item, max_new_tokens=48, flip=index == 1)
               for index, item in enumerate(generate_schemas(2))]
    for record in records:
        assert record["unconstrained"]["tokens"] > 0
        for engine in bench.ENGINES:
            out = record["engines"][engine]
            assert out["compiled"], out.get("error")
            assert out["identical"]
            assert out["status"] in ("valid", "incomplete")
            assert out["mask_us"]
    summary = bench.summarise(records, bench.ENGINES)
    assert summary["llguidance"]["invalid"] == 0
    text = bench.markdown({"model": "tiny"}, summary, {}, bench.ENGINES)
    assert "Coverage per feature" in text
