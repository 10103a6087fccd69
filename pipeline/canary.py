"""Canary set: a few fixed clips every run scores with every requested scorer, so a score that moves because
the environment moved (a PyAV, FFmpeg, torch or transformers upgrade, another GPU, dtype or attention kernel,
a new frame recipe) is caught the night it happens instead of drifting into months of the table.

- The clips: vidscore's default set (4 synthetic clips, encoded single-threaded so the bytes are fixed) is
  written once into the table's `_vidscore/canary/clips/` and read from there by every later run; or a user's
  set (`canary: PATH`, a manifest or folder like any input). Each clip's sha256 is recorded.
- Every run that scores anything adds the canary rows (video ids under `vidscore-canary/`) to its input; each
  scorer runs them alone (not batched with other videos), so their scores do not depend on batch composition;
  the writer keeps them out of the table, in `_vidscore/canary/runs/`.
- The run's canary record (scores per clip, the decoder and each scorer's device, dtype, attention kernel,
  software and checkpoint, the driver's versions) goes into the run summary, and is compared with the pinned
  baseline (`vidscore canary pin TABLE`), else with the previous run's record. A scorer whose canary scores
  moved past its tolerance raises an alert that names the scorer, the largest move and what changed in the
  environment; an alert counts against the failure budget (exit code 3). A scorer whose checkpoint, revision
  or frame recipe changed is not compared (the change was asked for): the summary says so, and to pin again.
"""

import hashlib
import json
import logging
import posixpath
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from vidscore.operators.scorers.plan import ScorerPlan
from vidscore.operators.scorers.rows import todo_column
from vidscore.operators.storage import filesystem, to_url, with_retries
from vidscore.operators.urls import redact
from vidscore.pipeline.config import CanaryConfig
from vidscore.pipeline.output import META_DIR, commit_file, read_json, run_summaries
from vidscore.schemas.scores import CANARY_PREFIX, OK

log = logging.getLogger("vidscore")
GENERATOR = "(canary)"
FOLDER = posixpath.join(META_DIR, "canary")
BASELINE = "baseline.json"
MAX_CLIPS = 64  # a canary is a handful of clips scored on every run; more is a benchmark, not a canary
# The default set: (name, generator style of jobs/corpus.py, seed, prompt). 2 s at 24 fps, 320x240.
DEFAULT_CLIPS = (
    ("fox", "crisp-motion", 101, "a red fox running through fresh snow at dawn"),
    ("coast", "soft-drift", 102, "drone shot over a coastline with waves breaking on rocks"),
    ("still", "frozen", 103, "a paper boat resting on a wet stone step"),
    ("chef", "crisp-motion", 104, 'a chef flipping pancakes, steam rising; the sign reads "OPEN {24/7}"'),
)
DEFAULT_FRAMES, DEFAULT_FPS, DEFAULT_SIZE = 48, 24, (240, 320)
ENV_KEYS = ("checkpoint", "revision", "frames", "device", "dtype", "attention", "software")
# A change here was asked for: not compared, pin again. The revision counts only where the run pinned it (a
# local weights hash, a hub commit); an unpinned hub checkpoint that moved upstream is compared and can alert.
INTENDED = ("checkpoint", "revision", "frames")


def intended(plan: ScorerPlan) -> tuple[str, ...]:
    return INTENDED if getattr(plan, "revision", None) is not None else ("checkpoint", "frames")


@dataclass
class CanarySet:
    """The clips one run scores as its canary: rows (video_id, uri, prompt) and each clip's sha256."""

    source: str
    rows: list[dict[str, str]]
    sha256: dict[str, str]


def _digest(fs: Any, path: str) -> str:
    """sha256 of a clip, read in 8 MiB pieces (a user's clips may be large)."""
    digest = hashlib.sha256()
    with fs.open(path, "rb") as f:
        while piece := f.read(8 << 20):
            digest.update(piece)
    return digest.hexdigest()


def default_set(output: str, endpoint_url: str | None) -> CanarySet:
    """vidscore's set, in the table's `_vidscore/canary/clips/`: written when missing, then always read from
    there, so every run of this table scores the same bytes (whatever encoder a later PyAV bundles)."""
    from vidscore.jobs.corpus import encode_video, render

    fs, base = filesystem(output, endpoint_url)
    folder = posixpath.join(base, FOLDER, "clips")
    rows, digests = [], {}
    for name, style, seed, prompt in DEFAULT_CLIPS:
        target = posixpath.join(folder, f"{name}.mp4")
        if not fs.exists(target):
            with tempfile.TemporaryDirectory(prefix="vidscore-canary-") as tmp:
                frames = render(style, seed, DEFAULT_FRAMES, *DEFAULT_SIZE)
                # One thread: x264's threaded lookahead may pick other bits from run to run.
                clip = encode_video(Path(tmp) / "clip.mp4", frames, DEFAULT_FPS, options={"threads": "1"})
                with_retries(commit_file, fs, target, clip.read_bytes())
        video_id = CANARY_PREFIX + name
        rows.append({"video_id": video_id, "uri": to_url(fs, target), "prompt": prompt})
        digests[video_id] = _digest(fs, target)
    return CanarySet("default", rows, digests)


def user_set(location: str, endpoint_url: str | None) -> CanarySet:
    """A user's clips: a manifest or folder read like any input (its ids become `vidscore-canary/<id>`)."""
    from vidscore.operators.read import read_input

    table = read_input(location, endpoint_url=endpoint_url)
    if len(table) > MAX_CLIPS:
        raise ValueError(f"canary {redact(location)} has {len(table)} clips; a canary set holds at most {MAX_CLIPS}")
    if not len(table):
        raise ValueError(f"canary {redact(location)} holds no clips; name a manifest or folder of videos")
    prompts = table.column("prompt").to_pylist() if "prompt" in table.column_names else [None] * len(table)
    rows, digests = [], {}
    for vid, uri, prompt in zip(table.column("video_id").to_pylist(), table.column("uri").to_pylist(), prompts):
        video_id = CANARY_PREFIX + str(vid)
        fs, path = filesystem(uri, endpoint_url)
        try:
            digests[video_id] = _digest(fs, path)
        except OSError as exc:
            raise ValueError(f"canary clip {redact(uri)} cannot be read ({type(exc).__name__}); fix the set") from exc
        rows.append({"video_id": video_id, "uri": uri, "prompt": prompt})
    return CanarySet(redact(location), rows, digests)


def rows_table(canary: CanarySet, schema: pa.Schema | None, plans: list[ScorerPlan]) -> pa.Table:
    """The canary rows in the staged input's columns (others null), every requested scorer to run on them."""
    n = len(canary.rows)
    values = {
        "video_id": [r["video_id"] for r in canary.rows],
        "uri": [r["uri"] for r in canary.rows],
        "prompt": [r["prompt"] for r in canary.rows],
        "generator": [GENERATOR] * n,
    }
    fields = list(schema) if schema is not None else [pa.field(k, pa.string()) for k in values]
    arrays = [pa.array(values[f.name], f.type) if f.name in values else pa.nulls(n, f.type) for f in fields]
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    for plan in plans:
        table = table.append_column(todo_column(plan.name), pa.array([True] * n, pa.bool_()))
    return table


def record(rows: pa.Table, canary: CanarySet, plans: list[ScorerPlan], driver: dict) -> dict[str, Any]:
    """What this run's canary gave: per clip its scores and status, and the environment that produced them."""
    by_id = {r["video_id"]: r for r in rows.to_pylist()}
    scores, status, errors = {}, {}, {}
    for clip in canary.rows:
        vid = clip["video_id"]
        row = by_id.get(vid, {})
        status[vid] = row.get("status") or "not scored"
        if row.get("error"):
            errors[vid] = row["error"]
        scores[vid] = {}
        for plan in plans:
            for f in plan.fields:
                if pa.types.is_floating(f.type):
                    value = row.get(f.name)
                    scores[vid][f.name] = None if value is None or not np.isfinite(value) else float(value)
    scorers = {}
    for plan in plans:
        seen = {k: sorted({str(r.get(f"{plan.name}_{k}")) for r in by_id.values()} - {"None"}) for k in ENV_KEYS}
        scorers[plan.name] = {k: "; ".join(v) or None for k, v in seen.items()}
        scorers[plan.name]["status"] = {v: by_id.get(v, {}).get(f"{plan.name}_status") for v in status}
    decoders = sorted({str(r.get("decoder")) for r in by_id.values()} - {"None"})
    return {
        "source": canary.source,
        "clips": canary.sha256,
        "scores": scores,
        "status": status,
        "errors": errors,
        "environment": {"driver": driver, "decoder": "; ".join(decoders) or None, "scorers": scorers},
    }


def _changes(current: dict, before: dict, scorer: str | None, skip: tuple[str, ...] = INTENDED) -> list[str]:
    """What differs in the environment between two records (for one scorer, plus what every scorer shares)."""
    out = []
    now, then = current["environment"], before["environment"]
    if now.get("decoder") != then.get("decoder"):
        out.append(f"decoder {then.get('decoder')} -> {now.get('decoder')}")
    if scorer is not None:
        a, b = now["scorers"].get(scorer, {}), then["scorers"].get(scorer, {})
        moved = [k for k in ENV_KEYS if k not in skip and a.get(k) != b.get(k)]
        out += [f"{scorer} {k} {b.get(k)} -> {a.get(k)}" for k in moved]
    d_now, d_then = now.get("driver", {}), then.get("driver", {})
    out += [f"driver {k} {d_then.get(k)} -> {d_now.get(k)}" for k in sorted(d_now) if d_now.get(k) != d_then.get(k)]
    return out


def compare(current: dict, before: dict | None, config: CanaryConfig, plans: list[ScorerPlan]) -> dict[str, Any]:
    """This run's record against the reference one: per scorer the largest move, alerts past tolerance,
    notices for what cannot be compared. Failed canary clips alert whatever the reference."""
    result: dict[str, Any] = {"moved": {}, "alerts": [], "notices": []}
    for plan in plans:
        failed = {v: s for v, s in current["environment"]["scorers"][plan.name]["status"].items() if s != OK}
        if failed:
            vid, status = next(iter(failed.items()))
            why = current["errors"].get(vid) or status
            result["alerts"].append(f"canary: {plan.name} failed on {len(failed)} clip(s), first {vid}: {why}")
    if before is None:
        result["notices"].append("canary: no baseline yet; this run's canary is the reference for the next run "
                                 "(pin one with `vidscore canary pin TABLE`)")  # fmt: skip
        return result
    if before.get("clips") != current["clips"]:
        result["notices"].append(
            "canary: the clips differ from the reference's (other files or bytes): not compared; "
            "pin this run with `vidscore canary pin TABLE`"
        )
        return result
    for plan in plans:
        a, b = current["environment"]["scorers"][plan.name], before["environment"]["scorers"].get(plan.name)
        if b is None:
            result["notices"].append(f"canary: {plan.name} has no reference scores yet (pin to include it)")
            continue
        asked = intended(plan)
        changed_on_purpose = [f"{k} {b.get(k)} -> {a.get(k)}" for k in asked if a.get(k) != b.get(k)]
        if changed_on_purpose:
            result["notices"].append(f"canary: {plan.name} not compared, {'; '.join(changed_on_purpose)}; pin again")
            continue
        worst = (0.0, None, None)
        for vid, cols in current["scores"].items():
            for col, value in cols.items():
                if not col.startswith(plan.name + "_") or vid not in before["scores"]:
                    continue
                old = before["scores"][vid].get(col)
                if value is None and old is None:
                    continue
                # NaN (recorded as None) on one side only: a model that now returns NaN must alert.
                move = abs(value - old) if value is not None and old is not None else float("inf")
                worst = max(worst, (move, col, vid), key=lambda w: w[0])
        tolerance = config.tolerance_for(plan.name)
        moved = {"max_abs": worst[0], "column": worst[1], "clip": worst[2], "tolerance": tolerance}
        moved["alert"] = worst[0] > tolerance
        result["moved"][plan.name] = moved
        if moved["alert"]:
            changed = _changes(current, before, plan.name, asked)
            cause = "; ".join(changed) if changed else "nothing recorded changed (code or data outside the record)"
            size = "a value became NaN or missing" if worst[0] == float("inf") else f"moved by {worst[0]:.3g}"
            result["alerts"].append(
                f"canary: {plan.name} {size} ({worst[1]} on {worst[2]}; tolerance {tolerance:g}); changed: {cause}"
            )
    result["changed"] = _changes(current, before, None)
    return result


def baseline(output: str, endpoint_url: str | None) -> dict | None:
    """The table's pinned baseline ({run_id, pinned_at, record}), or None; ValueError when it is damaged (the
    canary then alerts: pin again)."""
    fs, base = filesystem(output, endpoint_url)
    data = read_json(fs, posixpath.join(base, FOLDER, BASELINE))
    if data is not None and not {"run_id", "pinned_at", "record"} <= set(data):
        raise ValueError(f"the pinned canary baseline of {redact(output)} is incomplete; pin again")
    return data


def reference(output: str, run_id: str, endpoint_url: str | None) -> tuple[dict | None, dict | None]:
    """(the record to compare with, where it came from): the pinned baseline, else the latest earlier run's."""
    pinned = baseline(output, endpoint_url)
    if pinned is not None:
        return pinned["record"], {"kind": "pinned", "run_id": pinned["run_id"], "pinned_at": pinned["pinned_at"]}
    for rid, summary in run_summaries(output, endpoint_url):
        rec = (summary.get("canary") or {}).get("record")
        if rid < run_id and rec is not None:
            return rec, {"kind": "previous run", "run_id": rid}
    return None, None


def pin(output: str, run_id: str | None, endpoint_url: str | None, pinned_at: str) -> dict[str, Any]:
    """Make a run's canary record (the latest run with one, or `run_id`) the table's baseline."""
    rid, rec = run_id, None
    for rid, summary in run_summaries(output, endpoint_url):
        rec = (summary.get("canary") or {}).get("record")
        if rid == run_id or (run_id is None and rec is not None):
            break
    else:
        rid, rec = run_id, None
    if rec is None:
        if run_id is not None:
            raise ValueError(f"run {run_id} of {redact(output)} has no canary record (it scored nothing, or ran "
                             "with canary: off)")  # fmt: skip
        raise ValueError(f"no canary record for any run in {redact(output)}; run `vidscore score` on it first")
    bad = {v: s for v, s in rec["status"].items() if s != OK}
    if bad:
        raise ValueError(f"run {rid}'s canary has failed clips {sorted(bad)}; fix them and pin a run where all passed")
    baseline = {"run_id": rid, "pinned_at": pinned_at, "record": rec}
    fs, base = filesystem(output, endpoint_url)
    text = json.dumps(baseline, indent=2) + "\n"
    with_retries(commit_file, fs, posixpath.join(base, FOLDER, BASELINE), text.encode())
    return baseline


def columns(plans: list[ScorerPlan]) -> list[str]:
    """The canary files' columns a record needs."""
    out = ["video_id", "status", "error", "decoder"]
    for plan in plans:
        out += [f.name for f in plan.fields if pa.types.is_floating(f.type)]
        out += [f"{plan.name}_{k}" for k in (*ENV_KEYS, "status")]
    return out


def check(
    config: CanaryConfig,
    plans: list[ScorerPlan],
    canary: CanarySet,
    rows: pa.Table,
    output: str,
    run_id: str,
    endpoint_url: str | None,
    driver: dict,
) -> dict[str, Any]:
    """The run summary's `canary` block: this run's record, what it was compared with, and the outcome."""
    current = record(rows, canary, plans, driver)
    before, source = reference(output, run_id, endpoint_url)
    return {"record": current, "reference": source, **compare(current, before, config, plans)}
