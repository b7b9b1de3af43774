"""One training loop for every policy and every recipe: sample → score → advantage → loss → step.

    trainer = Trainer(TabularPolicy(10), BanditTask(tb.Bandit.random(10)), GRPO(), lr=0.5)
    trainer.train(200)                      # tqdm bar; call again to continue
    steps, kl = trainer.history.series("kl")

The trainer talks to the policy only through ``toolkit.rollouts.Policy`` (``sample``,
``logprobs``, ``ref_logprobs``, ``entropy``, ``parameters``, ``state_dict``), to the task
through ``Task`` / ``PreferenceTask``, and to the algorithm through its recipe (``collect``,
``loss``; see ``toolkit.algorithms``). It knows no widget: views subscribe to ``history``.

Staleness (the off-policy knob): with ``staleness=k`` every step first generates a batch
with the current policy and appends it to a FIFO queue, then trains on the batch generated
k steps (policy versions) ago. During warm-up (the first k steps) the queue holds fewer than
k + 1 batches and the trainer trains on the oldest one available (the batch of step 0 is thus
used k + 1 times). The staleness actually used is recorded as ``staleness``. A policy
version is one trainer step; ``epochs_per_batch`` optimizer updates happen within a step.

Stopping: ``train`` returns cleanly, with the policy usable and the history kept, on
KeyboardInterrupt (an interrupted step is rolled back, so no partial optimizer step
survives), on ``stop()`` (after the current step), and on a non-finite loss, gradient or
parameter (the last good parameters and optimizer state are restored). ``stop_reason`` says
why the last ``train`` call ended. A task returning NaN/inf rewards is bad input: ``train``
raises ValueError naming ``task.rewards`` (state and history intact).

Metrics of each step (TRL names; weighted by the exact-mode weights when ``exact=True``):
the objective's diagnostics (averaged over epochs; ``ratio/min`` / ``ratio/max`` take the
extremes), plus ``reward``, ``reward_std``, ``frac_reward_zero_std`` (from the batch's
rewards), ``entropy`` (token mean of H(π) before the step), ``kl`` (the objective's, else the
k3 estimate of KL(π‖π_ref) importance-weighted by π/μ), ``kl/iterates`` (KL(π_before‖π_after)
on the batch, k3 importance-weighted by π_before/μ: exact in exact mode), ``ratio/*`` (π/μ
before the step, if the objective has none), ``clip_ratio/*`` (0 for objectives that do not
clip), ``grad_norm`` (before clipping), ``staleness``, ``step_time``,
``completions/mean_length``. Per-record extras: ``adv_histogram`` {counts, edges},
``samples`` (a few rows: prompt, completion, reward, advantage), ``version``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import numbers
import time
import warnings
from collections import deque
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tabular._checks import check_int

from .algorithms import Algorithm, Context
from .history import History, ProgressBar
from .rollouts import Rollouts

__all__ = ["Trainer"]

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
#: metrics every step reports (objective-specific diagnostics are added to these)
CORE_METRICS = (
    "loss", "reward", "reward_std", "frac_reward_zero_std", "kl", "entropy",
    "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "adv/pos_share",
    "ratio/min", "ratio/mean", "ratio/max", "kl/iterates", "grad_norm", "step_time",
    "completions/mean_length", "staleness",
)
N_SAMPLES_SHOWN = 8
HISTOGRAM_BINS = 21


class NonFiniteError(RuntimeError):
    """Raised inside a step when the loss, a gradient or a parameter is not finite."""


class Trainer:
    """Drive ``policy`` on ``task`` with ``algorithm``.

    Args:
        policy: anything implementing ``toolkit.rollouts.Policy`` (TabularPolicy, LMPolicy).
        task: a reward task (``prompts``, ``rewards``), a preference task (``preference``) or
            a pair dataset (``pairs``), as the recipe needs.
        algorithm: a recipe from ``toolkit.algorithms`` (GRPO(), OPMD(tau=1.0), …).
        optimizer: None (SGD), "sgd" / "adam" / "adamw", a callable ``params -> optimizer``,
            or a ready optimizer over the policy's parameters (a recipe's extra modules, e.g.
            PPO's value head, are then added as a new parameter group).
        lr: learning rate for the optimizers the trainer builds (> 0).
        group_size: completions per prompt G (≥ the recipe's minimum, 2 for group baselines).
        prompts_per_step: prompts (groups) per batch.
        staleness: train on the batch generated this many steps ago (≥ 0; see module doc).
        epochs_per_batch: optimizer updates on each batch (≥ 1).
        exact: enumerate every group with its probability instead of sampling, so a step is
            the expected update (policies with ``enumerate``, i.e. TabularPolicy).
        seed: seeds the torch generator used for sampling and the numpy generator used for
            prompts, reward noise and preference draws.
        max_new_tokens, sample_kwargs: passed through to ``policy.sample``.
        max_grad_norm: clip the global gradient norm (None: no clipping; ``grad_norm`` is
            always recorded before clipping).
        history: a History to append to (default: a new one).
        track_kl: compute ``kl`` (k3 estimate of KL(π‖π_ref) on the batch) when the objective
            does not report one; costs one reference forward per batch.
    """

    def __init__(self, policy, task, algorithm: Algorithm, optimizer=None, lr: float = 0.1,
                 group_size: int = 8, prompts_per_step: int = 1, staleness: int = 0,
                 epochs_per_batch: int = 1, exact: bool = False, seed: int = 0,
                 max_new_tokens: int | None = None, sample_kwargs: dict | None = None,
                 max_grad_norm: float | None = None, history: History | None = None,
                 track_kl: bool = True):
        for method in ("sample", "logprobs", "ref_logprobs", "entropy", "parameters",
                       "state_dict", "load_state_dict"):
            if not callable(getattr(policy, method, None)):
                raise TypeError(f"policy must implement the Policy interface; "
                                f"{type(policy).__name__} has no {method}()")
        if not isinstance(algorithm, Algorithm):
            raise TypeError(f"algorithm must be a recipe from toolkit.algorithms (e.g. GRPO()), "
                            f"got {type(algorithm).__name__}")
        self.group_size = check_int(group_size, "group_size", minimum=1)
        self.prompts_per_step = check_int(prompts_per_step, "prompts_per_step", minimum=1)
        self.staleness = check_int(staleness, "staleness", minimum=0)
        self.epochs_per_batch = check_int(epochs_per_batch, "epochs_per_batch", minimum=1)
        self.seed = check_int(seed, "seed", minimum=0)
        if not isinstance(exact, bool):
            raise TypeError(f"exact must be a bool, got {type(exact).__name__}")
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0 \
                or not math.isfinite(lr):
            raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
        if max_grad_norm is not None and (isinstance(max_grad_norm, bool) or
                                          not isinstance(max_grad_norm, numbers.Real) or
                                          not max_grad_norm > 0):
            raise ValueError(f"max_grad_norm must be None or > 0, got {max_grad_norm!r}")
        if exact and not callable(getattr(policy, "enumerate", None)):
            raise TypeError(f"exact=True needs a policy with enumerate(prompts, group_size) "
                            f"(e.g. TabularPolicy); {type(policy).__name__} has none")
        if sample_kwargs is not None and not isinstance(sample_kwargs, dict):
            raise TypeError("sample_kwargs must be a dict or None")
        algorithm.check(policy=policy, task=task, group_size=self.group_size, exact=exact)

        self.policy, self.task, self.algorithm = policy, task, algorithm
        self.exact, self.lr = exact, float(lr)
        self.max_grad_norm = None if max_grad_norm is None else float(max_grad_norm)
        self.track_kl = bool(track_kl)
        self.sample_kwargs = dict(sample_kwargs or {})
        if max_new_tokens is not None:
            self.sample_kwargs["max_new_tokens"] = check_int(max_new_tokens, "max_new_tokens",
                                                             minimum=1)
        self.modules: dict[str, torch.nn.Module] = dict(algorithm.make_modules(policy))
        self.optimizer = self._build_optimizer(optimizer)
        self.history = History() if history is None else history
        self.generator = torch.Generator().manual_seed(self.seed)
        self.rng = np.random.default_rng(self.seed)
        self.queue: deque[Rollouts] = deque()
        self.step = 0
        self.stop_reason: str | None = None
        self.stop_message: str | None = None
        self._stop_requested = False
        self._training = False

    # -- setup ---------------------------------------------------------------------------
    def parameters(self) -> list[Tensor]:
        """Every trained tensor: the policy's, then each extra module's."""
        params = [p for p in self.policy.parameters() if p.requires_grad]
        for module in self.modules.values():
            params += [p for p in module.parameters() if p.requires_grad]
        return params

    def _build_optimizer(self, optimizer):
        policy_params = [p for p in self.policy.parameters() if p.requires_grad]
        module_params = [p for m in self.modules.values() for p in m.parameters()
                         if p.requires_grad]
        if not policy_params:
            raise ValueError("policy has no trainable parameters (requires_grad=True)")
        if optimizer is None:
            optimizer = "sgd"
        if isinstance(optimizer, str):
            key = optimizer.lower()
            if key not in OPTIMIZERS:
                raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, an optimizer "
                                 f"or a callable(params), got {optimizer!r}")
            return OPTIMIZERS[key](policy_params + module_params, lr=self.lr)
        if isinstance(optimizer, torch.optim.Optimizer):
            known = {id(p) for g in optimizer.param_groups for p in g["params"]}
            if not any(id(p) in known for p in policy_params):
                raise ValueError("optimizer does not hold the policy's parameters")
            extra = [p for p in module_params if id(p) not in known]
            if extra:
                optimizer.add_param_group({"params": extra})
            return optimizer
        if callable(optimizer):
            built = optimizer(policy_params + module_params)
            if not isinstance(built, torch.optim.Optimizer):
                raise TypeError(f"optimizer callable must return a torch.optim.Optimizer, got "
                                f"{type(built).__name__}")
            return built
        raise TypeError(f"optimizer must be None, a name, an Optimizer or a callable(params), "
                        f"got {type(optimizer).__name__}")

    @property
    def context(self) -> Context:
        return Context(policy=self.policy, task=self.task, group_size=self.group_size,
                       prompts_per_step=self.prompts_per_step, exact=self.exact,
                       generator=self.generator, rng=self.rng,
                       sample_kwargs=self.sample_kwargs, modules=self.modules)

    # -- public loop ---------------------------------------------------------------------
    def stop(self) -> None:
        """Ask ``train`` to return after the current step (e.g. from a Stop button)."""
        self._stop_requested = True

    def train(self, steps: int, progress: bool = True) -> History:
        """Run ``steps`` more steps (the step counter continues across calls).

        Returns the history. Ends early, cleanly, on KeyboardInterrupt, ``stop()`` or a
        non-finite loss / gradient; ``stop_reason`` is then "interrupted", "stopped" or
        "non-finite …" (None when every step ran).
        """
        steps = check_int(steps, "steps", minimum=0)
        # A second train() while one runs (a cell executed while a Dashboard's Start thread
        # trains) would interleave optimizer steps on one policy: refuse it.
        if self._training:
            raise RuntimeError("train() is already running on this trainer (call stop() first)")
        self._training = True
        try:
            return self._train(steps, progress)
        finally:
            self._training = False

    def _train(self, steps: int, progress: bool) -> History:
        self.stop_reason, self.stop_message = None, None
        self._stop_requested = False
        bar = None
        if progress and steps:
            bar = self.history.subscribe(ProgressBar(total=steps, desc=self.algorithm.name))
        try:
            for _ in range(steps):
                snapshot = self._snapshot()
                try:
                    metrics, extras = self._train_step()
                except KeyboardInterrupt:
                    self._restore(snapshot)
                    self._set_stop("interrupted", "KeyboardInterrupt: the interrupted step "
                                   f"was rolled back; {self.step} steps done")
                    break
                except NonFiniteError as err:
                    self._restore(snapshot, rng=False)
                    self._set_stop(str(err).split(":")[0], f"{err} — training stopped at step "
                                   f"{self.step}; the last good parameters and optimizer "
                                   f"state are kept")
                    warnings.warn(self.stop_message, RuntimeWarning, stacklevel=2)
                    break
                except BaseException:
                    self._restore(snapshot)
                    self.stop_reason = "error"
                    raise
                self.step += 1
                try:
                    self.history.append(self.step - 1, metrics, extras)
                except KeyboardInterrupt:  # the step is done and recorded; just stop
                    self._set_stop("interrupted", "KeyboardInterrupt in a history subscriber; "
                                   f"{self.step} steps done")
                    break
                if self._stop_requested:
                    self._set_stop("stopped", f"stop() requested; {self.step} steps done")
                    break
        finally:
            if bar is not None:
                self.history.unsubscribe(bar)
                bar.close()
        return self.history

    def _set_stop(self, reason: str, message: str) -> None:
        self.stop_reason, self.stop_message = reason, message

    # -- one step ------------------------------------------------------------------------
    def _next_batch(self) -> tuple[Rollouts, int]:
        """Generate a batch with the current policy; return the one to train on (FIFO)."""
        with torch.no_grad():
            batch = self.algorithm.collect(self.context)
            if not isinstance(batch, Rollouts):
                raise TypeError(f"{self.algorithm.name}.collect must return Rollouts, got "
                                f"{type(batch).__name__}")
            extras = {}
            if self.track_kl and "ref_logprobs" not in batch.extras:
                extras["ref_logprobs"] = self.policy.ref_logprobs(batch).detach()
            batch = dataclasses.replace(batch, version=self.step,
                                        extras={**batch.extras, **extras})
        self.queue.append(batch)
        if len(self.queue) > self.staleness:
            train_on = self.queue.popleft()
        else:
            train_on = self.queue[0]
        return train_on, self.step - train_on.version

    def _train_step(self) -> tuple[dict[str, float], dict]:
        start = time.perf_counter()
        batch, used_staleness = self._next_batch()
        ctx = self.context
        w = batch.weights
        mask = batch.completion_mask
        params = self.parameters()

        with torch.no_grad():
            logp_before = self.policy.logprobs(batch).detach()
            entropy = self.policy.entropy(batch).detach()
        if not bool(torch.isfinite(logp_before[mask != 0]).all()):
            raise NonFiniteError("non-finite log-probabilities: log π of a batch token is "
                                 "not finite")

        per_epoch: list[dict[str, float]] = []
        grad_norms = []
        for _ in range(self.epochs_per_batch):
            loss, diag = self.algorithm.loss(self.policy, batch, ctx)
            if not bool(torch.isfinite(loss)):
                raise NonFiniteError(f"non-finite loss: {self.algorithm.name} loss = "
                                     f"{float(loss.detach())}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grads = [p.grad for p in params if p.grad is not None]
            norm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(g) for g in grads])) if grads \
                else torch.zeros(())
            if not bool(torch.isfinite(norm)):
                raise NonFiniteError(f"non-finite gradient: grad_norm = {float(norm)}")
            if self.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
            self.optimizer.step()
            if not all(bool(torch.isfinite(p).all()) for p in params):
                raise NonFiniteError("non-finite parameters after the optimizer step")
            grad_norms.append(float(norm))
            per_epoch.append({k: float(v) for k, v in diag.items()})

        with torch.no_grad():
            logp_after = self.policy.logprobs(batch).detach()
        metrics = self._metrics(batch, per_epoch, logp_before, logp_after, entropy, mask, w)
        metrics["grad_norm"] = float(np.mean(grad_norms))
        metrics["staleness"] = float(used_staleness)
        metrics["step_time"] = time.perf_counter() - start
        return metrics, self._extras(batch)

    # -- metrics -------------------------------------------------------------------------
    def _metrics(self, batch, per_epoch, logp_before, logp_after, entropy, mask, w):
        valid = mask != 0
        out: dict[str, float] = {}
        # objective diagnostics, averaged over epochs (range statistics take min / max)
        for name in per_epoch[0]:
            values = [d[name] for d in per_epoch if name in d]
            if name == "ratio/min":
                out[name] = min(values)
            elif name == "ratio/max":
                out[name] = max(values)
            else:
                out[name] = float(np.mean(values))

        def token_mean(x: Tensor) -> float:
            row_w = (torch.full((x.shape[0],), 1.0 / x.shape[0], dtype=x.dtype)
                     if w is None else w.to(x.dtype))
            tw = row_w[:, None] * valid.to(x.dtype)
            total = tw.sum()
            return float((tw * torch.where(valid, x, x.new_zeros(()))).sum() / total) \
                if total > 0 else math.nan

        ratio = torch.exp(logp_before - batch.logprobs)     # π/μ at the start of the step
        if "ratio/mean" not in out:
            seen = valid if w is None else valid & (w > 0)[:, None]
            out["ratio/min"] = float(ratio[seen].min())
            out["ratio/mean"] = token_mean(ratio)
            out["ratio/max"] = float(ratio[seen].max())
        for name in ("clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean"):
            out.setdefault(name, 0.0)    # objectives without a clip clip nothing
        out["entropy"] = token_mean(entropy)
        ref = batch.extras.get("ref_logprobs")
        if "kl" not in out and ref is not None:
            # k3 estimate of KL(π‖π_ref), importance-weighted by π/μ for stale batches
            log_r = ref - logp_before
            out["kl"] = token_mean(ratio * (torch.expm1(log_r) - log_r))
        # KL(π_before‖π_after) with samples from μ: E_μ[(π_b/μ)·k3(π_after/π_b)]
        log_r = logp_after - logp_before
        out["kl/iterates"] = token_mean(ratio * (torch.expm1(log_r) - log_r))
        row_w = (torch.full((batch.batch_size,), 1.0 / batch.batch_size, dtype=torch.float64)
                 if w is None else w.to(torch.float64))
        out["completions/mean_length"] = float((row_w * batch.lengths.to(torch.float64)).sum())
        rewards = batch.extras.get("rewards")
        if isinstance(rewards, Tensor):
            out.update(_reward_stats(rewards, batch.group_size, w))
        return out

    def _extras(self, batch: Rollouts) -> dict:
        extras: dict[str, Any] = {"version": batch.version}
        adv = batch.extras.get("advantages")
        w = batch.weights
        if isinstance(adv, Tensor):
            a = adv if adv.dim() == 1 else adv[:, 0]
            weights = None if w is None else w.cpu().numpy()
            counts, edges = np.histogram(a.cpu().numpy(), bins=HISTOGRAM_BINS, weights=weights)
            extras["adv_histogram"] = {"counts": [float(c) for c in counts],
                                       "edges": [float(e) for e in edges]}
        rows = range(min(N_SAMPLES_SHOWN, batch.batch_size))
        if w is not None:
            rows = torch.argsort(w, descending=True, stable=True)[:N_SAMPLES_SHOWN].tolist()
        rewards = batch.extras.get("rewards")
        samples = []
        for i in rows:
            item = {"prompt": _jsonable(batch.prompts[i]),
                    "completion": batch.texts[i] if batch.texts else None}
            if isinstance(rewards, Tensor):
                item["reward"] = float(rewards[i])
            if isinstance(adv, Tensor):
                item["advantage"] = float(a[i])
            if w is not None:
                item["weight"] = float(w[i])
            samples.append(item)
        extras["samples"] = samples
        return extras

    # -- snapshots (rollback of an interrupted or non-finite step) -------------------------
    def _snapshot(self) -> dict:
        return {
            "params": [p.detach().clone() for p in self.parameters()],
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "generator": self.generator.get_state(),
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "queue": list(self.queue),
            "step": self.step,
        }

    def _restore(self, snap: dict, rng: bool = True) -> None:
        with torch.no_grad():
            for p, saved in zip(self.parameters(), snap["params"]):
                p.copy_(saved)
        self.optimizer.load_state_dict(snap["optimizer"])
        self.optimizer.zero_grad(set_to_none=True)
        if rng:
            self.generator.set_state(snap["generator"])
            self.rng.bit_generator.state = snap["rng"]
            self.queue = deque(snap["queue"])
        else:
            # keep the RNG advance (a retry would otherwise repeat the failing batch) but drop
            # the batch generated by the failed step
            self.queue = deque(snap["queue"])
        self.step = snap["step"]

    # -- checkpoints ---------------------------------------------------------------------
    def save(self, directory) -> None:
        """Save a checkpoint (see ``toolkit.checkpoint.save_checkpoint``)."""
        from .checkpoint import save_checkpoint

        save_checkpoint(self, directory)

    def load(self, directory) -> None:
        """Resume from a checkpoint (see ``toolkit.checkpoint.load_checkpoint``)."""
        from .checkpoint import load_checkpoint

        load_checkpoint(self, directory)

    def config(self) -> dict:
        """The settings a checkpoint must match to resume bit-identically."""
        return {
            "algorithm": self.algorithm.config(),
            "group_size": self.group_size,
            "prompts_per_step": self.prompts_per_step,
            "staleness": self.staleness,
            "epochs_per_batch": self.epochs_per_batch,
            "exact": self.exact,
            "seed": self.seed,
            "policy": type(self.policy).__name__,
            "optimizer": type(self.optimizer).__name__,
        }

    def __repr__(self) -> str:
        return (f"Trainer({self.algorithm.name}, step={self.step}, G={self.group_size}, "
                f"prompts_per_step={self.prompts_per_step}, staleness={self.staleness}, "
                f"exact={self.exact})")


def _jsonable(x):
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def _reward_stats(rewards: Tensor, G: int, w: Tensor | None) -> dict[str, float]:
    """reward, reward_std, frac_reward_zero_std (TRL names), weighted in exact mode."""
    r = rewards.detach().to(torch.float64)
    if w is None:
        w = torch.full_like(r, 1.0 / r.shape[0])
    w = w.to(torch.float64)
    out = {"reward": float((w * r).sum())}
    if G >= 2:
        groups = r.reshape(-1, G)
        gw = w.reshape(-1, G).sum(dim=1)
        gw = gw / gw.sum()
        std = groups.std(dim=1, correction=1)
        zero = (groups.amax(dim=1) == groups.amin(dim=1)).to(torch.float64)
        out["reward_std"] = float((gw * std).sum())
        out["frac_reward_zero_std"] = float((gw * zero).sum())
    return out
