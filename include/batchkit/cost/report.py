"""The run report: one self-contained HTML page and a PNG chart of what a run sent, got back and cost.

Built from what the run left in staging and its steps' results, so it can be written for a failed run too:
per batch file status, requests, attempts, tokens, USD and latency; the error codes; reconciliation numbers;
the top errors with examples; the cost estimated before the run against what it used.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from ..results.answers import BEST_FIRST_SQL, ResultStatus
from .pricing import usd


@dataclass
class FileRow:
    """One batch file of the run."""

    index: int
    path: str
    requests: int
    status: str = "not collected"  # the last batch's status, or why there is none
    attempts: int = 0
    ok: int | None = None
    errors: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: float | None = 0.0
    latency_s: float | None = None  # first batch created -> last batch ended


@dataclass
class RunReport:
    dag_id: str
    run_id: str
    partition: str
    outcome: str  # e.g. "success", "failed: load", "dry run"
    estimate: dict[str, Any] | None = None
    totals: dict[str, Any] = field(default_factory=dict)
    files: list[FileRow] = field(default_factory=list)
    reconciliation: dict[str, Any] = field(default_factory=dict)
    error_codes: list[tuple[str, int]] = field(default_factory=list)
    examples: list[tuple[str, str, str]] = field(default_factory=list)  # (code, custom_id, message)

    @property
    def used(self) -> dict[str, Any]:
        usds = [f.usd for f in self.files]
        return {
            "prompt_tokens": sum(f.prompt_tokens for f in self.files),
            "completion_tokens": sum(f.completion_tokens for f in self.files),
            "usd": None if None in usds else sum(usds),
        }


def errors_of(
    chains: Iterable[pa.Table], examples_per_code: int = 3
) -> tuple[list[tuple[str, int]], list[tuple[str, str, str]]]:
    """Error-code counts over each request's best answer, most frequent first, and a few examples of each
    (the first custom_ids of each code).

    :param chains: the ledger rows of each batch file's attempts (``custom_id``, ``fingerprint``, the
        ``BEST_ANSWER_COLUMNS`` and the errors), one table per file: a request's answers are all in its file's.
    """
    import duckdb

    counts: Counter[str] = Counter()
    examples: dict[str, list[tuple[str, str]]] = {}
    with duckdb.connect() as con:
        for results in chains:
            if results.num_rows == 0:
                continue
            con.register("results", results)
            # each request's best answer, by the merge's rule (batchkit.results.answers); keep the failed ones
            latest = (
                "SELECT * FROM (SELECT * FROM results QUALIFY row_number() OVER (PARTITION BY custom_id, "
                f"fingerprint ORDER BY {BEST_FIRST_SQL}) = 1) WHERE status <> '{ResultStatus.OK}'"
            )
            counts.update(dict(con.execute(f"SELECT error_code, count(*) FROM ({latest}) GROUP BY 1").fetchall()))
            found = con.execute(
                f"SELECT error_code, custom_id, error_message FROM ({latest}) QUALIFY row_number() OVER "
                f"(PARTITION BY error_code ORDER BY custom_id) <= {int(examples_per_code)}"
            ).fetchall()
            for code, custom_id, message in found:
                kept = sorted([*examples.get(str(code), []), (str(custom_id), str(message or ""))])
                examples[str(code)] = kept[:examples_per_code]
            con.unregister("results")
    codes = sorted(((str(c), n) for c, n in counts.items()), key=lambda item: (-item[1], item[0]))
    return codes, [(code, i, m) for code in sorted(examples) for i, m in examples[code]]


def chart_png(report: RunReport) -> bytes:
    """Answers per batch file (ok / error) and the error-code histogram, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (per_file, codes) = plt.subplots(1, 2, figsize=(11, 3.8), dpi=100)
    names = [f"{f.index:05d}" for f in report.files] or ["-"]
    ok = [f.ok or 0 for f in report.files] or [0]
    bad = [f.errors or 0 for f in report.files] or [0]
    per_file.bar(names, ok, color="#2e7d32", label="ok")
    per_file.bar(names, bad, bottom=ok, color="#c62828", label="error / invalid")
    per_file.set_title("answers per batch file")
    per_file.set_xlabel("batch file")
    per_file.legend(loc="lower right")
    per_file.tick_params(axis="x", labelrotation=60, labelsize=7)
    if report.error_codes:
        labels, counts = zip(*report.error_codes[:12], strict=True)
        codes.barh(labels[::-1], counts[::-1], color="#c62828")
    else:
        codes.text(0.5, 0.5, "no errors", ha="center", va="center", fontsize=14, color="#2e7d32")
        codes.set_axis_off()
    codes.set_title("error codes (best answer per request)")
    fig.suptitle(f"{report.dag_id} · {report.partition} · {report.run_id} · {report.outcome}", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def render_html(report: RunReport, png: bytes | None) -> str:
    """The report as one HTML page with the chart inlined (opens anywhere, no other files)."""
    e = html.escape
    estimate, used = report.estimate or {}, report.used
    money = _usd
    summary = [
        ("outcome", report.outcome),
        ("partition", report.partition),
        ("requests (split)", f"{report.totals.get('requests', 0):,} in {len(report.files)} file(s)"),
        ("reused from earlier runs", f"{report.totals.get('reused', 0):,}"),
        ("estimated cost", _estimated(estimate)),
        (
            "actual cost",
            f"{money(used['usd'])} ({used['prompt_tokens']:,} prompt + {used['completion_tokens']:,} "
            "completion tokens)",
        ),
    ]
    rows = "".join(
        f"<tr><td>{f.index:05d}</td><td>{e(f.status)}</td><td>{f.requests:,}</td><td>{f.attempts}</td>"
        f"<td>{_n(f.ok)}</td><td>{_n(f.errors)}</td><td>{f.prompt_tokens:,}</td><td>{f.completion_tokens:,}</td>"
        f"<td>{money(f.usd)}</td><td>{_duration(f.latency_s)}</td></tr>"
        for f in report.files
    )
    reconciliation = "".join(f"<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>" for k, v in report.reconciliation.items())
    codes = "".join(f"<tr><td>{e(c)}</td><td>{n:,}</td></tr>" for c, n in report.error_codes)
    examples = "".join(f"<tr><td>{e(c)}</td><td>{e(i)}</td><td>{e(m[:300])}</td></tr>" for c, i, m in report.examples)
    image = f'<img alt="chart" src="data:image/png;base64,{base64.b64encode(png).decode()}">' if png else ""
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>{e(report.dag_id)} · {e(report.partition)} · {e(report.run_id)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse;margin:8px 0 20px}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}
th{{background:#f3f3f3}}img{{max-width:100%}}</style></head><body>
<h1>{e(report.dag_id)} · partition {e(report.partition)}</h1><p>run {e(report.run_id)} · report written {made}</p>
<h2>Summary</h2><table>{"".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in summary)}</table>
{image}
<h2>Batch files</h2><table><tr><th>file</th><th>status</th><th>requests</th><th>batches</th><th>ok</th>
<th>errors</th><th>prompt tokens</th><th>completion tokens</th><th>cost</th><th>latency</th></tr>{rows}</table>
<h2>Reconciliation</h2><table>{reconciliation or "<tr><td>the load did not run</td></tr>"}</table>
<h2>Error codes</h2><table><tr><th>code</th><th>requests</th></tr>{codes or "<tr><td>none</td><td>0</td></tr>"}</table>
<h2>Examples</h2><table><tr><th>code</th><th>custom_id</th><th>message</th></tr>{examples}</table>
</body></html>
"""


def _estimated(estimate: dict[str, Any]) -> str:
    if not estimate:
        return "not estimated (the split did not finish)"
    basis = html.escape(str(estimate.get("output_basis", "")))
    if estimate.get("output_tokens") is None:
        return f"{_usd(estimate.get('usd'))} for input only (output {basis})"
    return f"{_usd(estimate.get('usd'))} (output: {basis})"


def _usd(value: float | None) -> str:
    return "unknown (no price)" if value is None else usd(value)


def _n(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m {secs:02d}s"
