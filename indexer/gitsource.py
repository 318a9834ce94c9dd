"""Git repositories as a source: a shallow clone in a cache folder, brought up to date each run.

The system `git` does the work, so the host's ssh keys, known_hosts and credential helpers
apply as they do for a person. Whatever goes wrong surfaces as SourceUnavailable, with git's
own reason and no credentials, and the source keeps its indexed chunks.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from config.logger import get_logger
from config.specs import SourceSpec, redact
from indexer.sources import SourceUnavailable

log = get_logger(__name__)
TIMEOUT_S = 300.0


def cache_path(spec: SourceSpec, cache_dir: Path) -> Path:
    """One checkout per repository and ref; the subfolders of one checkout share it. The
    credentials are left out, so a new token reuses the checkout."""
    digest = hashlib.sha256(f"{spec.git_remote}\0{spec.git_ref or ''}".encode()).hexdigest()
    return cache_dir / digest[:16]


def checkout(spec: SourceSpec, cache_dir: Path, timeout_s: float = TIMEOUT_S) -> Path:
    """The folder to index for `spec` (its SUBDIR, or the repository root) at the current tip
    of its ref. `timeout_s` bounds each git command."""
    if not spec.is_git:
        raise ValueError(f"{spec.key} is not a git source")
    target = cache_path(spec, cache_dir)
    try:
        if (target / ".git").is_dir():
            try:
                _update(spec, target, timeout_s)
            except SourceUnavailable as error:
                # A git killed mid-fetch (a timeout, a container stopped) can leave a lock
                # file that fails every later fetch: start over. The old checkout stays until
                # the new clone is complete, and a remote that is down fails both.
                log.warning("git source %s: %s; cloning it afresh", spec.key, error)
                try:
                    _clone(spec, cache_dir, target, timeout_s)
                except SourceUnavailable:
                    raise error from None  # the remote is the problem: say what failed first
        else:
            _clone(spec, cache_dir, target, timeout_s)
    except OSError as error:  # the cache folder itself: not writable, disk full
        raise SourceUnavailable(
            f"git cache {cache_dir} cannot be used ({error.strerror or error}); "
            "check DOCSBOT_GIT_CACHE_DIR"
        ) from error
    head = ["-C", str(target), "rev-parse", "--short", "HEAD"]
    commit = _git(spec, "rev-parse", head, timeout_s).strip()
    log.info("git source %s: indexing commit %s", spec.key, commit)
    if not spec.subdir:
        return target
    root = target / spec.subdir
    # Our clones check links out as plain files; in a checkout made some other way, a linked
    # SUBDIR must still not lead out of the repository.
    if not root.is_dir() or not root.resolve().is_relative_to(target.resolve()):
        raise SourceUnavailable(
            f"{spec.key}: no folder {spec.subdir!r} in the repository at commit {commit}"
        )
    return root


def _clone(spec: SourceSpec, cache_dir: Path, target: Path, timeout_s: float) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    for leftover in cache_dir.glob(f".{target.name}-*"):  # from a clone that was killed
        shutil.rmtree(leftover, ignore_errors=True)
    if target.exists() and not (target / ".git").is_dir():  # not a checkout, whatever it holds
        shutil.rmtree(target)
    # Clone next to the target and move it into place when complete: an interrupted clone
    # leaves only a dot-folder, never a half checkout that would pass for the repository.
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_dir))
    try:
        repo = staging / "repo"
        # core.symlinks=false: a link in someone's repository becomes a small text file
        # instead of a way to read this host's files into the index.
        args = ["clone", "--quiet", "--depth", "1", "-c", "core.symlinks=false"]
        if spec.git_ref:
            args += ["--branch", spec.git_ref]
        url, auth = _authenticated(spec)
        _git(spec, "clone", [*args, "--", url, str(repo)], timeout_s, auth)
        # Every fetch names the URL, so the remote recorded on disk never needs a token.
        _git(spec, "clone", ["-C", str(repo), "remote", "set-url", "origin", spec.git_remote])
        if target.exists():  # an old checkout that could not be updated: replaced only now
            shutil.rmtree(target)
        repo.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _update(spec: SourceSpec, target: Path, timeout_s: float) -> None:
    here = ["-C", str(target)]
    fetch = ["fetch", "--quiet", "--depth", "1", "--no-tags", "--"]
    url, auth = _authenticated(spec)
    _git(spec, "fetch", [*here, *fetch, url, spec.git_ref or "HEAD"], timeout_s, auth)
    _git(spec, "reset", [*here, "reset", "--quiet", "--hard", "FETCH_HEAD"], timeout_s)
    # Files nobody committed (an edit in the cache, build output) are not the repository's.
    _git(spec, "clean", [*here, "clean", "-q", "-fdx"], timeout_s)


def _authenticated(spec: SourceSpec) -> tuple[str, dict[str, str]]:
    """The URL to give git, and the environment carrying the credentials.

    On http(s) the token travels as an Authorization header set through the environment
    (readable only by this user), not in the URL: a URL is on git's command line, which every
    local user can read in `ps`. The header is scoped to the repository's host, so a redirect
    elsewhere does not carry it."""
    if spec.git_credentials is None:
        return spec.git_remote, {}
    scheme, _, rest = spec.git_remote.partition("://")
    if scheme not in ("http", "https"):
        return spec.clone_url, {}  # ssh passwords cannot be typed here anyway; keys are used
    secret = spec.git_credentials.get_secret_value()
    user, _, password = secret.partition(":")
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    host = rest.split("/", 1)[0]
    return spec.git_remote, {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{scheme}://{host}/.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


def _git(
    spec: SourceSpec,
    step: str,
    args: list[str],
    timeout_s: float = TIMEOUT_S,
    auth: dict[str, str] | None = None,
) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(auth or {})}
    try:
        # A new session has no terminal: neither git nor ssh can stop to ask for a password,
        # passphrase or host key; and on a timeout the whole group (ssh, remote helpers) dies.
        process = subprocess.Popen(
            ["git", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as error:
        raise SourceUnavailable(
            f"cannot run git ({error.strerror or error}): install git to index git sources"
        ) from error
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise SourceUnavailable(
            f"git {step} of {spec.key} took longer than {timeout_s:g} s (is the remote reachable?)"
        ) from None
    if process.returncode != 0:
        reason = _reason(err, process.returncode, spec)
        raise SourceUnavailable(f"git {step} of {spec.key} failed: {reason}")
    return out


def _reason(stderr: str, returncode: int, spec: SourceSpec) -> str:
    """git's own words: its first `fatal:`/`error:` line (the lines after it are advice), else
    its last line, with credentials hidden."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("fatal:", "error:"))]
    line = (errors or lines or [f"exit status {returncode}"])[0 if errors else -1]
    line = line.removeprefix("fatal:").removeprefix("error:").strip()
    if spec.git_credentials is not None:
        secret = spec.git_credentials.get_secret_value()
        user, colon, password = secret.partition(":")
        # `user:password`: the password is the secret; a lone user part is a token.
        for part in (secret, password if colon else user):
            if part:
                line = line.replace(part, "***")
    return redact(line)
