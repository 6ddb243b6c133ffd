"""The lookup tasks: every answer is retrievable, the needle count is fixed, sampling is seeded."""

import numpy as np
import pytest
import torch

from ssmax_lite.tasks import IGNORE, LookupTask


def _lookup_by_hand(task: LookupTask, tokens: np.ndarray, query_token: int, haystack_len: int):
    """Find the answer of one query by scanning the haystack: (position, token)."""
    hay = tokens[:haystack_len]
    if task.tokens_per_needle == 1:
        key = query_token - task.n_keys * task.n_values
        hits = np.flatnonzero((hay < task.n_keys * task.n_values) & (hay // task.n_values == key))
        assert len(hits) == 1, "exactly one needle holds each queried key"
        return hits[0], hay[hits[0]]
    hits = np.flatnonzero(hay == query_token)
    assert len(hits) == 1, "exactly one key token of the haystack matches each query"
    return hits[0] + 1, hay[hits[0] + 1]


@pytest.mark.parametrize("tokens_per_needle", [1, 2])
@pytest.mark.parametrize("length", [13, 64, 257])
def test_every_answer_is_the_needle_of_its_key(tokens_per_needle, length):
    task = LookupTask(n_keys=6, n_values=5, n_needles=3, tokens_per_needle=tokens_per_needle)
    batch = task.sample(16, length, np.random.default_rng(0))
    assert batch.tokens.shape == batch.targets.shape == (16, length)
    assert int(batch.tokens.max()) < task.vocab_size and int(batch.tokens.min()) >= 0
    n = task.n_needles
    for row in range(16):
        tokens, targets = batch.tokens[row].numpy(), batch.targets[row].numpy()
        assert (targets != IGNORE).sum() == n
        assert batch.query_positions[row].tolist() == list(range(length - n, length))
        for q, needle in zip(batch.query_positions[row].tolist(), batch.needle_positions[row].tolist()):
            position, token = _lookup_by_hand(task, tokens, tokens[q], length - n)
            assert position == needle
            assert targets[q] == token


def test_needle_count_is_fixed_as_length_grows():
    task = LookupTask(n_keys=8, n_values=8, n_needles=4)
    for length in (64, 640, 2048):
        batch = task.sample(4, length, np.random.default_rng(1))
        assert (batch.targets != IGNORE).sum(dim=1).tolist() == [4] * 4


def test_sampling_is_seeded():
    task = LookupTask()
    a = task.sample(8, 100, np.random.default_rng(7))
    b = task.sample(8, 100, np.random.default_rng(7))
    c = task.sample(8, 100, np.random.default_rng(8))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.tokens, c.tokens)


def test_needle_depths_cover_the_haystack():
    task = LookupTask(n_keys=8, n_values=8, n_needles=1)
    batch = task.sample(2000, 50, np.random.default_rng(2))
    depths = batch.needle_positions.flatten().numpy()
    assert depths.min() == 0 and depths.max() == 48  # first and last haystack slot both occur


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_keys=4, n_needles=4), "n_keys"),
    (dict(n_values=0), "n_values"),
    (dict(tokens_per_needle=3), "tokens_per_needle"),
    (dict(n_needles=1.5), "n_needles"),
])
def test_bad_task_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LookupTask(**kwargs)


def test_bad_sample_arguments_raise():
    task = LookupTask(n_needles=4)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="length"):
        task.sample(2, task.min_length() - 1, rng)
    with pytest.raises(ValueError, match="batch_size"):
        task.sample(0, 64, rng)
    with pytest.raises(ValueError, match="rng"):
        task.sample(2, 64, 0)
