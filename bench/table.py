"""Reader benchmark: the latest view of a long history, before and after `vidscore compact`.

Builds a synthetic table in the layout `vidscore score` writes (default 1M videos x 30 nightly runs; each run
rescoring every video with one of three scorers in turn, so every run's file is a full history layer), then
measures, each in a fresh process: time and peak RSS of `latest()` for a few columns and for all columns, and of
the naive read (every row of every file, then the latest per video: what readers did before the running merge).
Ratios are against the naive read of the same history in the same invocation.

    .venv/bin/python bench/table.py --videos 1000000 --runs 30 --work /tmp/vidscore-table-bench
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCORERS = ("technical", "videoscore", "mjvideo")


def build(root: Path, videos: int, runs: int) -> None:
    from vidscore.schemas import mjvideo, technical, videoscore
    from vidscore.schemas.scores import score_schema

    fields = {"technical": technical.FIELDS, "videoscore": videoscore.FIELDS, "mjvideo": mjvideo.FIELDS}
    ids = pa.array([f"{i:016x}" for i in range(videos)])
    rng = np.random.default_rng(0)
    for r in range(runs):
        run_id = f"202601{1 + r // 24:02d}T{r % 24:02d}0000-{r:06x}"
        scorer = SCORERS[r % 3]
        schema = score_schema(list(fields[scorer]), [])
        cols = {
            "video_id": ids,
            "uri": pa.array([f"s3://b/{i}.mp4" for i in range(videos)]),
            "generator": pa.array([f"g{i % 7}" for i in range(videos)]),
            "status": pa.array(["ok"] * videos),
            "run_id": pa.array([run_id] * videos),
            "content_key": pa.array([f"1:{i}" for i in range(videos)]),
        }
        cols["scored_at"] = pa.array(
            np.full(videos, np.datetime64("2026-01-01") + np.timedelta64(r, "D")), pa.timestamp("us", tz="UTC")
        )
        for f in fields[scorer]:
            if pa.types.is_floating(f.type):
                cols[f.name] = pa.array(rng.standard_normal(videos).astype(np.float32))
        cols[f"{scorer}_checkpoint"] = pa.array(["builtin" if scorer == "technical" else "ckpt"] * videos)
        cols[f"{scorer}_status"] = pa.array(["ok"] * videos)
        table = pa.table({f.name: cols.get(f.name, pa.nulls(videos, f.type)) for f in schema}, schema=schema)
        folder = root / f"run_date=2026-01-{1 + r:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"part-{run_id}-000000.parquet", compression="zstd")


def measure(mode: str, root: str, columns: str) -> None:
    """One measurement in this process: prints JSON with seconds and peak RSS (MiB)."""
    import polars as pl

    from vidscore.pipeline.table import latest

    cols = columns.split(",") if columns else None
    start = time.perf_counter()
    if mode == "latest":
        rows = latest(root, cols).collect().height
    else:  # naive: every row of every file, then the latest per video
        files = sorted(str(p) for p in Path(root).rglob("part-*.parquet") if "_vidscore" not in str(p))
        frames = []
        for f in files:  # what resume did before: every row of every file, projected to the columns read
            keep = {"video_id", "run_id", *(cols or pq.read_schema(f).names)}
            frames.append(pl.read_parquet(f, columns=[c for c in pq.read_schema(f).names if c in keep]))
        rows = pl.concat(frames, how="diagonal_relaxed").sort("run_id").unique("video_id", keep="last").height
    seconds = time.perf_counter() - start
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec, so a child would report its parent's peak.
    status = Path("/proc/self/status").read_text()
    peak = int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024
    print(json.dumps({"rows": rows, "seconds": round(seconds, 2), "peak_mib": round(peak)}))


def run(mode: str, root: Path, columns: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--measure", mode, str(root), "--columns", columns],
                         capture_output=True, text=True)  # fmt: skip
    if out.returncode:  # e.g. SIGKILLed by the kernel's OOM killer: the naive read of a long history
        return {"seconds": None, "peak_mib": None, "failed": f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--work", default="/tmp/vidscore-table-bench")
    p.add_argument("--measure", nargs=2, metavar=("MODE", "ROOT"), help=argparse.SUPPRESS)
    p.add_argument("--columns", default="")
    args = p.parse_args()
    if args.measure:
        return measure(args.measure[0], args.measure[1], args.columns)
    root = Path(args.work) / "table"
    shutil.rmtree(root, ignore_errors=True)
    start = time.perf_counter()
    build(root, args.videos, args.runs)
    print(f"built {args.videos} videos x {args.runs} runs in {time.perf_counter() - start:.0f}s", flush=True)
    few = "generator,videoscore_visual_quality,mjvideo_overall"
    results = {}
    for label, columns in (("3 columns", few), ("all columns", "")):
        results[("naive", label)] = run("naive", root, columns)
        results[("latest", label)] = run("latest", root, columns)
    from vidscore.jobs.compact import compact

    start = time.perf_counter()
    compact(str(root))
    print(f"compact: {time.perf_counter() - start:.0f}s", flush=True)
    for label, columns in (("3 columns", few), ("all columns", "")):
        results[("compacted", label)] = run("latest", root, columns)
    print(f"\n{'reader':<12}{'columns':<14}{'seconds':>9}{'peak MiB':>10}{'time/naive':>12}{'mem/naive':>11}")
    for (mode, label), r in results.items():
        base = results[("naive", label)]
        if r["seconds"] is None:
            print(f"{mode:<12}{label:<14}{'failed: ' + r['failed']:>19}")
            continue
        ratio = base["seconds"] is not None
        time_ratio = f"{r['seconds'] / base['seconds']:.2f}" if ratio else "-"
        mem_ratio = f"{r['peak_mib'] / base['peak_mib']:.2f}" if ratio else "-"
        print(f"{mode:<12}{label:<14}{r['seconds']:>9}{r['peak_mib']:>10}{time_ratio:>12}{mem_ratio:>11}")


if __name__ == "__main__":
    main()
