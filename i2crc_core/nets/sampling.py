"""Training batches whose order and augmentation depend on (seed, sample position) alone.

The training datasets draw their augmentation from torch's global RNG. Wrapped in
`SeededSamples`, each sample first seeds that RNG, in whichever process loads it, from a seed
that `ChunkSampler` hands out with its index. So a batch is the same with 0 or 8 DataLoader
workers, on CPU or GPU, and whether the workers were started for this chunk or kept alive from
the previous one: the workers can persist across epochs while a resumed run still replays an
uninterrupted one exactly.
"""

import torch
from torch.utils.data import Dataset, Sampler

from ..data.loading import UserErrorLoader
from .device import loader_options


def chunk_seed(seed: int, chunk: int) -> int:
    """The seed of chunk `chunk` of a run (training.train_in_chunks seeds every RNG with it)."""
    return seed * 1_000_003 + chunk


class SeededSamples(Dataset):
    """`dataset[index]` with torch's CPU generator seeded for that sample; keys are
    (index, seed)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, seed = key
        # fork_rng restores the caller's RNG state: without workers the loader runs in the
        # training process, whose own random stream must not depend on the samples drawn.
        # Only the CPU generator, which the datasets draw from, is seeded: torch.manual_seed
        # would also seed the GPU's, in the training process beyond fork_rng's reach, and it
        # formats a stack trace per call for each accelerator not yet initialised (0.16 ms
        # at a shallow stack, more deeper down; bench/bench_loader.py).
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(seed)
            return self.dataset[index]


class ChunkSampler(Sampler):
    """(index, sample seed) pairs of one chunk of training.

    `set_epoch(e)`: the chunk is an epoch, a permutation of the dataset drawn from (seed, e).
    `set_span(first, count)`: the chunk is samples first .. first+count-1 of an endless stream
    drawn with replacement (segmentation iterations). The stream is drawn in blocks of one
    dataset length, each from (seed, block), so a sample does not depend on how the stream is
    cut into chunks: changing the checkpoint interval changes nothing that is learned.
    """

    def __init__(self, size: int, seed: int):
        self.size = size
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.span = epoch, None

    def set_span(self, first: int, count: int) -> None:
        self.epoch, self.span = None, (first, count)

    def __len__(self) -> int:
        return self.size if self.span is None else self.span[1]

    def _draw(self, chunk: int, permute: bool) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(chunk_seed(self.seed, chunk))
        if permute:
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.randint(self.size, (self.size,), generator=generator)
        return order, torch.randint(2**62, (self.size,), generator=generator)

    def __iter__(self):
        if self.span is None:
            order, seeds = self._draw(self.epoch, permute=True)
        else:
            first, count = self.span
            blocks = [
                self._draw(block, permute=False)
                for block in range(first // self.size, -(-(first + count) // self.size))
            ]
            start = first % self.size
            order = torch.cat([block[0] for block in blocks])[start : start + count]
            seeds = torch.cat([block[1] for block in blocks])[start : start + count]
        return iter(zip(order.tolist(), seeds.tolist()))


def chunk_loader(dataset: Dataset, seed: int, device: torch.device, threads: int, **options):
    """(sampler, loader) for training in chunks: `sampler.set_epoch(...)` or `set_span(...)`,
    then iterate the loader. `options` are DataLoader options (batch_size, drop_last)."""
    sampler = ChunkSampler(len(dataset), seed)
    loader = UserErrorLoader(
        SeededSamples(dataset), sampler=sampler, **options, **loader_options(device, threads)
    )
    return sampler, loader
