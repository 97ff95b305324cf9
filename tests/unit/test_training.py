"""Device handling, seeding and the resumable chunk loop."""

import pytest
import torch

from i2crc_core.errors import TrainingError
from i2crc_core.models import build_classifier
from i2crc_core.training import (
    autocast,
    check_finite,
    loader_options,
    prepare_model,
    run_id,
    train_in_chunks,
)

CPU = torch.device("cpu")


def test_cpu_path_changes_nothing():
    model = build_classifier("small", 3)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    prepared = prepare_model(model, CPU)
    assert all(torch.equal(weights[k], v) for k, v in prepared.state_dict().items())
    assert loader_options(CPU, 4) == {}
    with autocast(CPU):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.float32


def test_gpu_options_pin_memory_and_use_workers():
    assert loader_options(torch.device("cuda"), 3) == {
        "num_workers": 3, "pin_memory": True, "persistent_workers": True,
    }


def test_non_finite_loss_names_where_it_happened():
    with pytest.raises(TrainingError, match="epoch 3, iteration 7: loss is nan"):
        check_finite(torch.tensor(float("nan")), "epoch 3, iteration 7")


def test_run_id_depends_on_every_setting():
    assert run_id(a=1, b=[1, 2]) == run_id(b=[1, 2], a=1)
    assert run_id(a=1, b=[1, 2]) != run_id(a=1, b=[2, 1])


def _train(tmp_path, chunks, stop_after=None):
    torch.manual_seed(0)
    model = build_classifier("small", 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)
    done = []

    def run_chunk(chunk):
        if stop_after is not None and chunk == stop_after:
            raise KeyboardInterrupt
        loss = model(torch.randn(2, 3, 16, 16)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        done.append(chunk)

    train_in_chunks(num_chunks=chunks, run_chunk=run_chunk, model=model, optimizer=optimizer,
                    scheduler=scheduler, checkpoint_dir=tmp_path, run_key="k", seed=5)
    return model, done


def test_interrupted_chunk_loop_resumes_to_the_same_weights(tmp_path):
    uninterrupted, _ = _train(tmp_path / "a", 4)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "b", 4, stop_after=2)
    resumed, done = _train(tmp_path / "b", 4)
    assert done == [2, 3], "only the chunks after the last checkpoint run again"
    for a, b in zip(uninterrupted.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
