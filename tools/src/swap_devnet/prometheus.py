"""A real Prometheus (Debian's `prometheus` binary) scraping the local stack and evaluating the deployed alert
rules (deploy/prometheus/alerts.yml), so that a run can say which alerts fired, as an operator's would.

    with Prometheus(work_dir, {"session": "127.0.0.1:9101", ...}) as prom:
        ...
        prom.fired()   # every alert that was firing at any evaluation since the start
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Self

from swap_devnet.artifacts import repo_root
from swap_devnet.child import Child, StartStop
from swap_devnet.procs import free_port

ALERT_RULES = Path("deploy") / "prometheus" / "alerts.yml"


def available() -> bool:
    return shutil.which("prometheus") is not None


class Prometheus(StartStop):
    def __init__(self, work_dir: Path, targets: dict[str, str], interval_s: float = 2.0) -> None:
        """`targets`: job name -> host:port of a /metrics endpoint."""
        self.dir = work_dir / "prometheus"
        self.targets = targets
        self.interval_s = interval_s
        self.port = free_port()
        self.child = Child("prometheus", work_dir / "prometheus.log")
        self.started = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self.dir.mkdir(parents=True, exist_ok=True)
        rules = self.dir / "alerts.yml"
        rules.write_text((repo_root() / ALERT_RULES).read_text())
        every = f"{round(self.interval_s * 1000)}ms"  # Prometheus durations take whole units
        config = {
            "global": {"scrape_interval": every, "evaluation_interval": every, "scrape_timeout": every},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target], "labels": {"service": job}}]}
                for job, target in sorted(self.targets.items())
            ],
        }
        path = self.dir / "prometheus.yml"
        path.write_text(json.dumps(config, indent=2) + "\n")  # YAML is a superset of JSON
        self.child.spawn(
            [
                "prometheus",
                f"--config.file={path}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            own_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as reply:  # noqa: S310 - loopback
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if not self.child.running or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not get ready:\n{self.child.tail()}")
            time.sleep(0.2)
        self.started = time.time()
        return self

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 - loopback
            body = json.loads(reply.read())
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus refused {expr!r}: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def fired(self) -> list[dict[str, str]]:
        """Every alert (name and labels) that was firing at some evaluation since start()."""
        window = max(int(time.time() - self.started) + 1, 1)
        series = self.query(f'max_over_time(ALERTS{{alertstate="firing"}}[{window}s])')
        return sorted(
            ({k: v for k, v in s["metric"].items() if k not in ("__name__", "alertstate")} for s in series),
            key=lambda labels: sorted(labels.items()),
        )

    def up(self) -> dict[str, bool]:
        """Whether each job answered its last scrape."""
        return {s["metric"]["job"]: s["value"][1] == "1" for s in self.query("up")}

    def stop(self) -> None:
        self.child.stop()
