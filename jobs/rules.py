"""Curation rules: parsed from flags or a versioned YAML file, checked against the table before any work.

A rule is one of
- `where: <SQL condition>` keeps rows where the condition holds (polars SQL: AND/OR, BETWEEN, IN, IS NULL, ...);
- `top_percent: <P>` with `by: <column or SQL expression>` keeps the top P% of rows by `by` (ties at the cut kept);
- `top_k: <K>` with `by: ...` and optional `per: <column>` keeps the K best rows overall or per group.
Rules apply in order, each to what the previous ones kept, so percentiles are taken after earlier filters.
"""

from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from vidscore.jobs.table import JobError

KINDS = ("where", "top_percent", "top_k")


@dataclass(frozen=True)
class Rule:
    """One curation step; `value` is the percent (top_percent) or k (top_k)."""

    kind: str
    expr: str
    value: float | None = None
    per: str | None = None

    def label(self) -> str:
        if self.kind == "where":
            return f"where {self.expr}"
        if self.kind == "top_percent":
            return f"top {self.value:g}% by {self.expr}"
        return f"top {int(self.value)} by {self.expr}" + (f" per {self.per}" if self.per else "")

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        if self.kind == "top_k":
            out["value"] = int(self.value)
        return out


def where(expr: str) -> Rule:
    if not expr or not expr.strip():
        raise JobError("--where needs a SQL condition, e.g. --where 'technical_sharpness > 100'")
    return Rule("where", expr.strip())


def top_percent(spec: str) -> Rule:
    """`COLUMN=PERCENT` (the column may be an SQL expression; the last `=` separates the percent)."""
    by, sep, pct = spec.rpartition("=")
    try:
        value = float(pct)
    except ValueError:
        value = -1.0
    if not sep or not by.strip() or not 0 < value <= 100:
        raise JobError(f"--top-percent {spec!r}: write COLUMN=PERCENT with 0 < PERCENT <= 100, e.g. mjvideo_overall=20")
    return Rule("top_percent", by.strip(), value)


def top_k(k: int, by: str | None, per: str | None) -> Rule:
    if k < 1:
        raise JobError(f"--top-k {k}: k must be at least 1")
    if not by:
        raise JobError("--top-k needs --by COLUMN (the score to rank by)")
    return Rule("top_k", by.strip(), float(k), per)


def from_mapping(item: Any, where_from: str) -> Rule:
    """One rule from a YAML mapping such as `{top_k: 5, by: mjvideo_overall, per: generator}`."""
    kinds = [k for k in KINDS if isinstance(item, dict) and k in item]
    if len(kinds) != 1:
        raise JobError(f"{where_from}: each rule needs exactly one of {', '.join(KINDS)}; got {item!r}")
    extra = set(item) - {kinds[0], "by", "per", "name"}
    if extra:
        raise JobError(f"{where_from}: unknown rule keys {sorted(extra)}; allowed: {kinds[0]}, by, per, name")
    kind = kinds[0]
    if kind == "where":
        return where(str(item["where"]))
    if kind == "top_percent":
        return top_percent(f"{item.get('by') or ''}={item['top_percent']}")
    k = item["top_k"]
    if not isinstance(k, int):
        raise JobError(f"{where_from}: top_k must be an integer, got {k!r}")
    return top_k(k, item.get("by"), item.get("per"))


def load_rules(text: str, source: str) -> tuple[str, list[Rule], dict[str, Any]]:
    """(version, rules, options) from a rules YAML document; `options` holds include_failed when given."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise JobError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or "version" not in doc or not isinstance(doc.get("rules"), list):
        raise JobError(
            f"{source}: a rules file needs `version:` and a `rules:` list (see jobs/configs/filter_example.yaml)"
        )
    unknown = set(doc) - {"version", "rules", "include_failed", "description"}
    if unknown:
        raise JobError(f"{source}: unknown top-level keys {sorted(unknown)}; allowed: version, rules, include_failed")
    rules = [from_mapping(item, f"{source} rule {i + 1}") for i, item in enumerate(doc["rules"])]
    options = {"include_failed": bool(doc["include_failed"])} if "include_failed" in doc else {}
    return str(doc["version"]), rules, options


def compile_expr(text: str, schema: pl.Schema, scores: list[str], what: str) -> pl.Expr:
    """A polars expression from SQL text, checked against the table's columns and types on an empty frame."""
    try:
        expr = pl.sql_expr(text)
    except pl.exceptions.PolarsError as exc:
        raise JobError(f"{what} {text!r} is not a valid SQL expression ({exc}); score columns: {scores}") from exc
    missing = [c for c in dict.fromkeys(expr.meta.root_names()) if c not in schema]
    if missing:
        raise JobError(f"{what} {text!r}: unknown column(s) {missing}; score columns: {scores}")
    try:
        out = pl.DataFrame(schema=schema).lazy().select(expr.alias("_")).collect()
    except pl.exceptions.PolarsError as exc:
        raise JobError(f"{what} {text!r} cannot be evaluated on this table: {str(exc).splitlines()[0]}") from exc
    dtype = out.schema["_"]
    if what == "--where" and dtype != pl.Boolean:
        raise JobError(f"--where {text!r} is not a condition (it gives {dtype}); compare it, e.g. `{text} > 0`")
    if what == "--by" and not dtype.is_numeric():
        raise JobError(f"--by {text!r} is {dtype}, not a number; rank by a score column: {scores}")
    return expr


def apply(lf: pl.LazyFrame, rule: Rule, schema: pl.Schema, scores: list[str]) -> pl.LazyFrame:
    """`lf` narrowed by one checked rule (lazy: nothing is read here)."""
    if rule.kind == "where":
        return lf.filter(compile_expr(rule.expr, schema, scores, "--where"))
    by = compile_expr(rule.expr, schema, scores, "--by")
    if rule.kind == "top_percent":
        # Keep every row scoring at least the k-th best value, k = ceil(n * P / 100) over non-null rows.
        cut = (pl.col("__by").count() * (rule.value / 100)).ceil()
        ranked = lf.with_columns(by.alias("__by"))
        return ranked.filter(pl.col("__by").rank("min", descending=True) <= cut).drop("__by")
    if rule.per and rule.per not in schema:
        raise JobError(f"--per {rule.per!r}: no such column; use generator or prompt (columns: {schema.names()})")
    ranked = lf.with_columns(by.alias("__by")).filter(pl.col("__by").is_not_null())
    ranked = ranked.sort(["__by", "video_id"], descending=[True, False])
    position = pl.int_range(pl.len()).over(rule.per) if rule.per else pl.int_range(pl.len())
    return ranked.filter(position < rule.value).drop("__by")
