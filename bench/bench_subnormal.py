"""What subnormal floats cost a DeepLab training step on the CPU (docs/benchmarks.md
§"Subnormal numbers"), from a checkpoint of a long training.

    python -m bench.bench_subnormal CHECKPOINT [--steps 30]

CHECKPOINT is a training checkpoint of the benchmark's `small` segmenter (model and Adam
state), e.g. the last one `bench/convergence.py --stages full --factors 4` leaves under
`checkpoints/`, trained by code that did not flush subnormals. The script counts the subnormal
values in its weights and optimiser state, then times the benchmark's training step (Adam,
batch and crop of config.yaml, random data of those shapes) from that state on one thread,
with subnormals kept (x86's default) and flushed to zero (what the stages do), alternating
the two three times. Prints one JSON object: the counts, the median milliseconds per step after
warm-up of each, the machine and `torch.backends.cpu.get_cpu_capability()`.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import yaml

from bench.bench_train_step import WARMUP, networks
from i2crc_core.infra.provenance import cpu_model
from i2crc_core.nets.models import build_segmenter
from i2crc_core.nets.training import optimizer_for

REPO = Path(__file__).resolve().parents[1]
TINY = torch.finfo(torch.float32).tiny


def subnormal_share(tensors) -> dict:
    values = [t for t in tensors if t.is_floating_point()]
    total = sum(t.numel() for t in values)
    subnormal = sum(((t != 0) & (t.abs() < TINY)).sum().item() for t in values)
    return {"values": total, "subnormal": subnormal, "share": round(subnormal / total, 4)}


def optimizer_tensors(state: dict):
    return [v for slot in state["state"].values() for v in slot.values() if torch.is_tensor(v)]


def timed_steps(checkpoint: dict, settings: dict, batch: dict, loss_fn, classes: int, steps: int):
    model = build_segmenter("small", classes).train()
    model.load_state_dict(checkpoint["model"])
    optimizer = optimizer_for(model, settings)
    optimizer.load_state_dict(checkpoint["optimizer"])
    times = []
    for index in range(steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model, batch).backward()
        optimizer.step()
        if index >= WARMUP:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    classes = config["dataset"]["num_classes"]
    _, settings, batch, loss_fn = networks(config)["segmenter"]
    checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    torch.set_num_threads(1)
    runs = {"kept": [], "flushed": []}
    for _ in range(3):
        for name in runs:
            torch.set_flush_denormal(name == "flushed")
            runs[name].append(
                timed_steps(checkpoint, settings, batch, loss_fn, classes, args.steps)
            )
    report = {
        "machine": {"cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "checkpoint": {
            "path": str(args.checkpoint),
            "iteration": checkpoint["curve"]["rows"][-1][0],
        },
        "weights": subnormal_share(checkpoint["model"].values()),
        "optimizer_state": subnormal_share(optimizer_tensors(checkpoint["optimizer"])),
        "ms_per_step": {name: [round(t, 1) for t in times] for name, times in runs.items()},
    }
    kept, flushed = (statistics.median(runs[name]) for name in ("kept", "flushed"))
    report["slowdown_kept_over_flushed"] = round(kept / flushed, 2)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
