"""The ``Monitor`` box's implementation, and what its ``context`` resource may be.

A context resource is code the static analysis reads before the prompt (the paper's
repository context: definitions the model does not see):

* ``None`` (or no ``context`` named): the prompt alone;
* a ``str``: code;
* a path (``pathlib.Path``) to a file (its text is the code) or to a folder (a jedi project
  root: imports in the code find that folder's modules);
* a ``dict`` with ``"code"`` (text, or a path to a file) and/or ``"project"`` (a folder).

>>> load_context({"code": "class Point:\\n    x = 1", "project": None}).code
'class Point:\\n    x = 1'
>>> load_context(3)
Traceback (most recent call last):
...
ValueError: cannot use 3 (int) as a monitor's context: give code text, a path to a file or \
a folder, or {"code": ..., "project": ...}
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from diagrammar.decoding.constraints.monitor import JediMonitor, MonitorContext, MonitorStep
from diagrammar.functors.grammars import model_tokenizer

_KINDS = 'code text, a path to a file or a folder, or {"code": ..., "project": ...}'


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the monitor's context file {path}: {error}") from None


def load_context(value: Any) -> MonitorContext:
    """The :class:`MonitorContext` of a context resource (see the module)."""
    if value is None:
        return MonitorContext()
    if isinstance(value, MonitorContext):
        return value
    if isinstance(value, str):
        return MonitorContext(code=value)
    if isinstance(value, os.PathLike):
        path = Path(value)
        if path.is_dir():
            return MonitorContext(project=str(path))
        return MonitorContext(code=_read(path))
    if isinstance(value, Mapping):
        unknown = set(value) - {"code", "project"}
        if unknown:
            raise ValueError(f"a monitor's context has the keys 'code' and 'project', not "
                             f"{', '.join(map(repr, sorted(unknown)))}")
        code = value.get("code") or ""
        if isinstance(code, os.PathLike):
            code = _read(Path(code))
        project = value.get("project")
        if project is not None and not Path(project).is_dir():
            raise ValueError(f"the monitor's project {project!r} is not a folder")
        if not isinstance(code, str):
            raise ValueError(f"the monitor's context code must be text or a path, not {code!r}")
        return MonitorContext(code=code, project=None if project is None else str(project))
    raise ValueError(f"cannot use {value!r} ({type(value).__name__}) as a monitor's context: "
                     f"give {_KINDS}")


def _jedi(box: Any, execute: Any, context: MonitorContext) -> MonitorStep:
    model = execute.model
    tokenizer = model_tokenizer(box, model, "a monitor")
    eos = sorted(getattr(model, "eos_token_ids", ()) or ())
    monitor = JediMonitor(tokenizer, model.vocab_size, eos, context=context,
                          timeout=float(box.spec["timeout"]))
    return MonitorStep(monitor)


#: Monitor kind -> factory ``(box, execute, context) -> implementation``.
MONITORS: dict[str, Callable[[Any, Any, MonitorContext], Any]] = {"jedi": _jedi}


def monitor_implementation(box: Any, execute: Any) -> Any:
    """The ``Monitor`` box on a backend: its kind's monitor over the model's tokenizer, as a
    constrain step (see :mod:`diagrammar.decoding.constraints.monitor`)."""
    kind = box.spec["kind"]
    if kind not in MONITORS:
        raise ValueError(f"box {box.name!r}: unknown monitor kind {kind!r}; known: "
                         f"{', '.join(sorted(MONITORS))}")
    name = box.spec.get("context")
    try:
        context = load_context(execute.resource(box, "context") if name is not None else None)
    except ValueError as error:
        raise ValueError(f"box {box.name!r}: {error}") from None
    return MONITORS[kind](box, execute, context)


__all__ = ["MONITORS", "load_context", "monitor_implementation"]
