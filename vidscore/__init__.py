"""vidscore: score text-to-video corpora with learned video reward models on Ray Data.

The public API (everything else is internal and may change):

    import vidscore
    ds = vidscore.score(ray_dataset, ["videoscore", "technical"])   # lazy; score columns added per row
    scores = vidscore.latest("s3://bucket/scores/", columns=["video_id", "videoscore_overall"]).collect()

The repository keeps its top-level folders (pipeline/, operators/, jobs/, schemas/); an install puts them under
this one package (vidscore.pipeline, ...), so nothing else lands in site-packages.
"""

from pathlib import Path as _Path

_here = _Path(__file__).resolve().parent
if not (_here / "pipeline").is_dir() and (_here.parent / "pipeline" / "__init__.py").is_file():
    # A source checkout (make test, `ray job submit --working-dir .`): the subpackages are the repo's folders.
    __path__.append(str(_here.parent))

__all__ = ["latest", "score", "scorers", "ScorerConfig", "TableError"]


def __getattr__(name: str):
    # Lazy: `import vidscore` stays cheap (no torch, no Ray) until an API function is used.
    if name in ("score", "scorers"):
        from vidscore.pipeline import api

        return getattr(api, name)
    if name == "ScorerConfig":  # a scorer with options: ScorerConfig("videoscore", CKPT, {"batch_size": 4}, "gpu", 8)
        from vidscore.pipeline.config import ScorerConfig

        return ScorerConfig
    if name in ("latest", "TableError"):
        from vidscore.pipeline import table

        return getattr(table, name)
    raise AttributeError(f"module 'vidscore' has no attribute {name!r}")
