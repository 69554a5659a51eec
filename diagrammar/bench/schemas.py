"""Real-world-style JSON Schemas for the constrained-decoding benchmark (JSONSchemaBench-like).

:func:`generate_schemas` builds, from a seed, schemas of a dozen families (user profiles,
orders, configs, events, API responses, geo points, products, log lines, payments, sensor
readings, tasks, addresses), each a variation of its family (which optional parts, which
constraints), tagged with the JSON Schema features it uses (:data:`FEATURES`). Strings are
bounded (``maxLength``, a bounded ``pattern``, or a ``format``), arrays have a ``maxItems`` and
objects are mostly closed, so a complete value fits in about 200 tokens of a small model; a
few things stay unbounded as in real schemas (an ``email``, the digits of a non-integer
number, the extra properties of an open object), where a small model may run out of budget.
Schemas ask for compact JSON (``"x-guidance": {"whitespace_flexible": false}``: the engines
allow no free whitespace, which a small model would fill); validators ignore that key.

>>> schemas = generate_schemas(120, seed=0)
>>> len(schemas), len({s.name for s in schemas})
(120, 120)
>>> generate_schemas(5, seed=0) == schemas[:5]
True
>>> sorted({f for s in schemas for f in s.features}) == sorted(FEATURES)
True
>>> first = schemas[0]
>>> first.family, first.schema["type"], first.schema["x-guidance"]
('user_profile', 'object', {'whitespace_flexible': False})
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FEATURES", "BenchSchema", "generate_schemas", "schema_features"]

#: Feature tags, with what they mean.
FEATURES: dict[str, str] = {
    "nested_object": "an object inside an object",
    "array": "an array",
    "array_bounds": "an array with minItems/maxItems",
    "enum": "an enum or const",
    "ref": "a $ref to $defs",
    "anyOf": "an anyOf",
    "pattern": "a string pattern",
    "format": "a string format (date, email, uuid...)",
    "numeric_bounds": "minimum/maximum (exclusive or not) on a number",
    "string_length": "minLength/maxLength on a string",
    "optional": "an optional property (not in required)",
    "additional_false": "additionalProperties: false",
    "open_object": "an object that allows properties it does not list",
    "boolean": "a boolean",
    "number": "a non-integer number",
    "nullable": "null allowed (type list or anyOf with null)",
}

_COMPACT = {"whitespace_flexible": False}


@dataclass(frozen=True)
class BenchSchema:
    """One benchmark schema.

    Attributes:
        name: unique, ``family_index``.
        family: what it describes (``user_profile``, ``order``...).
        schema: the JSON Schema (Draft 2020-12), compact-JSON option included.
        features: the :data:`FEATURES` it uses, sorted.
        description: one line for the prompt.
    """

    name: str
    family: str
    schema: dict[str, Any] = field(compare=True)
    features: tuple[str, ...] = ()
    description: str = ""


def schema_features(schema: Any) -> set[str]:
    """The :data:`FEATURES` a schema uses, found by walking it.

    >>> sorted(schema_features({"type": "object", "properties": {
    ...     "a": {"type": "array", "items": {"enum": [1, 2]}, "maxItems": 2}},
    ...     "additionalProperties": False}))
    ['additional_false', 'array', 'array_bounds', 'enum', 'optional']
    """
    found: set[str] = set()

    def walk(node: Any, inside_object: bool) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, inside_object)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        kinds = kind if isinstance(kind, list) else [kind]
        if "properties" in node or "object" in kinds:
            if inside_object:
                found.add("nested_object")
            required = set(node.get("required", []))
            if any(name not in required for name in node.get("properties", {})):
                found.add("optional")
            if node.get("additionalProperties") is False:
                found.add("additional_false")
            elif "properties" in node:
                found.add("open_object")
        if "array" in kinds or "items" in node:
            found.add("array")
            if "minItems" in node or "maxItems" in node:
                found.add("array_bounds")
        if "enum" in node or "const" in node:
            found.add("enum")
        if "$ref" in node:
            found.add("ref")
        if "anyOf" in node:
            found.add("anyOf")
            if any(isinstance(b, dict) and b.get("type") == "null" for b in node["anyOf"]):
                found.add("nullable")
        if "null" in kinds and len(kinds) > 1:
            found.add("nullable")
        if "pattern" in node:
            found.add("pattern")
        if "format" in node:
            found.add("format")
        if any(k in node for k in ("minimum", "maximum", "exclusiveMinimum",
                                   "exclusiveMaximum")):
            found.add("numeric_bounds")
        if "minLength" in node or "maxLength" in node:
            found.add("string_length")
        if "boolean" in kinds:
            found.add("boolean")
        if "number" in kinds:
            found.add("number")
        is_object = "properties" in node or "object" in kinds
        for key in ("properties", "$defs"):
            for sub in (node.get(key) or {}).values():
                walk(sub, is_object if key == "properties" else False)
        for key in ("items", "additionalProperties"):
            walk(node.get(key), inside_object)
        for key in ("anyOf", "prefixItems"):
            walk(node.get(key), inside_object)

    walk(schema, False)
    return found


# -- building blocks -------------------------------------------------------------------------

def _text(rng: random.Random, longest: int = 16) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "maxLength": rng.choice([8, 12, longest])}
    if rng.random() < 0.4:
        out["minLength"] = 1
    return out


def _int(rng: random.Random, low: int = 0, high: int = 999) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "integer", "minimum": low, "maximum": high}
    if rng.random() < 0.25:
        del out["minimum"]
        out["exclusiveMinimum"] = low - 1
    return out


def _number(rng: random.Random, low: float, high: float) -> dict[str, Any]:
    return {"type": "number", "minimum": low, "maximum": high}


def _enum(rng: random.Random, values: list[str]) -> dict[str, Any]:
    k = rng.randint(2, len(values))
    return {"type": "string", "enum": sorted(rng.sample(values, k))}


def _fmt(name: str) -> dict[str, Any]:
    return {"type": "string", "format": name}


def _pattern(regex: str) -> dict[str, Any]:
    return {"type": "string", "pattern": regex}


def _obj(props: dict[str, Any], required: list[str], closed: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props,
                           "required": [name for name in props if name in required]}
    if closed:
        out["additionalProperties"] = False
    return out


def _closed(rng: random.Random) -> bool:
    """Mostly closed objects: an open one allows extra properties of any length, which a
    small model may fill until the budget runs out."""
    return rng.random() < 0.9


def _array(item: dict[str, Any], rng: random.Random, most: int = 3) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "array", "items": item, "maxItems": rng.randint(1, most)}
    if rng.random() < 0.5:
        out["minItems"] = 1
    return out


def _pick(rng: random.Random, props: dict[str, Any], keep: int) -> dict[str, Any]:
    """``keep`` of the optional properties (order kept)."""
    names = sorted(rng.sample(list(props), min(keep, len(props))), key=list(props).index)
    return {name: props[name] for name in names}


# -- families ------------------------------------------------------------------------------
# Each builds (schema without title/options, description) from rng.

Family = Callable[[random.Random], tuple[dict[str, Any], str]]


def _user_profile(rng: random.Random) -> tuple[dict[str, Any], str]:
    core = {"id": _int(rng, 1, 99999), "username": _pattern(r"^[a-z][a-z0-9_]{2,11}$")}
    extra = _pick(rng, {
        "email": _fmt("email"), "age": _int(rng, 13, 120),
        "role": _enum(rng, ["admin", "editor", "viewer", "guest"]),
        "verified": {"type": "boolean"}, "bio": _text(rng, 24),
        "tags": _array(_text(rng, 8), rng)}, rng.randint(2, 4))
    props = {**core, **extra}
    required = list(core) + [n for n in extra if rng.random() < 0.5]
    return _obj(props, required, _closed(rng)), "a user profile"


def _order(rng: random.Random) -> tuple[dict[str, Any], str]:
    item = _obj({"sku": _pattern(r"^[A-Z]{3}-[0-9]{4}$"), "quantity": _int(rng, 1, 20),
                 "price": _number(rng, 0, 1000)}, ["sku", "quantity"], _closed(rng))
    use_ref = rng.random() < 0.6
    props = {"order_id": _fmt("uuid") if rng.random() < 0.5 else _int(rng, 1, 99999),
             "status": _enum(rng, ["pending", "paid", "shipped", "cancelled"]),
             "items": _array({"$ref": "#/$defs/item"} if use_ref else item, rng)}
    if rng.random() < 0.5:
        props["placed"] = _fmt("date")
    schema = _obj(props, list(props), _closed(rng))
    if use_ref:
        schema["$defs"] = {"item": item}
    return schema, "an order with its line items"


def _config(rng: random.Random) -> tuple[dict[str, Any], str]:
    server = _obj({"host": _fmt("ipv4") if rng.random() < 0.5 else _text(rng),
                   "port": _int(rng, 1, 65535)}, ["host", "port"], _closed(rng))
    props = {"name": _text(rng), "debug": {"type": "boolean"}, "server": server}
    extra = _pick(rng, {
        "log_level": _enum(rng, ["debug", "info", "warning", "error"]),
        "workers": _int(rng, 1, 64), "timeout": _number(rng, 0.1, 60),
        "features": _array(_enum(rng, ["cache", "auth", "metrics", "tracing"]), rng)},
        rng.randint(1, 3))
    props.update(extra)
    return _obj(props, ["name", "server"], _closed(rng)), "a service configuration"


def _event(rng: random.Random) -> tuple[dict[str, Any], str]:
    click = _obj({"kind": {"const": "click"}, "x": _int(rng, 0, 1920),
                  "y": _int(rng, 0, 1080)}, ["kind", "x", "y"], True)
    key = _obj({"kind": {"const": "key"}, "code": _pattern(r"^[A-Za-z0-9]{1,6}$")},
               ["kind", "code"], True)
    scroll = _obj({"kind": {"const": "scroll"}, "delta": _int(rng, -500, 500)},
                  ["kind", "delta"], True)
    branches = rng.sample([click, key, scroll], rng.randint(2, 3))
    use_ref = rng.random() < 0.5
    props: dict[str, Any] = {"event_id": _int(rng, 1, 10**6),
                             "payload": {"anyOf": branches}}
    if rng.random() < 0.5:
        props["timestamp"] = _fmt("date-time")
    schema = _obj(props, list(props), _closed(rng))
    if use_ref:
        schema["$defs"] = {"payload": schema["properties"]["payload"]}
        schema["properties"]["payload"] = {"$ref": "#/$defs/payload"}
    return schema, "a user-interface event"


def _api_response(rng: random.Random) -> tuple[dict[str, Any], str]:
    error = _obj({"code": _int(rng, 400, 599), "message": _text(rng, 24)}, ["code", "message"],
                 True)
    data = _obj({"count": _int(rng, 0, 100), "next": {"type": ["string", "null"],
                                                        "maxLength": 16}},
                ["count", "next"], _closed(rng))
    props = {"ok": {"type": "boolean"},
             "data": {"anyOf": [data, {"type": "null"}]},
             "error": {"anyOf": [{"$ref": "#/$defs/error"}, {"type": "null"}]}}
    schema = _obj(props, ["ok"] + (["data", "error"] if rng.random() < 0.5 else []),
                  _closed(rng))
    schema["$defs"] = {"error": error}
    return schema, "an API response"


def _geo_point(rng: random.Random) -> tuple[dict[str, Any], str]:
    point = _obj({"lat": _number(rng, -90, 90), "lon": _number(rng, -180, 180)},
                 ["lat", "lon"], True)
    if rng.random() < 0.5:
        props = {"name": _text(rng), "location": point}
        if rng.random() < 0.5:
            props["elevation"] = _int(rng, -500, 9000)
        return _obj(props, ["name", "location"], _closed(rng)), "a named place"
    path = {"type": "array", "items": {"$ref": "#/$defs/point"}, "minItems": 2,
            "maxItems": rng.randint(2, 3)}
    schema = _obj({"route": _text(rng), "points": path}, ["route", "points"], True)
    schema["$defs"] = {"point": point}
    return schema, "a route of geographic points"


def _product(rng: random.Random) -> tuple[dict[str, Any], str]:
    props = {"name": _text(rng, 20), "price": _number(rng, 0, 10000),
             "currency": _enum(rng, ["EUR", "GBP", "JPY", "USD"]),
             "in_stock": {"type": "boolean"}}
    extra = _pick(rng, {"sku": _pattern(r"^[A-Z0-9]{6,8}$"), "rating": _number(rng, 0, 5),
                        "categories": _array(_text(rng, 10), rng),
                        "dimensions": _obj({"w": _int(rng, 1, 500), "h": _int(rng, 1, 500)},
                                           ["w", "h"], True)}, rng.randint(1, 3))
    props.update(extra)
    return _obj(props, list(props)[:3], _closed(rng)), "a catalogue product"


def _log_line(rng: random.Random) -> tuple[dict[str, Any], str]:
    props = {"level": _enum(rng, ["DEBUG", "INFO", "WARN", "ERROR"]),
             "logger": _pattern(r"^[a-z]+(\.[a-z]+){0,2}$"), "message": _text(rng, 24)}
    if rng.random() < 0.6:
        props["time"] = _fmt("time") if rng.random() < 0.5 else _fmt("date-time")
    if rng.random() < 0.5:
        props["line"] = _int(rng, 1, 9999)
    return _obj(props, ["level", "message"], _closed(rng)), "a structured log line"


def _payment(rng: random.Random) -> tuple[dict[str, Any], str]:
    card = _obj({"method": {"const": "card"}, "last4": _pattern(r"^[0-9]{4}$")},
                ["method", "last4"], True)
    bank = _obj({"method": {"const": "bank"},
                 "iban": _pattern(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{4,12}$")},
                ["method", "iban"], True)
    props = {"amount": {"type": "number", "exclusiveMinimum": 0, "maximum": 100000},
             "currency": _enum(rng, ["EUR", "USD", "CHF"]),
             "source": {"anyOf": [card, bank]}}
    if rng.random() < 0.5:
        props["reference"] = _fmt("uuid")
    return _obj(props, list(props), True), "a payment"


def _sensor(rng: random.Random) -> tuple[dict[str, Any], str]:
    reading = _obj({"t": _int(rng, 0, 86400), "value": _number(rng, -50, 150)},
                   ["t", "value"], True)
    props = {"sensor": _pattern(r"^sensor-[0-9]{2}$"),
             "unit": _enum(rng, ["C", "F", "K"]),
             "readings": {"type": "array", "items": reading, "minItems": 1,
                          "maxItems": rng.randint(2, 3)}}
    if rng.random() < 0.5:
        props["battery"] = {"type": ["integer", "null"], "minimum": 0, "maximum": 100}
    return _obj(props, list(props)[:3], _closed(rng)), "sensor readings"


def _task(rng: random.Random) -> tuple[dict[str, Any], str]:
    props = {"title": _text(rng, 20), "done": {"type": "boolean"},
             "priority": _int(rng, 1, 5)}
    extra = _pick(rng, {"due": _fmt("date"),
                        "assignee": {"anyOf": [_fmt("email"), {"type": "null"}]},
                        "labels": _array(_enum(rng, ["bug", "feature", "docs", "chore"]), rng),
                        "subtasks": _array(_obj({"title": _text(rng, 12),
                                                 "done": {"type": "boolean"}},
                                                ["title", "done"], True), rng, 2)},
                  rng.randint(1, 3))
    props.update(extra)
    required = list(props)[:2] + [n for n in extra if rng.random() < 0.4]
    return _obj(props, required, _closed(rng)), "a to-do task"


def _address(rng: random.Random) -> tuple[dict[str, Any], str]:
    address = _obj({"street": _text(rng, 20), "city": _text(rng),
                    "postcode": _pattern(r"^[0-9]{5}$"),
                    "country": _enum(rng, ["DE", "FR", "GB", "IT", "US"])},
                   ["street", "city", "country"], _closed(rng))
    schema = _obj({"name": _text(rng), "home": {"$ref": "#/$defs/address"}},
                  ["name", "home"], _closed(rng))
    if rng.random() < 0.5:
        schema["properties"]["work"] = {"anyOf": [{"$ref": "#/$defs/address"},
                                                  {"type": "null"}]}
    schema["$defs"] = {"address": address}
    return schema, "a contact with addresses"


FAMILIES: dict[str, Family] = {
    "user_profile": _user_profile, "order": _order, "config": _config, "event": _event,
    "api_response": _api_response, "geo": _geo_point, "product": _product,
    "log_line": _log_line, "payment": _payment, "sensor": _sensor, "task": _task,
    "address": _address,
}


def generate_schemas(count: int = 120, seed: int = 0) -> list[BenchSchema]:
    """``count`` schemas, the families taken in turn; the same ``seed`` gives the same
    schemas (and the first ``n`` of a longer list are the ``n`` of a shorter one)."""
    names = list(FAMILIES)
    out = []
    for index in range(count):
        family = names[index % len(names)]
        rng = random.Random(f"{seed}:{index}")
        schema, description = FAMILIES[family](rng)
        schema = copy.deepcopy(schema)
        title = f"{family}_{index:03d}"
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title,
                  **schema, "x-guidance": dict(_COMPACT)}
        out.append(BenchSchema(title, family, schema, tuple(sorted(schema_features(schema))),
                               description))
    return out
