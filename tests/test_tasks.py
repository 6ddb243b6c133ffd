"""The lookup tasks: every answer is retrievable, the needle count is fixed, sampling is seeded."""

import numpy as np
import pytest
import torch

from ssmax_lite.lab.tasks import IGNORE, LookupTask, MajorityRecallTask, RecallStreamTask


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


@pytest.mark.parametrize("task", [LookupTask(n_needles=4), RecallStreamTask(n_needles=4)], ids=["lookup", "stream"])
def test_bad_sample_arguments_raise(task):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="length"):
        task.sample(2, task.min_length() - 1, rng)
    with pytest.raises(ValueError, match="batch_size"):
        task.sample(0, 64, rng)
    with pytest.raises(ValueError, match="rng"):
        task.sample(2, 64, 0)


# ---------------------------------------------------------------------------------- the recall stream


def _stream_answer_by_hand(task: RecallStreamTask, tokens: np.ndarray, query_pos: int):
    """Scan the prefix before a query for the pair tokens whose key is the queried key."""
    pairs = task.n_keys * task.n_values
    key = tokens[query_pos] - pairs
    assert 0 <= key < task.n_keys, "a query position holds a query token"
    prefix = tokens[:query_pos]
    hits = np.flatnonzero((prefix < pairs) & (prefix // task.n_values == key))
    assert len(hits) == 1, "exactly one pair token before the query holds the queried key"
    return hits[0], prefix[hits[0]]


@pytest.mark.parametrize("length", [17, 64, 300])
@pytest.mark.parametrize("filler_values, filler_keys", [(None, None), (1, None), (3, None), (1, 1), (None, 2)])
def test_stream_every_target_is_the_needle_of_its_key(length, filler_values, filler_keys):
    task = RecallStreamTask(n_keys=12, n_values=5, n_needles=8, filler_values=filler_values,
                            filler_keys=filler_keys)
    batch = task.sample(12, length, np.random.default_rng(3))
    assert batch.tokens.shape == batch.targets.shape == (12, length)
    assert batch.query_positions.shape == batch.needle_positions.shape == (12, 8)
    assert 0 <= int(batch.tokens.min()) and int(batch.tokens.max()) < task.vocab_size
    pairs = task.n_keys * task.n_values
    for row in range(12):
        tokens, targets = batch.tokens[row].numpy(), batch.targets[row].numpy()
        queries = batch.query_positions[row].numpy()
        assert sorted(np.flatnonzero(targets != IGNORE)) == sorted(queries)
        assert sorted(np.flatnonzero(tokens >= pairs)) == sorted(queries)  # query tokens only there
        for q, needle in zip(queries, batch.needle_positions[row].numpy()):
            position, token = _stream_answer_by_hand(task, tokens, q)
            assert position == needle < q
            assert targets[q] == token
        if filler_values is not None:
            filler = np.setdiff1d(np.arange(length), np.concatenate([queries, batch.needle_positions[row].numpy()]))
            assert len(np.unique(tokens[filler] % task.n_values)) <= filler_values
        if filler_keys is not None:
            filler = np.setdiff1d(np.arange(length), np.concatenate([queries, batch.needle_positions[row].numpy()]))
            assert len(np.unique(tokens[filler] // task.n_values)) <= filler_keys


def test_stream_queries_sit_at_every_depth():
    task = RecallStreamTask(n_keys=16, n_values=8, n_needles=8)
    batch = task.sample(400, 64, np.random.default_rng(4))
    keys_seen = (batch.query_positions + 1).flatten().numpy()
    counts = np.histogram(keys_seen, bins=[0, 8, 16, 32, 48, 64])[0]
    assert keys_seen.min() <= 3 and keys_seen.max() == 64
    assert np.all(counts > 0)          # every depth range of the training length holds queries
    assert counts[0] < counts[-1]      # a query is the later of two draws: late ones are more common


def test_stream_needle_count_is_fixed_as_length_grows():
    task = RecallStreamTask(n_keys=16, n_values=8, n_needles=8)
    for length in (64, 640, 2048):
        batch = task.sample(3, length, np.random.default_rng(5))
        assert (batch.targets != IGNORE).sum(dim=1).tolist() == [8] * 3


def test_stream_sampling_is_seeded():
    task = RecallStreamTask()
    a, b = (task.sample(8, 100, np.random.default_rng(7)) for _ in range(2))
    c = task.sample(8, 100, np.random.default_rng(8))
    for x, y in zip((a.tokens, a.targets, a.query_positions, a.needle_positions),
                    (b.tokens, b.targets, b.query_positions, b.needle_positions)):
        assert torch.equal(x, y)
    assert not torch.equal(a.tokens, c.tokens)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_keys=8, n_needles=8), "n_keys"),
    (dict(n_values=0), "n_values"),
    (dict(n_needles=2.5), "n_needles"),
    (dict(filler_values=0), "filler_values"),
    (dict(n_values=4, filler_values=5), "filler_values"),
    (dict(filler_keys=0), "filler_keys"),
    (dict(n_keys=16, n_needles=8, filler_keys=9), "filler_keys"),
])
def test_bad_stream_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RecallStreamTask(**kwargs)


def test_stream_filler_keys_none_draws_what_the_default_drew():
    # filler_keys=None must keep the draws of every stream task trained before the option existed
    plain = RecallStreamTask().sample(4, 80, np.random.default_rng(11))
    explicit = RecallStreamTask(filler_keys=8).sample(4, 80, np.random.default_rng(11))
    assert torch.equal(plain.tokens, explicit.tokens) and torch.equal(plain.targets, explicit.targets)


def test_stream_one_filler_token_is_one_repeated_token_per_sequence():
    task = RecallStreamTask(filler_values=1, filler_keys=1)
    batch = task.sample(6, 200, np.random.default_rng(12))
    hay = {}
    for row in range(6):
        special = np.concatenate([batch.query_positions[row].numpy(), batch.needle_positions[row].numpy()])
        filler = np.setdiff1d(np.arange(200), special)
        hay[row] = np.unique(batch.tokens[row].numpy()[filler])
        assert len(hay[row]) == 1
    assert len({int(t[0]) for t in hay.values()}) > 1  # a different haystack token in different sequences


# ------------------------------------------------------------------------------ the majority (aggregation) task


@pytest.mark.parametrize("copies", [3, 5])
@pytest.mark.parametrize("length", [None, 300])
@pytest.mark.parametrize("filler_values, filler_keys", [(None, None), (1, 1)])
def test_majority_every_target_is_the_value_most_copies_of_its_key_carry(copies, length, filler_values, filler_keys):
    task = MajorityRecallTask(n_keys=12, n_values=5, n_needles=6, filler_values=filler_values,
                              filler_keys=filler_keys, copies=copies)
    length = length or task.min_length()
    batch = task.sample(10, length, np.random.default_rng(13))
    assert batch.tokens.shape == batch.targets.shape == (10, length)
    assert batch.query_positions.shape == batch.needle_positions.shape == (10, 6)
    pairs = task.n_keys * task.n_values
    for row in range(10):
        tokens, targets = batch.tokens[row].numpy(), batch.targets[row].numpy()
        queries = batch.query_positions[row].numpy()
        assert sorted(np.flatnonzero(targets != IGNORE)) == sorted(queries)
        assert sorted(np.flatnonzero(tokens >= pairs)) == sorted(queries)
        for q, needle in zip(queries, batch.needle_positions[row].numpy()):
            key = tokens[q] - pairs
            same_key = np.flatnonzero((tokens < pairs) & (tokens // task.n_values == key))
            assert len(same_key) == copies and same_key.max() < q  # every copy before its query
            values = tokens[same_key] % task.n_values
            counts = np.bincount(values, minlength=task.n_values)
            assert sorted(counts[counts > 0]) == [copies // 2, copies // 2 + 1]  # one majority, one other value
            assert targets[q] == key * task.n_values + np.argmax(counts)
            assert tokens[needle] == targets[q] and needle < q  # the first majority copy
            assert needle == same_key[values == np.argmax(counts)][0]


def test_majority_order_of_the_copies_is_random():
    task = MajorityRecallTask(n_keys=16, n_values=8, n_needles=8)
    batch = task.sample(200, 64, np.random.default_rng(14))
    minority_place = []
    for row in range(200):
        tokens = batch.tokens[row].numpy()
        for q, target in zip(batch.query_positions[row].numpy(), batch.targets[row].numpy()[batch.query_positions[row]]):
            key = tokens[q] - 128
            same_key = np.flatnonzero((tokens < 128) & (tokens // 8 == key))
            minority_place.append(int(np.flatnonzero(tokens[same_key] != target)[0]))
    share = np.bincount(minority_place, minlength=3) / len(minority_place)
    assert np.all(np.abs(share - 1 / 3) < 0.05)  # the odd copy is first, second or third equally often


@pytest.mark.parametrize("copies", [2, 1, 4, 3.0, True])
def test_bad_majority_copies_raise(copies):
    with pytest.raises(ValueError, match="copies must be an odd int >= 3"):
        MajorityRecallTask(copies=copies)


def test_majority_sequence_too_short_raises():
    task = MajorityRecallTask(n_needles=4)
    with pytest.raises(ValueError, match="3 copies of 4 needles"):
        task.sample(2, task.min_length() - 1, np.random.default_rng(0))
