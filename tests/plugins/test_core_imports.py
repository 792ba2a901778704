"""Contract test: plugins import only what ``contrastkit.core`` exports.

Like tests/core/test_hooks_documented.py does for the hooks' docs: every
``plugins/**/*.py`` is parsed, and every ``from contrastkit.core... import X``
must be ``from contrastkit.core import X`` with X in core's public surface
(``contrastkit.core._EXPORTS``).  Core's submodules are free to move; the names
a plugin (built-in or third-party) relies on are the exported ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import contrastkit.core as core
import contrastkit.plugins as plugins_pkg

PLUGIN_FILES = sorted(Path(plugins_pkg.__file__).parent.rglob("*.py"))


def _core_imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[:2] == ["contrastkit", "core"]:
            yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[:2] == ["contrastkit", "core"]:
                    yield node.lineno, a.name, None


def test_plugin_files_found():
    assert len(PLUGIN_FILES) > 20


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_plugin_imports_only_core_exports(path):
    bad = []
    for line, module, names in _core_imports(path):
        if module != "contrastkit.core" or names is None:
            bad.append(f"line {line}: {'from ' + module + ' import ' + ', '.join(names) if names else 'import ' + module}"
                       " (import the name from contrastkit.core; export it there if plugins need it)")
            continue
        bad += [f"line {line}: {n} is not exported by contrastkit.core (add it to _EXPORTS)"
                for n in names if n not in core._EXPORTS]
    assert not bad, f"{path}: " + "; ".join(bad)


def test_every_export_resolves():
    for name in core._EXPORTS:
        assert getattr(core, name) is not None, name
