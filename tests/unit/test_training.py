"""The optimisation step, loss logging and curves, seeded sampling and the resumable chunk loop."""

import logging
import math
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.data import DataLoader, Dataset

from i2crc_core.infra.config import deep_update, validate_config
from i2crc_core.infra.errors import TrainingError
from i2crc_core.method.losses import segmentation_loss
from i2crc_core.nets import training
from i2crc_core.nets.models import build_classifier, build_segmenter
from i2crc_core.nets.sampling import ChunkSampler, SeededSamples
from i2crc_core.nets.training import (
    LOG_INTERVAL,
    ImageMeans,
    LossCurve,
    LossLog,
    accumulated_step,
    optimisation_step,
    optimizer_for,
    read_curve,
    run_id,
    train_in_chunks,
)

CPU = torch.device("cpu")


def test_loss_log_reports_the_first_non_finite_step_at_the_next_read():
    log = LossLog(("total", "cls"), CPU, lambda step: f"epoch 3, iteration {step + 1}")
    log.add(torch.tensor([1.0, 0.5]))
    log.add(torch.tensor([float("nan"), 0.5]))
    log.add(torch.tensor([float("inf"), 0.5]))
    with pytest.raises(
        TrainingError, match="training diverged at epoch 3, iteration 2: loss is nan"
    ):
        log.means()


def test_loss_log_checks_every_log_interval_without_being_asked():
    log = LossLog(("loss",), CPU, lambda step: f"iteration {step + 1}")
    log.add(torch.tensor(float("inf")))
    for _ in range(LOG_INTERVAL - 2):
        log.add(torch.tensor(1.0))
    with pytest.raises(TrainingError, match="iteration 1: loss is inf"):
        log.add(torch.tensor(1.0))


def test_loss_log_means():
    log = LossLog(("total", "cls"), CPU, str)
    log.add(torch.tensor([1.0, 0.5]))
    log.add(torch.tensor([2.0, 1.5]))
    assert log.means() == {"total": 1.5, "cls": 1.0}


def test_image_means_divide_the_summed_values_by_the_summed_image_counts():
    means = ImageMeans(("a", "b", "never"), CPU)
    means.add(torch.tensor([[6.0, 1.0, 0.0], [3.0, 1.0, 0.0]]))
    means.add(torch.tensor([[2.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))  # "b" defined by no image
    result = means.means()
    assert result["a"] == 2.0 and result["b"] == 1.0, "per image, not the mean of step means"
    assert math.isnan(result["never"])


def test_run_id_depends_on_every_setting():
    assert run_id(a=1, b=[1, 2]) == run_id(b=[1, 2], a=1)
    assert run_id(a=1, b=[1, 2]) != run_id(a=1, b=[2, 1])


class _Noisy(Dataset):
    """Sample i is i plus a draw from torch's global RNG (like the training augmentation)."""

    def __len__(self):
        return 10

    def __getitem__(self, index):
        return torch.tensor(float(index)) + torch.rand(())


def _batches(workers, chunks, *, persistent):
    sampler = ChunkSampler(10, seed=3)
    options = {"num_workers": workers, "persistent_workers": persistent} if workers else {}
    loader = DataLoader(SeededSamples(_Noisy()), batch_size=4, sampler=sampler, **options)
    seen = []
    for chunk in chunks:
        if chunk % 2 == 0:
            sampler.set_epoch(chunk)
        else:
            sampler.set_span(6 * chunk, 6)
        seen.append(torch.cat(list(loader)))
    return seen


def test_seeded_batches_do_not_depend_on_workers_or_their_persistence():
    reference = _batches(0, [0, 1, 2], persistent=False)
    assert sorted(reference[0].floor().tolist()) == list(range(10)), "an epoch is a permutation"
    assert len(reference[1]) == 6, "a chunk with num_samples draws that many"
    persistent = _batches(2, [0, 1, 2], persistent=True)
    assert all(torch.equal(a, b) for a, b in zip(reference, persistent))
    resumed = _batches(2, [2], persistent=True)
    assert torch.equal(resumed[0], reference[2]), "chunk 2 alone replays chunk 2 of a full run"
    assert not torch.equal(reference[0], reference[2]), "chunks differ"


def test_seeded_samples_leave_the_callers_random_stream_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    SeededSamples(_Noisy())[(4, 123)]
    assert torch.equal(torch.rand(3), expected)


def _train(tmp_path, chunks, stop_after=None):
    torch.manual_seed(0)
    model = build_classifier("small", 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    done = []

    def run_chunk(chunk):
        if stop_after is not None and chunk == stop_after:
            raise KeyboardInterrupt
        optimisation_step(model(torch.randn(2, 3, 16, 16)).pow(2).mean(), optimizer, scaler)
        scheduler.step()
        done.append(chunk)

    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler}
    train_in_chunks(
        num_chunks=chunks,
        run_chunk=run_chunk,
        state=state,
        checkpoint_dir=tmp_path,
        run_key="k",
        seed=5,
    )
    return model, done


def test_two_accumulated_half_batches_step_as_one_batch_of_both():
    """Without batch statistics (BatchNorm in eval mode) and with every pixel labelled, the
    mean losses of two micro-batches of b, each halved, sum to the gradient of the mean loss
    of one batch of 2b: two SGD steps (momentum, weight decay) land on the same weights. A
    single accumulated loss is the plain optimisation step, bit for bit."""
    torch.manual_seed(0)
    reference = build_segmenter("small", 2).eval()
    images = torch.randn(2, 4, 3, 32, 32)  # per step: 4 crops, split into micro-batches of 2
    labels = torch.randint(0, 3, (2, 4, 32, 32))
    models = {name: build_segmenter("small", 2).eval() for name in ("whole", "halves", "one")}
    optimizers = {}
    for name, model in models.items():
        model.load_state_dict(reference.state_dict())
        optimizers[name] = torch.optim.SGD(
            model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.0005
        )
    scaler = torch.amp.GradScaler("cpu", enabled=False)

    def loss(name, step, crops):
        return segmentation_loss(models[name](images[step, crops]), labels[step, crops], 255)

    for step in range(2):
        whole = loss("whole", step, slice(None))
        optimisation_step(whole, optimizers["whole"], scaler)
        total = accumulated_step(
            (loss("halves", step, crops) / 2 for crops in (slice(0, 2), slice(2, 4))),
            optimizers["halves"],
            scaler,
        )
        torch.testing.assert_close(total, whole.detach(), rtol=1e-5, atol=0)
        accumulated_step([loss("one", step, slice(None))], optimizers["one"], scaler)
    for name, parameter in models["whole"].named_parameters():
        torch.testing.assert_close(
            dict(models["halves"].named_parameters())[name], parameter, rtol=1e-4, atol=1e-6
        )
        assert torch.equal(dict(models["one"].named_parameters())[name], parameter), name
    assert not torch.equal(
        reference.head.branches[0].weight, models["whole"].head.branches[0].weight
    )


@pytest.mark.parametrize("preset", ["voc12.yaml", "coco14.yaml"])
def test_the_presets_segmenter_trains_every_parameter_at_the_base_rate(preset):
    """The ref code's SGD gets all the network's parameters in one group at the base rate
    (segmentation/main.py:148, optim_parameters() is parameters(), libs/models/deeplabv2.py:57)."""
    repo = Path(__file__).resolve().parents[2]
    config = deep_update(
        yaml.safe_load((repo / "config.yaml").read_text()),
        yaml.safe_load((repo / "config" / preset).read_text()),
    )
    settings = validate_config(config)["segmentation"]
    model = build_segmenter("small", 20)
    optimizer = optimizer_for(model, settings)
    grouped = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    assert {group["lr"] for group in optimizer.param_groups} == {settings["lr"]} == {0.00025}


def test_interrupted_chunk_loop_resumes_to_the_same_weights(tmp_path):
    uninterrupted, _ = _train(tmp_path / "a", 4)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "b", 4, stop_after=2)
    resumed, done = _train(tmp_path / "b", 4)
    assert done == [2, 3], "only the chunks after the last checkpoint run again"
    for a, b in zip(uninterrupted.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_a_sample_stream_does_not_depend_on_how_it_is_cut_into_chunks():
    def stream(cuts):
        sampler, drawn = ChunkSampler(7, seed=5), []
        for first, count in zip([0, *cuts[:-1]], [b - a for a, b in zip([0, *cuts[:-1]], cuts)]):
            sampler.set_span(first, count)
            drawn += list(sampler)
        return drawn

    whole = stream([30])
    assert len(whole) == 30 and stream([4, 8, 21, 30]) == whole == stream([7, 14, 30])
    assert len({index for index, _ in whole}) > 1


def test_loss_log_hands_the_means_since_the_previous_read_to_on_read(monkeypatch):
    monkeypatch.setattr(training, "LOG_INTERVAL", 2)
    reads = []
    log = LossLog(
        ("loss",), CPU, str, length=5, on_read=lambda steps, means: reads.append((steps, means))
    )
    for value in [1.0, 3.0, 5.0, 7.0, 9.0]:
        log.add(torch.tensor(value))
    assert reads == [(2, {"loss": 2.0}), (4, {"loss": 6.0}), (5, {"loss": 9.0})]
    assert log.means() == {"loss": 5.0} and len(reads) == 3, "nothing new to hand on"


def test_loss_curve_is_a_tsv_rewritten_at_every_row_and_restored_from_its_state(tmp_path):
    curve = LossCurve(tmp_path / "losses.tsv", ("epoch", "loss", "lr"))
    curve.add(epoch=1, loss=0.5, lr=0.001)
    curve.add(lr=0.0001, loss=0.25, epoch=2)
    assert (
        tmp_path / "losses.tsv"
    ).read_text() == "epoch\tloss\tlr\n1\t0.5\t0.001\n2\t0.25\t0.0001\n"
    assert read_curve(tmp_path / "losses.tsv")["loss"].tolist() == [0.5, 0.25]
    state = curve.state_dict()
    curve.add(epoch=3, loss=0.125, lr=0.0001)
    restored = LossCurve(tmp_path / "losses.tsv", ("epoch", "loss", "lr"))
    restored.load_state_dict(state)
    assert read_curve(tmp_path / "losses.tsv")["epoch"].tolist() == [1, 2], "rewritten at load"


def test_without_tensorboard_the_curve_says_so_once_and_writes_no_events(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if absent
    caplog.set_level(logging.INFO)
    curve = LossCurve(tmp_path / "losses.tsv", ("epoch", "loss"))
    for epoch in range(3):
        curve.add(epoch=epoch, loss=1.0)
    curve.close()
    assert [r.message for r in caplog.records if "tensorboard" in r.message] == [
        "tensorboard is not installed: the loss curve goes to the TSV only "
        "(pip install '.[tensorboard]' for event files)"
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["losses.tsv"]


def test_with_tensorboard_the_curve_also_writes_event_files(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curve = LossCurve(tmp_path / "losses.tsv", ("iteration", "loss", "lr"))
    curve.add(iteration=50, loss=2.0, lr=0.01)
    curve.add(iteration=100, loss=1.0, lr=0.005)
    curve.close()
    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(50, 2.0), (100, 1.0)]
    assert [e.step for e in events.Scalars("lr")] == [50, 100]
