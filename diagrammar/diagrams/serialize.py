"""Pipelines as JSON: save, load, compare equal.

The format lists the diagram's layers from top to bottom; each layer is the wires to the
left of its box, the box (class name and spec) and the wires to its right.

>>> from diagrammar.diagrams.builders import speculative
>>> from diagrammar.diagrams.boxes import PromptLookup
>>> from diagrammar.diagrams.serialize import to_json, from_json
>>> step = speculative(PromptLookup(num_tokens=4))
>>> from_json(to_json(step)) == step
True
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from diagrammar.diagrams.boxes import Pipeline, StepBox, Swap, box_from_json, box_to_json
from diagrammar.diagrams.errors import PipelineFormatError
from diagrammar.diagrams.types import Ty

FORMAT = "diagrammar.pipeline"
VERSION = 1


def _ty_to_json(ty: Ty) -> list[str]:
    return [ob.name for ob in ty.inside]


def _ty_from_json(names: Any, where: str) -> Ty:
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise PipelineFormatError(f"{where}: a type is a list of wire names, got {names!r}")
    return Ty(*names)


def to_dict(diagram: Pipeline) -> dict[str, Any]:
    """The pipeline as JSON data."""
    layers = []
    for layer in diagram.inside:
        left, box, right = layer
        if isinstance(box, Swap):
            box_json = {"box": "Swap", "spec": {"left": box.left.inside[0].name,
                                                "right": box.right.inside[0].name}}
        elif isinstance(box, StepBox):
            box_json = box_to_json(box)
        else:
            raise PipelineFormatError(f"cannot save box {box!r}: it is not a diagrammar box")
        layers.append({"left": _ty_to_json(left), "box": box_json, "right": _ty_to_json(right)})
    return {"format": FORMAT, "version": VERSION, "dom": _ty_to_json(diagram.dom),
            "cod": _ty_to_json(diagram.cod), "layers": layers}


def from_dict(data: Any) -> Pipeline:
    """Rebuilds a pipeline from :func:`to_dict`'s output; errors name the faulty layer."""
    if not isinstance(data, Mapping):
        raise PipelineFormatError(f"a pipeline must be a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise PipelineFormatError(
            f"not a diagrammar pipeline: expected \"format\": \"{FORMAT}\", "
            f"got {data.get('format')!r}")
    if data.get("version") != VERSION:
        raise PipelineFormatError(f"unsupported pipeline version {data.get('version')!r}; "
                                  f"this diagrammar reads version {VERSION}")
    layers = data.get("layers")
    if not isinstance(layers, list):
        raise PipelineFormatError("a pipeline needs a list under \"layers\"")
    diagram = Pipeline.id(_ty_from_json(data.get("dom"), "dom"))
    for index, layer in enumerate(layers):
        where = f"layer {index}"
        if not isinstance(layer, Mapping):
            raise PipelineFormatError(f"{where}: expected an object, got {layer!r}")
        left = _ty_from_json(layer.get("left", []), where + " left")
        right = _ty_from_json(layer.get("right", []), where + " right")
        box_data = layer.get("box")
        try:
            if isinstance(box_data, Mapping) and box_data.get("box") == "Swap":
                spec = box_data.get("spec", {})
                box = Pipeline.swap(Ty(spec["left"]), Ty(spec["right"]))
            else:
                box = box_from_json(box_data)
        except PipelineFormatError as error:
            raise PipelineFormatError(f"{where}: {error}") from None
        except (KeyError, TypeError, ValueError) as error:
            raise PipelineFormatError(f"{where}: bad box {box_data!r}: {error}") from None
        try:
            diagram = diagram >> Pipeline.id(left) @ box @ Pipeline.id(right)
        except ValueError as error:
            raise PipelineFormatError(f"{where}: {error}") from None
    cod = _ty_from_json(data.get("cod"), "cod")
    if diagram.cod != cod:
        raise PipelineFormatError(f"the layers end on {diagram.cod} but \"cod\" says {cod}")
    return diagram


def to_json(diagram: Pipeline, indent: int | None = 2) -> str:
    """The pipeline as a JSON string."""
    return json.dumps(to_dict(diagram), indent=indent)


def from_json(text: str) -> Pipeline:
    """Reads a pipeline from a JSON string, with the position of a syntax error if any.

    >>> from_json("[" * 100000)
    Traceback (most recent call last):
    ...
    diagrammar.diagrams.errors.PipelineFormatError: the pipeline JSON is nested too deeply ...
    """
    try:
        data = json.loads(text)
        return from_dict(data)
    except json.JSONDecodeError as error:
        raise PipelineFormatError(
            f"malformed pipeline JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:
        raise PipelineFormatError(
            "the pipeline JSON is nested too deeply to be a pipeline (a pipeline is a list of "
            "layers; merges of drafters are one flat list)") from None


def save_pipeline(diagram: Pipeline, path: str | Path) -> Path:
    """Writes the pipeline to a JSON file (UTF-8) and returns its path."""
    path = Path(path)
    path.write_text(to_json(diagram) + "\n", encoding="utf-8")
    return path


def load_pipeline(path: str | Path) -> Pipeline:
    """Reads a pipeline from a JSON file (UTF-8)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PipelineFormatError(f"cannot read pipeline file {path}: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PipelineFormatError(
            f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at position "
            f"{error.start}): pipeline files are JSON in UTF-8") from None
    try:
        return from_json(text)
    except PipelineFormatError as error:
        raise PipelineFormatError(f"{path}: {error}") from None


__all__ = ["to_dict", "from_dict", "to_json", "from_json", "save_pipeline", "load_pipeline"]
