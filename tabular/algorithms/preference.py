"""Learning from pairwise preferences, exactly: the Bradley–Terry RLHF pipeline and direct
preference losses (DPO, IPO, SLiC, SimPO), offline on a finite pair dataset and online.

Everything runs on a ``PreferenceGame`` (the ground-truth preferences ``P[y, y′]``); the
offline losses also take a dataset of (chosen, rejected) pairs with counts, which need not
agree with the game or cover every response. The game then supplies the metrics
(``exploitability``, ``duality_gap``, ``kl_to_solution``), never the offline gradients.

Notation: θ the logit table, π = softmax(θ), ref the reference (uniform by default),
d(w, l) = log π(w) − log π(l), Δ(w, l) = d(w, l) − [log ref(w) − log ref(l)] (the DPO
implicit reward margin divided by β), σ the logistic function.

The losses on one pair (w ≻ l), as implemented (``variant``):

    dpo    ℓ = −log σ(β·Δ)                                  Rafailov et al. 2023
    ipo    ℓ = (Δ − 1/(2β))²                                Azar et al. 2023
    slic   ℓ = max(0, 1 − β·Δ) − λ·log π(w)                 Zhao et al. 2023 (SLiC-HF),
                                                           hinge on the ref-normalised
                                                           margin as in TRL's "hinge"
    simpo  ℓ = −log σ(β·d − γ)                              Meng et al. 2024; responses are
                                                           one token long, so the average
                                                           log-likelihood is log π(y)

Ground truth (``solution``): the regularised Nash equilibrium of the game with τ = β and the
same ref, the NLHF target every tabular preference method is held against (for DPO on a
Bradley–Terry game with full coverage the loss's own optimum is ref·exp(s/β), which the BT
pipeline returns: how far the two are apart is part of what the records show).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.sparse.csgraph import connected_components
from scipy.special import expit, log_expit

from .._checks import as_float_array
from ..problems import PreferenceGame
from .base import normalize_log
from .games import _GameAlgorithm, win_rate

__all__ = [
    "BradleyTerryRLHF",
    "OfflineDPO",
    "OnlineDPO",
    "expected_pairs",
    "fit_bradley_terry",
]

VARIANTS = ("dpo", "ipo", "slic", "simpo")


# ----------------------------------------------------------------------------- Bradley–Terry


def fit_bradley_terry(game: PreferenceGame, l2: float = 0.0, tol: float = 1e-12,
                      max_iter: int = 100) -> np.ndarray:
    """Maximum-likelihood Bradley–Terry scores for every preference in the game.

        s = argmax_s  Σ_{i≠j} P[i, j]·log σ(s_i − s_j) − (l2/2)·‖s‖²,     Σ_i s_i = 0

    i.e. the reward model fitted to infinitely many comparisons of every pair (each ordered
    pair weighted equally). The log-likelihood is concave; its gradient is
    Σ_j (P[i, j] − σ(s_i − s_j)) − l2·s_i and its Hessian −(L + l2·I), L the Laplacian of the
    weights σ(1 − σ). Solved by Newton's method with backtracking, batched over games.
    For a Bradley–Terry game (``PreferenceGame.bradley_terry(s)``) it returns s − mean(s).

    The maximiser exists (and is unique) iff the comparison graph with edges
    {i → j : P[i, j] > 0} is strongly connected; otherwise (e.g. a deterministic ranking)
    the scores run off to ±∞ and a ValueError asks for ``l2 > 0``.

    Args:
        game: the preference game, ``P`` of shape [*batch, n, n].
        l2: ridge penalty ≥ 0 on the scores.
        tol: stop when ‖gradient‖_∞ ≤ tol·n.
        max_iter: maximum Newton steps.

    Returns:
        scores of shape [*batch, n], centred.
    """
    if not isinstance(game, PreferenceGame):
        raise TypeError(f"game must be a tabular.PreferenceGame, got {type(game).__name__}")
    l2 = float(as_float_array(l2, "l2"))
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2:g}")
    n = game.n_actions
    P = game.P.reshape(-1, n, n)
    if l2 == 0:
        for b, Pb in enumerate(P):
            k, _ = connected_components(Pb > 0, directed=True, connection="strong")
            if k > 1:
                raise ValueError(
                    f"fit_bradley_terry: the maximum-likelihood scores do not exist for game "
                    f"{np.unravel_index(b, game.batch_shape) if game.batch_shape else ''}: "
                    f"some responses are never beaten by (or never beat) the rest, so their "
                    f"scores run off to ±∞. Pass l2 > 0 to regularise."
                )
    s = np.zeros(P.shape[:-1])

    def loglik(s):
        d = s[:, :, None] - s[:, None, :]
        return np.sum(P * log_expit(d), axis=(-2, -1)) - 0.5 * l2 * np.sum(s * s, axis=-1)

    ones = np.ones((n, n)) / n
    value = loglik(s)
    for _ in range(max_iter):
        S = expit(s[:, :, None] - s[:, None, :])
        grad = np.sum(P - S, axis=-1) - l2 * s
        if np.max(np.abs(grad)) <= tol * n:
            break
        W = S * (1.0 - S)
        lap = np.eye(n) * W.sum(axis=-1)[:, :, None] - W
        step = np.linalg.solve(lap + l2 * np.eye(n) + ones, grad[..., None])[..., 0]
        alpha = np.ones(len(s))
        slope = np.sum(grad * step, axis=-1)
        for _ in range(60):
            cand = s + alpha[:, None] * step
            new = loglik(cand)
            ok = new >= value + 1e-4 * alpha * slope - 1e-14 * np.abs(value)
            if np.all(ok):
                break
            alpha = np.where(ok, alpha, 0.5 * alpha)
        s, value = cand, new
        s = s - s.mean(axis=-1, keepdims=True)
    else:  # pragma: no cover - Newton on a strictly concave, coercive likelihood converges
        raise RuntimeError(f"fit_bradley_terry: no convergence in {max_iter} Newton steps")
    return s.reshape(*game.batch_shape, n)


@dataclass(frozen=True)
class BradleyTerryRLHF(_GameAlgorithm):
    """The classic RLHF pipeline, exactly: fit a Bradley–Terry reward model, then take the
    KL-regularised optimum (Christiano et al. 2017; Ouyang et al. 2022; as contrasted with
    Nash learning in Munos et al., "Nash Learning from Human Feedback", 2024):

        s      = argmax_s Σ_{i≠j} P[i, j]·log σ(s_i − s_j)        (``fit_bradley_terry``)
        π_BT   = argmax_π E_π[s] − β·KL(π‖ref)  ∝  ref·exp(s/β)

    A one-shot "algorithm": step 0 records the initial policy, every later step is π_BT.
    On a Bradley–Terry game the fit recovers the scores and π_BT is what DPO reaches with
    full coverage; on a non-transitive game the reward model averages the cycle away and
    π_BT can put almost all its mass on one response while the Nash equilibrium mixes
    (see ``kl_to_solution`` / ``exploitability``, measured against the β-regularised Nash).
    Extra record: ``bt_residual`` = max |P[i, j] − σ(s_i − s_j)|, how far the game is
    from being Bradley–Terry.
    """

    beta: float | np.ndarray = 0.1
    ref: np.ndarray | None = None
    l2: float = 0.0
    SWEEP: ClassVar[tuple[str, ...]] = ("beta",)

    def __post_init__(self):
        self._check_positive("beta")
        self._check_nonnegative("l2")
        self._check_ref()

    def _tau(self):
        return np.asarray(self.beta, dtype=np.float64)

    def init(self, problem, logp0):
        scores = fit_bradley_terry(problem, l2=self.l2)
        return {"logp": logp0, "scores": scores}

    def policy(self, problem, scores) -> np.ndarray:
        """log π_BT = log-softmax(log ref + s/β)."""
        return normalize_log(self._log_ref(problem.n_actions) + scores / self.beta)

    def step(self, problem, state, t):
        logp = np.broadcast_to(self.policy(problem, state["scores"]), state["logp"].shape)
        return {"logp": logp.copy(), "scores": state["scores"]}

    def problem_metrics(self, problem, state, solution):
        out = super().problem_metrics(problem, state, solution)
        s = state["scores"]
        fitted = expit(s[..., :, None] - s[..., None, :])
        out["bt_residual"] = np.max(np.abs(problem.P - fitted), axis=(-2, -1))
        return out


# ----------------------------------------------------------------------------- losses


def _pair_loss(variant: str, d, r, beta, gamma):
    """(ℓ, ∂ℓ/∂d) of one pair, d = log π(w) − log π(l), r = log ref(w) − log ref(l)."""
    if variant == "dpo":
        z = beta * (d - r)
        return -log_expit(z), -beta * expit(-z)
    if variant == "ipo":
        z = d - r - 0.5 / beta
        return z * z, 2.0 * z
    if variant == "slic":
        z = beta * (d - r)
        active = z < 1.0
        return np.where(active, 1.0 - z, 0.0), np.where(active, -beta, 0.0)
    z = beta * d - gamma  # simpo
    return -log_expit(z), -beta * expit(-z)


class _PreferenceLoss(_GameAlgorithm):
    """Shared checks and metrics of the direct preference losses."""

    def _tau(self):
        return np.asarray(self.beta, dtype=np.float64)

    def _check_loss(self):
        self._check_positive("eta", "beta")
        self._check_nonnegative("sft")
        self._check_ref()
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        as_float_array(self.gamma, "gamma")
        if self.sft and self.variant != "slic":
            raise ValueError("sft (the SLiC-HF λ·(−log π(chosen)) term) applies to variant='slic'")

    def _rewards(self, problem, logp):
        """Implicit rewards: β·log(π/ref) (SimPO: β·log π)."""
        if self.variant == "simpo":
            return self.beta * logp
        return self.beta * (logp - self._log_ref(problem.n_actions))


def _check_pairs(pairs, counts):
    arr = np.asarray(pairs)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
        raise ValueError(f"pairs must have shape [m, 2] (chosen, rejected), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise TypeError("pairs must hold integer response indices")
        arr = arr.astype(np.int64)
    if np.any(arr < 0):
        raise ValueError("pairs must hold response indices >= 0")
    if np.any(arr[:, 0] == arr[:, 1]):
        raise ValueError("pairs must compare two different responses (chosen != rejected)")
    c = np.ones(arr.shape[0]) if counts is None else as_float_array(counts, "counts")
    if c.shape != (arr.shape[0],):
        raise ValueError(f"counts must have shape [m] = ({arr.shape[0]},), got {c.shape}")
    if np.any(c < 0) or not c.sum() > 0:
        raise ValueError("counts must be >= 0 with a positive total")
    return arr, c


def expected_pairs(game: PreferenceGame, responses, n_labels: float = 1.0):
    """A pair dataset covering ``responses``, labelled by the game *in expectation*.

    For every two covered responses a < b: the pair (a ≻ b) with count n_labels·P[a, b] and
    (b ≻ a) with count n_labels·P[b, a] (zero counts dropped). Returns (pairs [m, 2], counts
    [m]) for ``OfflineDPO``. Responses outside ``responses`` appear in no pair.
    """
    if not isinstance(game, PreferenceGame) or game.batch_shape:
        raise ValueError("game must be an unbatched tabular.PreferenceGame")
    idx = np.unique(np.asarray(responses, dtype=np.int64))
    if idx.size < 2 or idx.min() < 0 or idx.max() >= game.n_actions:
        raise ValueError(f"responses must hold >= 2 indices in [0, {game.n_actions})")
    n_labels = float(as_float_array(n_labels, "n_labels"))
    if not n_labels > 0:
        raise ValueError(f"n_labels must be > 0, got {n_labels:g}")
    pairs, counts = [], []
    for i, a in enumerate(idx):
        for b in idx[i + 1:]:
            for win, lose in ((a, b), (b, a)):
                if game.P[win, lose] > 0:
                    pairs.append((win, lose))
                    counts.append(n_labels * game.P[win, lose])
    return np.asarray(pairs, dtype=np.int64), np.asarray(counts)


# ----------------------------------------------------------------------------- offline


@dataclass(frozen=True)
class OfflineDPO(_PreferenceLoss):
    """Direct preference optimisation on a fixed dataset: exact full-batch gradient descent
    on the softmax logit table.

        L(θ) = Σ_k c_k·ℓ(w_k ≻ l_k) / Σ_k c_k          (ℓ: see the module docstring)
        ∇_θ L = Σ_k c_k·∂ℓ/∂d·(e_{w_k} − e_{l_k}) / Σ_k c_k   [+ λ·(π − p̂_w) for SLiC's SFT term]
        θ_{t+1} = θ_t − η·∇_θ L

    (Rafailov et al., "Direct Preference Optimization: Your Language Model is Secretly a
    Reward Model", 2023, and the IPO / SLiC-HF / SimPO variants.)

    Coverage. The pairwise gradient only moves logits of responses that appear in some pair
    and keeps their sum fixed; the logits of uncovered responses never move. Yet their
    *probability* moves: π(uncovered) = U/(U + Σ_covered e^θ), and Σ_covered e^θ at a fixed
    sum of logits is smallest when the covered logits are equal. So mass flows onto
    responses the data never shows whenever the loss pushes the covered logits closer
    together, e.g. when the start (ref) prefers the responses the data rejects (the
    "likelihood displacement" of Feng et al., "Towards Analyzing and Understanding the
    Limitations of DPO: A Theoretical Perspective" / the 3D-properties paper). From a
    start that is uniform on the covered responses it cannot happen (Jensen).

    Problem: a ``PreferenceGame`` with n responses (indices in ``pairs`` must be < n); the
    game only provides metrics. Use ``expected_pairs(game, responses)`` for a dataset
    labelled by the game. Extra records: ``loss``, ``mass_uncovered``, ``logp_chosen``,
    ``logp_rejected`` (count-weighted means over the pairs), and the TRL metrics
    ``rewards/chosen``, ``rewards/rejected``, ``rewards/margins``, ``rewards/accuracies``.

    Args:
        beta: β > 0 (sweepable): DPO/SLiC/SimPO inverse temperature, IPO's τ.
        eta: η > 0 (sweepable): learning rate on the logits.
        variant: "dpo", "ipo", "slic" or "simpo".
        pairs: int [m, 2] of (chosen, rejected) response indices.
        counts: weights [m] ≥ 0 (default all ones).
        ref: reference policy (full support); default uniform. SimPO ignores it in its loss.
        gamma: SimPO's target margin γ.
        sft: SLiC-HF's weight λ ≥ 0 on −log π(chosen) (variant "slic" only).
    """

    beta: float | np.ndarray = 0.1
    eta: float | np.ndarray = 0.1
    variant: str = "dpo"
    pairs: np.ndarray | None = None
    counts: np.ndarray | None = None
    ref: np.ndarray | None = None
    gamma: float = 0.0
    sft: float = 0.0
    SWEEP: ClassVar[tuple[str, ...]] = ("beta", "eta")

    def __post_init__(self):
        self._check_loss()
        if self.pairs is None:
            raise ValueError("pairs must be given: int [m, 2] of (chosen, rejected) indices")
        pairs, counts = _check_pairs(self.pairs, self.counts)
        object.__setattr__(self, "pairs", pairs)
        object.__setattr__(self, "counts", counts)

    def check_problem(self, problem):
        super().check_problem(problem)
        if self.pairs.max() >= problem.n_actions:
            raise ValueError(
                f"pairs refer to response {self.pairs.max()} but the game has only "
                f"{problem.n_actions} responses"
            )

    def covered(self, n: int) -> np.ndarray:
        """Boolean [n]: responses that appear in at least one pair."""
        mask = np.zeros(n, dtype=bool)
        mask[self.pairs.ravel()] = True
        return mask

    def _weights(self):
        return self.counts / self.counts.sum()

    def _terms(self, problem, logp):
        win, lose = self.pairs[:, 0], self.pairs[:, 1]
        log_ref = self._log_ref(problem.n_actions)
        d = logp[..., win] - logp[..., lose]
        r = log_ref[win] - log_ref[lose]
        return _pair_loss(self.variant, d, r, self.beta, self.gamma)

    def step(self, problem, state, t):
        logp = state["logp"]
        n = problem.n_actions
        _, dloss = self._terms(problem, logp)
        onehot = np.eye(n)
        direction = onehot[self.pairs[:, 0]] - onehot[self.pairs[:, 1]]  # [m, n]
        grad = (dloss * self._weights()) @ direction
        if self.sft:
            chosen = self._weights() @ onehot[self.pairs[:, 0]]
            grad = grad + self.sft * (np.exp(logp) - chosen)
        return {"logp": normalize_log(logp - self.eta * grad)}

    def problem_metrics(self, problem, state, solution):
        out = super().problem_metrics(problem, state, solution)
        logp = state["logp"]
        wts = self._weights()
        loss, _ = self._terms(problem, logp)
        win, lose = self.pairs[:, 0], self.pairs[:, 1]
        if self.sft:
            loss = loss - self.sft * logp[..., win]
        rewards = self._rewards(problem, logp)
        rw, rl = rewards[..., win], rewards[..., lose]
        out.update({
            "loss": loss @ wts,
            "mass_uncovered": np.sum(np.exp(logp) * ~self.covered(problem.n_actions), -1),
            "logp_chosen": logp[..., win] @ wts,
            "logp_rejected": logp[..., lose] @ wts,
            "rewards/chosen": rw @ wts,
            "rewards/rejected": rl @ wts,
            "rewards/margins": (rw - rl) @ wts,
            "rewards/accuracies": (rw > rl) @ wts,
        })
        return out


# ----------------------------------------------------------------------------- online


@dataclass(frozen=True)
class OnlineDPO(_PreferenceLoss):
    """Online direct preference optimisation: the same losses, with both responses drawn from
    the current policy and labelled by the game — the exact expected update, no sampling.

        L(θ) = E_{y, y′ ~ π_t} E_{label ~ P[y, y′]} ℓ(y_w ≻ y_l)
             = 2·Σ_{y,y′} π_t(y)π_t(y′)·P[y, y′]·ℓ(y ≻ y′)
        ∇_θ L = 2·Σ_{y,y′} π_t(y)π_t(y′)·P[y, y′]·∂ℓ/∂d(y, y′)·(e_y − e_{y′})
        θ_{t+1} = θ_t − η·∇_θ L                              (π_t held fixed in the sampling)

    (Guo et al., "Direct Language Model Alignment from Online AI Feedback", 2024; with the
    IPO loss this is online IPO, Calandriello et al. 2024: ``variant="ipo"`` takes exactly the
    step of ``OnlineIPO`` and its stationary point is the β-regularised Nash equilibrium.
    With the DPO loss on a Bradley–Terry game P = σ(s_y − s_y′) the stationary point is
    ref·exp(s/β), the BT pipeline's policy.)

    ``covered`` (optional response indices) only defines the ``mass_uncovered`` record, so
    that it can be compared with an ``OfflineDPO`` run on a dataset covering those responses.
    Extra records: ``loss``, ``logp_chosen``, ``logp_rejected`` (expected over sampled
    pairs), ``mass_uncovered`` when ``covered`` is given.
    """

    beta: float | np.ndarray = 0.1
    eta: float | np.ndarray = 0.1
    variant: str = "dpo"
    ref: np.ndarray | None = None
    gamma: float = 0.0
    sft: float = 0.0
    covered: tuple | np.ndarray | None = None
    SWEEP: ClassVar[tuple[str, ...]] = ("beta", "eta")

    def __post_init__(self):
        self._check_loss()
        if self.covered is not None:
            idx = np.asarray(self.covered)
            if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or np.any(idx < 0):
                raise ValueError("covered must be a 1-d array of response indices >= 0")

    def check_problem(self, problem):
        super().check_problem(problem)
        if self.covered is not None and np.max(self.covered, initial=-1) >= problem.n_actions:
            raise ValueError(f"covered refers to responses beyond the game's {problem.n_actions}")

    def _pair_tables(self, problem, logp):
        """d[y, y′], the pair weights 2π(y)π(y′)P[y, y′], and (ℓ, ∂ℓ/∂d) for every pair."""
        log_ref = self._log_ref(problem.n_actions)
        p = np.exp(logp)
        d = logp[..., :, None] - logp[..., None, :]
        r = log_ref[..., :, None] - log_ref[..., None, :]
        beta = self.beta[..., None] if np.ndim(self.beta) else self.beta
        gamma = self.gamma
        weight = 2.0 * p[..., :, None] * p[..., None, :] * problem.P
        return p, weight, _pair_loss(self.variant, d, r, beta, gamma)

    def step(self, problem, state, t):
        logp = state["logp"]
        p, weight, (_, dloss) = self._pair_tables(problem, logp)
        a = weight * dloss
        grad = np.sum(a, axis=-1) - np.sum(a, axis=-2)
        if self.sft:
            chosen = p * win_rate(problem.P, p)  # Σ = ½
            grad = grad - self.sft * 2.0 * (chosen - 0.5 * p)
        return {"logp": normalize_log(logp - self.eta * grad)}

    def problem_metrics(self, problem, state, solution):
        out = super().problem_metrics(problem, state, solution)
        logp = state["logp"]
        p, weight, (loss, _) = self._pair_tables(problem, logp)
        chosen = p * win_rate(problem.P, p)  # P(y is sampled and chosen), sums to ½
        total = np.sum(weight * loss, axis=(-2, -1))
        if self.sft:
            total = total - self.sft * 2.0 * np.sum(chosen * logp, axis=-1)
        out["loss"] = total
        out["logp_chosen"] = 2.0 * np.sum(chosen * logp, axis=-1)
        out["logp_rejected"] = 2.0 * np.sum((p - chosen) * logp, axis=-1)
        if self.covered is not None:
            mask = np.ones(problem.n_actions, dtype=bool)
            mask[np.asarray(self.covered)] = False
            out["mass_uncovered"] = np.sum(p * mask, axis=-1)
        return out
