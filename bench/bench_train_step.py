"""CPU levers for the benchmark's training steps, measured in one run (issue 19: "levers to
measure, not assume"): the default step of the `small` classifier (Eq. 8, I2CRC's λs) and the
`small` segmenter (DeepLab-v2, cross-entropy, Adam) at the benchmark's batch and image size,
against the same step with channels_last memory format, with torch.compile (inductor), and
with both, at 1 and 2 threads.

    python bench/bench_train_step.py [--steps 60]

Each variant starts from the same weights and batch (random data of the benchmark's shapes;
the step's cost does not depend on the values). Prints one JSON object: per network, threads
and variant, the median milliseconds per step after warm-up, the first step's seconds (for
compile, the compilation), and the largest difference of the loss after --steps steps from the
default's, which says whether the variant changes the numbers (and so the results). Set
ATEN_CPU_CAPABILITY=avx2 to time the AVX2 kernels on an AVX512 machine.
"""

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
import yaml

from i2crc_core.infra.fileio import IGNORE
from i2crc_core.infra.provenance import cpu_model
from i2crc_core.method.losses import segmentation_loss, total_loss
from i2crc_core.nets.device import set_torch_threads
from i2crc_core.nets.models import build_classifier, build_segmenter
from i2crc_core.nets.training import optimizer_for

REPO = Path(__file__).resolve().parents[1]
WARMUP = 5
VARIANTS = {
    "eager": (False, False),
    "channels_last": (True, False),
    "compile": (False, True),
    "channels_last+compile": (True, True),
}


def networks(config: dict):
    """(model, optimiser settings, batch maker, loss) per network, at the benchmark's sizes."""
    classes = config["dataset"]["num_classes"]
    torch.manual_seed(0)
    cls, seg = config["classifier"], config["segmentation"]
    classifier_batch = {
        "images": torch.randn(cls["batch_size"], 3, cls["input_size"], cls["input_size"]),
        "labels": (torch.rand(cls["batch_size"], classes) < 0.3).float(),
        "saliency": torch.rand(cls["batch_size"], 1, cls["input_size"], cls["input_size"]),
    }
    segmenter_batch = {
        "images": torch.randn(seg["batch_size"], 3, seg["crop_size"], seg["crop_size"]),
        "labels": torch.randint(
            0, classes + 1, (seg["batch_size"], seg["crop_size"], seg["crop_size"])
        ),
    }
    weights = config["experiments"]["i2crc"]
    return {
        "classifier": (
            build_classifier("small", classes),
            cls,
            classifier_batch,
            lambda model, b: total_loss(model(b["images"]), b["labels"], b["saliency"], **weights)[
                0
            ],
        ),
        "segmenter": (
            build_segmenter("small", classes),
            seg,
            segmenter_batch,
            lambda model, b: segmentation_loss(model(b["images"]), b["labels"], IGNORE),
        ),
    }


def run_variant(
    model, settings: dict, batch: dict, loss_fn, channels_last: bool, compiled: bool, steps: int
):
    model = copy.deepcopy(model).train()
    batch = dict(batch)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        batch["images"] = batch["images"].contiguous(memory_format=torch.channels_last)
    optimizer = optimizer_for(model, settings)
    forward = torch.compile(model) if compiled else model

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(forward, batch)
        loss.backward()
        optimizer.step()
        return loss.item()

    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    times, loss = [], None
    for index in range(steps - 1):
        start = time.perf_counter()
        loss = step()
        if index >= WARMUP:
            times.append(time.perf_counter() - start)
    return {
        "ms_per_step": round(1000 * statistics.median(times), 2),
        "first_step_s": round(first, 2),
    }, loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    report = {
        "machine": {"cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "steps": args.steps,
    }
    for name, (model, settings, batch, loss_fn) in networks(config).items():
        for threads in (1, 2):
            set_torch_threads(threads)
            rows, reference = {}, None
            for variant, (channels_last, compiled) in VARIANTS.items():
                torch._dynamo.reset()
                row, loss = run_variant(
                    model, settings, batch, loss_fn, channels_last, compiled, args.steps
                )
                reference = loss if reference is None else reference
                row["loss_difference"] = float(f"{abs(loss - reference):.3g}")
                rows[variant] = row
            eager = rows["eager"]["ms_per_step"]
            for row in rows.values():
                row["speedup"] = round(eager / row["ms_per_step"], 2)
            report[f"{name}, {threads} thread{'s' if threads > 1 else ''}"] = rows
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
