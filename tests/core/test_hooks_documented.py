"""Contract test: docs/hooks.md documents every hook with its exact signature.

In the manner of datasette's ``test_plugin_hooks_are_documented``: every
function in :mod:`contrastkit.core.hookspecs` that carries the hookspec marker
must have a level-2 heading ``## `name(param, ...)` `` in docs/hooks.md whose
parameter names are those of the spec, in order; and every such heading must
name a hook that exists.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from contrastkit.core import hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"

#: A level-2 heading that is a call signature, with or without backticks: ## `name(a, b)`
SIGNATURE_HEADING = re.compile(r"^##[ \t]+`?(?P<name>[A-Za-z_]\w*)\((?P<args>[^()\n]*)\)`?[ \t]*$", re.MULTILINE)


def _normalise(name: str, args: str) -> str:
    params = [a.strip() for a in args.split(",") if a.strip()]
    return f"{name}({', '.join(params)})"


def spec_signatures() -> dict[str, str]:
    """``{hook name: "name(param, ...)"}`` for every hookspec in contrastkit.core.hookspecs."""
    marker = f"{hookspecs.PROJECT}_spec"
    out = {}
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if hasattr(fn, marker):
            out[name] = _normalise(name, ", ".join(inspect.signature(fn).parameters))
    return out


def documented_signatures() -> list[tuple[str, str]]:
    """``(hook name, signature)`` for every signature heading of docs/hooks.md, in order."""
    if not DOCS.is_file():
        pytest.fail(f"{DOCS} is missing; it must document every hook in contrastkit.core.hookspecs.")
    text = DOCS.read_text(encoding="utf-8")
    return [(m.group("name"), _normalise(m.group("name"), m.group("args"))) for m in SIGNATURE_HEADING.finditer(text)]


SPECS = spec_signatures()


def test_hookspecs_are_found():
    # guards the marker detection itself: an empty SPECS would make every other test pass vacuously
    assert set(hookspecs.REGISTRATION_HOOKS) <= set(SPECS)
    assert "register_commands" in SPECS


@pytest.mark.parametrize("hook", sorted(SPECS))
def test_hook_is_documented_with_its_signature(hook):
    docs = dict(documented_signatures())
    assert hook in docs, f"hook {hook} is not documented in docs/hooks.md; add a heading '## `{SPECS[hook]}`'."
    assert docs[hook] == SPECS[hook], (
        f"docs/hooks.md documents {docs[hook]}, but the hookspec is {SPECS[hook]}."
    )


def test_documented_hooks_exist():
    unknown = [sig for name, sig in documented_signatures() if name not in SPECS]
    assert not unknown, f"docs/hooks.md documents hook(s) that do not exist in hookspecs: {', '.join(unknown)}."


def test_each_hook_documented_once():
    names = [name for name, _ in documented_signatures()]
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"docs/hooks.md documents {', '.join(twice)} more than once."


def test_heading_parser():
    text = "## `register_x(register)`\n## register_y(a,  b)\n### `not_me(a)`\n## Prose (with brackets)\n"
    found = [(m.group("name"), _normalise(m.group("name"), m.group("args"))) for m in SIGNATURE_HEADING.finditer(text)]
    assert found == [("register_x", "register_x(register)"), ("register_y", "register_y(a, b)")]


# ---- capabilities: the attributes of the base classes, documented with their defaults ------------

_CAP_ROW = re.compile(r"^\|\s*`(?P<cls>\w+)`\s*\|\s*`(?P<attr>\w+)`\s*\|\s*`(?P<default>[^`]*)`\s*\|", re.MULTILINE)


def documented_capabilities() -> dict[tuple[str, str], str]:
    """``{(base class, attribute): default as written}`` from the capabilities table of docs/hooks.md."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Capabilities", 1)[1].split("\n## ", 1)[0]
    return {(m.group("cls"), m.group("attr")): m.group("default") for m in _CAP_ROW.finditer(section)}


def test_capabilities_documented_with_their_defaults():
    import contrastkit.core as core

    caps = documented_capabilities()
    assert len(caps) >= 10
    for (cls_name, attr), default in caps.items():
        cls = getattr(core, cls_name)
        assert attr in vars(cls) or any(attr in vars(b) for b in cls.__mro__), f"{cls_name} declares no {attr}"
        assert repr(getattr(cls, attr)) == default, (
            f"docs/hooks.md gives {cls_name}.{attr} the default {default}, the class {getattr(cls, attr)!r}.")


def test_every_capability_core_reads_is_documented():
    """Every ``declared(obj, Base, "attr")`` in core names a documented (Base, attr)."""
    caps = documented_capabilities()
    read = set()
    core_dir = Path(hookspecs.__file__).parent
    for f in core_dir.rglob("*.py"):
        for m in re.finditer(r"declared\([^,()]+(?:\([^()]*\))?[^,()]*,\s*(\w+),\s*\"(\w+)\"\)", f.read_text()):
            read.add((m.group(1), m.group(2)))
    assert read, "no declared(...) read found in core"
    assert read <= set(caps), f"core reads undocumented capabilities: {sorted(read - set(caps))}"
