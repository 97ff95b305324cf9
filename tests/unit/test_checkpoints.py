"""Model files and training checkpoints: round trips and the errors for bad files."""

import os

import pytest
import torch

from i2crc_core.checkpoints import load_model, resume, save_checkpoint, save_model
from i2crc_core.errors import CheckpointError
from i2crc_core.models import build_classifier, build_segmenter

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
    with pytest.raises(CheckpointError, match="m.pt: holds a classifier/small/classes=3 model, expected a segmenter"):
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
    payload = {"architecture": "classifier/small/classes=4",
               "model": build_classifier("small", 3).state_dict()}
    torch.save(payload, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="weights do not fit classifier/small/classes=4"):
        load_model(tmp_path / "m.pt", CPU)


def test_missing_model_file(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pt: file is missing"):
        load_model(tmp_path / "nope.pt", CPU)


def _state(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 1), torch.amp.GradScaler("cpu")


def test_only_the_latest_checkpoint_is_kept_and_resumed(tmp_path):
    model = build_classifier("small", 2)
    optimizer, scheduler, scaler = _state(model)
    save_checkpoint(tmp_path, 1, "run", model, optimizer, scheduler, scaler)
    save_checkpoint(tmp_path, 2, "run", model, optimizer, scheduler, scaler)
    assert [p.name for p in tmp_path.iterdir()] == ["step_000002.pt"]
    fresh = build_classifier("small", 2)
    assert resume(tmp_path, "run", fresh, *_state(fresh)) == 2


def test_checkpoint_of_other_settings_or_architecture_starts_over(tmp_path):
    model = build_classifier("small", 2)
    save_checkpoint(tmp_path, 3, "run-a", model, *_state(model))
    assert resume(tmp_path, "run-b", model, *_state(model)) == 0
    other = build_classifier("small", 5)
    assert resume(tmp_path, "run-a", other, *_state(other)) == 0


def test_corrupt_checkpoint_is_an_error_not_a_silent_restart(tmp_path):
    (tmp_path / "step_000004.pt").write_bytes(b"broken")
    model = build_classifier("small", 2)
    with pytest.raises(CheckpointError, match="step_000004.pt: not a readable checkpoint.*delete it to restart"):
        resume(tmp_path, "run", model, *_state(model))


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


def test_model_file_loads_with_plain_torch_in_safe_mode(tmp_path):
    model = build_segmenter("small", 3)
    save_model(tmp_path / "m.pt", model, training={"lr": 0.1, "scale_range": [0.5, 1.5]})
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    assert payload["architecture"] == "segmenter/small/classes=3/aspp=1-2-4-6"
    assert payload["training"]["scale_range"] == [0.5, 1.5]
    fresh = build_segmenter("small", 3)
    fresh.load_state_dict(payload["model"])


def test_fp16_loss_scale_is_checkpointed_and_resumed(tmp_path):
    model = build_classifier("small", 2)
    optimizer, scheduler, scaler = _state(model)
    scaler.scale(torch.ones(()))
    scaler.update(new_scale=1024.0)
    save_checkpoint(tmp_path, 1, "run", model, optimizer, scheduler, scaler)
    fresh = build_classifier("small", 2)
    fresh_optimizer, fresh_scheduler, fresh_scaler = _state(fresh)
    assert resume(tmp_path, "run", fresh, fresh_optimizer, fresh_scheduler, fresh_scaler) == 1
    assert fresh_scaler.get_scale() == 1024.0
