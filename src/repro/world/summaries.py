"""The world's summarisation data: posts, summaries of known quality, and simulated human raters,
written in the record schemas of OpenAI's summarize-from-feedback data (`repro.data.summarize`), so
that one code path reads the world's data and the real data.

**Posts.** A post is about one *main subject* ("my dog", "my landlord", ...). Its body is a list of
fact sentences ``<subject> <verb> <object> <time> .``: three *salient* facts about the main subject
and a few filler facts about other subjects, shuffled. The title names the main subject, so a reader
can tell which facts matter; the subreddit follows from it.

**Summaries** are clauses joined by "and": a clause restates a fact (``<subject> <verb> <object>``,
optionally with its time). `write_summary` chooses how many salient facts to cover, how many filler
facts to add (longer, less focused) and how many facts to *hallucinate* (the main subject doing
something the post never says, or a salient fact with the wrong time or object).

**Oracle quality** (`summary_quality`, any text in, never raises): coverage of the salient facts
(0-1), minus 0.5 per hallucinated clause, minus 0.1 per filler clause, minus 0.05 per word that
belongs to no readable clause. Higher is better; a perfect summary scores 1.

**Raters** (`Rater`): a Bradley-Terry choice ``P(first) = sigmoid((q_first - q_second) / noise)``
with a noise scale per worker, and a confidence on the 1-9 scale read as bipolar (1-4: the first
summary, 1 most sure; 6-9: the second, 9 most sure), which is how the RLAIF paper's filter (1, 2, 8,
9 = confident) treats it. `calibrate_noise` sets the workers' common noise scale so that two raters
agree on a given share of comparisons (the real data: 73-77%); it is a property of the world,
measured, never tuned to any result of a study. The confidence is not calibrated: with the default
noise about three quarters of the world's ratings land on 1, 2, 8 or 9, where the paper's filter kept
"a few thousand" of some 14,000 real comparisons.

These words are a vocabulary of their own (`summary_vocabulary`), separate from the instruction
world's, so that adding this data changes nothing the instruction studies have built.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from repro.world.text import split_on

SUBJECTS = {  # main subject -> subreddit
    "my dog": "pets", "my cat": "pets", "my boss": "work", "my coworker": "work", "my landlord": "renting",
    "my roommate": "relationships", "my sister": "relationships", "my neighbour": "relationships",
    "my car": "cars", "my bike": "cycling",
}
VERBS = ("broke", "lost", "found", "bought", "sold", "fixed", "painted", "moved", "cleaned", "hid", "took",
         "returned")
OBJECTS = ("the window", "the blue chair", "the old lamp", "the kitchen door", "the garden fence", "the small table",
           "the red box", "the phone", "the front key", "the green rug", "the tall shelf", "the wall clock")
TIMES = ("on monday", "on tuesday", "on wednesday", "on thursday", "on friday", "on saturday", "on sunday",
         "last week", "this morning", "yesterday")
TITLE_TEMPLATES = ("what should i do about {s} ?", "need advice about {s}", "help with {s} please",
                   "is it normal ? {s} again")
SALIENT_FACTS = 3
HALLUCINATION_PENALTY = 0.5
FILLER_PENALTY = 0.1
NOISE_WORD_PENALTY = 0.05


@dataclass(frozen=True)
class Fact:
    subject: str
    verb: str
    obj: str
    time: str

    def sentence(self) -> str:
        return f"{self.subject} {self.verb} {self.obj} {self.time} ."

    def clause(self, with_time: bool) -> str:
        return f"{self.subject} {self.verb} {self.obj}" + (f" {self.time}" if with_time else "")


@dataclass(frozen=True)
class Post:
    id: str
    subreddit: str
    title: str
    subject: str
    facts: tuple[Fact, ...]  # in the order of the body
    salient: tuple[int, ...]  # indices into ``facts``

    @property
    def body(self) -> str:
        return " ".join(f.sentence() for f in self.facts)

    def info(self) -> dict:
        """The ``info`` object of a comparison record."""
        return {"id": self.id, "post": self.body, "title": self.title, "subreddit": self.subreddit,
                "site": None, "article": None}


def make_post(rng: random.Random, index: int = 0, *, fillers: tuple[int, int] = (2, 4)) -> Post:
    """A post: three salient facts about its main subject and ``fillers`` facts about others."""
    subject = rng.choice(sorted(SUBJECTS))
    others = [s for s in sorted(SUBJECTS) if s != subject]

    def fact(who: str, used: set) -> Fact:
        while True:
            candidate = Fact(who, rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(TIMES))
            if (candidate.verb, candidate.obj) not in used:
                used.add((candidate.verb, candidate.obj))
                return candidate

    used: set = set()
    salient = [fact(subject, used) for _ in range(SALIENT_FACTS)]
    filler = [fact(rng.choice(others), used) for _ in range(rng.randint(*fillers))]
    facts = salient + filler
    order = list(range(len(facts)))
    rng.shuffle(order)
    shuffled = tuple(facts[i] for i in order)
    salient_idx = tuple(sorted(order.index(i) for i in range(SALIENT_FACTS)))
    return Post(id=f"w3_{index:06d}", subreddit=SUBJECTS[subject], title=rng.choice(TITLE_TEMPLATES).format(s=subject),
                subject=subject, facts=shuffled, salient=salient_idx)


@dataclass(frozen=True)
class SummarySpec:
    """How a summary is written: salient facts covered, filler facts added, facts hallucinated."""

    covered: int
    filler: int = 0
    hallucinated: int = 0
    with_time: bool = False

    @property
    def policy(self) -> str:
        return f"world-c{self.covered}f{self.filler}h{self.hallucinated}"


def _hallucination(post: Post, rng: random.Random) -> Fact:
    """A fact about the main subject that the post does not state (a new verb and object)."""
    stated = {(f.verb, f.obj) for f in post.facts if f.subject == post.subject}
    while True:
        candidate = Fact(post.subject, rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(TIMES))
        if (candidate.verb, candidate.obj) not in stated:
            return candidate


def write_summary(post: Post, spec: SummarySpec, rng: random.Random) -> str:
    """A summary of ``post`` written to ``spec`` (clauses in the post's order, hallucinations placed
    at random among them)."""
    salient = [post.facts[i] for i in post.salient]
    filler = [f for i, f in enumerate(post.facts) if i not in post.salient]
    if not 0 <= spec.covered <= len(salient) or not 0 <= spec.filler <= len(filler):
        raise ValueError(f"{spec} does not fit a post with {len(salient)} salient and {len(filler)} filler facts")
    chosen = set(rng.sample(salient, spec.covered)) | set(rng.sample(filler, spec.filler))
    clauses = [f.clause(spec.with_time) for f in post.facts if f in chosen]
    for _ in range(spec.hallucinated):
        clauses.insert(rng.randint(0, len(clauses)), _hallucination(post, rng).clause(spec.with_time))
    return " and ".join(clauses) + " ." if clauses else "nothing happened ."


def reference_summary(post: Post) -> str:
    """The ideal summary: every salient fact, nothing else (the TL;DR reference of SFT data)."""
    return " and ".join(post.facts[i].clause(False) for i in post.salient) + " ."


# -- the oracle ---------------------------------------------------------------------------------------
def _clauses(text: str) -> list[list[str]]:
    return split_on(str(text).lower().replace(",", " ").split(), ("and", "."))


def _read_clause(words: list[str]) -> tuple[str, str, str, str | None] | None:
    """``(subject, verb, object, time or None)`` if the words are exactly such a clause."""
    text = " ".join(words)
    for subject in SUBJECTS:
        if not text.startswith(subject + " "):
            continue
        rest = text[len(subject) + 1:]
        verb, _, rest = rest.partition(" ")
        if verb not in VERBS:
            return None
        for obj in OBJECTS:
            if rest == obj:
                return subject, verb, obj, None
            if rest.startswith(obj + " ") and rest[len(obj) + 1:] in TIMES:
                return subject, verb, obj, rest[len(obj) + 1:]
        return None
    return None


def summary_details(post: Post, text: object) -> dict:
    """The oracle's reading of a summary: covered salient facts, filler and hallucinated clauses,
    words in no readable clause, and the quality (see the module docstring)."""
    facts = {(f.subject, f.verb, f.obj): (i, f) for i, f in enumerate(post.facts)}
    covered, filler, hallucinated, noise = set(), 0, 0, 0
    for words in _clauses(text if isinstance(text, str) else ""):
        read = _read_clause(words)
        if read is None:
            noise += len(words)
            continue
        subject, verb, obj, time = read
        match = facts.get((subject, verb, obj))
        if match is None or (time is not None and time != match[1].time):
            hallucinated += 1
        elif match[0] in post.salient:
            covered.add(match[0])
        else:
            filler += 1
    coverage = len(covered) / len(post.salient)
    quality = coverage - HALLUCINATION_PENALTY * hallucinated - FILLER_PENALTY * filler - NOISE_WORD_PENALTY * noise
    return {"quality": quality, "coverage": coverage, "covered": len(covered), "filler": filler,
            "hallucinated": hallucinated, "noise_words": noise, "words": len(str(text).split())}


def summary_quality(post: Post, text: object) -> float:
    """The oracle quality of any text as a summary of ``post`` (never raises)."""
    return summary_details(post, text)["quality"]


# -- simulated human raters -----------------------------------------------------------------------------
def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


@dataclass(frozen=True)
class Rater:
    """A worker: Bradley-Terry choices with its own noise scale (larger = noisier)."""

    worker: str
    noise: float

    def p_first(self, q_first: float, q_second: float) -> float:
        return _sigmoid((q_first - q_second) / self.noise)

    def rate(self, q_first: float, q_second: float, rng: random.Random) -> tuple[int, int]:
        """``(choice, confidence)``: choice 0 = the first summary; confidence 1-4 for the first
        (1 most sure), 6-9 for the second (9 most sure), from how sure the worker is."""
        p = self.p_first(q_first, q_second)
        choice = 0 if rng.random() < p else 1
        strength = abs(2 * p - 1)  # 0 unsure .. 1 certain
        step = min(3, int(strength * 4 + rng.random() * 0.999))  # 0..3, noisy rounding up
        return choice, (4 - step) if choice == 0 else (6 + step)


def agreement(pairs: Sequence[tuple[float, float]], raters: Sequence[Rater]) -> float:
    """Expected share of comparisons on which two different raters (drawn uniformly) choose alike."""
    total, count = 0.0, 0
    for a in range(len(raters)):
        for b in range(a + 1, len(raters)):
            for q1, q2 in pairs:
                pa, pb = raters[a].p_first(q1, q2), raters[b].p_first(q1, q2)
                total += pa * pb + (1 - pa) * (1 - pb)
                count += 1
    return total / count


def make_raters(n: int, noise: float, *, spread: float = 0.3, seed: int = 0) -> list[Rater]:
    """``n`` workers whose noise scales are ``noise`` times a log-normal factor (``spread``)."""
    rng = random.Random(seed)
    return [Rater(f"world-worker-{i:02d}", noise * math.exp(rng.gauss(0, spread))) for i in range(n)]


def calibrate_noise(pairs: Sequence[tuple[float, float]], target: float = 0.75, *, workers: int = 8,
                    spread: float = 0.3, seed: int = 0) -> float:
    """The common noise scale at which ``workers`` raters agree on ``target`` of ``pairs`` (bisection;
    agreement falls as the noise grows)."""
    if not 0.5 < target < 1:
        raise ValueError(f"target agreement must lie strictly between 0.5 and 1, got {target}")
    low, high = 1e-3, 100.0
    for _ in range(60):
        mid = math.sqrt(low * high)
        if agreement(pairs, make_raters(workers, mid, spread=spread, seed=seed)) > target:
            low = mid
        else:
            high = mid
    return math.sqrt(low * high)


# -- records in the real schemas ------------------------------------------------------------------------
def random_spec(rng: random.Random, post: Post) -> SummarySpec:
    """A candidate summary of varied quality (the mix of policies whose outputs raters compare)."""
    n_filler = len(post.facts) - len(post.salient)
    return SummarySpec(covered=rng.randint(0, SALIENT_FACTS), filler=rng.randint(0, min(2, n_filler)),
                       hallucinated=1 if rng.random() < 0.3 else 0, with_time=rng.random() < 0.3)


@dataclass
class WorldComparisons:
    """World comparisons as records, with the posts and raters behind them (for the oracle)."""

    records: list[dict]
    posts: dict[str, Post]
    raters: list[Rater]
    noise: float
    qualities: list[tuple[float, float]] = field(repr=False, default_factory=list)


def world_comparisons(n_posts: int, *, comparisons_per_post: int = 2, workers: int = 8, target_agreement: float = 0.75,
                      split: str = "train", seed: int = 0) -> WorldComparisons:
    """Comparison records in the summarize-from-feedback schema, rated by calibrated workers."""
    rng = random.Random(seed)
    posts = [make_post(rng, i) for i in range(n_posts)]
    drafts = []
    for post in posts:
        for _ in range(comparisons_per_post):
            texts = [write_summary(post, random_spec(rng, post), rng) for _ in range(2)]
            drafts.append((post, texts))
    qualities = [(summary_quality(p, t[0]), summary_quality(p, t[1])) for p, t in drafts]
    noise = calibrate_noise(qualities[:400], target_agreement, workers=workers, seed=seed)
    raters = make_raters(workers, noise, seed=seed)
    records = []
    for n, ((post, texts), (q1, q2)) in enumerate(zip(drafts, qualities)):
        rater = raters[rng.randrange(len(raters))]
        choice, confidence = rater.rate(q1, q2, rng)
        records.append({"info": post.info(),
                        "summaries": [{"text": t, "policy": "world", "note": None} for t in texts],
                        "choice": choice, "worker": rater.worker, "batch": f"world{n // 1000}", "split": split,
                        "extra": {"confidence": confidence}})
    return WorldComparisons(records, {p.id: p for p in posts}, raters, noise, qualities)


def tldr_records(posts: Sequence[Post]) -> list[dict]:
    """Filtered-TL;DR records (id, subreddit, title, post, summary) with the reference summaries."""
    return [{"id": p.id, "subreddit": p.subreddit, "title": p.title, "post": p.body,
             "summary": reference_summary(p)} for p in posts]


def summary_vocabulary() -> list[str]:
    """Every word the summarisation world writes, sorted."""
    words = set(". and ? nothing happened".split())
    for phrase in (*SUBJECTS, *SUBJECTS.values(), *VERBS, *OBJECTS, *TIMES, *TITLE_TEMPLATES):
        words.update(phrase.replace("{s}", "").split())
    return sorted(words)
