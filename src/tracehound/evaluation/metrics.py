"""Detection, false-positive and inconclusive rates per ecosystem, as a table or JSON.

Rates are computed over what actually ran: simulations and benign packages that could not be run
on this machine (`not_run`, e.g. gems without a mirror) are counted and shown, never folded into
"clean" or "detected".

* detection rate = detected / simulations run (detected = every expected rule fired, attributed to
  the expected package in the expected phase);
* false-positive rate (NOTICE+) = benign packages with any alert at or above NOTICE / benign run;
  reported separately at WARNING+;
* inconclusive rate = inconclusive / run, per kind.

Targets: 100% detection, 0 false positives at WARNING or above, at most 2% at NOTICE.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tracehound.evaluation.manifest import ECOSYSTEMS
from tracehound.evaluation.runner import Outcome

TARGET_DETECTION = 1.0
TARGET_FP_WARNING = 0.0
TARGET_FP_NOTICE = 0.02


def _rate(n: int, d: int) -> float | None:
    return None if d == 0 else n / d


@dataclass
class Figures:
    sims: int = 0
    sims_run: int = 0
    detected: int = 0
    missed: int = 0
    sims_inconclusive: int = 0
    sims_error: int = 0
    benign: int = 0
    benign_run: int = 0
    clean: int = 0
    fp_notice: int = 0
    fp_warning: int = 0
    benign_inconclusive: int = 0
    benign_error: int = 0

    def add(self, o: Outcome) -> None:
        if o.kind == "simulation":
            self.sims += 1
            if o.status == "not_run":
                return
            self.sims_run += 1
            self.detected += o.status == "detected"
            self.missed += o.status == "missed"
            self.sims_inconclusive += o.status == "inconclusive"
            self.sims_error += o.status == "error"
        else:
            self.benign += 1
            if o.status == "not_run":
                return
            self.benign_run += 1
            self.clean += o.status == "clean"
            if o.status == "false_positive":
                self.fp_notice += 1
                self.fp_warning += bool(o.alerts_at_or_above("warning"))
            self.benign_inconclusive += o.status == "inconclusive"
            self.benign_error += o.status == "error"

    def to_dict(self) -> dict[str, Any]:
        return {
            "simulations": {"total": self.sims, "run": self.sims_run, "not_run": self.sims - self.sims_run,
                            "detected": self.detected, "missed": self.missed,
                            "inconclusive": self.sims_inconclusive, "error": self.sims_error,
                            "detection_rate": _rate(self.detected, self.sims_run),
                            "inconclusive_rate": _rate(self.sims_inconclusive, self.sims_run)},
            "benign": {"total": self.benign, "run": self.benign_run, "not_run": self.benign - self.benign_run,
                       "clean": self.clean, "false_positive_notice": self.fp_notice,
                       "false_positive_warning": self.fp_warning, "inconclusive": self.benign_inconclusive,
                       "error": self.benign_error,
                       "fp_rate_notice": _rate(self.fp_notice, self.benign_run),
                       "fp_rate_warning": _rate(self.fp_warning, self.benign_run),
                       "inconclusive_rate": _rate(self.benign_inconclusive, self.benign_run)},
        }


def summarize(outcomes: list[Outcome]) -> dict[str, Figures]:
    per: dict[str, Figures] = {}
    total = Figures()
    for o in outcomes:
        per.setdefault(o.ecosystem, Figures()).add(o)
        total.add(o)
    ordered = {e: per[e] for e in ECOSYSTEMS if e in per}
    ordered["all"] = total
    return ordered


def targets_met(total: Figures) -> bool:
    det = _rate(total.detected, total.sims_run)
    fpw = _rate(total.fp_warning, total.benign_run)
    fpn = _rate(total.fp_notice, total.benign_run)
    return ((det is None or det >= TARGET_DETECTION) and (fpw is None or fpw <= TARGET_FP_WARNING)
            and (fpn is None or fpn <= TARGET_FP_NOTICE) and total.sims_error == 0 and total.benign_error == 0)


def to_json(outcomes: list[Outcome], meta: dict[str, Any] | None = None) -> str:
    figs = summarize(outcomes)
    doc = {
        "meta": meta or {},
        "targets": {"detection_rate": TARGET_DETECTION, "fp_rate_warning": TARGET_FP_WARNING,
                    "fp_rate_notice": TARGET_FP_NOTICE, "met": targets_met(figs["all"])},
        "per_ecosystem": {k: v.to_dict() for k, v in figs.items()},
        "outcomes": [o.to_dict() for o in outcomes],
    }
    return json.dumps(doc, indent=2)


def _pct(n: int, d: int) -> str:
    return "-" if d == 0 else f"{100.0 * n / d:.1f}% ({n}/{d})"


def to_text(outcomes: list[Outcome]) -> str:
    figs = summarize(outcomes)
    lines = []
    sims = [o for o in outcomes if o.kind == "simulation"]
    benign = [o for o in outcomes if o.kind == "benign"]
    if sims:
        lines.append("Simulations")
        for o in sims:
            extra = ""
            if o.unmet:
                extra = "  unmet: " + "; ".join(o.unmet)
            if o.status in ("error", "not_run") and o.detail:
                extra = "  " + o.detail.splitlines()[0]
            if o.status == "inconclusive" and o.reasons:
                extra += "  reasons: " + "; ".join(o.reasons)[:300]
            lines.append(f"  {o.status:<13} {o.ecosystem:<5} {o.name:<34} {o.duration_s:6.1f}s{extra}")
    if benign:
        lines.append("Benign packages")
        for o in benign:
            extra = ""
            if o.status == "false_positive":
                fired = sorted({f"{a.priority}:{a.rule}" for a in o.alerts_at_or_above('notice')})
                extra = "  alerts: " + ", ".join(fired)
            elif o.status in ("inconclusive", "not_run", "error"):
                extra = "  " + ("; ".join(o.reasons) if o.reasons else o.detail.splitlines()[0] if o.detail else "")
            lines.append(f"  {o.status:<15} {o.ecosystem:<5} {o.name:<34} {o.duration_s:6.1f}s{extra[:400]}")
    lines.append("")
    header = (f"{'ecosystem':<10} {'detection':>18} {'sim inconcl.':>16} {'FP notice+':>16} {'FP warning+':>16} "
              f"{'benign inconcl.':>16} {'not run':>9}")
    lines.append(header)
    lines.append("-" * len(header))
    for eco, f in figs.items():
        not_run = (f.sims - f.sims_run) + (f.benign - f.benign_run)
        lines.append(f"{eco:<10} {_pct(f.detected, f.sims_run):>18} {_pct(f.sims_inconclusive, f.sims_run):>16} "
                     f"{_pct(f.fp_notice, f.benign_run):>16} {_pct(f.fp_warning, f.benign_run):>16} "
                     f"{_pct(f.benign_inconclusive, f.benign_run):>16} {not_run:>9}")
    total = figs["all"]
    lines.append("")
    lines.append(f"targets (100% detected, 0% FP at WARNING+, <=2% at NOTICE): "
                 f"{'met' if targets_met(total) else 'NOT met'}")
    return "\n".join(lines)
