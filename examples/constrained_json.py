"""Structured output: a Pydantic class becomes a JSON Schema, the schema a grammar, and a
speculative pipeline decodes JSON that is valid under it — exactly the tokens constrained
greedy decoding writes, faster.

1. ``Release`` (a Pydantic model) -> JSON Schema -> the ``grammar`` resource of a
   ``Constrain`` box (the KnowCoder idea: the schema written as code);
2. prompt lookup drafts, the grammar prunes drafts that leave the language and masks the
   target's scores, greedy acceptance commits;
3. the output is parsed and validated by Pydantic (and by ``jsonschema``, independently), and
   compared with constrained decoding without speculation.

Run:  python examples/constrained_json.py [--tiny] [--engine xgrammar]
"""

from __future__ import annotations

import argparse
import json

import jsonschema
from pydantic import BaseModel, ConfigDict, Field

from diagrammar import Constrain, NoDraft, PromptLookup, speculative
from diagrammar.bench.config import load_bench_model
from diagrammar.functors import Execute


class Dependency(BaseModel):
    model_config = ConfigDict(extra="forbid")     # additionalProperties: false
    name: str = Field(max_length=24)
    version: str = Field(pattern=r"^[0-9]{1,3}\.[0-9]{1,3}(\.[0-9]{1,3})?$")


class Release(BaseModel):
    model_config = ConfigDict(extra="forbid")
    package: str = Field(max_length=24)
    major: int = Field(ge=0, le=99)
    stable: bool
    dependencies: list[Dependency] = Field(max_length=3)


PROMPT = '''import json

# The release manifest, as JSON:
RELEASE = """{"package": "textwrap", "major": 3, "stable": true, "dependencies": []}"""
NEXT = """'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny default model")
    parser.add_argument("--engine", default="llguidance", choices=["llguidance", "xgrammar"])
    parser.add_argument("--max-new-tokens", type=int, default=128)
    args = parser.parse_args()
    lm = load_bench_model("default:tiny" if args.tiny else "default:small").lm
    # compact JSON (no free whitespace between tokens: a small model would fill it with
    # newlines); x-guidance is the engines' option key, ignored by JSON Schema validators
    schema = {**Release.model_json_schema(), "x-guidance": {"whitespace_flexible": False}}
    execute = Execute(lm, resources={"release": schema})
    box = Constrain(grammar="release", engine=args.engine)
    fast = execute(speculative(PromptLookup(), constrain=box))
    plain = execute(speculative(NoDraft(), constrain=box))
    result = fast.generate(PROMPT, args.max_new_tokens)
    reference = plain.generate(PROMPT, args.max_new_tokens)
    print(result.text)
    print("---")
    text = lm.decode([t for t in result.tokens if t not in lm.eos_token_ids])
    try:
        release = Release.model_validate_json(text)
        jsonschema.validate(json.loads(text), schema)
        print(f"valid Release: {release!r}")
    except ValueError:
        print(f"the budget of {args.max_new_tokens} tokens ran out before the JSON closed "
              "(every prefix written is valid): ask for more tokens")
    print(f"identical to constrained greedy without speculation: "
          f"{result.tokens == reference.tokens}")
    print(f"speculative: {result.stats.summary()}")
    print(f"plain:       {reference.stats.summary()}")


if __name__ == "__main__":
    main()
