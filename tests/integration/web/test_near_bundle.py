"""The page's near-api-js bundle (static/near-api-js.js) is what the versions pinned in package.json build: it
cannot drift from the lock file unnoticed, and nothing in it needs `eval` (the page's CSP forbids it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BUNDLE = ROOT / "services" / "gateway" / "src" / "gateway" / "static" / "near-api-js.js"
BUILDER = ROOT / "scripts" / "build_near_bundle.mjs"
NODE = shutil.which("node")


def pins() -> dict[str, str]:
    dev: dict[str, str] = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    return dev


def test_bundle_header_names_the_pinned_versions() -> None:
    first = BUNDLE.read_text().splitlines()[0]
    match = re.fullmatch(r"// near-api-js (\S+) \(.*\) bundled by esbuild (\S+)\.", first)
    assert match, first
    assert (match[1], match[2]) == (pins()["near-api-js"], pins()["esbuild"])
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/near-api-js"]["version"] == pins()["near-api-js"]
    assert lock["node_modules/esbuild"]["version"] == pins()["esbuild"]


def test_bundle_needs_no_eval_and_exports_what_the_page_uses() -> None:
    text = BUNDLE.read_text()
    assert not re.search(r"\beval\(|new Function\(", text)
    assert re.search(r"^export \{[^}]*\bAccount\b[^}]*\bJsonRpcProvider\b[^}]*\bKeyPair\b[^}]*\};$", text, re.M)
    app = (BUNDLE.parent / "app.js").read_text()
    assert 'import("./near-api-js.js")' in app


@pytest.mark.skipif(NODE is None, reason="no node on PATH")
@pytest.mark.skipif(
    not (ROOT / "node_modules" / "near-api-js").is_dir() or not (ROOT / "node_modules" / "esbuild").is_dir(),
    reason="no node_modules/near-api-js or esbuild (run npm ci)",
)
def test_committed_bundle_is_what_the_pinned_packages_build() -> None:
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(BUILDER), "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
