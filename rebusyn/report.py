"""Per-source JSON reports: what was kept, what was dropped and why, from which inputs."""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebusyn import __version__

MAX_ERRORS_RECORDED = 1000  # a report stays readable even when a source is badly broken
MAX_DETAIL_CHARS = 500  # per recorded problem: enough to see what is wrong


@dataclass
class SourceReport:
    source: str
    group: str
    kept: int = 0
    images: int = 0  # source images (or ready-made crops) read
    instances: int = 0  # annotated words seen, before any filter
    dropped: Counter = field(default_factory=Counter)
    errors: list[dict[str, str]] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    started: float = field(default_factory=time.time)
    elapsed: float = 0.0
    identity: str | None = None  # hash of what decides the output (build): same identity, same bytes
    resumed: dict[str, Any] | None = None  # where an interrupted build was picked up

    def drop(self, reason: str, where: str | None = None, detail: str | None = None) -> None:
        """Count a dropped item; with `where`, also record it (bounded) so the user can find it."""
        self.dropped[reason] += 1
        if where is not None:
            self.record(reason, where, detail)

    def record(self, reason: str, where: str, detail: str | None = None) -> None:
        """Name a dropped item (bounded) without counting it (the count came with a unit's totals)."""
        if len(self.errors) < MAX_ERRORS_RECORDED:
            detail = detail or ""
            if len(detail) > MAX_DETAIL_CHARS:  # a whole line of a huge one-line ground truth, say
                detail = detail[:MAX_DETAIL_CHARS] + f"... ({len(detail):,} characters)"
            self.errors.append({"reason": reason, "where": where[:MAX_DETAIL_CHARS], "detail": detail})

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def finish(self, status: str = "complete") -> None:
        self.status = status
        self.elapsed = round(time.time() - self.started, 3)

    def counters(self) -> dict[str, Any]:
        """The running counts, as a checkpoint stores them."""
        return {"kept": self.kept, "images": self.images, "instances": self.instances,
                "dropped": dict(self.dropped), "errors": list(self.errors)}  # fmt: skip

    def restore(self, counts: dict[str, Any]) -> None:
        """Counts from `counters()` (or a report's JSON) back into this report."""
        self.kept = counts.get("kept", 0)
        self.images = counts.get("images", 0)
        self.instances = counts.get("instances", 0)
        self.dropped = Counter(counts.get("dropped", {}))
        self.errors = list(counts.get("errors", []))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "group": self.group,
            "status": self.status,
            "images": self.images,
            "instances": self.instances,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "dropped_total": self.dropped_total,
            "errors": self.errors,
            "inputs": self.inputs,
            "options": self.options,
            "output": self.output,
            "tool": {"name": "rebusyn", "version": __version__, "python": platform.python_version()},
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "elapsed_s": self.elapsed,
            "samples_per_s": round(self.kept / self.elapsed, 1) if self.elapsed > 0 else None,
            "identity": self.identity,
            "resumed": self.resumed,
        }

    def write(self, root: Path) -> Path:
        path = report_path(root, self.source)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        try:
            tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        except OSError as exc:  # a write error does not name its file (e.g. a full disk)
            tmp.unlink(missing_ok=True)
            raise OSError(exc.errno, f"writing {tmp}: {exc}") from exc
        os.replace(tmp, path)
        return path


def report_path(root: Path, source: str) -> Path:
    return Path(root) / "reports" / f"{source}.json"
