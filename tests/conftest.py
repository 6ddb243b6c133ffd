"""Fixtures shared by several test files."""

import pytest
import torch


@pytest.fixture
def fresh_compiler():
    """Each test that uses torch.compile compiles afresh (and leaves no recompile budget used up)."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()
