"""Which inference backend runs the local models, and the OpenVINO plumbing both models share.

OpenVINO with int8 weights is what makes Qwen3 affordable on a CPU (docs/cpu.md has the
figures). It is an optional extra, so everything here imports openvino, nncf and torch only
inside the functions that need them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import platform
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from config.errors import UserError
from config.logger import get_logger
from config.settings import Settings
from indexer.hardware import ModelRef

if TYPE_CHECKING:
    import openvino

log = get_logger(__name__)
Backend = Literal["torch", "openvino"]
T = TypeVar("T")
EXTRA = 'pip install "docsbot[openvino]"'
# Bumped whenever the export code changes what it writes, so older exports are rebuilt.
EXPORT_FORMAT = 2
HUB_IGNORE = ["onnx/*", "openvino/*", "*.onnx", "*.h5", "*.msgpack", "*.ot", "*.gguf"]
PRECISION_NAMES = {"bf16": "bfloat16", "f32": "float32", "f16": "float16"}


# int8-static's calibration: sections of two other projects' documentation (HTTPX, Flask),
# shipped with docsbot. Calibrated on 24 windows of a paragraph of invented prose, the 0.6B
# embedder's vectors came out at min cosine 0.988 to fp32; on 64 windows of real documentation
# at 0.998 (docs/cpu.md).
CALIBRATION = Path(__file__).parent / "calibration" / "docs.txt"
CALIBRATION_LENGTHS = (64, 128, 200, 280, 350, 420)


@functools.cache
def calibration_sections() -> tuple[str, ...]:
    text = CALIBRATION.read_text(encoding="utf-8")
    return tuple(part.strip() for part in text.split("\n§\n")[1:] if part.strip())


def calibration_version() -> str:
    """Part of an int8-static export's cache key: new calibration text, new export."""
    return hashlib.sha256(CALIBRATION.read_bytes()).hexdigest()[:12]


def calibration_ids(tokenizer: Any, count: int = 64) -> list[list[int]]:
    """`count` token windows, one from the start of each calibration section, 64 to 420 tokens
    long in turn (sections too short for their length give what they have, 40 at least)."""
    out: list[list[int]] = []
    for section in calibration_sections():
        ids = tokenizer(section, add_special_tokens=False, verbose=False)["input_ids"]
        if len(ids) < 40:
            continue
        out.append(list(ids[: CALIBRATION_LENGTHS[len(out) % len(CALIBRATION_LENGTHS)]]))
        if len(out) == count:
            break
    return out


# The exported graphs take any batch and width up to this (torch.export's Dim max).
MAX_WIDTH = 32768


def padded_width(n: int) -> int:
    """`n` tokens rounded up to one of a few widths, so the CPU plugin's kernels for a shape are
    built once and reused: every new (batch, width) costs it 0.3-0.8 s on a 0.6B model (kernels
    and buffers; docs/cpu.md). Multiples of 32 up to 256, then 8 widths per doubling (288, 320,
    ..., 512, 576, ...): at most 1/8 more tokens above 256, and 48 widths up to 8,192. (Width
    16 is avoided too: int8-static vectors came out wrong at exactly 16 tokens, cosine 0.992
    against 0.9997 at any other width.)"""
    step = max(32, 1 << max(0, n.bit_length() - 4))
    return min(-(-max(n, 1) // step) * step, max(n, MAX_WIDTH))


def document_width(n: int) -> int:
    """The embedder's widths for documents: multiples of 16 from 32 to 512, then
    `padded_width`'s. Indexing runs many batches of each shape, so building twice as many
    shapes is paid once per run while halving the padding is saved on every batch (embedding
    ~5% faster on the 0.6B model, docs/cpu.md); questions and the reranker, whose few calls per
    answer each risk a new shape, keep the coarser widths. Never 16 (see `padded_width`)."""
    return max(32, -(-n // 16) * 16) if n <= 512 else padded_width(n)


def batch_pieces(count: int, limit: int) -> list[int]:
    """`count` rows as batches whose sizes are powers of two up to `limit` (7 -> 4, 2, 1): a
    few batch sizes, and no dummy rows to compute."""
    top = 1 << max(0, max(1, limit).bit_length() - 1)
    pieces = []
    while count > 0:
        size = top
        while size > count:
            size >>= 1
        pieces.append(size)
        count -= size
    return pieces


class BackendUnavailable(UserError, RuntimeError):
    """DOCSBOT_BACKEND asks for something this install or machine cannot do."""


class OpenVINOUnsupported(UserError, RuntimeError):
    """This model is not one the OpenVINO path knows how to export."""


def openvino_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("openvino", "nncf"))


def is_x86() -> bool:
    return platform.machine().lower() in {"x86_64", "amd64", "i686", "i386", "x86"}


@functools.cache
def cpu_has_amx() -> bool:
    """AMX: torch bf16 runs on the matrix units, and int8 weights alone no longer beat it."""
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def choose_backend(settings: Settings) -> tuple[Backend, bool]:
    """(backend, chosen by `auto`?). `auto` takes OpenVINO only where it is known to pay: an
    x86 CPU, the extra installed, DOCSBOT_DTYPE left to `auto` (a pinned torch precision is a
    request for torch's numbers), and either no AMX or DOCSBOT_QUANTIZATION=int8-static, the
    default (on AMX, torch bf16 matches int8 weights alone; see docs/cpu.md)."""
    if settings.backend == "torch":
        return "torch", False
    if settings.backend == "openvino":
        if settings.device == "cuda":
            raise BackendUnavailable(
                "DOCSBOT_BACKEND=openvino runs on the CPU, but DOCSBOT_DEVICE=cuda: set "
                "DOCSBOT_BACKEND=torch (or auto) for the GPU, or DOCSBOT_DEVICE=cpu."
            )
        if not openvino_installed():
            raise BackendUnavailable(
                f"DOCSBOT_BACKEND=openvino needs the OpenVINO extra: `{EXTRA}` "
                "(or set DOCSBOT_BACKEND=torch)."
            )
        return "openvino", False
    if settings.device == "cuda" or settings.dtype != "auto" or not is_x86():
        return "torch", True
    if not openvino_installed():
        return "torch", True
    if cpu_has_amx() and settings.quantization != "int8-static":
        return "torch", True
    if settings.device == "auto":
        from indexer.hardware import pick_device

        if pick_device("auto") != "cpu":
            return "torch", True  # GPUs keep torch
    return "openvino", True


def source_dir(ref: ModelRef) -> Path:
    """The model's files on this disk, downloading them first like `from_pretrained` would."""
    path = Path(ref.path)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download(ref.path, local_files_only=ref.local_only, ignore_patterns=HUB_IGNORE)
    )


def runtime_version() -> str:
    """major.minor of the OpenVINO runtime: an IR is re-exported when it changes."""
    import openvino

    return ".".join(openvino.__version__.split(".")[:2])


def versions() -> dict[str, str]:
    """What built an export; recorded in its key's neighbourhood for people, not matched."""
    import nncf
    import openvino
    import torch
    import transformers

    return {
        "openvino": openvino.__version__.split("-")[0],
        "nncf": str(nncf.__version__),
        "torch": str(torch.__version__),
        "transformers": str(transformers.__version__),
    }


class Steps:
    """The export's progress lines: `step 2/3 converting to OpenVINO (after 41 s)`."""

    def __init__(self, what: str, total: int) -> None:
        self.what = what
        self.total = total
        self.done = 0
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        log.info(
            "%s: step %d/%d %s (%.0f s so far)", self.what, self.done, self.total, message, elapsed
        )


def export_to_ir(
    module: Any,
    example: tuple[Any, ...],
    dynamic_shapes: dict[str, Any],
    target: Path,
    *,
    quantization: str,
    step: Callable[[str], None],
    names: Sequence[str] = (),
    calibration: Callable[[], list[dict[str, np.ndarray]]] | None = None,
    smooth_quant_alpha: float | None = None,
) -> None:
    """torch.export -> openvino.convert_model -> nncf int8 -> target/model.xml.

    `int8`: int8 weights (nncf.compress_weights), activations as the CPU computes them.
    `int8-static`: int8 weights and activations (nncf.quantize with SmoothQuant, calibrated on
    `calibration()`'s inputs): int8 matrix units (AMX, VNNI) do the work, about twice as fast
    on a CPU with AMX, where torch bf16 already runs on AMX and int8 weights alone gain nothing.
    `smooth_quant_alpha` overrides nncf's SmoothQuant strength for MatMuls (0.95): the 0.6B
    embedder came out closer to fp32 at 0.75, the reranker at the default.
    """
    import openvino
    import torch

    step("tracing the model with torch.export")
    with torch.no_grad():
        program = torch.export.export(module, example, dynamic_shapes=dynamic_shapes)
    step("converting to OpenVINO")
    model = openvino.convert_model(program)
    del program
    for port, name in zip(model.inputs, names, strict=False):
        port.get_tensor().set_names({name})
    if quantization.startswith("int8"):
        import nncf

        # nncf prints statistics tables at INFO (its import sets that level); the step line
        # says it all.
        logging.getLogger("nncf").setLevel(logging.WARNING)
    if quantization == "int8":
        step("compressing the weights to int8 (nncf)")
        model = nncf.compress_weights(model)
    elif quantization == "int8-static":
        if calibration is None:
            raise OpenVINOUnsupported("int8-static needs calibration inputs for this model")
        samples = calibration()
        step(f"quantizing weights and activations to int8 on {len(samples)} calibration inputs")
        advanced = (
            {}
            if smooth_quant_alpha is None
            else {
                "advanced_parameters": nncf.AdvancedQuantizationParameters(
                    smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(
                        matmul=smooth_quant_alpha
                    )
                )
            }
        )
        model = nncf.quantize(
            model,
            nncf.Dataset(samples),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(samples),
            **advanced,
        )
    else:
        step("keeping the weights unquantized")
    # fp16 storage halves the files; the CPU plugin computes in bf16 or f32 all the same.
    openvino.save_model(model, str(target / "model.xml"), compress_to_fp16=True)


def compile_ir(folder: Path, dtype: str, *, throughput: bool = False) -> openvino.CompiledModel:
    """Compile for the CPU with OpenVINO's own defaults (bf16 and dynamic int8 activations
    where the CPU has them: forcing f32 loses 20-30%), or f32 when DOCSBOT_DTYPE says so.

    `throughput`: several streams (OpenVINO picks how many: 2 on 2 cores), each running a
    request on its share of the cores, for callers that send many at once (`Runner.map`). On
    2 cores, two one-thread streams embedded documents ~10% faster than one two-thread stream
    (no waiting on each other between layers), while a lone request, such as a question, runs
    on one stream's cores: 133 ms instead of 72 for a 48-token question (docs/cpu.md)."""
    import openvino

    config: dict[str, Any] = {"PERFORMANCE_HINT": "THROUGHPUT" if throughput else "LATENCY"}
    if dtype in {"float32", "bfloat16", "float16"}:
        config["INFERENCE_PRECISION_HINT"] = {
            "float32": "f32",
            "bfloat16": "bf16",
            "float16": "f16",
        }[dtype]
    return openvino.Core().compile_model(str(folder / "model.xml"), "CPU", config)


def precision_of(compiled: openvino.CompiledModel, quantization: str) -> str:
    """`int8`/`int8-static` for quantized models, else the precision the CPU computes in."""
    if quantization.startswith("int8"):
        return quantization
    hint = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
    return PRECISION_NAMES.get(hint, hint)


class Runner:
    """One infer request per thread: a compiled model is shared, a request is not (the
    indexer and the question workers embed at the same time)."""

    def __init__(self, compiled: openvino.CompiledModel) -> None:
        self.compiled = compiled
        self._local = threading.local()

    def __call__(self, inputs: Sequence[np.ndarray], outputs: int = 1) -> list[np.ndarray]:
        """The first `outputs` outputs, copied: the request reuses its buffers next call."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        request.infer(list(inputs))
        return [np.array(request.get_output_tensor(i).data) for i in range(outputs)]

    def map(self, batches: Iterable[Sequence[np.ndarray]]) -> list[np.ndarray]:
        """Each batch's first output, in order, with as many batches in flight as the compiled
        model has streams (one at a time on a LATENCY model). A lone batch, such as a question,
        goes through this thread's request, without an async queue's requests and buffers."""
        import openvino

        batches = list(batches)
        if len(batches) == 1:
            return [self(batches[0])[0]]
        queue = getattr(self._local, "queue", None)
        if queue is None:
            jobs = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            queue = self._local.queue = openvino.AsyncInferQueue(self.compiled, max(1, jobs))
        results: list[np.ndarray | None] = [None] * len(batches)

        def keep(request: openvino.InferRequest, index: int) -> None:
            results[index] = np.array(request.get_output_tensor(0).data)

        queue.set_callback(keep)
        for index, inputs in enumerate(batches):
            queue.start_async(list(inputs), index)
        queue.wait_all()
        done = [r for r in results if r is not None]
        if len(done) != len(batches):
            raise RuntimeError(f"OpenVINO answered {len(done)} of {len(batches)} batches")
        return done


def or_torch(build: Callable[[], T], automatic: bool, role: str) -> T | None:
    """`build()`, or None where `auto` chose OpenVINO and it cannot serve this model: the
    caller then loads the torch one. An explicit DOCSBOT_BACKEND=openvino fails instead."""
    try:
        return build()
    except OpenVINOUnsupported as error:
        if not automatic:
            raise
        log.info("the %s stays on torch: %s", role, error)
    except UserError:
        raise  # a model that cannot be had fails the same on torch
    except Exception as error:
        if not automatic:
            raise
        log.warning(
            "the %s could not be prepared for OpenVINO (%s: %s): using torch instead "
            "(DOCSBOT_BACKEND=torch skips trying)",
            role,
            type(error).__name__,
            error,
        )
    return None


def planned(settings: Settings) -> str:
    """What the local models will run on, without loading them (for `docsbot config`):
    `openvino int8`, `torch auto`; `(auto)` when DOCSBOT_BACKEND=auto chose it. A model
    that `auto` cannot export still falls back to torch when loaded: the objects'
    `describe()` is the final word."""
    backend, automatic = choose_backend(settings)
    precision = settings.quantization if backend == "openvino" else settings.dtype
    return f"{backend} {precision}" + (" (auto)" if automatic else "")
