r"""The training tasks: synthetic needle-in-a-haystack lookups generated on the fly (seeded, nothing to
download), and next-byte prediction on real text (:class:`ByteTextTask`, chapter 3d).

A sequence of ``length`` tokens holds a *haystack* with a fixed number of *needles* (key → value
pairs whose keys are all different), followed by one *query* per needle. At a query position the
model must reproduce the needle that holds the queried key; the loss and the accuracy are computed
**only** at these answer positions (every other target is :data:`IGNORE`). The filler around the
needles is made of the same kind of tokens as the needles, with keys that are not queried, so a
longer sequence means more distractors and the same number of needles: exactly the situation in
which softmax attention fades.

Two layouts (``tokens_per_needle``):

* ``1`` — **one-step lookup.** Each needle is a single token that carries its key *and* its value,
  ``pair(k, v) = k·V + v``; the query is a separate token ``query(k)``, and the answer is the needle
  itself, ``pair(k, v)`` (so, its value). One attention head that matches ``query(k)`` with
  ``pair(k, ·)`` and copies what it finds solves it::

      pair(7,2) pair(3,9) pair(12,0) ... pair(5,5) | query(12) query(5)  → targets: pair(12,0) pair(5,5)

* ``2`` — **two-token lookup** (needs an induction circuit: a head that finds the earlier copy of
  the key, and reads the token *after* it). Needles and filler are ``key value`` pairs; the query
  is the key token again::

      key(7) value(2) key(3) value(9) ... | key(3) key(7)  → targets: value(9) value(2)

Token ids are laid out in blocks, see :class:`LookupTask`.

:class:`RecallStreamTask` is the associative-recall *stream* (in the style of MQAR, Arora et al.
2023): needles and their queries are scattered through the whole sequence, so the queries of one
training sequence see from a few keys up to ``L`` (in causal attention a query at position ``t``
sees ``n = t + 1`` keys, and SSMax's ``log n`` varies during training, as in the paper's
next-token training).

:class:`ByteTextTask` is the paper's own objective in miniature: next-token prediction at every
position, on CPython's standard library read byte by byte (:mod:`ssmax_lite.lab.corpus`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["IGNORE", "ByteTextTask", "LookupBatch", "LookupTask", "MajorityRecallTask", "RecallStreamTask", "TASK_TYPES"]

IGNORE = -100
"""Target id of the positions that carry no answer (``torch.nn.functional.cross_entropy``'s default)."""


@dataclass(frozen=True)
class LookupBatch:
    """One batch of a :class:`LookupTask`, as ``torch.long`` tensors.

    Attributes:
        tokens: ``(B, T)`` input ids.
        targets: ``(B, T)`` the answer at each answer position (the token at the needle
            position), :data:`IGNORE` elsewhere.
        query_positions: ``(B, N)`` where the N queries sit (the answer positions).
        needle_positions: ``(B, N)`` the token a query should attend to: the needle holding its
            value (for the two-token layout, the value token right after the key).
    """

    tokens: torch.Tensor
    targets: torch.Tensor
    query_positions: torch.Tensor
    needle_positions: torch.Tensor

    def to(self, device) -> "LookupBatch":
        """The batch on ``device``. To a GPU the tensors go through pinned memory without blocking:
        a plain copy from pageable memory would make the CPU wait until the GPU has finished every
        step queued before it, at every training step."""
        tensors = (self.tokens, self.targets, self.query_positions, self.needle_positions)
        if torch.device(device).type != "cuda":
            return LookupBatch(*(t.to(device) for t in tensors))
        return LookupBatch(*(t.pin_memory().to(device, non_blocking=True) for t in tensors))


def _check_sample_args(batch_size, length, rng, min_length: int, what: str) -> None:
    """The checks every task's ``sample`` makes: ``what`` says what the shortest sequence holds."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < min_length:
        raise ValueError(f"length must be an int >= {min_length} for this task ({what}), got {length!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                         f"got {type(rng).__name__}")


def _as_batch(tokens, targets, query_pos, needle_pos) -> LookupBatch:
    """Numpy arrays as a :class:`LookupBatch` of writable ``torch.long`` copies."""
    arrays = (tokens, targets, query_pos, needle_pos)
    return LookupBatch(*(torch.from_numpy(np.array(a, dtype=np.int64)) for a in arrays))


@dataclass(frozen=True)
class LookupTask:
    """A key → value retrieval task with a fixed number of needles in a haystack that grows with length.

    Args:
        n_keys: K, the number of distinct keys (needles and filler share them; a sequence's filler
            uses only the ``K − n_needles`` keys that are not needles).
        n_values: V, the number of distinct values.
        n_needles: N, the needles per sequence, each queried once at the end (fixed at every length).
        tokens_per_needle: 1 (one-step lookup) or 2 (key token then value token).

    Token ids:
        ``tokens_per_needle=1``: ``[0, K·V)`` pair tokens ``k·V + v`` (haystack and answers),
        ``[K·V, K·V+K)`` query tokens.
        ``tokens_per_needle=2``: ``[0, K)`` key tokens, ``[K, K+V)`` value tokens (the answers).
    """

    n_keys: int = 8
    n_values: int = 8
    n_needles: int = 4
    tokens_per_needle: int = 1

    def __post_init__(self):
        for name in ("n_keys", "n_values", "n_needles"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.tokens_per_needle not in (1, 2):
            raise ValueError(f"tokens_per_needle must be 1 (one-step lookup) or 2 (key then value), "
                             f"got {self.tokens_per_needle!r}")
        if self.n_keys < self.n_needles + 1:
            raise ValueError(f"n_keys ({self.n_keys}) must exceed n_needles ({self.n_needles}): "
                             f"the filler needs at least one key that is not a needle")

    # ------------------------------------------------------------------ vocabulary

    @property
    def vocab_size(self) -> int:
        """Number of token ids the model must embed."""
        k, v = self.n_keys, self.n_values
        return k * v + k if self.tokens_per_needle == 1 else k + v

    @property
    def value_offset(self) -> int:
        """Two-token layout: the id of ``value(0)`` (values are ``value_offset + v``); 0 for pairs."""
        return 0 if self.tokens_per_needle == 1 else self.n_keys

    def min_length(self) -> int:
        """The shortest sequence that holds the needles, their queries and one filler slot."""
        return self.tokens_per_needle * (self.n_needles + 1) + self.n_needles

    # ------------------------------------------------------------------ sampling

    def sample(self, batch_size: int, length: int, rng: np.random.Generator) -> LookupBatch:
        """Draw ``batch_size`` sequences of ``length`` tokens with ``rng`` (a numpy ``Generator``).

        The haystack takes the first ``length − N`` tokens (for the two-token layout a leading
        value token pads an odd haystack), the N queries the last N, in random order. Needle
        depths are uniform over the haystack.
        """
        _check_sample_args(batch_size, length, rng, self.min_length(),
                           f"{self.n_needles} needles, their queries and some filler")
        b, n, k_count = int(batch_size), self.n_needles, self.n_keys
        per = self.tokens_per_needle
        hay = int(length) - n
        slots = hay // per                      # places for a needle or a filler item
        pad = hay - slots * per                 # 0, or 1 leading token for the two-token layout

        key_perm = np.argsort(rng.random((b, k_count)), axis=1)     # first N keys are the needles
        needle_keys = key_perm[:, :n]
        filler_keys = np.take_along_axis(key_perm[:, n:], rng.integers(0, k_count - n, (b, slots)), axis=1)
        keys = filler_keys
        values = rng.integers(0, self.n_values, (b, slots))
        needle_slots = np.argsort(rng.random((b, slots)), axis=1)[:, :n]
        rows = np.arange(b)[:, None]
        keys[rows, needle_slots] = needle_keys

        order = np.argsort(rng.random((b, n)), axis=1)              # the order of the queries
        query_keys = np.take_along_axis(needle_keys, order, axis=1)
        answer_slots = np.take_along_axis(needle_slots, order, axis=1)

        if per == 1:
            haystack = keys * self.n_values + values
            queries = self.n_keys * self.n_values + query_keys
            needle_pos = pad + answer_slots
        else:
            haystack = np.stack([keys, self.value_offset + values], axis=2).reshape(b, slots * 2)
            queries = query_keys
            needle_pos = pad + 2 * answer_slots + 1                 # the value token after the key
        if pad:
            haystack = np.concatenate([self.value_offset + rng.integers(0, self.n_values, (b, pad)),
                                       haystack], axis=1)
        tokens = np.concatenate([haystack, queries], axis=1)
        query_pos = np.broadcast_to(np.arange(hay, hay + n), (b, n))
        targets = np.full((b, int(length)), IGNORE, dtype=np.int64)
        targets[rows, query_pos] = tokens[rows, needle_pos]             # the needle is the answer
        return _as_batch(tokens, targets, query_pos, needle_pos)


@dataclass(frozen=True)
class RecallStreamTask:
    r"""Associative recall with queries at every depth: needles and queries interleaved with filler.

    A sequence of ``length`` tokens holds ``N = n_needles`` needles ``pair(k, v)`` (N different keys)
    and one query ``query(k)`` per needle, *after* its needle, all scattered through the sequence;
    every other token is filler ``pair(k', v')`` whose keys are the ``K − N`` keys that are not
    needles. The answer at a query is the needle itself, ``pair(k, v)`` (so, its value); the loss
    and the accuracy are computed only at the N query positions. Token ids as in the one-step
    :class:`LookupTask`: ``pair(k, v) = k·V + v`` in ``[0, K·V)``, ``query(k) = K·V + k``::

        pair(7,2) pair(3,9) pair(12,0) query(3) pair(5,5) pair(7,4) query(12) ...
                  └── needle ──┘ └ needle ┘  ↑ target pair(3,9)    ↑ target pair(12,0)

    (here keys 3 and 12 are needles, 7 and 5 filler). **Placement.** 2N distinct positions are
    drawn uniformly; a random word in which each needle index occurs twice decides which needle
    sits where, and its first occurrence is the needle, its second the query. So a query's
    position is the later of two uniform draws: queries see every ``n`` from 2 to ``length``, more
    often late ones (density ∝ n), and the needle is anywhere before its query.

    As the sequence grows, N stays fixed and only the filler grows (the haystack), exactly as in
    :class:`LookupTask`, but the queries keep sitting at every depth, so an evaluation can bin them
    by the number of keys they see (:func:`ssmax_lite.lab.evaluate.accuracy_by_depth`).

    Args:
        n_keys: K, distinct keys (needles and filler share the token type, not the keys).
        n_values: V, distinct values.
        n_needles: N, needles (and queries) per sequence, fixed at every length.
        filler_values: how many distinct values one sequence's filler uses, drawn per sequence
            (``None``: all V). With 1, every filler token of a sequence carries the same value: the
            attention mass that leaks off the needle then piles up on one value instead of spreading
            evenly over V (see the task-design notes in ``benchmarks/task_design.py``).
        filler_keys: how many distinct keys one sequence's filler uses, drawn per sequence from the
            ``K − N`` keys that are not needles (``None``: all of them). ``filler_keys=1`` with
            ``filler_values=1`` makes the haystack one token repeated, a different one in every
            sequence: all the weight that leaks off the needle then votes for that one wrong answer,
            so the answer flips once the haystack's total weight beats the needle's.
    """

    n_keys: int = 16
    n_values: int = 8
    n_needles: int = 8
    filler_values: int | None = None
    filler_keys: int | None = None

    def __post_init__(self):
        for name in ("n_keys", "n_values", "n_needles"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.n_keys < self.n_needles + 1:
            raise ValueError(f"n_keys ({self.n_keys}) must exceed n_needles ({self.n_needles}): "
                             f"the filler needs at least one key that is not a needle")
        fv = self.filler_values
        if fv is not None and (isinstance(fv, bool) or not isinstance(fv, (int, np.integer))
                               or not 1 <= fv <= self.n_values):
            raise ValueError(f"filler_values must be None (all n_values) or an int in "
                             f"[1, n_values={self.n_values}], got {fv!r}")
        fk = self.filler_keys
        if fk is not None and (isinstance(fk, bool) or not isinstance(fk, (int, np.integer))
                               or not 1 <= fk <= self.n_keys - self.n_needles):
            raise ValueError(f"filler_keys must be None (all n_keys - n_needles) or an int in "
                             f"[1, n_keys - n_needles={self.n_keys - self.n_needles}], got {fk!r}")

    @property
    def vocab_size(self) -> int:
        """``K·V`` pair tokens and ``K`` query tokens."""
        return self.n_keys * self.n_values + self.n_keys

    def min_length(self) -> int:
        """The shortest sequence that holds the needles, their queries and one filler slot."""
        return 2 * self.n_needles + 1

    def _needle_keys_and_filler(self, b: int, length: int, rng: np.random.Generator):
        """Each sequence's N needle keys ``(B, N)`` and its filler, ``(B, length)`` pair tokens of the other keys."""
        n, k_count, v_count = self.n_needles, self.n_keys, self.n_values
        key_perm = np.argsort(rng.random((b, k_count)), axis=1)      # first N keys are the needles
        n_filler_keys = self.filler_keys or k_count - n
        filler_keys = np.take_along_axis(key_perm[:, n:n + n_filler_keys],
                                         rng.integers(0, n_filler_keys, (b, length)), axis=1)
        n_filler_values = self.filler_values or v_count
        value_sets = np.argsort(rng.random((b, v_count)), axis=1)[:, :n_filler_values]
        filler_vals = np.take_along_axis(value_sets, rng.integers(0, n_filler_values, (b, length)), axis=1)
        return key_perm[:, :n], filler_keys * v_count + filler_vals

    def sample(self, batch_size: int, length: int, rng: np.random.Generator) -> LookupBatch:
        """Draw ``batch_size`` sequences of ``length`` tokens with ``rng`` (a numpy ``Generator``).

        ``query_positions`` are in the order of the needles (not sorted by position);
        ``needle_positions[:, i]`` is the needle of query ``i``.
        """
        _check_sample_args(batch_size, length, rng, self.min_length(),
                           f"{self.n_needles} needles, their queries and some filler")
        b, n, length = int(batch_size), self.n_needles, int(length)
        k_count, v_count = self.n_keys, self.n_values
        rows = np.arange(b)[:, None]
        needle_keys, tokens = self._needle_keys_and_filler(b, length, rng)

        # 2N sorted distinct positions; each needle index occurs twice in a random word over them:
        # first occurrence = needle, second = query (a stable sort lists them in that order)
        slots = np.sort(np.argsort(rng.random((b, length)), axis=1)[:, :2 * n], axis=1)
        word = np.argsort(rng.random((b, 2 * n)), axis=1) % n
        by_needle = np.argsort(word, axis=1, kind="stable")
        needle_pos = np.take_along_axis(slots, by_needle[:, 0::2], axis=1)
        query_pos = np.take_along_axis(slots, by_needle[:, 1::2], axis=1)

        needle_vals = rng.integers(0, v_count, (b, n))
        tokens[rows, needle_pos] = needle_keys * v_count + needle_vals
        tokens[rows, query_pos] = k_count * v_count + needle_keys
        targets = np.full((b, length), IGNORE, dtype=np.int64)
        targets[rows, query_pos] = tokens[rows, needle_pos]              # the needle is the answer
        return _as_batch(tokens, targets, query_pos, needle_pos)


@dataclass(frozen=True)
class MajorityRecallTask(RecallStreamTask):
    r"""An aggregation task: the answer is the value that most of a key's ``copies`` needles carry.

    As :class:`RecallStreamTask`, but each of the N needle keys occurs ``copies`` times before its query,
    :math:`\lceil c/2 \rceil` times with its majority value ``a`` and :math:`\lfloor c/2 \rfloor` times with
    one other value ``b ≠ a``, in random order; the answer at ``query(k)`` is ``pair(k, a)``. Attention that
    picks out one needle is right only when it picks a majority copy; attention that spreads its weight
    evenly over the copies reads the majority. Placement: ``(copies + 1)·N`` distinct positions drawn
    uniformly; per needle index, a random word decides which hold its copies (the first ``copies``
    occurrences) and its query (the last). ``needle_positions`` holds each query's first majority copy.

    Args:
        copies: needles per key, an odd int >= 3; the other arguments as in :class:`RecallStreamTask`.
    """

    copies: int = 3

    def __post_init__(self):
        super().__post_init__()
        c = self.copies
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 3 or c % 2 == 0:
            raise ValueError(f"copies must be an odd int >= 3 (so that one value is the majority), got {c!r}")

    def min_length(self) -> int:
        """The needles' copies, their queries and one filler slot."""
        return (self.copies + 1) * self.n_needles + 1

    def sample(self, batch_size: int, length: int, rng: np.random.Generator) -> LookupBatch:
        """Draw ``batch_size`` sequences of ``length`` tokens with ``rng`` (a numpy ``Generator``)."""
        _check_sample_args(batch_size, length, rng, self.min_length(),
                           f"{self.copies} copies of {self.n_needles} needles, their queries and some filler")
        b, n, c, length = int(batch_size), self.n_needles, int(self.copies), int(length)
        k_count, v_count = self.n_keys, self.n_values
        rows = np.arange(b)[:, None]
        needle_keys, tokens = self._needle_keys_and_filler(b, length, rng)

        # (c+1)·N sorted distinct positions; each needle index occurs c+1 times in a random word over them:
        # its first c occurrences hold the copies, its last the query (a stable sort keeps that order)
        slots = np.sort(np.argsort(rng.random((b, length)), axis=1)[:, :(c + 1) * n], axis=1)
        word = np.argsort(rng.random((b, (c + 1) * n)), axis=1) % n
        by_needle = np.argsort(word, axis=1, kind="stable").reshape(b, n, c + 1)
        positions = np.take_along_axis(slots[:, None, :], by_needle, axis=2)   # (B, N, c + 1)

        majority = rng.integers(0, v_count, (b, n))
        minority = (majority + rng.integers(1, v_count, (b, n))) % v_count  # any value but the majority
        values = np.where(np.arange(c) < c // 2 + 1, majority[..., None], minority[..., None])  # (B, N, c)
        values = np.take_along_axis(values, np.argsort(rng.random((b, n, c)), axis=2), axis=2)  # shuffled
        tokens[rows[..., None], positions[..., :c]] = needle_keys[..., None] * v_count + values
        query_pos = positions[..., c]
        tokens[rows, query_pos] = k_count * v_count + needle_keys
        targets = np.full((b, length), IGNORE, dtype=np.int64)
        targets[rows, query_pos] = needle_keys * v_count + majority
        first_majority = np.take_along_axis(positions, np.argmax(values == majority[..., None], axis=2)[..., None],
                                            axis=2)[..., 0]
        return _as_batch(tokens, targets, query_pos, first_majority)


@dataclass(frozen=True)
class ByteTextTask:
    r"""Next-byte prediction on real text: CPython's standard library (:mod:`ssmax_lite.lab.corpus`).

    A sequence is ``length + 1`` consecutive bytes from a uniformly drawn offset in the split;
    ``tokens`` are the first ``length``, ``targets`` the next byte at *every* position, so the loss
    is the language-modelling loss averaged over all positions (in nats per byte). Position ``t``
    (0-based) sees ``n = t + 1`` bytes. There are no needles: ``query_positions`` is every position
    and ``needle_positions`` is empty, ``(B, 0)``.

    Args:
        split: ``"train"`` (154 files) or ``"test"`` (17 other files of the same library).
    """

    split: str = "train"

    def __post_init__(self):
        from .corpus import CORPUS_SPLITS

        if self.split not in CORPUS_SPLITS:
            raise ValueError(f"split must be one of {tuple(CORPUS_SPLITS)}, got {self.split!r}")

    @property
    def vocab_size(self) -> int:
        """One token per byte value."""
        return 256

    def min_length(self) -> int:
        """One byte of context and its successor."""
        return 1

    def sample(self, batch_size: int, length: int, rng: np.random.Generator) -> LookupBatch:
        """Draw ``batch_size`` windows of ``length`` bytes (and their next bytes) with ``rng``."""
        from .corpus import load_corpus

        _check_sample_args(batch_size, length, rng, self.min_length(), "one byte")
        data = load_corpus(self.split)
        if length + 1 > len(data):
            raise ValueError(f"length must be below the split's {len(data)} bytes, got {length}")
        starts = rng.integers(0, len(data) - length, int(batch_size))
        windows = data[starts[:, None] + np.arange(length + 1)]
        positions = np.broadcast_to(np.arange(length), (int(batch_size), int(length)))
        return _as_batch(windows[:, :-1], windows[:, 1:], positions, np.zeros((int(batch_size), 0)))


TASK_TYPES = (LookupTask, RecallStreamTask, ByteTextTask)
"""The task classes that training and evaluation accept (same ``sample`` interface and batch)."""
