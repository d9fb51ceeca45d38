"""The error reasons the client docs promise are raised by the code and asserted by a test: a reason
documented but never raised, or raised but never checked, fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLIENT_DOCS = ("docs/api.md", "docs/integrate.md")
# Backticked UPPER_SNAKE words in those docs that are not error reasons.
GRPC_CODES = {
    "INVALID_ARGUMENT", "FAILED_PRECONDITION", "UNAUTHENTICATED", "NOT_FOUND", "ALREADY_EXISTS", "ABORTED",
    "RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED", "GRPC_CODE", "UPPER_SNAKE",
}  # fmt: skip
NOT_REASONS = GRPC_CODES | {"GET", "EVM_PRIVATE_KEY", "NEAR_ACCOUNT_ID", "NEAR_PRIVATE_KEY"}


def _settings() -> set[str]:
    text = (REPO / "deploy/env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))


def documented_reasons() -> list[str]:
    words: set[str] = set()
    for doc in CLIENT_DOCS:
        words |= set(re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{4,})`", (REPO / doc).read_text()))
    return sorted(words - NOT_REASONS - _settings())


def _files(root: str, *suffixes: str) -> list[Path]:
    return [p for p in (REPO / root).rglob("*") if p.suffix in suffixes and p.is_file()]


SOURCES = "\n".join(
    p.read_text()
    for p in [*_files("services", ".py"), *_files("libs", ".py"), *_files("deploy/envoy", ".yaml", ".tmpl")]
)
TESTS = "\n".join(p.read_text() for p in _files("tests", ".py") if p.name != Path(__file__).name)


def test_the_docs_document_reasons() -> None:
    assert {"QUOTE_NOT_FOUND", "SECRET_TOO_LATE", "API_KEY_MISSING"} <= set(documented_reasons())


@pytest.mark.parametrize("reason", documented_reasons())
def test_each_documented_reason_is_raised_and_tested(reason: str) -> None:
    quoted = re.compile(rf"[\"']{reason}[\"']|\b{reason}\b")
    assert quoted.search(SOURCES), f"{reason} is documented but nothing in services/, libs/ or Envoy raises it"
    assert re.search(rf"\b{reason}\b", TESTS), f"{reason} is documented and raised but no test checks it"
