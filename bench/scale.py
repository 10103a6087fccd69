"""Scale: does memory stay flat as the corpus grows, and what does listing a 100k-object prefix cost?

1. Memory. Scores N and then FACTOR x N videos (technical scorer, local output, one local Ray started once)
   in this one process, after a warm-up run of N / 10 that is not counted. Every manifest row names the same
   short real clip under a unique video_id, so the work per video is identical and only the count changes.
   A sampler thread reads /proc every 0.1 s:
   - driver: this process's RSS (peak per run; resource.getrusage's lifetime peak is printed too);
   - workers: every Ray worker process (`ray::...`) and its children (the decode sandboxes), as the
     largest single process and as their sum.
   Growth = peak at FACTOR x N / peak at N; flat memory (streaming, bounded buffers) gives ~1.0, the target is
   < 1.3x. The largest single worker is the leak signal; the sum also counts how many workers Ray started.
   RSS includes the pages of Ray's shared-memory object store that a worker has touched, which grow with the
   bytes passed through it until the store's capacity; RssAnon (private memory) is printed beside it.
2. Listing. Puts OBJECTS empty objects under a prefix of an in-process moto S3 server (into its store
   directly: moto serves ~100 PUTs/s over HTTP here, timed on a sample and extrapolated), then times, over
   HTTP, the floor (s3fs `find`, which the reader uses) and `read_input` on the prefix, with the driver's RSS
   growth while reading.
3. Staging. The driver's memory while it reads, validates and stages a Parquet manifest of ROWS and
   FACTOR x ROWS rows into Ray's object store (what `vidscore score` does before any work), each in a fresh
   process; beside it, the baseline of reading the whole manifest into one table first (how the input was
   read before it streamed). Peak private memory (RssAnon) growth over the process's start.
Last lines: `driver_growth: X`, `worker_growth: Y` and `staging_growth: Z`.
Usage: python bench/scale.py [--videos 200] [--factor 10] [--objects 100000] [--rows 100000]
                             [--skip-listing] [--skip-memory] [--skip-staging]
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidscore.jobs.corpus import encode_video, render  # noqa: E402

MB = 1024 * 1024


def _status(pid: int | str, field: str = "VmRSS") -> int:
    """A /proc/<pid>/status memory field in bytes (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) for every process we can see."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        out[int(entry)] = (ppid, cmd)
    return out


def workers() -> dict[int, str]:
    """Ray worker processes (renamed `ray::IDLE`, `ray::MapWorker(...)`, ...) and all their descendants."""
    procs = _processes()
    chosen = {pid for pid, (_, cmd) in procs.items() if cmd.startswith("ray::")}
    grew = True
    while grew:
        children = {pid for pid, (ppid, _) in procs.items() if ppid in chosen} - chosen
        chosen |= children
        grew = bool(children)
    return {pid: procs[pid][1] for pid in chosen}


class Sampler:
    """Peak RSS of this process and of Ray's workers, sampled in a background thread."""

    def __init__(self, every_s: float = 0.1) -> None:
        self.every_s, self._stop = every_s, threading.Event()
        self.driver = self.worker_max = self.worker_sum = 0
        self.driver_private = self.worker_private = 0  # RssAnon: without mapped object-store / file pages
        self.largest = ""  # the command line of the largest worker process
        self.workers_seen: set[int] = set()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.driver = max(self.driver, _status("self"))
            self.driver_private = max(self.driver_private, _status("self", "RssAnon"))
            found = workers()
            sizes = {pid: _status(pid) for pid in found}
            private = [_status(pid, "RssAnon") for pid in found]
            self.worker_private = max(self.worker_private, max(private, default=0))
            self.workers_seen.update(sizes)
            if sizes:
                pid = max(sizes, key=sizes.get)
                if sizes[pid] > self.worker_max:
                    self.worker_max, self.largest = sizes[pid], found[pid][:60].strip()
                self.worker_sum = max(self.worker_sum, sum(sizes.values()))
            self._stop.wait(self.every_s)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def memory_runs(videos: int, factor: int, work: Path) -> tuple[float, float, float]:
    """Score N and FACTOR x N copies of one clip; returns growth: driver RSS, worker RSS, worker private."""
    import ray

    from vidscore.jobs.score import main

    clip = encode_video(work / "clip.mp4", render("crisp-motion", 7, 24, 96, 128))
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    print(
        f"memory: one {clip.stat().st_size} B clip (24 frames 128x96 H.264) per row; technical scorer; "
        f"local Ray with {int(ray.cluster_resources()['CPU'])} CPUs"
    )
    results = []
    for count in (max(1, videos // 10), videos, videos * factor):  # the first run warms up, and is not counted
        manifest = work / f"manifest-{count}.jsonl"
        rows = (json.dumps({"uri": str(clip), "video_id": f"v{i:07d}"}) + "\n" for i in range(count))
        manifest.write_text("".join(rows))
        out = work / f"scores-{count}"
        start = time.perf_counter()
        with Sampler() as s:
            code = main([str(manifest), "-o", str(out), "-s", "technical"])
        wall = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"the run on {count} videos failed with exit code {code}")
        results.append((count, wall, s))
    ray.shutdown()
    print("  peak MiB: RSS (private = RssAnon, without shared object-store and file pages)")
    print("  run       videos  time s  videos/s  driver RSS (private)  largest worker RSS (private)  all workers RSS")
    for label, (count, wall, s) in zip(("warm-up", "N", f"{factor}N"), results):
        print(
            f"  {label:<8} {count:>7} {wall:7.1f} {count / wall:9.1f}"
            f" {s.driver / MB:11.0f} ({s.driver_private / MB:5.0f})"
            f" {s.worker_max / MB:19.0f} ({s.worker_private / MB:5.0f}) {s.worker_sum / MB:16.0f}"
            f"   {len(s.workers_seen)} processes; largest: {s.largest}"
        )
    (_, _, small), (_, _, large) = results[1:]
    print(f"  driver lifetime peak (getrusage): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    ratios = {
        "driver RSS": large.driver / small.driver,
        "driver private": large.driver_private / small.driver_private,
        "largest worker RSS": large.worker_max / small.worker_max,
        "largest worker private": large.worker_private / small.worker_private,
        "all workers RSS": large.worker_sum / small.worker_sum,
    }
    growth = ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
    print(f"  growth for {factor}x the videos (target < 1.3x): {growth}")
    return ratios["driver RSS"], ratios["largest worker RSS"], ratios["largest worker private"]


def listing(objects: int, put_sample: int) -> None:
    """Create `objects` keys under a prefix in moto, then time the listing floor and read_input over HTTP."""
    import logging
    import socket
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.config import Config
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    from vidscore.operators.read import read_input
    from vidscore.operators.storage import filesystem

    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        client = boto3.client("s3", endpoint_url=url, config=Config(max_pool_connections=32))
        client.create_bucket(Bucket="bench")
        start = time.perf_counter()

        def put(i: int) -> None:
            client.put_object(Bucket="bench", Key=f"sample/{i}.mp4", Body=b"")

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, range(put_sample)))
        http_rate = put_sample / (time.perf_counter() - start)
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        start = time.perf_counter()
        for i in range(objects):
            backend.put_object("bench", f"dump/gen{i % 8}/clip-{i:07d}.mp4", b"")
        created = time.perf_counter() - start
        print(
            f"listing: created {objects} objects in {created:.1f} s (into moto's store; over HTTP moto took "
            f"{put_sample / http_rate:.1f} s for {put_sample} PUTs with 16 threads, {http_rate:.0f}/s, so "
            f"~{objects / http_rate / 60:.0f} min for all)"
        )
        fs, path = filesystem("s3://bench/dump/", url)
        start = time.perf_counter()
        found = len(fs.find(path))
        floor = time.perf_counter() - start
        fs.invalidate_cache()
        del fs
        before = _status("self")
        with Sampler() as s:
            start = time.perf_counter()
            table = read_input("s3://bench/dump/", endpoint_url=url)
            wall = time.perf_counter() - start
        assert found == len(table) == objects, (found, len(table), objects)
        print(
            f"  s3fs find (floor): {floor:.1f} s  read_input: {wall:.1f} s ({wall / floor:.2f}x floor, "
            f"{objects / wall:.0f} objects/s, {-(-objects // 1000)} LIST pages)"
        )
        print(
            f"  driver RSS while reading: +{(s.driver - before) / MB:.0f} MiB peak over {before / MB:.0f} MiB "
            f"({(s.driver - before) / objects:.0f} B per object); table {table.nbytes / MB:.1f} MiB"
        )
    finally:
        server.stop()


def _stage_one(manifest: str, whole: bool) -> None:
    """In a fresh process: stage `manifest` (or read it whole, the baseline); print the peak private growth."""
    import polars as pl
    import ray

    from vidscore.operators.read import iter_input, read_input
    from vidscore.operators.scorers.technical import TechnicalScorer
    from vidscore.pipeline.stage import stage

    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    before = _status("self", "RssAnon")
    with Sampler() as s:
        start = time.perf_counter()
        if whole:
            table = read_input(manifest)
            refs = [ray.put(table)]
        else:
            staged = stage(iter_input(manifest), pl.DataFrame(), [TechnicalScorer.plan()], None, ray.put)
            refs = staged.refs
        wall = time.perf_counter() - start
    print(json.dumps({"growth": s.driver_private - before, "wall": wall, "refs": len(refs)}))


def staging(rows: int, factor: int, work: Path) -> float:
    """Driver memory to stage ROWS and FACTOR x ROWS manifest rows, streamed vs read whole; returns the growth."""
    import subprocess

    import pyarrow as pa
    import pyarrow.parquet as pq

    print("staging: Parquet manifests (row groups of 65,536 rows), uri + 100-character prompt, a fresh process each")
    print("  rows       streamed: +MiB private  time s   read whole (baseline): +MiB private  time s")
    results = {}
    for count in (rows, rows * factor):
        manifest = work / f"stage-{count}.parquet"
        uris = [f"s3://bucket/dump/gen{i % 8}/clip-{i:08d}.mp4" for i in range(count)]
        prompts = ["a prompt of one hundred characters " * 3] * count
        pq.write_table(pa.table({"uri": uris, "prompt": prompts}), manifest, row_group_size=65536)
        for whole in (False, True):
            code = (
                f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import scale; "
                f"scale._stage_one({str(manifest)!r}, {whole})"
            )
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            results[count, whole] = json.loads(out.stdout.strip().splitlines()[-1])
        a, b = results[count, False], results[count, True]
        print(f"  {count:>9}  {a['growth'] / MB:20.0f} {a['wall']:7.1f}  {b['growth'] / MB:33.0f} {b['wall']:7.1f}")
    small, large = results[rows, False]["growth"], results[rows * factor, False]["growth"]
    base = results[rows * factor, True]["growth"] / max(1, results[rows, True]["growth"])
    growth = large / max(1, small)
    print(f"  growth for {factor}x the rows (target < 1.3x): streamed {growth:.2f}x, read whole {base:.2f}x")
    return growth


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=200, help="N: videos in the small run")
    p.add_argument("--factor", type=int, default=10, help="the large run scores factor x N")
    p.add_argument("--objects", type=int, default=100_000, help="objects under the listed prefix")
    p.add_argument("--put-sample", type=int, default=500, help="PUTs over HTTP, to time moto's HTTP rate")
    p.add_argument("--rows", type=int, default=100_000, help="manifest rows in the small staging run")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-staging", action="store_true")
    p.add_argument("--skip-listing", action="store_true")
    args = p.parse_args()
    print(f"bench/scale.py on {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}")
    growth = None
    if not args.skip_memory:
        with tempfile.TemporaryDirectory(prefix="vidscore-scale-") as work:
            growth = memory_runs(args.videos, args.factor, Path(work))
    if not args.skip_listing:
        listing(args.objects, args.put_sample)
    staged = None
    if not args.skip_staging:
        with tempfile.TemporaryDirectory(prefix="vidscore-stage-") as work:
            staged = staging(args.rows, args.factor, Path(work))
    if growth:
        print(f"worker_private_growth: {growth[2]:.2f}  (RssAnon; RSS also counts object-store pages it touched)")
        print(f"driver_growth: {growth[0]:.2f}")
        print(f"worker_growth: {growth[1]:.2f}")
    if staged:
        print(f"staging_growth: {staged:.2f}")


if __name__ == "__main__":
    main()
