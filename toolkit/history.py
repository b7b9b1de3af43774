"""The metric stream of a training run: an append-only list of records that views subscribe to.

    history = History()
    history.subscribe(JSONLWriter("run.jsonl"))      # a file is a subscriber
    history.subscribe(lambda rec: print(rec.step, rec.metrics["reward"]))
    ...                                               # the trainer appends one record per step
    steps, reward = history.series("reward")         # numpy arrays for plotting
    history.to_jsonl("run.jsonl"); History.from_jsonl("run.jsonl")

A record is ``{step, metrics, extras}``: ``metrics`` are scalars (float) with TRL's names
(``reward``, ``kl``, ``clip_ratio/low_mean`` …), ``extras`` holds things a view shows but that
are not one number (an advantage histogram, recent samples). Extras must be JSON-friendly
(numbers, strings, lists, dicts, None).

The trainer knows nothing of widgets, files or progress bars: they are all subscribers, and
adding a new view changes nothing in the trainer.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["History", "JSONLWriter", "ProgressBar", "Record"]

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@dataclass
class Record:
    """One step of a run: ``step``, scalar ``metrics`` and display-only ``extras``."""

    step: int
    metrics: dict[str, float]
    extras: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """One strict-JSON line (non-finite metrics are written as "NaN" / "Infinity")."""
        metrics = {k: _encode_float(v) for k, v in self.metrics.items()}
        return json.dumps({"step": self.step, "metrics": metrics, "extras": self.extras},
                          allow_nan=False, default=_json_default, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Record:
        obj = json.loads(line)
        metrics = {k: _decode_float(v) for k, v in obj["metrics"].items()}
        return cls(step=int(obj["step"]), metrics=metrics, extras=obj.get("extras", {}))


def _encode_float(x: float):
    if math.isfinite(x):
        return x
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


def _decode_float(x) -> float:
    if isinstance(x, str):
        if x not in _NONFINITE:
            raise ValueError(f"metric value {x!r} is not a number")
        return _NONFINITE[x]
    return float(x)


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"extras must be JSON-friendly, got {type(obj).__name__}")


def _check_metrics(metrics: dict) -> dict[str, float]:
    if not isinstance(metrics, dict):
        raise TypeError(f"metrics must be a dict of name -> float, got {type(metrics).__name__}")
    out = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise TypeError(f"metric names must be str, got {type(name).__name__}")
        if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
            value = value.item()  # 0-dim torch / numpy scalars
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"metric {name!r} must be a real number, got {type(value).__name__}")
        out[name] = float(value)
    return out


class History:
    """Append-only list of ``Record``s; every subscriber gets every record as it is appended.

    ``subscribe(callback)`` registers ``callback(record)`` (returns the callback, so it can be
    used as a decorator); ``unsubscribe(callback)`` removes it. Subscribers are called in the
    order they subscribed. A subscriber that raises stops the notification of the ones after
    it for that record (the record itself is already stored).
    """

    def __init__(self, records: list[Record] | None = None):
        self._records: list[Record] = list(records or [])
        self._subscribers: list[Callable[[Record], Any]] = []

    # -- the stream ----------------------------------------------------------------------
    def append(self, step: int, metrics: dict, extras: dict | None = None) -> Record:
        """Store a record and hand it to every subscriber."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise TypeError(f"step must be an int, got {type(step).__name__}")
        if extras is not None and not isinstance(extras, dict):
            raise TypeError(f"extras must be a dict or None, got {type(extras).__name__}")
        record = Record(int(step), _check_metrics(metrics), dict(extras or {}))
        self._records.append(record)
        for callback in list(self._subscribers):
            callback(record)
        return record

    def subscribe(self, callback: Callable[[Record], Any]) -> Callable[[Record], Any]:
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self._subscribers.append(callback)
        return callback

    def unsubscribe(self, callback: Callable[[Record], Any]) -> None:
        try:
            self._subscribers.remove(callback)
        except ValueError:
            raise ValueError("callback is not subscribed to this history") from None

    @property
    def subscribers(self) -> tuple:
        return tuple(self._subscribers)

    # -- reading -------------------------------------------------------------------------
    @property
    def records(self) -> list[Record]:
        return list(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Record]:
        return iter(list(self._records))

    def __getitem__(self, index):
        return self._records[index]

    @property
    def last(self) -> Record | None:
        return self._records[-1] if self._records else None

    def names(self) -> list[str]:
        """Every metric name seen, in order of first appearance."""
        seen: dict[str, None] = {}
        for rec in self._records:
            seen.update(dict.fromkeys(rec.metrics))
        return list(seen)

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of one metric as numpy arrays, skipping records that lack it."""
        pairs = [(r.step, r.metrics[name]) for r in self._records if name in r.metrics]
        if not pairs and name not in self.names():
            known = ", ".join(self.names()) or "none yet"
            raise KeyError(f"no metric named {name!r} (known: {known})")
        steps = np.array([p[0] for p in pairs], dtype=np.int64)
        values = np.array([p[1] for p in pairs], dtype=np.float64)
        return steps, values

    # -- files ---------------------------------------------------------------------------
    def to_jsonl(self, path: str | os.PathLike) -> None:
        """Write every record as one JSON line (exact round trip with ``from_jsonl``)."""
        with open(path, "w", encoding="utf-8") as f:
            for rec in self._records:
                f.write(rec.to_json() + "\n")

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike) -> History:
        records = []
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    records.append(Record.from_json(line))
                except (ValueError, KeyError, TypeError) as err:
                    raise ValueError(f"{path}:{lineno}: not a history record ({err})") from None
        return cls(records)

    def _replace_records(self, records: list[Record]) -> None:
        """Used by checkpoint loading: set the records without notifying subscribers."""
        self._records = list(records)

    def __repr__(self) -> str:
        return f"History({len(self)} records, metrics={self.names()[:6]}…)"


class JSONLWriter:
    """A subscriber that appends each record to a JSONL file as it arrives (flushed per line).

        writer = history.subscribe(JSONLWriter("run.jsonl"))
        ...
        writer.close(); history.unsubscribe(writer)
    """

    def __init__(self, path: str | os.PathLike, mode: str = "w"):
        if mode not in ("w", "a"):
            raise ValueError(f"mode must be 'w' or 'a', got {mode!r}")
        self.path = os.fspath(path)
        self._file = open(self.path, mode, encoding="utf-8")

    def __call__(self, record: Record) -> None:
        if self._file.closed:
            raise ValueError(f"JSONLWriter({self.path!r}) is closed")
        self._file.write(record.to_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> JSONLWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ProgressBar:
    """A tqdm progress bar as a subscriber: one tick per record, a few metrics as postfix."""

    def __init__(self, total: int | None = None, initial: int = 0, desc: str = "train",
                 show: tuple[str, ...] = ("reward", "kl", "entropy", "loss")):
        from tqdm.auto import tqdm

        self.show = show
        self.bar = tqdm(total=total, initial=initial, desc=desc, leave=True, dynamic_ncols=True)

    def __call__(self, record: Record) -> None:
        self.bar.update(1)
        post = {k: f"{record.metrics[k]:.4g}" for k in self.show if k in record.metrics}
        self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        self.bar.close()
