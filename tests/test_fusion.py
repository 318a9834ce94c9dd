"""Fusion per section: a section both retrievers find through different chunks gets both
votes, the chunk shown is its best-ranked one, ties go to dense; the score scales (min-max,
DBSF, z-score, confidence gap); and the language weighting that makes a question in another
language lean on dense. Pure functions: no index needed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.answer.fusion import (
    Fusion,
    dbsf_scale,
    gap_scale,
    minmax_fuse,
    rrf_fuse,
    section_key,
    zscore_scale,
)
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


def ranked(sections: str, *scores: float) -> list[Hit]:
    """One chunk per section, section `sections[i]` scoring `scores[i]`."""
    return [chunk(s, score=v) for s, v in zip(sections, scores, strict=True)]


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


def test_dbsf_maps_mean_minus_and_plus_three_deviations_to_0_and_1() -> None:
    # mean 5, standard deviation 3: 0 at -4, 1 at 14.
    normalised, missing = dbsf_scale([10.0, 4.0, 4.0, 2.0])
    assert normalised == pytest.approx([14 / 18, 8 / 18, 8 / 18, 6 / 18])
    assert missing == 0.0  # Qdrant's: a ranking that did not return a hit gives it nothing
    # One hit far above 15 equal ones lies beyond mean + 3 std: clipped to 1, the rest near 0.3.
    towering, _ = dbsf_scale([100.0] + [0.0] * 15)
    assert towering[0] == 1.0 and towering[1] == pytest.approx(
        (3 * 24.206 - 6.25) / (6 * 24.206), abs=1e-3
    )
    assert dbsf_scale([3.0, 3.0])[0] == [0.5, 0.5]  # all equal: the middle
    assert dbsf_scale([]) == ([], 0.0)


def test_zscore_gives_standard_scores_and_the_lowest_to_a_missing_hit() -> None:
    normalised, missing = zscore_scale([3.0, 2.0, 1.0])
    assert normalised == pytest.approx([1.2247449, 0.0, -1.2247449])
    assert missing == pytest.approx(-1.2247449)  # below every hit returned, as the last
    assert zscore_scale([2.0, 2.0]) == ([0.0, 0.0], 0.0)


def test_gap_scales_min_max_by_how_far_the_first_hit_stands_out() -> None:
    # At 2: min-max times 1 - the second hit's min-max score.
    normalised, missing = gap_scale(2)([10.0, 9.0, 8.0, 0.0])
    assert normalised == pytest.approx([0.1, 0.09, 0.08, 0.0]) and missing == 0.0
    assert gap_scale(3)([10.0, 9.0, 8.0, 0.0])[0] == pytest.approx([0.2, 0.18, 0.16, 0.0])
    assert gap_scale(2)([10.0, 2.0, 1.0, 0.0])[0][0] == pytest.approx(0.8)
    assert gap_scale(5)([4.0, 2.0])[0] == pytest.approx([1.0, 0.0])  # short: its last hit
    assert gap_scale(2)([7.0, 7.0]) == ([0.0, 0.0], 0.0)  # flat: no confidence at all


def test_an_unconfident_bm25_first_hit_does_not_outvote_a_confident_dense_one() -> None:
    # Dense is sure of a; BM25's first four are near-equal and a is its last.
    dense = ranked("abcde", 0.80, 0.60, 0.55, 0.50, 0.40)
    bm25 = ranked("bxyza", 10.0, 9.9, 9.8, 9.7, 2.0)
    # Min-max gives BM25's first hit full marks: b (0.5 + 1) beats a (1 + 0).
    assert ids(Fusion(method="minmax").fuse(dense, bm25, 3))[0] == "b1"
    # Scaled by confidence at 2: a 0.5 * 1; b 0.5 * 0.5 + 0.0125 * 1.
    gap = Fusion(method="gap", gap_at=2).fuse(dense, bm25, 3)
    assert ids(gap)[:2] == ["a1", "b1"]
    assert [h.score for h in gap[:2]] == pytest.approx([0.5, 0.2625])
    # When BM25's first hit does tower over the rest, it decides as under min-max.
    sure = ranked("bxyza", 30.0, 3.0, 2.8, 2.6, 2.0)
    assert ids(Fusion(method="gap", gap_at=2).fuse(dense, sure, 3))[0] == "b1"


def test_bm25_can_be_scaled_apart_from_dense() -> None:
    # Dense is sure of a and b over the rest, a little more of a; BM25's first four are
    # near-equal. The gap at 2 on both discounts dense's near-equal pair to almost nothing and
    # BM25's unsure b decides; on BM25 alone, dense's order stands.
    dense = ranked("abcde", 0.80, 0.79, 0.55, 0.50, 0.40)
    bm25 = ranked("bxyza", 10.0, 9.9, 9.8, 9.7, 2.0)
    both = Fusion(method="gap", gap_at=2).fuse(dense, bm25, 3)
    # a 0.025 * 1 + 0; b 0.025 * 0.975 + 0.0125 * 1.
    assert ids(both)[:2] == ["b1", "a1"]
    assert [h.score for h in both[:2]] == pytest.approx([0.036875, 0.025])
    only_bm25 = Fusion(method="minmax", bm25_method="gap", gap_at=2).fuse(dense, bm25, 3)
    # a 1 + 0; b 0.975 + 0.0125.
    assert ids(only_bm25)[:2] == ["a1", "b1"]
    assert [h.score for h in only_bm25[:2]] == pytest.approx([1.0, 0.9875])
    # The per-ranking scales are the same functions the symmetric fusions use.
    same = Fusion(method="minmax", bm25_method="minmax").fuse(dense, bm25, 5)
    assert [(h.id, h.score) for h in same] == [
        (h.id, h.score) for h in Fusion(method="minmax").fuse(dense, bm25, 5)
    ]


@pytest.mark.parametrize("method", ["minmax", "dbsf", "zscore", "gap"])
def test_every_score_fusion_reads_negated_bm25_scores_from_the_ranking(method: str) -> None:
    dense = ranked("abcd", 0.9, 0.7, 0.6, 0.2)
    bm25 = ranked("cdab", 14.0, 9.0, 3.0, 1.0)
    negated = [replace(h, score=-h.score) for h in bm25]
    fusion = Fusion(method=method)  # type: ignore[arg-type]
    fused = fusion.fuse(dense, bm25, 10)
    assert ids(fusion.fuse(dense, negated, 10)) == ids(fused)
    assert [h.score for h in fusion.fuse(dense, negated, 10)] == [h.score for h in fused]


def test_score_fusions_sum_their_scales_and_keep_the_tie_rule() -> None:
    dense = [chunk("a", score=3.0), chunk("b", score=2.0), chunk("c", score=1.0)]
    bm25 = [chunk("c", score=2.0), chunk("d", score=1.0)]
    # z: dense a 1.22, b 0, c -1.22; BM25 c 1, d -1, a and b missing: -1 (its lowest).
    z = Fusion(method="zscore").fuse(dense, bm25, 10)
    assert ids(z) == ["a1", "c1", "b1", "d1"]
    assert [h.score for h in z] == pytest.approx([0.224745, -0.224745, -1.0, -2.224745])
    # DBSF: dense mean 2, std 0.816: a 0.704, b 0.5, c 0.296; BM25 c 0.667, d 0.333; missing 0.
    d = Fusion(method="dbsf").fuse(dense, bm25, 10)
    assert ids(d) == ["c1", "a1", "b1", "d1"]
    assert [h.score for h in d] == pytest.approx([0.962543, 0.704124, 0.5, 0.333333], abs=1e-6)
    # Weights scale each ranking's part; an exact tie goes to dense.
    tie = Fusion(method="dbsf").fuse([chunk("x", score=1.0)], [chunk("y", score=5.0)], 5)
    assert ids(tie) == ["x1", "y1"] and tie[0].score == tie[1].score == 0.5
    assert ids(Fusion(method="dbsf", bm25_weight=0.25).fuse(dense, bm25, 1)) == ["a1"]


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
