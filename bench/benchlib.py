"""Shared helpers for the benchmarks: repo path, threads, tokenizer, text, timing, peak RSS.

Nothing here asserts on time: the benchmarks print figures and a JSON line, nothing more.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

import torch

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "milvus-docs"  # beside the checkout, when present
MIB = 1024 * 1024
T = TypeVar("T")

# Qwen3-Reranker-0.6B / Qwen3-Embedding-0.6B published architecture (config.json of both repos).
QWEN3_0P6B: dict[str, Any] = {
    "vocab_size": 151669,
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 40960,
    "rope_theta": 1000000,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}

FALLBACK_TEXT = (
    "Milvus is a vector database built for scalable similarity search. A collection holds "
    "entities with a primary key, scalar fields, and one or more vector fields. Before a "
    "collection can be searched it must be indexed and loaded into memory; an index such as "
    "HNSW or IVF_FLAT trades recall for speed, and the metric type, for example inner product "
    "or L2, has to match the one the embeddings were trained for. Data is written to growing "
    "segments, which are sealed and flushed to object storage when they reach the configured "
    "size, and compaction later merges small segments and drops deleted entities. Consistency "
    "levels decide whether a search sees the latest writes: Strong waits for every insert, "
    "Bounded tolerates a short delay, and Eventually returns at once. "
)


def add_repo_to_path() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def set_threads() -> int:
    """All cores for intra-op work, as a real deployment would run; quiet progress bars."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    return cores


def qwen3_config(**overrides: Any) -> Any:
    from transformers import Qwen3Config

    return Qwen3Config(**{**QWEN3_0P6B, **overrides})


# ---------------------------------------------------------------- tokenizer


def build_tokenizer_dir(path: Path) -> str:
    """The tests' tiny byte-level BPE (tests/fakes/tiny_qwen.py) if present, else our own."""
    add_repo_to_path()
    try:
        from tests.fakes.tiny_qwen import build_tokenizer

        build_tokenizer(path)
        return "tests/fakes/tiny_qwen.build_tokenizer"
    except (ImportError, AttributeError):
        _own_tokenizer(path)
        return "bench/benchlib._own_tokenizer"


def _own_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Bare "yes"/"no" lines make them single tokens, as in Qwen's vocabulary.
    training = FALLBACK_TEXT + '\nNote that the answer can only be "yes" or "no".\nyes\nno\n'
    backend.train_from_iterator([training] * 8, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=40960,
    )
    fast.add_special_tokens({"additional_special_tokens": special[1:]})
    fast.add_tokens(["<think>", "</think>"])
    for word in ("yes", "no", "<think>", "</think>", *special):
        if len(fast.encode(word, add_special_tokens=False)) != 1:
            raise RuntimeError(f"bench tokenizer splits {word!r}")
    path.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(path))


# ---------------------------------------------------------------- text

_FENCE = re.compile(r"```.*?```", re.S)
_FRONT = re.compile(r"\A---\n.*?\n---\n", re.S)


def corpus_sections() -> list[str]:
    """Markdown sections (split at headings) of the milvus-docs corpus, prose only, FAQ first."""
    if not CORPUS.is_dir():
        return []
    files = sorted(CORPUS.rglob("*.md"), key=lambda p: (p.parent.name != "faq", str(p)))
    sections: list[str] = []
    for path in files:
        text = _FENCE.sub("", _FRONT.sub("", path.read_text(encoding="utf-8", errors="ignore")))
        lines = [
            line
            for line in text.splitlines()
            if not line.lstrip().startswith(("<", "![", "|", "{{", "---"))
        ]
        current: list[str] = []
        for line in [*lines, "# end"]:
            if line.startswith("#") and current:
                body = "\n".join(current).strip()
                words = body.split()
                alpha = sum(w.isalpha() for w in words)
                if len(words) > 40 and alpha > 0.6 * len(words):
                    sections.append(re.sub(r"\n{3,}", "\n\n", body))
                current = []
            current.append(line)
    return sections


def trim_to_tokens(tokenizer: Any, text: str, n: int) -> str:
    """Cut `text` at the character where its n-th token ends (fast tokenizer offsets)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    if len(offsets) <= n:
        return text
    return text[: offsets[n - 1][1]]


def token_count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def texts_of_lengths(tokenizer: Any, lengths: list[int]) -> tuple[list[str], str]:
    """One text per requested token length, each a different corpus section trimmed to it.

    Returns the texts and where they came from. Falls back to a built-in paragraph.
    """
    sections = corpus_sections()
    counted = [(token_count(tokenizer, s), s) for s in sections]
    used: set[int] = set()
    out: list[str] = []
    for want in lengths:
        pick = next(
            (i for i, (n, _) in enumerate(counted) if n >= want and i not in used),
            None,
        )
        if pick is None:
            base = FALLBACK_TEXT * (1 + want // 60)
            rotate = len(out) * 37 % len(FALLBACK_TEXT)
            out.append(trim_to_tokens(tokenizer, base[rotate:] + base[:rotate], want))
            continue
        used.add(pick)
        out.append(trim_to_tokens(tokenizer, counted[pick][1], want))
    source = str(CORPUS) if used else "built-in paragraph"
    if used and len(used) < len(lengths):
        source += " + built-in paragraph"
    return out, source


def varied_lengths(count: int, low: int, high: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(low, high) for _ in range(count)]


# ---------------------------------------------------------------- measuring

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as fh:
        return int(fh.read().split()[1]) * _PAGE


def malloc_trim() -> None:
    """Hand freed heap back to the OS so each measurement starts from the same floor."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakRss:
    """Peak resident set size while the block runs, sampled by a thread every ~2 ms."""

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self.base = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval_s)

    def __enter__(self) -> PeakRss:
        malloc_trim()
        self.base = rss_bytes()
        self.peak = self.base
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = max(self.peak, rss_bytes())
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def delta_mib(self) -> float:
        return (self.peak - self.base) / MIB


_TICK = os.sysconf("SC_CLK_TCK")


def busy_cpu_s() -> float:
    """CPU seconds spent busy by the whole machine since boot (/proc/stat)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _TICK


class Measured(NamedTuple, Generic[T]):
    value: T
    seconds: float  # wall clock
    cpu_s: float  # CPU time of this process (all threads)
    other_cpu_s: float  # CPU time other processes took meanwhile: > a few s means contention
    peak_mib: float  # peak RSS above the RSS just before the call


def measure(fn: Callable[[], T]) -> Measured[T]:
    """Run fn once, timed (wall and process CPU) and with its peak RSS."""
    with PeakRss() as mem:
        machine = busy_cpu_s()
        cpu = time.process_time()
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        cpu_s = time.process_time() - cpu
        other = max(0.0, busy_cpu_s() - machine - cpu_s)
    return Measured(result, seconds, cpu_s, other, mem.delta_mib)


def describe(m: Measured[Any]) -> str:
    """One measurement as text: wall, own CPU, other processes' CPU, peak RSS."""
    return (
        f"{m.seconds:7.2f} s (cpu {m.cpu_s:6.1f} s, others {m.other_cpu_s:5.1f} s)  "
        f"peak +{m.peak_mib:7.1f} MiB"
    )


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


def log(message: str) -> None:
    print(message, flush=True)


def emit_json(results: dict[str, Any]) -> None:
    print(json.dumps(results, sort_keys=False, default=_jsonable), flush=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    raise TypeError(type(value).__name__)
