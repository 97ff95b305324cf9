"""Model files and training checkpoints: round trips and the errors for bad files."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from i2crc_core.infra.errors import CheckpointError
from i2crc_core.nets.checkpoints import load_model, resume, save_checkpoint, save_model
from i2crc_core.nets.models import build_classifier, build_segmenter
from i2crc_core.nets.training import LossCurve, optimisation_step, train_in_chunks

CPU = torch.device("cpu")


def test_model_round_trip_rebuilds_the_architecture(tmp_path):
    model = build_segmenter("small", 3, aspp_rates=[1, 2])
    save_model(tmp_path / "m.pt", model, note="x")
    loaded = load_model(tmp_path / "m.pt", CPU, expected_kind="segmenter")
    assert loaded.aspp_rates == (1, 2) and not loaded.training
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_model_of_the_wrong_kind_is_rejected(tmp_path):
    save_model(tmp_path / "m.pt", build_classifier("small", 3))
    with pytest.raises(
        CheckpointError,
        match="m.pt: holds a classifier/small/classes=3 model, expected a segmenter",
    ):
        load_model(tmp_path / "m.pt", CPU, expected_kind="segmenter")


@pytest.mark.parametrize("content", [b"", b"garbage bytes", b"PK\x03\x04truncated"])
def test_corrupt_model_file_is_a_checkpoint_error(tmp_path, content):
    path = tmp_path / "m.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="m.pt: not a readable checkpoint"):
        load_model(path, CPU)


def test_truncated_model_file_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "m.pt"
    save_model(path, build_classifier("small", 3))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="m.pt: not a readable checkpoint"):
        load_model(path, CPU)


def test_weights_that_do_not_fit_the_recorded_architecture(tmp_path):
    payload = {
        "architecture": "classifier/small/classes=4",
        "model": build_classifier("small", 3).state_dict(),
    }
    torch.save(payload, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="weights do not fit classifier/small/classes=4"):
        load_model(tmp_path / "m.pt", CPU)


def test_missing_model_file(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pt: file is missing"):
        load_model(tmp_path / "nope.pt", CPU)


def _state(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return {
        "model": model,
        "optimizer": optimizer,
        "scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1),
        "scaler": torch.amp.GradScaler("cpu"),
    }


def test_only_the_latest_checkpoint_is_kept_and_resumed(tmp_path):
    state = _state(build_classifier("small", 2))
    save_checkpoint(tmp_path, 1, "run", state)
    save_checkpoint(tmp_path, 2, "run", state)
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["step_000002.pt"]
    assert resume(tmp_path, "run", _state(build_classifier("small", 2))) == 2


def test_another_runs_checkpoints_are_never_deleted(tmp_path):
    """Checkpoints of other settings stay where they are (deleted by hand), and each run
    resumes its own: a run is not lost because another one ran in between."""
    state = _state(build_classifier("small", 2))
    save_checkpoint(tmp_path, 5, "run-a", state)
    save_checkpoint(tmp_path, 1, "run-b", state)
    save_checkpoint(tmp_path, 2, "run-b", state)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.pt")) == [
        "run-a/step_000005.pt",
        "run-b/step_000002.pt",
    ]
    assert resume(tmp_path, "run-a", _state(build_classifier("small", 2))) == 5


def test_checkpoint_of_other_settings_architecture_or_parts_starts_over(tmp_path):
    state = _state(build_classifier("small", 2))
    save_checkpoint(tmp_path, 3, "run-a", state)
    assert resume(tmp_path, "run-b", state) == 0
    assert resume(tmp_path, "run-a", _state(build_classifier("small", 5))) == 0
    with_curve = {**state, "curve": LossCurve(tmp_path / "losses.tsv", ("epoch", "loss"))}
    assert resume(tmp_path, "run-a", with_curve) == 0, "an older version's checkpoint lacks a part"


def test_corrupt_checkpoint_is_an_error_not_a_silent_restart(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "step_000004.pt").write_bytes(b"broken")
    with pytest.raises(
        CheckpointError, match="step_000004.pt: not a readable checkpoint.*delete it to restart"
    ):
        resume(tmp_path, "run", _state(build_classifier("small", 2)))


class _Payload:
    """Unpickling this runs `touch <marker>`: what a malicious shared model.pt would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_file_with_a_pickled_code_payload_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "model.pt"
    torch.save({"architecture": "classifier/small/classes=3", "model": _Payload(marker)}, path)
    with pytest.raises(CheckpointError) as caught:
        load_model(path, CPU)
    message = str(caught.value)
    assert message.startswith(f"{path}: refused: it holds objects other than tensors")
    assert "system" in message and "\n" not in message
    assert not marker.exists(), "loading must not execute the payload"


def test_random_bytes_are_not_a_model_file_and_no_unsafe_advice_is_passed_on(tmp_path):
    # torch's message advises weights_only=False, which would run any code the file holds.
    path = tmp_path / "model.pt"
    path.write_bytes(random.Random(0).randbytes(4096))
    with pytest.raises(CheckpointError) as caught:
        load_model(path, CPU)
    message = str(caught.value)
    assert message.startswith(
        f"{path}: not a readable checkpoint: not a torch.save file, as "
        "this pipeline's models and checkpoints are ("
    )
    assert "weights_only" not in message and "\n" not in message


def test_model_file_loads_with_plain_torch_in_safe_mode(tmp_path):
    model = build_segmenter("small", 3)
    save_model(tmp_path / "m.pt", model, training={"lr": 0.1, "scale_range": [0.5, 1.5]})
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    assert payload["architecture"] == "segmenter/small/classes=3/aspp=1-2-4-6"
    assert payload["training"]["scale_range"] == [0.5, 1.5]
    fresh = build_segmenter("small", 3)
    fresh.load_state_dict(payload["model"])


def test_fp16_loss_scale_is_checkpointed_and_resumed(tmp_path):
    state = _state(build_classifier("small", 2))
    state["scaler"].scale(torch.ones(()))
    state["scaler"].update(new_scale=1024.0)
    save_checkpoint(tmp_path, 1, "run", state)
    fresh = _state(build_classifier("small", 2))
    assert resume(tmp_path, "run", fresh) == 1
    assert fresh["scaler"].get_scale() == 1024.0


def test_model_file_has_a_json_sidecar_that_describes_it(tmp_path):
    model = build_segmenter("small", 2, aspp_rates=[1, 2])
    save_model(
        tmp_path / "model.pt",
        model,
        class_names=["background", "cat", "dog"],
        input_size=96,
        trained_on={"split": "train"},
        training={"lr": 0.1},
    )
    sidecar = json.loads((tmp_path / "model.json").read_text())
    assert sidecar["architecture"] == "segmenter/small/classes=2/aspp=1-2"
    assert (sidecar["kind"], sidecar["backbone"], sidecar["aspp_rates"]) == (
        "segmenter",
        "small",
        [1, 2],
    )
    assert sidecar["class_names"] == ["background", "cat", "dog"] and sidecar["num_classes"] == 2
    assert sidecar["input"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert sidecar["input"]["training_size"] == 96 and sidecar["training"] == {"lr": 0.1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.pt"], "no temp files"


def _train_three_chunks(checkpoint_dir, stop_at=None):
    """The weights after 3 checkpointed chunks of a tiny training (interrupted at `stop_at`)."""
    torch.manual_seed(0)
    model = build_classifier("small", 1)
    state = _state(model)

    def run_chunk(chunk):
        if chunk == stop_at:
            raise KeyboardInterrupt
        optimisation_step(
            model(torch.randn(2, 3, 16, 16)).pow(2).mean(), state["optimizer"], state["scaler"]
        )

    train_in_chunks(
        num_chunks=3,
        run_chunk=run_chunk,
        state=state,
        checkpoint_dir=checkpoint_dir,
        run_key="k",
        seed=5,
    )
    return model.state_dict()


# Runs in a child process: a file size limit makes the next checkpoint write fail midway, as a
# full disk would (SIGXFSZ ignored, so the write fails with EFBIG instead of killing it).
_DISK_FULL = """
import resource, signal, sys
sys.path.insert(0, sys.argv[1])
from test_checkpoints import _train_three_chunks
from i2crc_core.runner import run_stage
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), resource.RLIM_INFINITY))
run_stage(sys.argv[4], _train_three_chunks, checkpoint_dir=sys.argv[2])
"""


def test_a_checkpoint_write_failing_midway_is_one_error_leaves_no_checkpoint_and_reruns(tmp_path):
    uninterrupted = _train_three_chunks(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        _train_three_chunks(tmp_path / "b", stop_at=1)
    checkpoints = tmp_path / "b" / "k"  # the run's own folder (run key "k")
    first = checkpoints / "step_000001.pt"
    first_bytes = first.read_bytes()

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _DISK_FULL,
            str(Path(__file__).parent),
            str(tmp_path / "b"),
            str(len(first_bytes) // 2),
            str(tmp_path / "stage.log"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(
        f"i2crc error: {checkpoints / 'step_000002.pt'}: writing "
        "failed: File too large (disk full, quota or file size limit)"
    )
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step_000001.pt"], (
        "no half-written checkpoint, and the last complete one is kept"
    )
    assert first.read_bytes() == first_bytes

    resumed = _train_three_chunks(tmp_path / "b")
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step_000003.pt"]
    for name, value in uninterrupted.items():
        assert torch.equal(value, resumed[name]), name


@pytest.mark.parametrize(("first", "then"), [("bf16", "fp16"), ("fp16", "bf16"), ("bf16", "fp32")])
def test_a_run_resumed_in_another_precision_continues_and_records_both(
    tmp_path, caplog, first, then
):
    """A job requeued onto another GPU type, where `precision: auto` resolves otherwise: the
    checkpoint is resumed (not hours of training thrown away), one log line says so, and the
    history that the model's sidecar records lists both precisions."""
    from i2crc_core.nets.device import grad_scaler
    from i2crc_core.nets.training import PrecisionHistory

    def state(precision):
        model = build_classifier("small", 2)
        return {
            **_state(model),
            "scaler": grad_scaler(CPU, precision),
            "precision": PrecisionHistory(precision),
        }

    before = state(first)
    save_checkpoint(tmp_path, 3, "run", before)
    after = state(then)
    with caplog.at_level("WARNING", logger="i2crc_core.nets.training"):
        assert resume(tmp_path, "run", after) == 3
    assert after["precision"].used == [first, then]
    assert f"the checkpoint was trained in {first}; training continues in {then}" in caplog.text
    resumed = after["model"].state_dict()
    for name, value in before["model"].state_dict().items():
        assert torch.equal(value, resumed[name]), f"{name}: the weights are the checkpoint's"
