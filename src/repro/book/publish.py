"""Publish the built book: its HTML becomes the one commit on top of a ``gh-pages`` branch, pushed.

ghp-import writes the commit (the whole tree replaced by the HTML folder, plus ``.nojekyll`` so that
GitHub Pages serves Sphinx's ``_static/`` folders); the push is forced and run here rather than by
ghp-import so that a failing push comes back with git's own message.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from repro import paths
from repro.errors import ReproError
from repro.runs.store import git_commit


class PublishError(ReproError):
    """The book cannot be published (not built, not in a git repository, the push failed)."""


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)


def _rev(repo: Path, ref: str) -> str | None:
    proc = _git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{ref}")
    return proc.stdout.strip() or None


def publish(html_dir: Path | str | None = None, *, remote: str = "origin", branch: str = "gh-pages",
            message: str | None = None, repo: Path | str | None = None) -> str:
    """Commit ``html_dir`` (default ``_build/html``) to ``branch`` and force-push it to ``remote``.

    Git runs in ``repo`` (default: the checkout). Returns the sha of the published commit.
    """
    from ghp_import import GhpError, ghp_import

    repo = Path(repo or paths.project_root()).resolve()
    html = Path(html_dir or paths.project_root() / "_build" / "html").expanduser().resolve()
    if not (html / "index.html").is_file():
        raise PublishError(f"no built book at {html} (no index.html): run `make book` first")
    if not repo.is_dir() or _git(repo, "rev-parse", "--git-dir").returncode != 0:
        raise PublishError(f"{repo} is not a git repository: the book is published from a git checkout")
    # ghp-import takes the committer from these variables or from git's config, and writes an empty
    # name and address when there is neither.
    for key in ("name", "email"):
        configured = _git(repo, "config", f"user.{key}").stdout.strip()
        if not (os.environ.get(f"GIT_COMMITTER_{key.upper()}") or configured):
            raise PublishError(f"git has no committer {key} in {repo}: set it with `git config user.{key} ...` "
                               f"(or GIT_COMMITTER_{key.upper()})")

    source = git_commit(repo) or "an uncommitted tree"
    message = message or f"Publish the book built from {source}"
    before = _rev(repo, branch)
    try:
        with contextlib.chdir(repo):  # ghp-import runs git in the current directory
            ghp_import(str(html), remote=remote, branch=branch, mesg=message, nojekyll=True, push=False)
    except GhpError as exc:
        raise PublishError(f"ghp-import could not commit {html} to {branch}: {exc.message}") from None
    except TypeError:  # ghp-import 2.1.0 reports a failed `git fast-import` by writing bytes to stdout
        raise PublishError(f"git fast-import could not commit {html} to {branch} in {repo}") from None
    sha = _rev(repo, branch)
    if sha is None or sha == before:
        raise PublishError(f"git fast-import could not commit {html} to {branch} in {repo}")

    push = _git(repo, "push", "--force", remote, f"refs/heads/{branch}:refs/heads/{branch}")
    if push.returncode != 0:
        raise PublishError(f"git push of {branch} to {remote!r} failed (the commit {sha[:12]} is on the "
                           f"local branch {branch}):\n{(push.stdout + push.stderr).strip()}")
    return sha
