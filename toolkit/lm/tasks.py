"""Verifiable text tasks for tiny language models, and a preference task with a cycle.

Every task implements ``toolkit.rollouts.Task`` (``prompts``, ``rewards``) —
``CyclicPreferenceTask`` also ``toolkit.rollouts.PreferenceTask`` (``preference``) — and adds
what SFT and evaluation need:

    task.prompts(n, rng, split="train")      n prompts (str) drawn with a numpy Generator
    task.heldout_prompts(n)                  the first n distinct held-out prompts (fixed list)
    task.score(prompt, completion)           the exact reward of one completion (float)
    task.rewards(rollouts)                   [B] scores of ``rollouts.texts``
    task.answers(prompt)                     every completion that scores 1
    task.sft_examples(n, rng, split)         (prompt, completion) pairs for supervised training

Prompts and completions are plain strings over the character tokenizer's vocabulary; the
model sees ``<bos> prompt`` and should answer ``completion <eos>``.

**Held-out split.** A prompt is held out when ``crc32(f"{task.name}:{prompt}") % 5 == 0``:
a fixed 20 % of the prompt space, independent of any seed, so no training prompt is ever a
held-out prompt. ``prompts(n, rng, split)`` draws uniformly from the chosen split (rejection
sampling); ``heldout_prompts(n)`` lists the first n distinct held-out prompts of a fixed
stream (seed 20240), the evaluation set the checkpoint cards report.

Rewards are exact and binary (1 correct, 0 otherwise; no partial credit); the completion is
compared as decoded, without stripping whitespace.
"""

from __future__ import annotations

import abc
import math
import numbers
import re
import zlib

import numpy as np
import torch
from torch import Tensor

from tabular._checks import check_int

from ..rollouts import Rollouts

__all__ = ["TASKS", "AdditionTask", "CyclicPreferenceTask", "MultipleTask", "ReverseTask",
           "SortDigitsTask", "TextTask", "make_task"]

SPLITS = ("train", "heldout")
HELDOUT_MODULUS = 5  # 1 prompt in 5 is held out
HELDOUT_STREAM_SEED = 20240


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got "
                        f"{type(rng).__name__}")
    return rng


def _texts(rollouts: Rollouts) -> list[str]:
    if not isinstance(rollouts, Rollouts):
        raise TypeError(f"rollouts must be Rollouts, got {type(rollouts).__name__}")
    if rollouts.texts is None:
        raise ValueError("rollouts.texts is None: text tasks score decoded completions "
                         "(sample them with an LMPolicy)")
    return rollouts.texts


class TextTask(abc.ABC):
    """Base class: a prompt space, an exact checker and the held-out split.

    Subclasses define ``name``, ``max_new_tokens``, ``_random_prompt(rng)``,
    ``answers(prompt)`` (or ``score``) and ``_sft_completion(prompt, rng)``.
    """

    name = "text"
    max_new_tokens = 8

    # -- the prompt space --------------------------------------------------------------------
    @abc.abstractmethod
    def _random_prompt(self, rng: np.random.Generator) -> str:
        """One prompt drawn from the whole prompt space (both splits)."""

    def is_heldout(self, prompt: str) -> bool:
        return zlib.crc32(f"{self.name}:{prompt}".encode()) % HELDOUT_MODULUS == 0

    def prompts(self, n: int, rng: np.random.Generator, split: str = "train") -> list[str]:
        """n prompts drawn uniformly (with repeats) from the ``split`` part of the space."""
        n = check_int(n, "n", minimum=1)
        rng = _check_rng(rng)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        want_heldout = split == "heldout"
        out: list[str] = []
        while len(out) < n:
            p = self._random_prompt(rng)
            if self.is_heldout(p) == want_heldout:
                out.append(p)
        return out

    def heldout_prompts(self, n: int) -> list[str]:
        """The first n distinct held-out prompts of a fixed stream: the evaluation set."""
        n = check_int(n, "n", minimum=1)
        rng = np.random.default_rng(HELDOUT_STREAM_SEED)
        seen: dict[str, None] = {}
        tries = 0
        while len(seen) < n:
            tries += 1
            if tries > 200 * n + 10_000:
                raise ValueError(f"task {self.name!r} has fewer than {n} held-out prompts "
                                 f"(found {len(seen)})")
            p = self._random_prompt(rng)
            if self.is_heldout(p):
                seen.setdefault(p)
        return list(seen)

    # -- scoring -----------------------------------------------------------------------------
    @abc.abstractmethod
    def answers(self, prompt: str) -> list[str]:
        """Every correct completion of ``prompt`` (what ``score`` checks against)."""

    def score(self, prompt: str, completion: str) -> float:
        """1.0 if ``completion`` is a correct answer to ``prompt``, else 0.0."""
        return 1.0 if completion in self.answers(prompt) else 0.0

    def rewards(self, rollouts: Rollouts, rng: np.random.Generator | None = None) -> Tensor:
        """[B] exact scores of the decoded completions (``rng`` unused: the reward is exact)."""
        texts = _texts(rollouts)
        r = [self.score(p, t) for p, t in zip(rollouts.prompts, texts)]
        return torch.tensor(r, dtype=torch.float32, device=rollouts.logprobs.device)

    # -- supervised data ---------------------------------------------------------------------
    def _sft_completion(self, prompt: str, rng: np.random.Generator) -> str:
        return self.answers(prompt)[0]

    def sft_examples(self, n: int, rng: np.random.Generator,
                     split: str = "train") -> list[tuple[str, str]]:
        """n (prompt, correct completion) pairs from ``split`` (a random correct answer when
        there are several)."""
        return [(p, self._sft_completion(p, rng)) for p in self.prompts(n, rng, split)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class AdditionTask(TextTask):
    """Multi-digit addition: ``"352+49="`` → ``"401"``.

    a, b uniform in [0, 10^digits); the answer is the decimal sum, no leading zeros.
    Reward 1 for exactly that string, else 0.
    """

    name = "addition"

    def __init__(self, digits: int = 2):
        self.digits = check_int(digits, "digits", minimum=1)
        self.max_new_tokens = digits + 3

    def _random_prompt(self, rng):
        a, b = rng.integers(0, 10 ** self.digits, size=2)
        return f"{a}+{b}="

    def answers(self, prompt: str) -> list[str]:
        m = re.fullmatch(r"(\d+)\+(\d+)=", prompt)
        if m is None:
            raise ValueError(f"not an addition prompt: {prompt!r}")
        return [str(int(m.group(1)) + int(m.group(2)))]

    def __repr__(self):
        return f"AdditionTask(digits={self.digits})"


class _LengthRangeTask(TextTask):
    """A task whose prompts carry a string of length in [min_len, max_len]."""

    def __init__(self, min_len: int, max_len: int):
        self.min_len = check_int(min_len, "min_len", minimum=1)
        self.max_len = check_int(max_len, "max_len", minimum=1)
        if self.max_len < self.min_len:
            raise ValueError(f"max_len ({max_len}) must be >= min_len ({min_len})")
        self.max_new_tokens = self.max_len + 2  # the answer, EOS, and one spare

    def __repr__(self):
        return f"{type(self).__name__}(min_len={self.min_len}, max_len={self.max_len})"


class ReverseTask(_LengthRangeTask):
    """Reverse a lowercase string: ``"rev:abcde="`` → ``"edcba"`` (length in [min_len, max_len])."""

    name = "reverse"

    def __init__(self, min_len: int = 3, max_len: int = 7):
        super().__init__(min_len, max_len)

    def _random_prompt(self, rng):
        k = int(rng.integers(self.min_len, self.max_len + 1))
        letters = rng.integers(0, 26, size=k)
        return "rev:" + "".join(chr(97 + int(i)) for i in letters) + "="

    def answers(self, prompt: str) -> list[str]:
        m = re.fullmatch(r"rev:([a-z]+)=", prompt)
        if m is None:
            raise ValueError(f"not a reverse prompt: {prompt!r}")
        return [m.group(1)[::-1]]


class SortDigitsTask(_LengthRangeTask):
    """Sort digits ascending: ``"sort:5831="`` → ``"1358"`` (length in [min_len, max_len])."""

    name = "sort"

    def __init__(self, min_len: int = 3, max_len: int = 8):
        super().__init__(min_len, max_len)

    def _random_prompt(self, rng):
        k = int(rng.integers(self.min_len, self.max_len + 1))
        return "sort:" + "".join(str(int(d)) for d in rng.integers(0, 10, size=k)) + "="

    def answers(self, prompt: str) -> list[str]:
        m = re.fullmatch(r"sort:(\d+)=", prompt)
        if m is None:
            raise ValueError(f"not a sort prompt: {prompt!r}")
        return ["".join(sorted(m.group(1)))]


class MultipleTask(TextTask):
    """Name any multiple of k in a range — a task with several correct answers.

    ``"m7:10-99="`` asks for a multiple of 7 between 10 and 99 inclusive (13 correct
    answers: 14, 21, …, 98). k is uniform in [3, 9]; lo < hi are two-digit numbers with at
    least ``min_answers`` multiples of k between them. Reward 1 for a decimal integer without
    sign or leading zero, in [lo, hi] and divisible by k; else 0. SFT completions are a
    uniformly random correct answer, so a base model spreads its mass over the answers and
    pass@k / diversity matter.
    """

    name = "multiple"
    max_new_tokens = 4

    def __init__(self, min_answers: int = 2):
        self.min_answers = check_int(min_answers, "min_answers", minimum=1)

    @staticmethod
    def _parse(prompt: str) -> tuple[int, int, int]:
        m = re.fullmatch(r"m(\d):(\d\d)-(\d\d)=", prompt)
        if m is None:
            raise ValueError(f"not a multiple prompt: {prompt!r}")
        return int(m.group(1)), int(m.group(2)), int(m.group(3))

    def _random_prompt(self, rng):
        while True:
            k = int(rng.integers(3, 10))
            lo, hi = sorted(int(x) for x in rng.integers(10, 100, size=2))
            if hi // k - (lo - 1) // k >= self.min_answers:
                return f"m{k}:{lo}-{hi}="

    def answers(self, prompt: str) -> list[str]:
        k, lo, hi = self._parse(prompt)
        return [str(x) for x in range(math.ceil(lo / k) * k, hi + 1, k)]

    def score(self, prompt: str, completion: str) -> float:
        k, lo, hi = self._parse(prompt)
        if not re.fullmatch(r"[1-9]\d*", completion):
            return 0.0
        x = int(completion)
        return 1.0 if lo <= x <= hi and x % k == 0 else 0.0

    def _sft_completion(self, prompt, rng):
        options = self.answers(prompt)
        return options[int(rng.integers(0, len(options)))]

    def __repr__(self):
        return f"MultipleTask(min_answers={self.min_answers})"


class CyclicPreferenceTask(TextTask):
    """Pick one of three letters; a seeded pairwise oracle with a rock-paper-scissors cycle.

    Prompt ``"pick:qbx="`` (three distinct lowercase letters). A completion is *valid* when it
    is exactly one of the three letters. For valid completions y, y′ at positions i, j of the
    prompt the oracle prefers y with probability

        P(y ≻ y′) = σ(α·(v[y] − v[y′]) + γ·c(i, j))

        c(i, j) = +1 if j = i + 1 (mod 3)     (position 0 beats 1, 1 beats 2, 2 beats 0)
                  −1 if i = j + 1 (mod 3),     0 if i = j

    where v[letter] ~ Uniform(0, 1) is drawn once per letter from ``np.random.default_rng
    (seed)``: the transitive part (a Bradley–Terry score), and γ·c is the non-transitive part.
    With the defaults α = 1, γ = 2 the cycle dominates (|α·Δv| < 1 < γ), so every prompt's
    three letters form a strict cycle: no letter beats both others, the Nash equilibrium is
    mixed, and Nash-MD differs from reward maximisation. A valid completion beats an invalid
    one with probability 1; two invalid completions tie (½). P(y ≻ y′) + P(y′ ≻ y) = 1.

    ``preference(first, second, rng)`` returns these probabilities row by row, or a sampled
    0/1 outcome with an rng. ``rewards(rollouts, rng)`` is the within-group win rate
    r_i = mean_{j≠i} P(y_i ≻ y_j) (sampled outcomes with an rng), as in ``toolkit.tasks``.
    ``score`` (and the checkpoint's "accuracy") is validity. ``matrix(prompt)`` is the 3×3
    preference matrix over the prompt's letters, for exact ground truth.
    """

    name = "preference"
    max_new_tokens = 3

    def __init__(self, seed: int = 0, alpha: float = 1.0, gamma: float = 2.0):
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        for name, value in (("alpha", alpha), ("gamma", gamma)):
            if not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        self.seed, self.alpha, self.gamma = int(seed), float(alpha), float(gamma)
        self.values = np.random.default_rng(self.seed).uniform(0.0, 1.0, size=26)

    @staticmethod
    def _letters(prompt: str) -> str:
        m = re.fullmatch(r"pick:([a-z]{3})=", prompt)
        if m is None or len(set(m.group(1))) != 3:
            raise ValueError(f"not a preference prompt: {prompt!r}")
        return m.group(1)

    def _random_prompt(self, rng):
        idx = rng.choice(26, size=3, replace=False)
        return "pick:" + "".join(chr(97 + int(i)) for i in idx) + "="

    def answers(self, prompt: str) -> list[str]:
        return list(self._letters(prompt))

    def _sft_completion(self, prompt, rng):
        return self._letters(prompt)[int(rng.integers(0, 3))]

    def matrix(self, prompt: str) -> np.ndarray:
        """P[i, j] = P(letter i ≻ letter j) over the prompt's three letters (P + Pᵀ = 1)."""
        letters = self._letters(prompt)
        v = np.array([self.values[ord(c) - 97] for c in letters])
        P = np.empty((3, 3))
        for i in range(3):
            for j in range(3):
                c = 1.0 if j == (i + 1) % 3 else (-1.0 if i == (j + 1) % 3 else 0.0)
                P[i, j] = 1.0 / (1.0 + math.exp(-(self.alpha * (v[i] - v[j]) + self.gamma * c)))
        return P

    def prob(self, prompt: str, first: str, second: str) -> float:
        """P(first ≻ second) for two completions of ``prompt``."""
        letters = self._letters(prompt)
        i, j = letters.find(first) if len(first) == 1 else -1, \
            letters.find(second) if len(second) == 1 else -1
        if i < 0 and j < 0:
            return 0.5
        if i < 0 or j < 0:
            return 1.0 if j < 0 else 0.0
        return float(self.matrix(prompt)[i, j])

    def preference(self, first: Rollouts, second: Rollouts,
                   rng: np.random.Generator | None = None) -> Tensor:
        a, b = _texts(first), _texts(second)
        if len(a) != len(b):
            raise ValueError(f"first and second must have the same number of rows, got "
                             f"{len(a)} and {len(b)}")
        if list(first.prompts) != list(second.prompts):
            raise ValueError("first and second must answer the same prompts row by row")
        p = np.array([self.prob(x, y, z) for x, y, z in zip(first.prompts, a, b)])
        if rng is not None:
            p = (_check_rng(rng).random(p.shape) < p).astype(np.float64)
        return torch.tensor(p, dtype=torch.float32, device=first.logprobs.device)

    def rewards(self, rollouts: Rollouts, rng: np.random.Generator | None = None) -> Tensor:
        texts = _texts(rollouts)
        G = rollouts.group_size
        if G < 2:
            raise ValueError("group_size must be >= 2: a preference task's reward is the win "
                             "rate against the rest of the group")
        B = len(texts)
        P = np.empty((B // G, G, G))
        for g in range(B // G):
            rows = range(g * G, (g + 1) * G)
            for a, i in enumerate(rows):
                for b, j in enumerate(rows):
                    P[g, a, b] = self.prob(rollouts.prompts[i], texts[i], texts[j])
        if rng is not None:
            upper = _check_rng(rng).random(P.shape) < P
            iu = np.triu(np.ones((G, G), dtype=bool), k=1)
            P = np.where(iu, upper, ~np.swapaxes(upper, 1, 2)).astype(np.float64)
        off = ~np.eye(G, dtype=bool)
        r = np.where(off, P, 0.0).sum(axis=2) / (G - 1)
        return torch.tensor(r.reshape(-1), dtype=torch.float32, device=rollouts.logprobs.device)

    def score(self, prompt: str, completion: str) -> float:
        """Validity: 1 if the completion is one of the prompt's letters."""
        return 1.0 if completion in self._letters(prompt) else 0.0

    def __repr__(self):
        return f"CyclicPreferenceTask(seed={self.seed}, alpha={self.alpha}, gamma={self.gamma})"


TASKS = {
    "addition": AdditionTask,
    "reverse": ReverseTask,
    "sort": SortDigitsTask,
    "multiple": MultipleTask,
    "preference": CyclicPreferenceTask,
}


def make_task(name: str, **kwargs) -> TextTask:
    """A task by name: one of ``TASKS`` ("addition", "reverse", "sort", "multiple",
    "preference")."""
    if name not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {name!r}")
    return TASKS[name](**kwargs)
