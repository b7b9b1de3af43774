"""History: the metric stream, its subscribers and its JSONL round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from toolkit.history import History, JSONLWriter, Record


def filled() -> History:
    h = History()
    h.append(0, {"reward": 0.5, "kl": 0.0}, {"samples": [{"prompt": 0, "completion": "a1"}]})
    h.append(1, {"reward": 0.25, "kl": math.nan, "loss": math.inf})
    h.append(2, {"reward": -1e-300, "loss": -math.inf},
             {"adv_histogram": {"counts": [1.0, 2.0], "edges": [0.0, 0.5, 1.0]}})
    return h


def test_append_series_names():
    h = filled()
    steps, values = h.series("reward")
    assert steps.dtype == np.int64 and steps.tolist() == [0, 1, 2]
    assert values.tolist() == [0.5, 0.25, -1e-300]
    steps, values = h.series("loss")
    assert steps.tolist() == [1, 2]
    assert h.names() == ["reward", "kl", "loss"]
    assert len(h) == 3 and h.last.step == 2 and h[0].metrics["kl"] == 0.0
    with pytest.raises(KeyError, match="no metric named 'nope'"):
        h.series("nope")


def test_subscribers_get_every_record_in_order_and_can_unsubscribe():
    h = History()
    a, b = [], []
    h.subscribe(a.append)
    h.subscribe(b.append)
    h.append(0, {"x": 1.0})
    h.unsubscribe(b.append)
    h.append(1, {"x": 2.0})
    assert [r.step for r in a] == [0, 1] and [r.step for r in b] == [0]
    with pytest.raises(ValueError, match="not subscribed"):
        h.unsubscribe(b.append)
    with pytest.raises(TypeError, match="callable"):
        h.subscribe(42)


def test_jsonl_round_trip_is_exact_and_strict_json(tmp_path):
    h = filled()
    path = tmp_path / "h.jsonl"
    h.to_jsonl(path)
    for line in path.read_text().splitlines():   # strict JSON: no bare NaN / Infinity
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    back = History.from_jsonl(path)
    assert len(back) == len(h)
    for r, s in zip(h, back):
        assert r.step == s.step and r.extras == s.extras
        assert r.metrics.keys() == s.metrics.keys()
        for k in r.metrics:
            assert r.metrics[k] == s.metrics[k] or (math.isnan(r.metrics[k])
                                                    and math.isnan(s.metrics[k]))


def test_jsonl_writer_subscriber_streams_records(tmp_path):
    h = History()
    path = tmp_path / "live.jsonl"
    with JSONLWriter(path) as writer:
        h.subscribe(writer)
        h.append(0, {"reward": 1.0})
        h.append(1, {"reward": 2.0})
        assert len(path.read_text().splitlines()) == 2     # flushed per record
    h.unsubscribe(writer)
    assert History.from_jsonl(path).series("reward")[1].tolist() == [1.0, 2.0]


def test_bad_records_are_rejected(tmp_path):
    h = History()
    with pytest.raises(TypeError, match="metric 'x' must be a real number"):
        h.append(0, {"x": "high"})
    with pytest.raises(TypeError, match="step must be an int"):
        h.append(0.5, {"x": 1.0})
    with pytest.raises(TypeError, match="extras must be JSON-friendly"):
        Record(0, {"x": 1.0}, {"obj": object()}).to_json()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"step": 0, "metrics": {"x": "high"}}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        History.from_jsonl(bad)


def test_numpy_and_torch_scalars_are_accepted():
    import torch

    h = History()
    h.append(0, {"a": np.float32(0.5), "b": torch.tensor(2.0), "c": 3})
    assert h.last.metrics == {"a": 0.5, "b": 2.0, "c": 3.0}
