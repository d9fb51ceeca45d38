"""Writes deploy/env.example from the services' settings classes, the one source of truth for every
variable; `--check` fails when the file is stale."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any, cast

from pydantic import TypeAdapter
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "deploy" / "env.example"
SETTINGS = [
    ("chain-base", "chain_base.config", "ChainBaseSettings"),
    ("chain-near", "chain_near.config", "ChainNearSettings"),
    ("quote", "quote.config", "QuoteSettings"),
    ("session", "session.config", "SessionSettings"),
    ("gateway", "gateway.config", "GatewaySettings"),
]


def render() -> str:
    out = ["# Every setting of every service, generated from its settings class by scripts/gen_env_example.py.", ""]
    for service, module, name in SETTINGS:
        try:
            cls: type[BaseSettings] = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        prefix = str(cls.model_config.get("env_prefix", ""))
        out.append(f"# --- {service} ---")
        for field, info in cls.model_fields.items():
            default = info.get_default(call_default_factory=True)
            if default is None:
                shown = ""
            elif isinstance(default, str | int | float | bool | Path):
                shown = str(default)
            else:  # lists, dicts, models: the JSON the variable takes
                shown = TypeAdapter[Any](cast(Any, info.annotation)).dump_json(default).decode()
            out.append(f"# {info.description or ''}")
            out.append(f"{prefix}{field.upper()}={shown}")
        out.append("")
    return "\n".join(out)


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not TARGET.exists() or TARGET.read_text() != text:
            sys.stderr.write("deploy/env.example is stale: run 'make env-example'\n")
            return 1
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
