"""Git sources on real repositories: `git init` in tmp_path, served to the real `git` over
file:// URLs. Parsing and web-page URLs need no repository at all."""

from __future__ import annotations

import logging
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.wiring import Backends, make_indexer, open_backends
from config.settings import Settings, SourceSpec, load_settings
from config.specs import redact
from indexer import gitsource
from indexer.embedding import LocalEmbedder
from indexer.sources import Document, LoadStats, SourceUnavailable, load_source, page_url

MAX_BYTES = 10_000
FIRST_COMMIT = ["README.md", "docs/guide/setup.md", "docs/index.md"]


class Remote:
    """A repository with a working tree: the test edits and commits, git clones it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self.git("init", "--quiet", "--initial-branch", "main")

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def git(self, *args: str) -> str:
        identity = ["-c", "user.name=Docs Bot Test", "-c", "user.email=test@example.com"]
        command = ["git", *identity, "-c", "commit.gpgsign=false", "-C", str(self.path), *args]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        """Writes (or, for None, deletes) the files and commits; returns the short sha."""
        for rel, text in files.items():
            path = self.path / rel
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "--short", "HEAD")


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    repo = Remote(tmp_path / "remote")
    repo.commit(
        {
            "README.md": "# Readme\n\nTop level words.\n",
            "docs/index.md": "# Home\n\nWelcome to the docs.\n",
            "docs/guide/setup.md": "# Setup\n\nInstall it with pip.\n",
        },
        "first",
    )
    return repo


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def load(text: str, cache: Path, stats: LoadStats | None = None) -> dict[str, Document]:
    spec = SourceSpec.parse(text)
    docs = load_source(spec, MAX_BYTES, stats or LoadStats(), git_cache_dir=cache)
    return {doc.path: doc for doc in docs}


# --- clone and pull -------------------------------------------------------------------------


def test_clone_loads_the_repository_and_logs_the_commit(
    remote: Remote, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="docsbot.indexer.gitsource")
    spec = SourceSpec.parse(f"git+{remote.url}")

    docs = load(f"git+{remote.url}", cache)

    assert sorted(docs) == FIRST_COMMIT
    assert docs["docs/index.md"].markdown == "# Home\n\nWelcome to the docs.\n"
    assert {d.source_key for d in docs.values()} == {f"git+{remote.url}"}
    checkout = gitsource.cache_path(spec, cache)
    assert docs["README.md"].url == (checkout / "README.md").as_uri()
    head = remote.git("rev-parse", "--short", "HEAD")
    assert any(head in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


def test_pull_picks_up_edits_and_deletions(remote: Remote, cache: Path) -> None:
    assert "docs/guide/setup.md" in load(f"git+{remote.url}", cache)
    remote.commit({"docs/index.md": "# Home\n\nThe docs moved.\n", "docs/guide/setup.md": None})

    docs = load(f"git+{remote.url}", cache)

    assert sorted(docs) == ["README.md", "docs/index.md"]
    assert docs["docs/index.md"].markdown == "# Home\n\nThe docs moved.\n"
    assert len(list(cache.iterdir())) == 1  # one checkout, updated in place


def test_ref_and_subdir_are_honoured(remote: Remote, cache: Path) -> None:
    remote.git("tag", "v1")
    remote.git("checkout", "--quiet", "-b", "release/2")
    remote.commit({"docs/index.md": "# Home\n\nVersion two.\n", "docs/new.md": "# New\n\nAdded.\n"})
    remote.git("checkout", "--quiet", "main")

    v2 = load(f"git+{remote.url}@release/2#docs", cache)
    v1 = load(f"git+{remote.url}@v1#docs/", cache)

    assert sorted(v2) == ["guide/setup.md", "index.md", "new.md"]  # relative to SUBDIR
    assert v2["index.md"].markdown == "# Home\n\nVersion two.\n"
    assert sorted(v1) == ["guide/setup.md", "index.md"]
    assert v1["index.md"].markdown == "# Home\n\nWelcome to the docs.\n"
    assert {d.source_key for d in v2.values()} == {f"git+{remote.url}@release/2#docs"}


def test_a_symlink_in_the_repository_does_not_read_this_host(
    remote: Remote, cache: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret.md"
    secret.write_text("# Secret\n\nTOPSECRET host words.\n")
    (remote.path / "docs" / "leak.md").symlink_to(secret)
    remote.commit({})

    docs = load(f"git+{remote.url}#docs", cache)

    assert "TOPSECRET" not in docs["leak.md"].markdown
    assert docs["leak.md"].markdown.strip() == str(secret)  # the link, checked out as text


# --- failures ---------------------------------------------------------------------------------


def test_bad_url_is_unavailable_with_gits_reason(tmp_path: Path, cache: Path) -> None:
    url = (tmp_path / "nowhere").as_uri()

    with pytest.raises(SourceUnavailable) as raised:
        load(f"git+{url}", cache)

    message = str(raised.value)
    assert message.startswith(f"git clone of git+{url} failed: ")
    assert "does not appear to be a git repository" in message
    assert not any(cache.iterdir()), "a failed clone leaves nothing behind"


def test_bad_ref_is_unavailable(remote: Remote, cache: Path) -> None:
    with pytest.raises(SourceUnavailable, match=r"git clone of .*@nope failed: .*nope.*not found"):
        load(f"git+{remote.url}@nope", cache)


def test_missing_subdir_is_unavailable(remote: Remote, cache: Path) -> None:
    head = remote.git("rev-parse", "--short", "HEAD")

    with pytest.raises(SourceUnavailable, match=f"no folder 'manual' .* at commit {head}"):
        load(f"git+{remote.url}#manual", cache)


def test_remote_gone_after_a_clone_is_unavailable(remote: Remote, cache: Path) -> None:
    load(f"git+{remote.url}", cache)
    remote.path.rename(remote.path.with_name("moved"))

    with pytest.raises(SourceUnavailable, match=r"git fetch of .* failed: .*not appear to be"):
        load(f"git+{remote.url}", cache)


def test_token_never_appears_in_messages(cache: Path) -> None:
    with socket.socket() as probe:  # a loopback port with no one listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = SourceSpec.parse(f"git+https://oauth2:s3cretT0ken@127.0.0.1:{port}/org/docs.git")

    with pytest.raises(SourceUnavailable) as raised:
        gitsource.checkout(spec, cache, timeout_s=20)

    assert "s3cretT0ken" not in str(raised.value)
    assert f"git+https://127.0.0.1:{port}/org/docs.git" in str(raised.value)
    for shown in (spec.location, spec.key, repr(spec), str(spec.model_dump())):
        assert "s3cretT0ken" not in shown
    assert spec.clone_url == f"https://oauth2:s3cretT0ken@127.0.0.1:{port}/org/docs.git"


def test_redact_hides_credentials_in_any_line() -> None:
    line = "fatal: 'https://user:pa55@host/x.git/' not found; ssh://git@host/y"

    assert redact(line) == "fatal: 'https://***@host/x.git/' not found; ssh://git@host/y"
    assert redact("git+ssh://deploy:pw@host/r.git") == "git+ssh://***@host/r.git"


def test_interrupted_clone_leaves_no_checkout(remote: Remote, cache: Path) -> None:
    spec = SourceSpec.parse(f"git+{remote.url}")
    half = gitsource.cache_path(spec, cache)
    half.mkdir(parents=True)  # what a crash in another tool could leave: no .git
    (half / "stale.md").write_text("# Stale\n\nOld words.\n")
    (cache / f".{half.name}-killed" / "repo").mkdir(parents=True)  # a killed clone's staging

    with pytest.raises(SourceUnavailable, match=r"took longer than 0\.001 s"):
        gitsource.checkout(spec, cache, timeout_s=0.001)
    assert not half.exists() and not list(cache.iterdir())

    assert sorted(load(f"git+{remote.url}", cache)) == FIRST_COMMIT


def test_missing_git_binary_is_unavailable(
    remote: Remote, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(cache))  # a PATH with no git on it

    with pytest.raises(SourceUnavailable, match="install git"):
        load(f"git+{remote.url}", cache)


# --- page URLs and parsing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "git+https://github.com/milvus-io/milvus-docs.git@v2.5.x#site/en",
            "https://github.com/milvus-io/milvus-docs/blob/v2.5.x/site/en/faq/a%20b.md",
        ),
        ("git+https://github.com/org/repo", "https://github.com/org/repo/blob/HEAD/faq/a%20b.md"),
        (
            "git+ssh://git@github.com/org/repo.git@release/2",
            "https://github.com/org/repo/blob/release/2/faq/a%20b.md",
        ),
        (
            "git+https://oauth2:tok@gitlab.com/group/sub/repo.git@main#docs",
            "https://gitlab.com/group/sub/repo/-/blob/main/docs/faq/a%20b.md",
        ),
        ("git+https://git.example.com/org/repo.git", None),
        ("git+https://github.com/org/repo/extra.git", None),
        ("git+file:///srv/github.com/org/repo.git", None),
    ],
)
def test_github_and_gitlab_sources_link_to_the_blob_page(source: str, expected: str | None) -> None:
    spec = SourceSpec.parse(source)
    root = Path("/srv/checkout")

    assert spec.git_web_url("faq/a b.md") == expected
    assert page_url(spec, "faq/a b.md", root) == (expected or (root / "faq/a b.md").as_uri())


def test_base_url_wins_over_the_derived_blob_url() -> None:
    spec = SourceSpec.parse("git+https://github.com/o/r.git#docs=https://docs.example.com/{stem}/")

    assert page_url(spec, "guide/setup.md", Path("/x")) == "https://docs.example.com/setup/"


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("docs", {"location": "docs"}),
        (
            "docs=https://docs.example.com/{stem}",
            {"location": "docs", "base_url": "https://docs.example.com/{stem}"},
        ),
        ("https://example.com/sitemap.xml", {"location": "https://example.com/sitemap.xml"}),
        (
            "git+https://github.com/milvus-io/milvus-docs.git@v2.5.x#site/en"
            "=https://milvus.io/docs/{stem}.md",
            {
                "location": "git+https://github.com/milvus-io/milvus-docs.git",
                "git_ref": "v2.5.x",
                "subdir": "site/en",
                "base_url": "https://milvus.io/docs/{stem}.md",
            },
        ),
        (
            "git+file:///srv/docs.git#docs",
            {"location": "git+file:///srv/docs.git", "subdir": "docs"},
        ),
        (
            "git+ssh://git@host/repo.git@main",
            {"location": "git+ssh://git@host/repo.git", "git_ref": "main"},
        ),
        (
            "git+http://host:8080/team/repo@release/2.5#/a/../guides/",
            {
                "location": "git+http://host:8080/team/repo",
                "git_ref": "release/2.5",
                "subdir": "guides",
            },
        ),
        (
            "git+https://x-token:abc=@gitlab.com/g/r.git",
            {"location": "git+https://***@gitlab.com/g/r.git", "git_credentials": "x-token:abc="},
        ),
    ],
)
def test_every_form_parses_and_round_trips(text: str, fields: dict[str, str]) -> None:
    spec = SourceSpec.parse(text)

    got = spec.model_dump(exclude_defaults=True)
    if spec.git_credentials is not None:
        got["git_credentials"] = spec.git_credentials.get_secret_value()
    assert got == fields
    assert spec.is_git == text.startswith("git+")
    assert spec.is_url == text.startswith("https://")
    assert SourceSpec.model_validate(spec.model_dump()) == spec  # how `docsbot config` reads it
    assert load_settings(sources=[text]).sources == [spec]  # a TOML list of strings


def test_sources_variable_mixes_git_with_the_other_forms(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "DOCSBOT_SOURCES", "docs, git+ssh://git@host/r.git@main#guides, https://x.org/sitemap.xml"
    )

    sources = load_settings().sources

    assert [(s.is_git, s.is_url) for s in sources] == [(False, False), (True, False), (False, True)]
    assert [s.key for s in sources] == [
        str(tmp_path / "docs"),
        "git+ssh://git@host/r.git@main#guides",
        "https://x.org/sitemap.xml",
    ]


def test_keys_are_distinct_per_url_ref_and_subdir_and_ignore_the_token() -> None:
    texts = [
        "git+https://h/o/r.git",
        "git+https://h/o/r.git@main",
        "git+https://h/o/r.git#docs",
        "git+https://h/o/r.git@main#docs",
        "git+https://h/o/other.git",
    ]

    assert len({SourceSpec.parse(t).key for t in texts}) == len(texts)
    assert (
        SourceSpec.parse("git+https://tok1@h/o/r.git@main").key
        == SourceSpec.parse("git+https://tok2@h/o/r.git@main").key
        == "git+https://h/o/r.git@main"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("git+git@github.com:org/repo.git", "write git\\+ssh://git@host/org/repo"),
        ("git+ftp://host/repo.git", "must start with git\\+https://"),
        ("git+https://host/repo.git#../etc", "leaves the repository"),
        ("git+https://host/repo.git@", "is not a branch or tag name"),
        ("git+https://host/repo.git@--upload-pack=x", "base URL|is not a branch"),
        ("git+https://host/repo.git@-x", "is not a branch or tag name"),
        ("git+https://host/repo.git#docs=docs.example.com", "must start with http"),
        ("git+https://host", "names no repository"),
        ("git+https://tok@host/r.git@bad ref", "git\\+https://\\*\\*\\*@host"),
    ],
)
def test_bad_git_sources_are_refused_when_parsed(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        SourceSpec.parse(text)
    assert "tok@" not in str(raised.value)


# --- through the indexer: a remote that disappears keeps its chunks -------------------------


@pytest.fixture
def git_settings(make_settings: Callable[..., Settings], remote: Remote) -> Settings:
    return make_settings(sources=[f"git+{remote.url}#docs"])


@pytest.fixture
def indexed(git_settings: Settings, minilm: LocalEmbedder) -> Iterator[Backends]:
    backends = open_backends(git_settings, embedder=minilm)
    try:
        yield backends
    finally:
        backends.close()


def test_indexer_keeps_the_chunks_of_a_remote_that_disappeared(
    indexed: Backends, remote: Remote
) -> None:
    indexer = make_indexer(indexed)
    first = indexer.run()
    assert (first.docs_added, first.failed_sources) == (2, [])
    before = indexed.store.count()
    remote.path.rename(remote.path.with_name("gone"))

    report = indexer.run()

    assert len(report.failed_sources) == 1
    assert "git fetch" in report.failed_sources[0]
    assert (report.docs_removed, report.chunks_deleted) == (0, 0)
    assert indexed.store.count() == before

    remote.path.with_name("gone").rename(remote.path)
    remote.commit({"docs/guide/setup.md": None})
    # Back: the deletion is the repository's own (1 of 2 pages: over the guard, confirmed).
    assert indexer.run(confirm_deletions=True).docs_removed == 1


def test_a_checkout_left_locked_by_a_killed_git_is_cloned_afresh(
    remote: Remote, cache: Path
) -> None:
    spec = SourceSpec.parse(f"git+{remote.url}")
    assert sorted(load(f"git+{remote.url}", cache)) == FIRST_COMMIT
    checkout = gitsource.cache_path(spec, cache)
    (checkout / ".git" / "index.lock").write_text("")  # what a SIGKILLed fetch leaves
    remote.commit({"docs/index.md": "# Home\n\nThe docs moved on.\n"})

    docs = load(f"git+{remote.url}", cache)

    assert "moved on" in docs["docs/index.md"].markdown
    assert not (checkout / ".git" / "index.lock").exists()


def test_https_tokens_travel_in_the_environment_not_on_the_command_line() -> None:
    import base64

    spec = SourceSpec.parse("git+https://x-access-token:ghp_SECRET@github.com/acme/docs.git@main")
    url, env = gitsource._authenticated(spec)

    assert url == "https://github.com/acme/docs.git" and "ghp_SECRET" not in url
    assert env["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraHeader"  # this host only
    header = env["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: Basic ")
    assert base64.b64decode(header).decode() == "x-access-token:ghp_SECRET"
    assert gitsource._authenticated(SourceSpec.parse("git+https://github.com/a/b.git")) == (
        "https://github.com/a/b.git",
        {},
    )
