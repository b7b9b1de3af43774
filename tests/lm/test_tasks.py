"""Verifiable text tasks: seeded prompts, a disjoint held-out split, exact rewards, SFT data,
and the preference oracle's cycle."""

import numpy as np
import pytest
import torch

from toolkit.lm.tasks import (
    TASKS,
    AdditionTask,
    CyclicPreferenceTask,
    MultipleTask,
    ReverseTask,
    SortDigitsTask,
    make_task,
)
from toolkit.lm.tokenizer import DEFAULT_CHARS
from toolkit.rollouts import PreferenceTask as PreferenceTaskProtocol
from toolkit.rollouts import Rollouts, Task

ALL = sorted(TASKS)


def _rollouts(prompts, texts, group_size=1):
    B = len(prompts)
    z = torch.zeros(B, 1)
    return Rollouts(prompts=list(prompts), prompt_ids=z.long(), prompt_mask=z + 1,
                    completion_ids=z.long(), completion_mask=z + 1, logprobs=z,
                    group_size=group_size, texts=list(texts))


@pytest.mark.parametrize("name", ALL)
def test_protocol_and_seeded_prompts(name):
    task = make_task(name)
    assert isinstance(task, Task)
    a = task.prompts(50, np.random.default_rng(3))
    assert a == task.prompts(50, np.random.default_rng(3))
    assert a != task.prompts(50, np.random.default_rng(4))
    assert all(set(p) <= set(DEFAULT_CHARS) for p in a)


@pytest.mark.parametrize("name", ALL)
def test_heldout_split_is_disjoint_and_fixed(name):
    task = make_task(name)
    rng = np.random.default_rng(0)
    train = task.prompts(400, rng, "train")
    held = task.prompts(200, rng, "heldout")
    assert not any(task.is_heldout(p) for p in train)
    assert all(task.is_heldout(p) for p in held)
    fixed = task.heldout_prompts(300)
    assert fixed == task.heldout_prompts(300) and len(set(fixed)) == 300
    assert fixed[:100] == task.heldout_prompts(100)
    assert all(task.is_heldout(p) for p in fixed)
    # about a fifth of the prompt space is held out
    draws = [task._random_prompt(rng) for _ in range(4000)]
    assert 0.15 < np.mean([task.is_heldout(p) for p in draws]) < 0.25
    with pytest.raises(ValueError, match="split"):
        task.prompts(3, rng, "test")
    with pytest.raises(TypeError, match="rng"):
        task.prompts(3, 0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        task.prompts(0, rng)


@pytest.mark.parametrize("name", ALL)
def test_sft_examples_are_correct_and_in_vocab(name):
    task = make_task(name)
    ex = task.sft_examples(200, np.random.default_rng(1))
    assert all(task.score(p, c) == 1.0 for p, c in ex)
    assert all(set(p + c) <= set(DEFAULT_CHARS) for p, c in ex)
    assert max(len(c) for _, c in ex) < task.max_new_tokens  # room for EOS
    assert not any(task.is_heldout(p) for p, _ in ex)


def test_exact_rewards():
    add = AdditionTask()
    assert add.answers("35+67=") == ["102"]
    assert add.score("35+67=", "102") == 1.0
    for wrong in ("103", "0102", " 102", "102 ", "", "10"):
        assert add.score("35+67=", wrong) == 0.0
    assert ReverseTask().answers("rev:abcde=") == ["edcba"]
    assert SortDigitsTask().answers("sort:5831=") == ["1358"]
    r = add.rewards(_rollouts(["1+2=", "1+2=", "9+9="], ["3", "4", "18"]))
    assert r.tolist() == [1.0, 0.0, 1.0] and r.dtype == torch.float32
    with pytest.raises(ValueError, match="not an addition prompt"):
        add.score("rev:abc=", "cba")


def test_multiple_has_several_correct_answers():
    task = MultipleTask()
    assert task.answers("m7:10-99=") == [str(x) for x in range(14, 99, 7)]
    assert len(task.answers("m7:10-99=")) == 13
    assert task.score("m7:10-99=", "49") == 1.0
    for wrong in ("7", "105", "50", "049", "+49", "49.0", ""):
        assert task.score("m7:10-99=", wrong) == 0.0
    rng = np.random.default_rng(0)
    for p in task.prompts(300, rng):
        assert len(task.answers(p)) >= 2
    # SFT answers cover the options (diversity)
    ex = [c for p, c in task.sft_examples(2000, rng) if p == "m7:10-99="]
    many = {c for _ in range(200) for c in [task._sft_completion("m7:10-99=", rng)]}
    assert len(many) >= 10
    assert all(task.score("m7:10-99=", c) for c in ex)


def test_preference_oracle_is_antisymmetric_cyclic_and_seeded():
    task = CyclicPreferenceTask(seed=0)
    assert isinstance(task, PreferenceTaskProtocol)
    rng = np.random.default_rng(0)
    for p in task.prompts(200, rng):
        P = task.matrix(p)
        np.testing.assert_allclose(P + P.T, 1.0, atol=1e-12)
        # a strict cycle: 0 ≻ 1, 1 ≻ 2, 2 ≻ 0 — no Condorcet winner
        assert P[0, 1] > 0.5 and P[1, 2] > 0.5 and P[2, 0] > 0.5
    p = "pick:abc="
    v = task.values
    expected = 1 / (1 + np.exp(-(1.0 * (v[0] - v[1]) + 2.0)))
    assert task.prob(p, "a", "b") == pytest.approx(expected, abs=1e-12)
    assert task.prob(p, "a", "z") == 1.0 and task.prob(p, "zz", "b") == 0.0
    assert task.prob(p, "", "x") == 0.5
    assert CyclicPreferenceTask(seed=0).values.tolist() == v.tolist()
    assert CyclicPreferenceTask(seed=1).values.tolist() != v.tolist()
    # without the cyclic term the matrix is transitive (Bradley–Terry)
    bt = CyclicPreferenceTask(seed=0, gamma=0.0).matrix(p)
    order = np.argsort(-v[:3])
    assert bt[order[0], order[1]] >= 0.5 and bt[order[1], order[2]] >= 0.5
    assert bt[order[0], order[2]] >= 0.5


def test_preference_and_win_rate_rewards():
    task = CyclicPreferenceTask(seed=0)
    prompts = ["pick:abc="] * 4
    first = _rollouts(prompts, ["a", "b", "c", "x"])
    second = _rollouts(prompts, ["b", "c", "a", "a"])
    p = task.preference(first, second)
    assert p.tolist() == pytest.approx([task.prob("pick:abc=", x, y)
                                        for x, y in zip("abcx", "bcaa")])
    rng = np.random.default_rng(0)
    big_first = _rollouts(["pick:abc="] * 4000, ["a"] * 4000)
    big_second = _rollouts(["pick:abc="] * 4000, ["b"] * 4000)
    draws = task.preference(big_first, big_second, rng)
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    assert abs(draws.mean().item() - task.prob("pick:abc=", "a", "b")) < 0.03
    # win rate against the rest of the group; Σ_i r_i = G/2 since P + Pᵀ = 1
    group = _rollouts(["pick:abc="] * 4, ["a", "b", "c", "q"], group_size=4)
    r = task.rewards(group)
    assert r.sum().item() == pytest.approx(2.0, abs=1e-6)
    assert r[3].item() == 0.0  # the invalid completion loses to every valid one
    sampled = task.rewards(group, np.random.default_rng(1))
    assert sampled.sum().item() == pytest.approx(2.0, abs=1e-6)
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        task.rewards(_rollouts(prompts, ["a"] * 4))
    with pytest.raises(ValueError, match="same prompts"):
        task.preference(first, _rollouts(["pick:abd="] * 4, ["a"] * 4))
    assert task.score("pick:abc=", "b") == 1.0 and task.score("pick:abc=", "d") == 0.0


def test_rewards_need_texts_and_bad_task_names():
    r = _rollouts(["1+2="], ["3"])
    r.texts = None
    with pytest.raises(ValueError, match="texts"):
        AdditionTask().rewards(r)
    with pytest.raises(ValueError, match="task must be one of"):
        make_task("chess")
    with pytest.raises(ValueError, match="max_len"):
        ReverseTask(min_len=5, max_len=3)
