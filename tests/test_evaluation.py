"""Retrieval evaluation: question files, scoring searched questions per mode, and `docsbot
eval` over several question files against the configured index."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench import rule, tuning
from bench.tuning import Criterion
from bot.answer.evaluation import (
    EvalCase,
    EvalFileError,
    Searched,
    first_relevant_rank,
    load_cases,
    score_modes,
    summarise,
)
from bot.answer.retrieval import hybrid
from bot.cli.app import app
from config.settings import Settings
from indexer.hits import Hit
from tests.conftest import MINILM

ROOT = Path(__file__).resolve().parents[1]


def hit(path: str, heading: str = "h", n: int = 1) -> Hit:
    return Hit(f"{path}#{heading}{n}", 0.0, "docs", path, "T", heading, "u", "The text of it.")


def test_load_cases_reads_lines_and_names_the_bad_one(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(
        '{"q": "a?", "sources": ["a.md"]}\n\n{"q": "b?", "sources": ["b.md", "c.md"]}\n'
    )
    assert load_cases(good) == [
        EvalCase("a?", frozenset(["a.md"])),
        EvalCase("b?", frozenset(["b.md", "c.md"])),
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": "a?", "sources": ["a.md"]}\n{"q": "b?", "sources": []}\n')
    with pytest.raises(EvalFileError, match=r"bad\.jsonl:2"):
        load_cases(bad)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(EvalFileError, match="no questions"):
        load_cases(tmp_path / "empty.jsonl")


def test_ranks_and_summary() -> None:
    hits = [hit("x.md"), hit("a.md"), hit("b.md")]
    assert first_relevant_rank(hits, frozenset(["b.md", "a.md"])) == 2
    assert first_relevant_rank(hits, frozenset(["z.md"])) is None
    assert summarise([1, 2, None, 6]) == {
        "recall@1": 0.25,
        "recall@3": 0.5,
        "recall@5": 0.5,
        "recall@10": 0.75,
        "mrr@10": round((1 + 1 / 2 + 1 / 6) / 4, 4),
    }


def test_score_modes_fuses_the_searched_rankings() -> None:
    # Dense finds a.md through one chunk at rank 2, BM25 through another at rank 2: per
    # section, hybrid puts a.md first; the best single retriever has it at rank 2.
    searched = [
        Searched(
            EvalCase("how do I configure a?", frozenset(["a.md"])),
            dense=[hit("x.md"), hit("a.md", n=1)],
            bm25=[hit("y.md"), hit("a.md", n=2)],
        )
    ]
    results = score_modes(searched, hybrid)
    assert results["dense"]["recall@1"] == results["bm25"]["recall@1"] == 0.0
    assert results["hybrid"]["recall@1"] == 1.0


@pytest.mark.parametrize("criterion", ["holds", "resampled"])
@pytest.mark.parametrize(("sets", "choices", "reports"), [(4, 6, 12), (5, 20, 50)])
def test_cross_validation_splits_any_number_of_sets(
    sets: int, choices: int, reports: int, criterion: Criterion
) -> None:
    # bench/quality.py --tune: four sets split two and two (each split once, not again as its
    # complement); five split two and three, choosing on either side of every split.
    case = Searched(EvalCase("q", frozenset(["a.md"])), [hit("a.md")], [hit("b.md"), hit("a.md")])
    tuning._TUNING.clear()
    tuning._TUNING.update({f"set{i}": [case] for i in range(sets)})
    tuning._scored.cache_clear()
    report, (held, _mean), _fusion = tuning.cross_validate(tuning.EQUAL[:2], criterion)
    lines = report.splitlines()
    assert sum(line.startswith("tuned on ") for line in lines) == choices
    assert sum(line.lstrip().startswith("held-out set") for line in lines) == reports
    assert held == reports


def test_the_chance_that_the_rule_holds_on_resampled_questions() -> None:
    # bench/rule.py: 24 questions, dense finds 18 first. A hybrid that finds the same ones
    # holds on every resample; one that loses a single question to dense (and gains none)
    # holds only on the resamples that leave that question out: (23/24)^24 = 0.36 of them,
    # since one question (1/24) is more than the 0.02 allowed.
    dense = [1] * 18 + [2] * 6
    same: dict[str, list[int | None]] = {"dense": dense, "bm25": [None] * 24, "hybrid": dense}
    assert rule.hold_chance(same) == 1.0
    lost = dict(same, hybrid=[2, *dense[1:]])
    assert rule.hold_chance(lost) == pytest.approx((23 / 24) ** 24, abs=0.03)
    gained = dict(same, hybrid=[1] * 24)
    assert rule.hold_chance(gained) == 1.0
    # Recall@5 counts too: a question dense ranks second, lost from hybrid's first five.
    missed = dict(same, hybrid=[*dense[:18], None, *dense[19:]])
    assert rule.hold_chance(missed) == pytest.approx((23 / 24) ** 24, abs=0.03)


def cli_environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "DOCSBOT_DATABASE_URL": settings.database_url,
        "DOCSBOT_MILVUS_URI": settings.milvus_uri,
        "DOCSBOT_EMBEDDING_MODEL": MINILM,
        "DOCSBOT_RERANKER_MODEL": "none",
    }.items():
        monkeypatch.setenv(name, value)


def test_eval_takes_several_question_files(
    indexed_data: Path,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    windows = tmp_path / "windows.jsonl"
    windows.write_text(
        json.dumps({"q": "Can I install Milvus on Windows?", "sources": ["faq/operational_faq.md"]})
    )
    bitset = tmp_path / "bitset.jsonl"
    bitset.write_text(json.dumps({"q": "What is a bitset?", "sources": ["reference/bitset.md"]}))
    cli_environment(make_settings(), monkeypatch)
    runner = CliRunner()

    both = runner.invoke(app, ["eval", str(windows), str(bitset), "--json"])
    one = runner.invoke(app, ["eval", str(windows), "--json"])
    tables = runner.invoke(app, ["eval", str(windows), str(bitset)])

    assert both.exit_code == 0, both.output
    per_file = json.loads(both.stdout)
    assert list(per_file) == [str(windows), str(bitset)]
    assert set(per_file[str(bitset)]) == {"dense", "bm25", "hybrid"}
    assert per_file[str(bitset)]["hybrid"]["recall@5"] == 1.0
    # One file keeps the shape it always had: mode -> metrics.
    assert json.loads(one.stdout) == per_file[str(windows)]
    assert "(windows.jsonl)" in tables.stdout and "(bitset.jsonl)" in tables.stdout


def test_eval_checks_every_file_before_searching(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"q": "q?", "sources": ["a.md"]}))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    cli_environment(make_settings(), monkeypatch)
    result = CliRunner().invoke(app, ["eval", str(good), str(bad)])
    assert result.exit_code != 0
    assert isinstance(result.exception, EvalFileError)
    assert "bad.jsonl:1" in str(result.exception)
