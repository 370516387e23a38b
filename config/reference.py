"""Renders the configuration reference (config/REFERENCE.md) from the schema in `config.sections`.

The schema is the single source: the table cannot drift from the loader, and
a test compares the checked-in file with this output. Regenerate with
`python -m config.reference > config/REFERENCE.md`. Prints only; reads no
settings file.
"""

from __future__ import annotations

from dataclasses import MISSING, fields

from config.sections import SECTION_CLASSES, spec_of

_INTRO = """\
# Configuration reference

The daemon reads one TOML file (`mostro-py run --config PATH`; the commented
template is `config/settings.toml`). Key names and defaults follow the Rust
Mostro daemon where it has the key. Every key with a default may be left
out. Unknown sections and keys are refused, and all problems are reported
together, one `section.key: problem` per line.

Environment variables: `MOSTRO_NSEC_PRIVKEY` supplies `nostr.nsec_privkey`
and `MOSTRO_DATABASE_URL` supplies `database.url` when the file leaves them
out (or empty). Secrets never appear in logs, `describe()` or error
messages.
"""


def _default_text(section_field) -> str:  # type: ignore[no-untyped-def]
    spec = spec_of(section_field)
    if spec.required:
        return "**required**" + (f" (or `${spec.env}`)" if spec.env else "")
    default = section_field.default if section_field.default is not MISSING else None
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, str):
        return f'`"{default}"`'
    if isinstance(default, tuple):
        if default and all(isinstance(item, tuple) for item in default):
            return "`{" + ", ".join(f"{k} = {v}" for k, v in default) + "}`"
        if not default:
            return "`{}`" if "table" in spec.rule.type_label else "`[]`"
        return "`[" + ", ".join(f'"{item}"' for item in default) + "]`"
    return f"`{default}`"


def render_reference() -> str:
    """The whole REFERENCE.md text."""
    parts = [_INTRO]
    for section_name, section_cls in SECTION_CLASSES.items():
        parts.append(f"\n## `[{section_name}]`\n\n")
        parts.append("| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n")
        for section_field in fields(section_cls):
            spec = spec_of(section_field)
            parts.append(
                f"| `{section_field.name}` | {spec.rule.type_label} | {_default_text(section_field)} "
                f"| {spec.rule.constraint()} | {spec.doc} |\n"
            )
    return "".join(parts)


if __name__ == "__main__":
    print(render_reference(), end="")
