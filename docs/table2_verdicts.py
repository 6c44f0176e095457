"""Verdicts on the Re-examining paper's Table 2 claims from a run of its suite; prints a Markdown table.

    python docs/table2_verdicts.py --scale retest

Reads the finished trials of ``suites/reexamining-table2-fmnist.toml`` (test accuracy at the last
epoch, mean over the tasks) and tests the paper's four claims with the one-tailed two-sample
t-test of its appendix A.2 (pooled variance, alpha 0.05):

(a) public code < corrected < separate optimizers;
(b) fixed random routing in conv3 is the best row (no row is better), and beats no sharing;
(c) shared bottom and no sharing are within about a point (|difference of means| <= 0.01);
(d) learned routing in conv layers (conv1; conv1-3) is better than shared bottom and near no
    sharing (within a point), section 3.4: "For the Fashion-MNIST dataset, using learned routing in
    the convolutional layers is better than the shared bottom baseline and near in performance to
    the no sharing baseline."

A claim is *reproduced* when the data support it, *refuted* when they support the opposite (a
significant difference the other way, or a gap of more than a point where the paper says "near"),
and *not shown* when neither holds at this scale (or *not testable* with fewer than two seeds a
row). Being the best row by its mean alone is neither: only a significant difference counts.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from routing_rl.analysis.significance import one_tailed_ttest
from routing_rl.suites import SuiteError, load_suite_file
from routing_rl.suites.table import collect

SUITE = Path(__file__).resolve().parent.parent / "suites" / "reexamining-table2-fmnist.toml"
ALPHA = 0.05
POINT = 0.01
PAPER_ROWS = ("public-code", "corrected", "separate-optimizers", "routing-conv1", "routing-conv123",
              "shared-bottom", "no-sharing", "fixed-random-fc", "fixed-random-conv3")  # fmt: skip
"""The rows of the paper's Table 2 (warm-up is not one of them)."""


@dataclass(frozen=True)
class Verdict:
    claim: str
    evidence: str
    verdict: str


def better(values: dict[str, list[float]], a: str, b: str) -> tuple[float, float] | None:
    """(t, p) of the test mean(a) > mean(b); None with fewer than two seeds on a side."""
    if len(values.get(a, [])) < 2 or len(values.get(b, [])) < 2:
        return None
    test = one_tailed_ttest(values[a], values[b])
    return test.t, test.p_value


def ordered(values: dict[str, list[float]], low: str, high: str) -> tuple[str, str]:
    """Evidence and verdict for mean(high) > mean(low)."""
    forward, backward = better(values, high, low), better(values, low, high)
    if forward is None or backward is None:
        return f"{high} > {low}: fewer than two seeds", "not testable"
    text = f"{high} > {low}: t = {forward[0]:.2f}, p = {forward[1]:.3g}"
    if forward[1] < ALPHA:
        return text, "reproduced"
    return text, "refuted" if backward[1] < ALPHA else "not shown"


def combine(verdicts: list[str]) -> str:
    for word in ("not testable", "refuted", "not shown"):
        if word in verdicts:
            return word
    return "reproduced"


def verdicts(values: dict[str, list[float]]) -> list[Verdict]:
    means = {m: statistics.fmean(v) for m, v in values.items() if v and m in PAPER_ROWS}
    out = []
    parts = [ordered(values, "public-code", "corrected"), ordered(values, "corrected", "separate-optimizers")]
    out.append(Verdict("(a) public code < corrected < separate optimizers", "; ".join(p[0] for p in parts), combine([p[1] for p in parts])))

    text, beats = ordered(values, "no-sharing", "fixed-random-conv3")
    rivals = [(row, better(values, row, "fixed-random-conv3")) for row in PAPER_ROWS if row != "fixed-random-conv3"]
    if any(test is None for _, test in rivals):
        best_text, best_verdict = "best row: not every row has two seeds", "not testable"
    else:
        row, (t, p) = min(((r, test) for r, test in rivals if test is not None), key=lambda item: item[1][1])
        best_text = f"strongest rival: {row} > fixed-random-conv3: t = {t:.2f}, p = {p:.3g}"
        best_verdict = "refuted" if p < ALPHA else "reproduced"
    out.append(Verdict("(b) fixed random in conv3 is the best row and beats no sharing", f"{text}; {best_text}", combine([best_verdict, beats])))

    if len(values.get("shared-bottom", [])) >= 2 and len(values.get("no-sharing", [])) >= 2:
        gap = means["no-sharing"] - means["shared-bottom"]
        out.append(Verdict("(c) shared bottom and no sharing within about a point", f"no-sharing - shared-bottom = {gap:+.4f}",
                           "reproduced" if abs(gap) <= POINT else "refuted"))  # fmt: skip
    else:
        out.append(Verdict("(c) shared bottom and no sharing within about a point", "fewer than two seeds", "not testable"))

    parts = []
    for row in ("routing-conv1", "routing-conv123"):
        text, verdict = ordered(values, "shared-bottom", row)
        if verdict != "not testable" and len(values.get("no-sharing", [])) >= 2:
            gap = means["no-sharing"] - means[row]
            text += f"; no-sharing - {row} = {gap:+.4f}"
            if gap > POINT:
                verdict = "refuted"
        parts.append((text, verdict))
    out.append(Verdict("(d) learned routing in conv layers better than shared bottom, near no sharing", "; ".join(p[0] for p in parts), combine([p[1] for p in parts])))
    return out


def markdown(rows: list[Verdict]) -> str:
    lines = ["| claim | evidence (one-tailed t-tests, alpha 0.05) | verdict |", "|---|---|---|"]
    lines += [f"| {r.claim} | {r.evidence} | {r.verdict} |" for r in rows]
    return "\n".join(lines) + "\n"


def values_of(suite_file: Path, scale: str | None, directory: Path | None = None) -> dict[str, list[float]]:
    suite = load_suite_file(suite_file)
    trials = [{"run": t.run, "seed": t.seed, "name": t.name} for t in suite.trials(scale)]
    by_method, _, _, _ = collect(trials, directory or suite.directory(scale), suite.kept)
    return {m: [r["final"]["last"]["test_mean"] for r in rs] for m, rs in by_method.items()}


@click.command()
@click.option("--scale", default=None, help="The scale the suite was run at (e.g. retest).")
@click.option("--out", "directory", default=None, type=click.Path(path_type=Path), help="Suite directory (default: the suite's own).")
def main(scale: str | None, directory: Path | None) -> None:
    try:
        values = values_of(SUITE, scale, directory)
    except SuiteError as exc:
        raise click.ClickException(str(exc)) from None
    if not any(values.values()):
        sys.exit("no finished trial: run `routing-rl suite run suites/reexamining-table2-fmnist.toml` first")
    click.echo(markdown(verdicts(values)), nl=False)


if __name__ == "__main__":
    main()
