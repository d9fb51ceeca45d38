"""Hypothesis profiles for the kernel's property tests, chosen by HYPOTHESIS_PROFILE (default "ci").

The profiles are registered here and applied by the test modules to their own tests only (loading one
globally would also resize the schemathesis run in tests/integration).

ci:     derandomized (the same examples on every run), sized for `make test` on a 2-core machine.
faults: many more random examples: `HYPOTHESIS_PROFILE=faults pytest tests/unit/session/test_kernel_properties.py`.
dev:    a quick look while editing.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

_QUIET = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]

settings.register_profile(
    "ci", derandomize=True, max_examples=1500, stateful_step_count=40, deadline=None, suppress_health_check=_QUIET
)
settings.register_profile(
    "faults", max_examples=20_000, stateful_step_count=60, deadline=None, suppress_health_check=_QUIET
)
settings.register_profile(
    "soak", max_examples=3_000, stateful_step_count=60, deadline=None, suppress_health_check=_QUIET
)
settings.register_profile("dev", max_examples=200, stateful_step_count=40, deadline=None, suppress_health_check=_QUIET)
