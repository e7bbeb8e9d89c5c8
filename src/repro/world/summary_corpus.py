"""The summarisation world's web text: where the RLAIF labellers learn to read and compare summaries.

The paper's labellers are PaLM 2 models that learnt from web text what a good summary is. Our tiny
labellers learn it from this corpus, written about *fresh* posts (a seed stream that neither the
study's comparisons nor its TL;DR posts use), so they never see an evaluation comparison. Each
document is raw data; the study renders it into text with the labeller's own prompt builders
(`repro.judges.labeller`), as the instruction world's reviews are rendered with the judge prompt:

- ``tldr``: a post and one summary of it, of any quality (forum posts with a TL;DR line);
- ``comparison``: a forum critic compares two summaries of a post: the base or detailed
  instructions, 0-2 earlier worked comparisons (so few-shot text is ordinary text), optionally the
  critic's rationale (counts of main, other and wrong facts in each summary), and the critic's
  choice. Critics are Bradley-Terry raters like the human workers (`Rater`), with the same noise;
- ``rating``: a critic rates one summary from 1 to 10 (the d-RLAIF format): the oracle quality
  mapped linearly onto 1-10 plus Gaussian noise, rounded and clipped.

Mixture and noise are the world's defaults below, fixed before any labeller was trained.
"""

from __future__ import annotations

import random
from dataclasses import asdict

from repro.world.summaries import (
    Fact,
    Post,
    Rater,
    make_post,
    random_spec,
    summary_details,
    summary_quality,
    write_summary,
)

CORPUS_SEED_OFFSET = 7_000_019  # the labeller corpus draws its posts from a stream no study uses
DEFAULT_KINDS = {"tldr": 0.2, "comparison": 0.6, "rating": 0.2}
DEFAULT_RATIONALE_FRACTION = 0.5
DEFAULT_RATING_NOISE = 1.0
MAX_SHOTS = 2
QUALITY_RANGE = (-1.0, 1.0)  # mapped onto the 1-10 rating scale


def post_to_dict(post: Post) -> dict:
    return asdict(post)


def post_from_dict(data: dict) -> Post:
    """The inverse of `post_to_dict` (posts travel through stages as JSON)."""
    return Post(id=data["id"], subreddit=data["subreddit"], title=data["title"], subject=data["subject"],
                facts=tuple(Fact(**f) for f in data["facts"]), salient=tuple(data["salient"]))


def post_text(title: str | None, body: str) -> str:
    """The text a labeller reads: the title (which names what the post is about) and the body."""
    return f"{title} : {body}" if title else body


def _count(n: int, what: str) -> str:
    return f"{n} {what} fact" + ("" if n == 1 else "s")


def rationale(post: Post, first: str, second: str) -> str:
    """A critic's reasoning about two summaries: what each keeps, adds and gets wrong."""
    parts = []
    for name, text in (("summary 1", first), ("summary 2", second)):
        d = summary_details(post, text)
        parts.append(f"{name} keeps {_count(d['covered'], 'main')} , adds {_count(d['filler'], 'other')} , "
                     f"has {_count(d['hallucinated'], 'wrong')} .")
    return " ".join(parts)


def rating(quality: float, rng: random.Random, noise: float = DEFAULT_RATING_NOISE) -> int:
    """A 1-10 rating of a summary of oracle ``quality`` (see the module docstring)."""
    low, high = QUALITY_RANGE
    position = 1 + 9 * (quality - low) / (high - low)
    return int(min(10, max(1, round(position + rng.gauss(0, noise)))))


def rationale_words() -> set[str]:
    """Every word `rationale` writes."""
    return set("summary 1 2 keeps adds has main other wrong fact facts , . 0 3".split())


def _comparison(post: Post, rng: random.Random, critic: Rater) -> dict:
    texts = [write_summary(post, random_spec(rng, post), rng) for _ in range(2)]
    q1, q2 = summary_quality(post, texts[0]), summary_quality(post, texts[1])
    choice, _ = critic.rate(q1, q2, rng)
    return {"post": post_to_dict(post), "first": texts[0], "second": texts[1], "preferred": choice + 1,
            "rationale": rationale(post, *texts)}


def labeller_corpus(n_docs: int, *, critics: list[Rater], seed: int = 0, kinds: dict[str, float] | None = None,
                    rationale_fraction: float = DEFAULT_RATIONALE_FRACTION,
                    rating_noise: float = DEFAULT_RATING_NOISE) -> list[dict]:
    """``n_docs`` raw documents (see the module docstring) about fresh posts, written by ``critics``."""
    if n_docs < 0:
        raise ValueError(f"n_docs must be >= 0, got {n_docs}")
    if not critics:
        raise ValueError("the corpus needs at least one critic")
    kinds = dict(DEFAULT_KINDS if kinds is None else kinds)
    if not kinds or any(w < 0 for w in kinds.values()) or set(kinds) - set(DEFAULT_KINDS) or sum(kinds.values()) <= 0:
        raise ValueError(f"kinds must give non-negative weights to some of {', '.join(DEFAULT_KINDS)}, got {kinds}")
    rng = random.Random(seed + CORPUS_SEED_OFFSET)
    names, weights = list(kinds), list(kinds.values())
    docs = []
    for index in range(n_docs):
        kind = rng.choices(names, weights)[0]
        post = make_post(rng, index)
        if kind == "tldr":
            docs.append({"kind": "tldr", "post": post_to_dict(post),
                         "summary": write_summary(post, random_spec(rng, post), rng)})
        elif kind == "rating":
            text = write_summary(post, random_spec(rng, post), rng)
            docs.append({"kind": "rating", "post": post_to_dict(post), "summary": text,
                         "score": rating(summary_quality(post, text), rng, rating_noise)})
        else:
            critic = rng.choice(critics)
            shots = [_comparison(make_post(rng, index), rng, critic) for _ in range(rng.randint(0, MAX_SHOTS))]
            docs.append({"kind": "comparison", **_comparison(post, rng, critic), "shots": shots,
                         "preamble": rng.choice(("base", "detailed")),
                         "with_rationale": rng.random() < rationale_fraction})
    return docs


__all__ = ["labeller_corpus", "post_from_dict", "post_text", "post_to_dict", "rating", "rationale",
           "rationale_words"]
