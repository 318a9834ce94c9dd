"""Fusion per section: a section both retrievers find through different chunks gets both
votes, the chunk shown is its best-ranked one, ties go to dense; and the language weighting
that makes a question in another language lean on dense. Pure functions: no index needed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.answer.fusion import Fusion, minmax_fuse, rrf_fuse, section_key
from bot.answer.retrieval import DEFAULT_FUSION, hybrid
from indexer.hits import Hit

ENGLISH = "Flask runs the development server on port 5000 and the reloader watches the files."


def chunk(section: str, part: int = 1, score: float = 0.0, text: str = ENGLISH) -> Hit:
    """Chunk `part` of section `section` (document `section`.md, heading `section`)."""
    return Hit(
        id=f"{section}{part}",
        score=score,
        source_key="docs",
        path=f"{section}.md",
        title=section.upper(),
        heading=f"{section} heading",
        url=f"https://x/{section}",
        text=text,
    )


def ids(hits: list[Hit]) -> list[str]:
    return [h.id for h in hits]


def test_a_section_found_through_two_chunks_gets_both_votes() -> None:
    dense = [chunk("b"), chunk("a", 1), chunk("c")]
    bm25 = [chunk("a", 2), chunk("d"), chunk("b")]

    per_chunk = rrf_fuse([dense, bm25], limit=10)
    per_section = rrf_fuse([dense, bm25], limit=10, key=section_key)

    # Per chunk, a1 and a2 each have one vote and b (two votes) wins; per section, a has two
    # votes at ranks 2 and 1 and b at ranks 1 and 3: a wins, shown by a2, its best-ranked chunk.
    assert ids(per_chunk)[0] == "b1" and {"a1", "a2"} <= set(ids(per_chunk))
    assert ids(per_section) == ["a2", "b1", "d1", "c1"]
    assert per_section[0].score == pytest.approx(round(1 / 62 + 1 / 61, 6))


def test_sections_rank_by_their_best_chunk_and_the_next_ones_move_up() -> None:
    dense = [chunk("a", 1), chunk("a", 2), chunk("a", 3), chunk("b")]
    fused = rrf_fuse([dense, []], limit=10, key=section_key)
    assert ids(fused) == ["a1", "b1"]
    assert fused[1].score == pytest.approx(round(1 / 62, 6))  # b is the 2nd section, not 4th


def test_ties_go_to_dense_then_to_the_better_rank() -> None:
    assert ids(rrf_fuse([[chunk("x")], [chunk("y")]], 5, key=section_key)) == ["x1", "y1"]
    assert ids(rrf_fuse([[chunk("y")], [chunk("x")]], 5, key=section_key)) == ["y1", "x1"]
    swapped = rrf_fuse([[chunk("p"), chunk("q")], [chunk("q"), chunk("p")]], 5, key=section_key)
    assert ids(swapped) == ["p1", "q1"]


def test_the_chunk_shown_is_the_best_ranked_one_dense_winning_a_tie() -> None:
    dense = [chunk("a", 1), chunk("b")]
    bm25 = [chunk("a", 2)]
    assert ids(rrf_fuse([dense, bm25], 5, key=section_key))[0] == "a1"  # rank 1 both: dense
    dense = [chunk("b"), chunk("a", 1)]
    assert ids(rrf_fuse([dense, bm25], 5, key=section_key))[0] == "a2"  # bm25's is better


def test_same_heading_in_two_documents_are_two_sections() -> None:
    other = Hit("z", 0.0, "docs", "other.md", "O", "a heading", "u", ENGLISH)
    fused = rrf_fuse([[chunk("a"), other], []], 5, key=section_key)
    assert ids(fused) == ["a1", "z"]


def test_weights_and_limit() -> None:
    dense = [chunk("a"), chunk("b")]
    bm25 = [chunk("c"), chunk("b")]
    rrf = Fusion(method="rrf")
    assert ids(replace(rrf, bm25_weight=0.0).fuse(dense, bm25, 10))[:2] == ["a1", "b1"]
    assert ids(replace(rrf, bm25_weight=3.0).fuse(dense, bm25[:1], 10)) == ["c1", "a1", "b1"]
    assert ids(rrf.fuse(dense, bm25, 1)) == ["b1"]
    assert Fusion().fuse([], [], 5) == []
    assert Fusion().weighted(0.5).bm25_weight == 0.5
    assert Fusion(bm25_weight=2.0).weighted(7.0).bm25_weight == 2.0  # shares cap at 1


def test_minmax_rescales_each_ranking() -> None:
    # Cosine similarities and BM25 scores are on different scales: rescaled, both count.
    dense = [chunk("a", score=0.81), chunk("b", score=0.80), chunk("c", score=0.30)]
    bm25 = [chunk("b", score=12.0), chunk("c", score=3.0), chunk("a", score=2.0)]
    fused = minmax_fuse([dense, bm25], 10, key=section_key)
    assert ids(fused) == ["b1", "a1", "c1"]
    assert fused[0].score == pytest.approx(round(0.5 / 0.51 + 1.0, 6))
    # Milvus Lite's BM25 scores are negated (best most negative): the ranking decides.
    negated = [chunk("b", score=-12.0), chunk("c", score=-3.0), chunk("a", score=-2.0)]
    assert ids(minmax_fuse([dense, negated], 10, key=section_key)) == ids(fused)
    # All scores equal: the ranking says nothing about order, every hit gets full marks.
    flat = minmax_fuse([[chunk("a", score=1.0), chunk("b", score=1.0)], []], 10)
    assert [h.score for h in flat] == [1.0, 1.0]


def test_per_chunk_fusion_is_kept_for_comparison() -> None:
    dense = [chunk("a", 1), chunk("a", 2)]
    assert ids(Fusion(per_section=False).fuse(dense, [], 10)) == ["a1", "a2"]
    assert ids(Fusion().fuse(dense, [], 10)) == ["a1"]


def test_a_question_in_another_language_leans_on_dense() -> None:
    dense = [chunk("port"), chunk("reload"), chunk("config")]
    bm25 = [chunk("noise"), chunk("other"), chunk("config")]

    english = hybrid("How do I change the port of the server?", dense, bm25, 10)
    chinese = hybrid("开发服务器怎么换端口？", dense, bm25, 10)
    quoting = hybrid("为什么报错 Working outside of application context？", dense, bm25, 10)

    assert ids(english)[:2] == ["config1", "port1"]  # both votes beat one
    # Nothing of the question is in the docs' language: dense alone decides the order.
    assert ids(chinese)[:3] == ["port1", "reload1", "config1"]
    assert chinese[3].score == 0.0  # BM25-only sections only follow
    # The quoted English error string is most of the question: BM25 counts, less than fully.
    assert ids(quoting)[0] == "config1"
    assert quoting[0].score < english[0].score


def test_docs_in_the_questions_language_keep_bm25() -> None:
    chinese_docs = "开发服务器默认监听 5000 端口，可以用命令行参数修改端口。" * 3
    dense = [chunk("port", text=chinese_docs), chunk("reload", text=chinese_docs)]
    bm25 = [chunk("reload", text=chinese_docs)]
    fused = hybrid("开发服务器怎么换端口？", dense, bm25, 10)
    assert ids(fused)[0] == "reload1"  # same language: BM25's vote counts in full


def test_the_default_fusion_is_per_section_minmax_with_equal_weights() -> None:
    assert Fusion(method="minmax", bm25_weight=1.0, per_section=True) == DEFAULT_FUSION
