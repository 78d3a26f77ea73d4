"""The dependency rule of DESIGN.md section 2, checked on the source tree.

import-linter checks the same contracts in CI; this test keeps them in the plain test run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "opencatalog"

#: layer -> what it may import from opencatalog (besides itself) and which outside packages.
RULES = {
    "domain": ({"opencatalog.domain", "opencatalog.errors"}, {"attrs"}),
    "ports": ({"opencatalog.domain", "opencatalog.ports", "opencatalog.errors"}, {"attrs"}),
    # content processing (fetch, detect, extract, preview): pure functions over streams, with
    # the parsing libraries they need; no ports, services or adapters
    "pipeline": (
        {"opencatalog.domain", "opencatalog.errors", "opencatalog.pipeline"},
        {"attrs", "charset_normalizer", "defusedxml", "openpyxl", "pypdf", "puremagic"},
    ),
    "services": (
        {
            "opencatalog.domain",
            "opencatalog.ports",
            "opencatalog.errors",
            "opencatalog.pipeline",
            "opencatalog.services",
        },
        {"attrs"},
    ),
}
STDLIB = set(__import__("sys").stdlib_module_names)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def _allowed(name: str, internal: set[str], external: set[str]) -> bool:
    top = name.split(".")[0]
    if top == "opencatalog":
        return any(name == p or name.startswith(p + ".") for p in internal)
    return top in STDLIB or top in external or top == "__future__"


@pytest.mark.parametrize("layer", sorted(RULES))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    internal, external = RULES[layer]
    bad = [
        f"{path.relative_to(SRC)}:{line}: {name}"
        for path in sorted((SRC / layer).rglob("*.py"))
        for line, name in _imports(path)
        if not _allowed(name, internal, external)
    ]
    assert not bad, "imports that break the dependency rule:\n" + "\n".join(bad)


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    assert not _allowed("sqlalchemy.orm", *RULES["services"])
    assert not _allowed("opencatalog.adapters.memory", *RULES["services"])
    assert _allowed("opencatalog.domain.model", *RULES["ports"])


def test_importing_the_package_does_no_work() -> None:
    """Nothing heavy is imported or built at import time: no driver, no framework."""
    import subprocess
    import sys

    code = (
        "import sys, opencatalog\n"
        "heavy = [m for m in ('sqlalchemy', 'whoosh', 'tantivy', 'fsspec', 'psycopg',"
        " 'starlette', 'click', 'alembic') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
