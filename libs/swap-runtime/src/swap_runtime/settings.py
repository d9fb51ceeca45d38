"""Settings shared by every service; each service subclasses with its own env prefix.

A service's settings come from its environment (`<PREFIX>_NAME=value`) and, when `<PREFIX>_SETTINGS_FILE`
names one, from that dotenv file of the same names (what the contract deploy commands write); the
environment wins. A name in the file that is not one of the service's settings is refused at start.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, DotEnvSettingsSource, PydanticBaseSettingsSource

from swap_runtime.tls import Tls, parse_identities, transport


class ServiceSettings(BaseSettings):
    host: str = Field("127.0.0.1", description="Interface the gRPC server binds.")
    port: int = Field(0, ge=0, le=65535, description="gRPC port; 0 picks a free one (tests).")
    log_level: str = Field("INFO", description="Python logging level.")
    log_file: Path | None = Field(None, description="Also write the JSON log lines to this file, rotated.")
    log_file_max_mb: int = Field(50, ge=1, description="Rotate the log file at this size (MiB).")
    log_file_backups: int = Field(5, ge=0, description="Rotated log files kept.")
    shutdown_grace_s: float = Field(5.0, gt=0, description="Seconds in-flight calls get on shutdown.")
    trace_exporter: str = Field(
        "none", description='Tracing: "none", "otlp" (OTEL_EXPORTER_OTLP_ENDPOINT), "console" or "file:<path>".'
    )
    metrics_port: int = Field(0, ge=0, le=65535, description="Port of the Prometheus /metrics endpoint; 0 = off.")
    tls_dir: Path | None = Field(
        None,
        description="Directory with this service's tls.crt, tls.key and the CA's ca.crt (a Kubernetes TLS Secret "
        "layout): every gRPC server and channel uses mutual TLS.",
    )
    tls_clients: str = Field(
        "",
        description="Comma-separated certificate names (CNs) allowed to call this service's methods; empty: any "
        "certificate the CA signed. Health checks are open to any.",
    )
    plaintext: bool = Field(False, description="Plaintext gRPC without TLS: development only.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        name = f"{settings_cls.model_config.get('env_prefix', '')}SETTINGS_FILE"
        path = os.environ.get(name, "").strip()
        if not path:
            return init_settings, env_settings, file_secret_settings
        if not Path(path).is_file():
            raise ValueError(f"{name}={path}: no such file")
        return init_settings, env_settings, DotEnvSettingsSource(settings_cls, env_file=path), file_secret_settings

    def transport(self) -> Tls | None:
        """The TLS material (None in plaintext development); raises when neither is configured."""
        return transport(str(self.model_config.get("env_prefix", "")), self.tls_dir, self.plaintext)

    def allowed_callers(self) -> frozenset[str]:
        return parse_identities(self.tls_clients)
