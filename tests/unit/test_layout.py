"""The product does not lean on its tooling: no service, library or the CLI imports the development harness
(tools/, package swap_devnet), nor lists it as a dependency."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = [*sorted((ROOT / "services").glob("*")), ROOT / "libs" / "swap-runtime", ROOT / "cli"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_no_product_package_imports_the_harness() -> None:
    importing = [
        str(path.relative_to(ROOT))
        for package in PRODUCT
        for path in sorted((package / "src").rglob("*.py"))
        if "swap_devnet" in _imports(path)
    ]
    assert len(PRODUCT) >= 7 and importing == []


def test_no_product_package_depends_on_the_harness() -> None:
    for package in PRODUCT:
        deps = tomllib.loads((package / "pyproject.toml").read_text())["project"]["dependencies"]
        assert not [d for d in deps if d.startswith("swap-devnet")], package.name
