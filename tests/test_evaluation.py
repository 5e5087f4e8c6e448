"""evaluate(): chunked, one sync, no test loss, yet the same numbers as one plain pass."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from prunetui import training
from prunetui.data import TensorData
from prunetui.nets.lenet import LeNet300100


def random_data(n_val: int, n_test: int) -> TensorData:
    g = torch.Generator().manual_seed(0)
    return TensorData("random", 10, (784,), torch.randn(10, 784, generator=g),
                      torch.randint(0, 10, (10,), generator=g),
                      torch.randn(n_val, 784, generator=g),
                      torch.randint(0, 10, (n_val,), generator=g),
                      torch.randn(n_test, 784, generator=g),
                      torch.randint(0, 10, (n_test,), generator=g))


@pytest.mark.parametrize("elements", [784 * 7, 1 << 19, 1 << 22])
def test_evaluate_matches_one_plain_pass_for_any_chunk(monkeypatch, elements):
    data = random_data(1500, 2100)
    torch.manual_seed(0)
    model = LeNet300100().train()
    with torch.no_grad():
        val_logits, test_logits = model(data.val_x), model(data.test_x)
    monkeypatch.setitem(training.EVAL_ELEMENTS, "cpu", elements)
    result = training.evaluate(model, data)
    assert model.training  # the mode is restored
    assert result.val_loss == pytest.approx(F.cross_entropy(val_logits, data.val_y).item(),
                                            rel=1e-5)
    assert result.val_acc == (val_logits.argmax(1) == data.val_y).sum().item() / 1500
    assert result.test_acc == (test_logits.argmax(1) == data.test_y).sum().item() / 2100


def test_evaluate_without_validation_images_reports_nan():
    result = training.evaluate(LeNet300100(), random_data(0, 30))
    assert result.val_loss != result.val_loss and result.val_acc != result.val_acc
    assert 0 <= result.test_acc <= 1
