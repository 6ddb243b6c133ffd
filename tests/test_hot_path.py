"""The hot path reads no tensor's value, so it never makes the CPU wait for a GPU and never breaks a graph.

Two ways to see it on a CPU-only machine:

* ``torch.compile(..., fullgraph=True, backend="aot_eager")`` fails on any graph break, and
  ``bool()``, ``.item()`` or ``int()`` of a tensor is one. Forward and backward are compiled
  for the tiny model with every attention kind and for the public attention function with a
  tensor ``s`` and ``bias``, and must agree with the eager result.
* On the ``meta`` device tensors have shapes but no values, so reading one raises. The checks
  that read values where that is free (a CPU tensor) skip every other device, so a meta run
  goes through exactly the code a GPU run goes through.
"""

import pytest
import torch
from torch.nn.attention.bias import causal_lower_right

from ssmax_lite import scaled_dot_product_attention
from ssmax_lite.lab.layers import ATTENTION_KINDS
from ssmax_lite.lab.model import ModelConfig, TinyTransformer
from ssmax_lite.lab.scalings import SCALINGS, get_scaling

VOCAB, LENGTH = 12, 12  # longer than train_len = 8, so the inference-only kinds change the logits


def tiny_model(kind: str, pe: str = "rope", device: str = "cpu") -> TinyTransformer:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=VOCAB, d_model=16, n_layers=2, n_heads=2, train_len=8, attention=kind, pe=pe)
    model = TinyTransformer(config).to(device)
    # the mode in which the kind's multiplier is applied: "inference" kinds are softmax while training
    return model.train(_applied_in_training(kind))


def loss_and_grads(model, tokens):
    model.zero_grad(set_to_none=True)
    loss = model(tokens).square().mean()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def causal(l_q, l_k):
    """The causal mask of queries that follow l_k - l_q cached keys."""
    return {"is_causal": True} if l_q == l_k else {"attn_mask": causal_lower_right(l_q, l_k)}


def compile_fullgraph(fn):
    return torch.compile(fn, fullgraph=True, backend="aot_eager")


# --------------------------------------------------------------------------- torch.compile


@pytest.mark.parametrize("kind,pe", [(kind, "rope") for kind in ATTENTION_KINDS] + [("ssmax", "nope")])
def test_model_compiles_to_one_graph_forward_and_backward(kind, pe, fresh_compiler):
    model = tiny_model(kind, pe)
    tokens = torch.randint(0, VOCAB, (2, LENGTH), generator=torch.Generator().manual_seed(1))
    compiled_loss, compiled_grads = loss_and_grads(compile_fullgraph(model), tokens)
    eager_loss, eager_grads = loss_and_grads(model, tokens)
    torch.testing.assert_close(compiled_loss, eager_loss)
    for compiled, eager in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(compiled, eager)


@pytest.mark.parametrize("l_q,l_k,mask", [(5, 5, "causal"), (3, 7, "causal"), (1, 7, "causal"), (4, 6, "bool")])
def test_attention_function_compiles_with_tensor_s_and_bias(l_q, l_k, mask, fresh_compiler):
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 3, length, 4, generator=gen) for length in (l_q, l_k, l_k))
    s = torch.tensor([0.3, 0.6, 0.9])
    bias = torch.tensor([0.1, -0.2, 0.4])
    kwargs = causal(l_q, l_k) if mask == "causal" else {"attn_mask": torch.rand(l_q, l_k, generator=gen) > 0.4}

    def run(function):
        inputs = [t.clone().requires_grad_(True) for t in (q, k, v, s, bias)]
        out = function(*inputs[:3], s=inputs[3], bias=inputs[4], **kwargs)
        out.square().sum().backward()
        return [out.detach()] + [t.grad for t in inputs]

    for compiled, eager in zip(run(compile_fullgraph(scaled_dot_product_attention)),
                               run(scaled_dot_product_attention)):
        torch.testing.assert_close(compiled, eager)


# --------------------------------------------------------------------------- the meta device


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_model_reads_no_value_off_the_cpu(kind):
    model = tiny_model(kind, device="meta")
    for training in (True, False):
        model.train(training)
        logits = model(torch.zeros(2, LENGTH, dtype=torch.long, device="meta"))
        logits.sum().backward()
        assert logits.shape == (2, LENGTH, VOCAB)


@pytest.mark.parametrize("l_q", [4, 1])
@pytest.mark.parametrize("mask", ["causal", "none", "bool"])
def test_attention_function_reads_no_value_off_the_cpu(l_q, mask):
    q, k, v = (torch.empty(2, 3, length, 4, device="meta", requires_grad=True) for length in (l_q, 7, 7))
    s, bias = (torch.empty(3, device="meta", requires_grad=True) for _ in range(2))
    kwargs = {"causal": causal(l_q, 7), "none": {},
              "bool": {"attn_mask": torch.empty(l_q, 7, dtype=torch.bool, device="meta")}}[mask]
    out = scaled_dot_product_attention(q, k, v, s=s, bias=bias, **kwargs)
    out.sum().backward()
    assert out.shape == (2, 3, l_q, 4) and s.grad.shape == (3,) and bias.grad.shape == (3,)


def _applied_in_training(kind: str) -> bool:
    """Whether ``kind`` changes the logits in training mode (scale-invariant attention, outside the
    registry of multipliers, always does; the registry's inference-only methods do not)."""
    return kind not in SCALINGS or get_scaling(kind).applied != "inference"
