"""Doc-set filtering in Milvus Lite: partition key (A) against a scalar-indexed field (B).

Builds collections shaped like indexer/store.py (same fields, the BM25 function on `lexical`,
AUTOINDEX/IP on `dense`, SPARSE_INVERTED_INDEX/BM25 on `sparse`, Strong consistency) plus a
VARCHAR `doc_set`, holding the same random chunks (unit vectors, Zipf random-word texts) spread
over 8 sets of skewed sizes (40/20/10/10/8/6/4/2 %):

    A  `doc_set` is the partition key (is_partition_key=True)
    B  `doc_set` is a plain field with an INVERTED index
    C  no `doc_set` at all: today's schema, unfiltered only (reference)

Then it times dense (limit 20) and BM25 (limit 20) searches unfiltered, filtered to 1 set
(cycling over all 8, small ones included) and to 3 random sets (`doc_set in [...]`), with every
(variant, search, filter) shuffled inside each round, and prints medians, p90s and the ratio to
the unfiltered median of the same collection and search. It checks that filtered hits only
come from the allowed sets and how far A and B agree on the top 20. Nothing asserts on time.

    .venv/bin/python bench/docset_filter_bench.py [--chunks 100000] [--dim 384] [--quick]

Milvus Lite quirks (milvus-lite 3.2, pure Python in-process server): the partition key is
accepted but always hashes into 16 bucket partitions (`num_partitions` is ignored) and a
filter on it does NOT prune partitions, it is evaluated like any scalar filter; the only
scalar index type is INVERTED (BITMAP/AUTOINDEX are refused); describe_index always says
"Finished" while compaction and HNSW builds run in a background thread, so the bench drains
that thread through a private hook (`Collection._wait_for_bg`) before timing. BM25 IDF is
per segment in Lite (a TODO in its code), and A's segments follow its buckets, so A and B rank
BM25 hits differently; AUTOINDEX is faiss HNSW (M 16, ef 64) per segment, filtered through an
IDSelector, and random vectors are its worst case: the recall column is a floor, not a forecast.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import MilvusClient

from indexer.store import SetField, collection_layout

SETS = ["s40", "s20", "s10a", "s10b", "s08", "s06", "s04", "s02"]
SHARES = [0.40, 0.20, 0.10, 0.10, 0.08, 0.06, 0.04, 0.02]
VARIANTS = {"A": "partition key", "B": "INVERTED index", "C": "no doc_set field"}
OUTPUT = ["source_key", "path", "title", "heading", "url", "text", "doc_set"]
FILTERS = ["none", "1 set", "3 sets"]
SEARCHES = ["dense", "bm25"]
LIMIT = 20
VOCAB = 20_000
Key = tuple[str, str, str]


LAYOUTS: dict[str, SetField] = {"A": "partition key", "B": "indexed", "C": "none"}


def create(client: MilvusClient, name: str, variant: str, dim: int) -> None:
    """The store's own layout, with the doc set as a partition key (A), a plain field with an
    INVERTED index (B, what docsbot uses) or absent (C)."""
    schema, index = collection_layout(client, dim, LAYOUTS[variant])
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


class Corpus:
    """Deterministic random chunks; regenerated per batch so all variants get the same rows."""

    def __init__(self, chunks: int, dim: int, seed: int) -> None:
        self.chunks, self.dim, self.seed = chunks, dim, seed
        rng = np.random.default_rng(seed)
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
        self.words = [
            "".join(rng.choice(letters, size=int(n))) + str(i)
            for i, n in enumerate(rng.integers(3, 9, VOCAB))
        ]
        weights = 1.0 / np.arange(1, VOCAB + 1) ** 1.1
        self.p = weights / weights.sum()
        counts = [round(share * chunks) for share in SHARES]
        counts[0] += chunks - sum(counts)
        self.doc_set = rng.permutation(np.repeat(np.arange(len(SETS)), counts))

    def batches(self, size: int) -> Iterator[list[dict[str, Any]]]:
        for start in range(0, self.chunks, size):
            rng = np.random.default_rng((self.seed, start))
            n = min(size, self.chunks - start)
            vectors = rng.standard_normal((n, self.dim), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            lengths = rng.integers(20, 80, n)
            ids = rng.choice(VOCAB, size=int(lengths.sum()), p=self.p)
            rows, at = [], 0
            for i in range(n):
                text = " ".join(self.words[w] for w in ids[at : at + lengths[i]])
                at += int(lengths[i])
                k = start + i
                rows.append(
                    {
                        "id": f"c{k}",
                        "source_key": f"src{k % 50}",
                        "path": f"docs/page{k // 10}.md",
                        "title": f"Page {k // 10}",
                        "heading": f"Section {k % 10}",
                        "url": f"https://docs.example.com/page{k // 10}#s{k % 10}",
                        "text": text,
                        "lexical": text,
                        "doc_set": SETS[self.doc_set[k]],
                        "dense": vectors[i],
                    }
                )
            yield rows


def drain(path: str, name: str) -> None:
    """Wait for Milvus Lite's background compaction + index builds (private API)."""
    try:
        from milvus_lite.server_manager import server_manager_instance

        _, db, _ = server_manager_instance._servers[str(Path(path).resolve())]
        db.get_collection(name)._wait_for_bg()
    except (ImportError, KeyError, AttributeError) as error:
        print(f"  (cannot drain background work of {name}: {error!r}; sleeping 30 s)")
        time.sleep(30)


def build(
    client: MilvusClient, path: str, corpus: Corpus, variants: list[str], batch: int
) -> tuple[dict[str, float], np.ndarray]:
    """Insert, flush, drain and load every variant; the seconds each took, and the vectors."""
    seconds = dict.fromkeys(variants, 0.0)
    vectors = []
    for v in variants:
        create(client, f"docs_{v}", v, corpus.dim)
    for rows in corpus.batches(batch):
        vectors.append(np.stack([r["dense"] for r in rows]))
        for v in variants:  # interleaved batch by batch: the build times share the noise
            data = rows if v != "C" else [{k: r[k] for k in r if k != "doc_set"} for r in rows]
            started = time.perf_counter()
            client.insert(f"docs_{v}", data)
            seconds[v] += time.perf_counter() - started
    for v in variants:
        started = time.perf_counter()
        client.flush(f"docs_{v}")
        drain(path, f"docs_{v}")
        client.load_collection(f"docs_{v}")
        seconds[v] += time.perf_counter() - started
    return seconds, np.concatenate(vectors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=60, help="timed rounds (>= 50)")
    parser.add_argument("--batch", type=int, default=2000, help="rows per insert call")
    parser.add_argument("--variants", default="A,B,C")
    parser.add_argument("--quick", action="store_true", help="10,000 chunks, 50 rounds")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.quick:
        args.chunks, args.queries = min(args.chunks, 10_000), 50
    variants = [v for v in args.variants.split(",") if v in VARIANTS]
    workdir = tempfile.mkdtemp(prefix="docset-bench-")
    path = f"{workdir}/bench.db"
    try:
        client = MilvusClient(path)
        corpus = Corpus(args.chunks, args.dim, args.seed)
        started = time.perf_counter()
        build_s, vectors = build(client, path, corpus, variants, args.batch)
        took = ", ".join(f"{v} {s:.1f} s" for v, s in build_s.items())
        print(
            f"built {len(variants)} x {args.chunks} chunks ({args.dim} dims) in "
            f"{time.perf_counter() - started:.1f} s: {took}"
        )
        parts = ", ".join(f"{v} {len(client.list_partitions(f'docs_{v}'))}" for v in variants)
        print(f"partitions: {parts}")
        rows, extra = measure(client, corpus, vectors, variants, args.queries, args.seed)
        report(rows, extra | {"chunks": args.chunks, "dim": args.dim, "build_s": build_s})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def measure(
    client: MilvusClient,
    corpus: Corpus,
    vectors: np.ndarray,
    variants: list[str],
    rounds: int,
    seed: int,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Time every (variant, search, filter) once per round, in a fresh random order."""
    rng, nprng = random.Random(seed), np.random.default_rng(seed + 1)
    combos = [(v, s, f) for v in variants for s in SEARCHES for f in FILTERS]
    combos = [c for c in combos if c[0] != "C" or c[2] == "none"]
    times: dict[Key, list[float]] = {c: [] for c in combos}
    recall: dict[Key, list[float]] = {c: [] for c in combos}  # dense top 20 vs exact
    short = dict.fromkeys(combos, 0)
    agree: dict[str, list[float]] = {f: [] for f in FILTERS}  # A vs B, BM25 top 20
    bad, warmup = 0, 5
    for round_ in range(warmup + rounds):
        vector = nprng.standard_normal((vectors.shape[1],), dtype=np.float32)
        vector /= np.linalg.norm(vector)
        query = " ".join(rng.choice(corpus.words[50:3000]) for _ in range(3))
        allowed = {"none": [], "1 set": [SETS[round_ % len(SETS)]], "3 sets": rng.sample(SETS, 3)}
        scores, exact = vectors @ vector, {}
        for filter_, sets in allowed.items():
            mask = np.isin(corpus.doc_set, [SETS.index(s) for s in sets]) if sets else True
            top = np.argpartition(-np.where(mask, scores, -np.inf), LIMIT)[:LIMIT]
            exact[filter_] = {f"c{i}" for i in top}
        ids: dict[Key, set[str]] = {}
        rng.shuffle(combos)
        for key in combos:
            variant, search, filter_ = key
            sets = allowed[filter_]
            started = time.perf_counter()
            hits = client.search(
                f"docs_{variant}",
                data=[vector.tolist() if search == "dense" else query],
                anns_field="dense" if search == "dense" else "sparse",
                limit=LIMIT,
                filter=f"doc_set in {json.dumps(sets)}" if sets else "",
                search_params={"metric_type": "IP" if search == "dense" else "BM25"},
                output_fields=OUTPUT if variant != "C" else OUTPUT[:-1],
            )[0]
            if round_ < warmup:
                continue
            times[key].append((time.perf_counter() - started) * 1000)
            ids[key] = {str(h["id"]) for h in hits}
            bad += sum(1 for h in hits if sets and h["entity"]["doc_set"] not in sets)
            short[key] += len(hits) < LIMIT
            if search == "dense":
                recall[key].append(len(exact[filter_] & ids[key]) / LIMIT)
        for f in FILTERS:
            a, b = ids.get(("A", "bm25", f)), ids.get(("B", "bm25", f))
            if a is not None and b is not None:
                agree[f].append(len(a & b) / max(1, len(a | b)))
    rows: list[dict[str, Any]] = []
    for key, values in times.items():
        median, base = statistics.median(values), statistics.median(times[(*key[:2], "none")])
        rows.append(
            dict(zip(["variant", "search", "filter"], key, strict=True))
            | {
                "median_ms": round(median, 2),
                "p90_ms": round(float(np.percentile(values, 90)), 2),
                "ratio": round(median / base, 2),
                "recall": round(statistics.mean(recall[key]), 3) if recall[key] else None,
                "short": short[key],
                "n": len(values),
            }
        )
    rows.sort(key=lambda r: (r["search"], r["variant"], FILTERS.index(r["filter"])))
    bm25_agree = {f: round(statistics.mean(v), 3) for f, v in agree.items() if v}
    return rows, {"rounds": rounds, "wrong_set_hits": bad, "ab_bm25_agreement": bm25_agree}


def report(rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    head = ["variant", "search", "filter", "median ms", "p90 ms", "ratio", "recall", "short"]
    print("\n{:<20} {:<6} {:<7} {:>9} {:>8} {:>6} {:>6} {:>5}".format(*head))
    for r in rows:
        label, recall = f"{r['variant']} {VARIANTS[r['variant']]}", r["recall"]
        print(
            f"{label:<20} {r['search']:<6} {r['filter']:<7} {r['median_ms']:>9.2f} "
            f"{r['p90_ms']:>8.2f} {r['ratio']:>6.2f} {'-' if recall is None else recall:>6} "
            f"{r['short']:>5}"
        )
    within = {
        f"{r['variant']} {r['search']} {r['filter']}": r["ratio"] <= 1.2
        for r in rows
        if r["filter"] != "none"
    }
    print(
        f"\nfiltered hits outside the allowed sets: {summary['wrong_set_hits']}  "
        f"(recall: dense top {LIMIT} vs exact; short: queries with < {LIMIT} hits)"
    )
    print(f"A/B BM25 top-{LIMIT} agreement (mean Jaccard): {summary['ab_bm25_agreement']}")
    print(
        "filtered/unfiltered <= 1.2: "
        + ", ".join(f"{k} {'yes' if ok else 'NO'}" for k, ok in within.items())
    )
    summary["build_s"] = {k: round(v, 1) for k, v in summary["build_s"].items()}
    print(json.dumps(summary | {"all_within_1.2": all(within.values()), "results": rows}))


if __name__ == "__main__":
    main()
