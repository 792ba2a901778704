"""Findings, reports and the checker that collects them."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable


PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
#: Items per batch that check_plugin builds from the default data set.
BATCH_ITEMS = 8


# --------------------------------------------------------------------------- findings


@dataclass
class Finding:
    """One property of one component: passed, failed or skipped, with one sentence."""

    component: str
    property: str
    status: str
    message: str = ""

    def __str__(self) -> str:
        return self.message or f"{self.component} does {self.property}."


@dataclass
class Report:
    """The findings of one or more checks."""

    findings: list[Finding] = field(default_factory=list)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status == FAILED]

    @property
    def passed(self) -> list[Finding]:
        return [f for f in self.findings if f.status == PASSED]

    @property
    def skipped(self) -> list[Finding]:
        return [f for f in self.findings if f.status == SKIPPED]

    @property
    def ok(self) -> bool:
        return not self.failures

    def extend(self, other: "Report") -> "Report":
        self.findings.extend(other.findings)
        return self

    def raise_for_failures(self) -> "Report":
        __tracebackhide__ = True  # pytest shows the failures, not this frame
        if self.failures:
            raise ConformanceError(self)
        return self

    def __repr__(self) -> str:
        return f"Report({len(self.passed)} passed, {len(self.failures)} failed, {len(self.skipped)} skipped)"

    def __str__(self) -> str:
        lines = [f"{len(self.passed)} passed, {len(self.failures)} failed, {len(self.skipped)} skipped"]
        lines += [f"FAILED: {f}" for f in self.failures]
        lines += [f"skipped: {f}" for f in self.skipped]
        return "\n".join(lines)


class ConformanceError(AssertionError):
    """Some conformance checks failed; the message lists each failure in one sentence."""

    def __init__(self, report: Report) -> None:
        self.report = report
        failures = report.failures
        head = f"{len(failures)} conformance check{'s' if len(failures) != 1 else ''} failed:"
        super().__init__("\n".join([head] + [f"- {f}" for f in failures]))


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Checker:
    """Collects the findings of one component."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.report = Report()

    def passed(self, prop: str) -> None:
        self.report.findings.append(Finding(self.label, prop, PASSED))

    def failed(self, prop: str, detail: str) -> None:
        detail = detail.rstrip(".")
        self.report.findings.append(Finding(self.label, prop, FAILED, f"{self.label} does not {prop}: {detail}."))

    def skipped(self, prop: str, why: str) -> None:
        why = why.rstrip(".")
        self.report.findings.append(Finding(self.label, prop, SKIPPED, f"{self.label}: '{prop}' not checked: {why}."))

    def expect(self, prop: str, condition: bool, detail: str) -> bool:
        if condition:
            self.passed(prop)
        else:
            self.failed(prop, detail)
        return bool(condition)

    def done(self, raise_: bool) -> Report:
        __tracebackhide__ = True
        return self.report.raise_for_failures() if raise_ else self.report


def _own_rng(fn: Callable[..., Report]) -> Callable[..., Report]:
    """Run a check with its own copy of torch's global random state, restored afterwards.

    The checks seed torch (to build encoders alike, to tell a generator from the
    global state); the test suite around them must not notice.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Report:
        __tracebackhide__ = True
        import torch

        with torch.random.fork_rng(devices=[]):
            return fn(*args, **kwargs)

    return wrapper


def _label(kind: str, name: str | None, obj: Any, where: str = "") -> str:
    name = name or getattr(obj, "name", None) or getattr(obj, "__name__", None) or type(obj).__name__
    return f"{kind} '{name}'" + (f" ({where})" if where else "")
