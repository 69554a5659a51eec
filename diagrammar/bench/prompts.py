"""Benchmark prompts, cut deterministically from the default model's held-out modules.

Four categories, in the spirit of Spec-Bench, each exercising a different kind of draft:

* ``code``: code completion. A function's head (decorators, signature, docstring and the
  first third of its body statements), after a few lines of the code before it; the model
  continues the body.
* ``edit``: repetition-heavy editing. The prompt shows a whole function, then starts the same
  function again under a new name (``name`` becomes ``name_v2``); the continuation re-emits the
  body. Prompt lookup should shine here.
* ``retrieval``: long context with related code. Several hundred tokens of the definitions the
  target function refers to (and its nearest neighbours), then the target function's head.
* ``docstring``: comment text. Code before a function or class, its signature and the first
  line of its docstring; the continuation is English prose.
* ``third-party``: code completion as in ``code``, on modules of installed third-party packages
  (:mod:`~diagrammar.bench.third_party`): real code users run, with no artificial repetition.

The first four use only :data:`~diagrammar.models.default.HELDOUT_MODULES`, the last only
packages outside every default recipe's corpus: the default model never saw either. Functions
are found with :mod:`ast`; which ones are picked is decided by a SHA-256 of their names, so the
prompts are the same on every run and machine (given the same Python standard library).

Example:
    >>> prompts = build_prompts(per_category=2)
    >>> sorted({p.category for p in prompts}) == sorted(CATEGORIES)
    True
    >>> [p.id for p in prompts] == [p.id for p in build_prompts(per_category=2)]
    True
    >>> edit = next(p for p in prompts if p.category == "edit")
    >>> edit.name.rsplit(".", 1)[-1] + "_v2" in edit.text
    True
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "CATEGORIES",
    "CATEGORY_TITLES",
    "Prompt",
    "PromptError",
    "approx_tokens",
    "build_prompts",
]

#: The prompt categories, in report order.
CATEGORIES: tuple[str, ...] = ("code", "edit", "retrieval", "docstring", "third-party")

#: A one-line description of each category, for reports.
CATEGORY_TITLES: dict[str, str] = {
    "code": "code completion (continue a function body)",
    "edit": "repetition-heavy editing (re-emit a shown function under a new name)",
    "retrieval": "long context with related code (retrieval-like)",
    "docstring": "docstring / comment text",
    "third-party": "third-party code (continue a function body of an installed package)",
}

#: Lines of code before the function kept as context in ``code`` and ``docstring`` prompts.
CONTEXT_LINES = 20
#: Token range of ``retrieval`` prompts (the upper end is also capped by ``max_prompt_tokens``).
LONG_MIN_TOKENS, LONG_MAX_TOKENS = 300, 700


class PromptError(ValueError):
    """Not enough prompts of a category could be cut under the given limits."""


@dataclass(frozen=True)
class Prompt:
    """One benchmark prompt.

    Attributes:
        category: one of :data:`CATEGORIES`.
        module: the held-out module it was cut from.
        name: qualified name of the function or class it is about, e.g. ``"Fraction.limit"``.
        text: the prompt text.
    """

    category: str
    module: str
    name: str
    text: str

    @property
    def id(self) -> str:
        """A stable identifier, ``category/module.name``."""
        return f"{self.category}/{self.module}.{self.name}"


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate of a text's token count (about 3.5 characters per token).

    Example:
        >>> approx_tokens("def f(x):\\n    return x\\n")
        7
    """
    return (len(text) * 2 + 6) // 7


# --------------------------------------------------------------------------- source analysis


@dataclass(frozen=True)
class _Def:
    """A function or class definition in a module."""

    module: str
    qualname: str
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    parent: ast.ClassDef | None  # the enclosing class of a method

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def start(self) -> int:
        """First line (1-based), decorators included."""
        return min([d.lineno for d in self.node.decorator_list] + [self.node.lineno])

    @property
    def end(self) -> int:
        return self.node.end_lineno or self.node.lineno

    @property
    def is_function(self) -> bool:
        return not isinstance(self.node, ast.ClassDef)

    def docstring_node(self) -> ast.Expr | None:
        body = self.node.body
        if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            return body[0]
        return None

    def statements(self) -> list[ast.stmt]:
        """Body statements, the docstring left out."""
        return self.node.body[1:] if self.docstring_node() is not None else list(self.node.body)

    def header_end(self) -> int:
        """Last line of the signature (the line before the first body statement)."""
        return self.node.body[0].lineno - 1


class _Module:
    """A held-out module's lines and definitions."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.lines = source.splitlines(keepends=True)
        self.defs: list[_Def] = []
        tree = ast.parse(source)
        self._collect(tree.body, prefix="", parent=None)
        # Lines where a statement starts: a context cut there never opens inside a string.
        self.starts = sorted({
            min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            for node in ast.walk(tree) if isinstance(node, ast.stmt)})

    def _collect(self, body: Sequence[ast.stmt], prefix: str, parent: ast.ClassDef | None) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qualname = prefix + node.name
                self.defs.append(_Def(self.name, qualname, node, parent))
                if isinstance(node, ast.ClassDef):
                    self._collect(node.body, qualname + ".", node)

    def text(self, first: int, last: int) -> str:
        """Lines ``first..last`` (1-based, inclusive)."""
        return "".join(self.lines[max(first, 1) - 1:last])

    def before(self, line: int, count: int) -> str:
        """Up to ``count`` lines just before ``line``, starting where a statement starts."""
        first = next((s for s in self.starts if line - count <= s < line), line)
        chunk = self.lines[first - 1:line - 1]
        while chunk and not chunk[0].strip():
            chunk = chunk[1:]
        return "".join(chunk)

    def class_header(self, cls: ast.ClassDef) -> str:
        """The ``class X(...):`` line(s) of a class."""
        end = cls.body[0].lineno - 1
        doc = cls.body[0]
        if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant):
            end = doc.lineno - 1
        return self.text(cls.lineno, max(end, cls.lineno))


def _rank(category: str, d: _Def) -> str:
    return hashlib.sha256(f"{category}:{d.module}:{d.qualname}".encode()).hexdigest()


def _round_robin(streams: Sequence[Iterator[Prompt]]) -> Iterator[Prompt]:
    """Interleaves the modules' prompt streams: first of each, then second of each..."""
    live = list(streams)
    while live:
        for stream in list(live):
            item = next(stream, None)
            if item is None:
                live.remove(stream)
            else:
                yield item


def _head_cut(d: _Def) -> int | None:
    """Last line of a function's head: signature, docstring and a third of the statements."""
    statements = d.statements()
    if len(statements) < 3:
        return None
    cut = statements[max(1, len(statements) // 3)]
    return cut.lineno - 1


# --------------------------------------------------------------------------- categories


def _code(mod: _Module, d: _Def, fits: Callable[[str], bool]) -> str | None:
    cut = _head_cut(d) if d.is_function else None
    if cut is None or d.end - d.start < 6:
        return None
    head = mod.text(d.start, cut)
    for context in (CONTEXT_LINES, 0):
        text = mod.before(d.start, context) + head
        if fits(text):
            return text
    return None


def _edit(mod: _Module, d: _Def, fits: Callable[[str], bool]) -> str | None:
    if not d.is_function or d.name.startswith("__") or len(d.statements()) < 3:
        return None
    if not 6 <= d.end - d.start <= 40:
        return None
    original = textwrap.dedent(mod.text(d.start, d.end))
    header = textwrap.dedent(mod.text(d.start, d.header_end()))
    keyword = "async def " if isinstance(d.node, ast.AsyncFunctionDef) else "def "
    old, new = f"{keyword}{d.name}(", f"{keyword}{d.name}_v2("
    if old not in header:
        return None
    text = original.rstrip("\n") + "\n\n\n" + header.replace(old, new, 1)
    return text if fits(text) else None


def _referenced(d: _Def) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(d.node):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
    return names


def _retrieval(mod: _Module, d: _Def, count: Callable[[str], int], limit: int) -> str | None:
    cut = _head_cut(d) if d.is_function else None
    if cut is None:
        return None
    head = mod.text(d.start, cut)
    if count(head) > limit // 3:
        return None
    low, high = LONG_MIN_TOKENS, min(LONG_MAX_TOKENS, limit)
    wanted = _referenced(d)
    pool = [o for o in mod.defs
            if o.is_function and o.end - o.start < 80
            and not (o.start <= d.start and d.end <= o.end)]
    # Definitions the target refers to first (nearest first), then its nearest neighbours.
    pool.sort(key=lambda o: (o.name not in wanted, abs(o.start - d.start), o.start))
    chosen: list[_Def] = []
    total = count(head)
    for other in pool:
        if total >= low and other.name not in wanted:
            break
        size = count(mod.text(other.start, other.end)) + 2
        if total + size <= high - 16:
            chosen.append(other)
            total += size
    if total < low:
        return None
    parts: list[str] = []
    current: ast.ClassDef | None = None
    for other in sorted(chosen, key=lambda o: o.start):
        if other.parent is not current and other.parent is not None:
            parts.append(mod.class_header(other.parent))
        elif other.parent is None and current is not None:
            parts.append("\n")
        current = other.parent
        parts.append(mod.text(other.start, other.end) + "\n")
    if d.parent is not None and d.parent is not current:
        parts.append(mod.class_header(d.parent))
    text = "".join(parts) + head
    if not low <= count(text) <= high:
        return None
    return text


def _docstring(mod: _Module, d: _Def, fits: Callable[[str], bool]) -> str | None:
    doc = d.docstring_node()
    if doc is None or (doc.end_lineno or doc.lineno) - doc.lineno < 3:
        return None
    value = doc.value.value if isinstance(doc.value, ast.Constant) else ""
    if not isinstance(value, str) or len(value.strip()) < 200:
        return None
    head = mod.text(d.start, doc.lineno)
    for context in (CONTEXT_LINES, 0):
        text = mod.before(d.start, context) + head
        if fits(text):
            return text
    return None


# --------------------------------------------------------------------------- public API


def build_prompts(
    per_category: int = 20,
    *,
    count_tokens: Callable[[str], int] = approx_tokens,
    max_prompt_tokens: int = 880,
    categories: Sequence[str] = CATEGORIES,
    sources: Mapping[str, str] | None = None,
    third_party: Mapping[str, str] | None = None,
) -> list[Prompt]:
    """``per_category`` prompts of each category, in :data:`CATEGORIES` order.

    Args:
        per_category: prompts wanted per category.
        count_tokens: the target model's token count of a text (e.g.
            ``lambda s: len(tokenizer(s).input_ids)``); an estimate by default.
        max_prompt_tokens: the longest prompt allowed (the model's context minus the new
            tokens).
        categories: which categories, a subset of :data:`CATEGORIES`.
        sources: module name -> source text; the held-out modules by default.
        third_party: module name -> source text of the ``third-party`` category; by default
            :func:`~diagrammar.bench.third_party.third_party_sources` (read only when that
            category is asked for).

    Raises:
        PromptError: a category yields fewer than ``per_category`` prompts under the limits.

    Example:
        >>> code = build_prompts(1, categories=["code"])[0]
        >>> code.category, code.text.count("def ") >= 1
        ('code', True)
    """
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown prompt categories {unknown}; known: {', '.join(CATEGORIES)}")
    if per_category < 1:
        raise ValueError(f"per_category must be at least 1, got {per_category}")
    if sources is None:
        from diagrammar.models.default import heldout_sources

        sources = heldout_sources()
    modules = [_Module(name, text) for name, text in sources.items()]
    outside: list[_Module] = []
    if "third-party" in categories:
        if third_party is None:
            from diagrammar.bench.third_party import third_party_sources

            third_party = third_party_sources()
        outside = [_Module(name, text) for name, text in third_party.items()]

    counts: dict[str, int] = {}

    def count(text: str) -> int:
        if text not in counts:
            counts[text] = count_tokens(text)
        return counts[text]

    def fits(text: str) -> bool:
        return count(text) <= max_prompt_tokens

    def cut(category: str, mod: _Module, d: _Def) -> str | None:
        if category in ("code", "third-party"):
            return _code(mod, d, fits)
        if category == "edit":
            return _edit(mod, d, fits)
        if category == "retrieval":
            return _retrieval(mod, d, count, max_prompt_tokens)
        return _docstring(mod, d, fits)

    def accepted(category: str, mod: _Module) -> Iterator[Prompt]:
        for d in sorted(mod.defs, key=lambda d: _rank(category, d)):
            text = cut(category, mod, d)
            if text is not None and text.strip():
                yield Prompt(category, mod.name, d.qualname, text)

    prompts: list[Prompt] = []
    for category in (c for c in CATEGORIES if c in categories):
        pool = outside if category == "third-party" else modules
        found = list(itertools.islice(
            _round_robin([accepted(category, mod) for mod in pool]), per_category))
        if len(found) < per_category:
            names = ", ".join(mod.name for mod in pool) or "none (no candidate package found)"
            raise PromptError(
                f"only {len(found)} {category!r} prompts of at most {max_prompt_tokens} tokens "
                f"could be cut from modules {names}; ask for fewer prompts or "
                "allow longer ones (a model with a longer context)")
        prompts.extend(found)
    return prompts
