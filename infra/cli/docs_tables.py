"""Keep the README's settings and prompt.json tables in step with the code.

`python -m infra.cli.docs_tables` rewrites the tables between their markers in README.md and
`docs/prompt.schema.json`; `--check` exits 1 if either is stale (a test runs it).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from config.settings import Settings
from handlers.prompt import json_schema

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SCHEMA = ROOT / "docs" / "prompt.schema.json"
BOUNDS = (
    ("minimum", "≥"),
    ("exclusiveMinimum", ">"),
    ("maximum", "≤"),
    ("exclusiveMaximum", "<"),
    ("minLength", "length ≥"),
    ("maxLength", "length ≤"),
)


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = (
            "(none)"
            if default is None
            else f"`{json.dumps(default) if isinstance(default, dict | list) else default}`"
        )
        text = (field.description or "").replace("|", "\\|")
        rows.append(f"| `DROPREEL_{name.upper()}` | {shown} | {text} |")
    return "\n".join(rows)


def prompt_table() -> str:
    rows = ["| field | type | allowed | meaning |", "|---|---|---|---|"]
    for name, prop in json_schema()["properties"].items():
        options = [x for x in prop.get("anyOf", [prop]) if x.get("type") != "null"]
        spec = options[0] if options else {}
        if "enum" in spec:
            allowed = ", ".join(f"`{v}`" for v in spec["enum"])
        else:
            allowed = ", ".join(f"{sym} {spec[key]}" for key, sym in BOUNDS if key in spec)
        rows.append(
            f"| `{name}` | {spec.get('type', '')} | {allowed} | {prop.get('description', '')} |"
        )
    return "\n".join(rows)


def render(readme: str) -> str:
    for marker, table in (("settings", settings_table()), ("prompt-json", prompt_table())):
        pattern = re.compile(rf"(<!-- {marker} -->\n).*?(<!-- /{marker} -->)", re.S)
        if not pattern.search(readme):
            readme = readme.replace(
                f"<!-- {marker} -->\n", f"<!-- {marker} -->\n<!-- /{marker} -->", 1
            )
        readme = pattern.sub(lambda m, t=table: f"{m.group(1)}{t}\n{m.group(2)}", readme)
    return readme


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    readme, schema = render(README.read_text()), schema_text()
    if "--check" in argv:
        stale = [
            p.name
            for p, text in ((README, readme), (SCHEMA, schema))
            if not p.exists() or p.read_text() != text
        ]
        if stale:
            print(f"stale: {', '.join(stale)}: run `python -m infra.cli.docs_tables`")
            return 1
        return 0
    README.write_text(readme)
    SCHEMA.write_text(schema)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
