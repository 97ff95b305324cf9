"""Training batches whose augmentation depends on (seed, chunk, position) alone.

The training datasets draw their augmentation from torch's global RNG. Wrapped in
`SeededSamples`, each sample first seeds that RNG, in whichever process loads it, from a seed
that `ChunkSampler` hands out with its index. So a batch is the same with 0 or 8 DataLoader
workers, on CPU or GPU, and whether the workers were started for this chunk or kept alive from
the previous one: the workers can persist across epochs while a resumed run still replays an
uninterrupted one exactly.
"""

import torch
from torch.utils.data import Dataset, Sampler

from .device import loader_options
from .loading import UserErrorLoader
from .training import chunk_seed


class SeededSamples(Dataset):
    """`dataset[index]` with torch's RNG seeded for that sample; keys are (index, seed)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, seed = key
        # fork_rng restores the caller's RNG state: without workers the loader runs in the
        # training process, whose own random stream must not depend on the samples drawn.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


class ChunkSampler(Sampler):
    """(index, sample seed) pairs of one chunk of training, drawn from (seed, chunk).

    Without `num_samples` a chunk is an epoch: a permutation of the dataset. With it, the
    chunk draws `num_samples` indices with replacement (segmentation iterations).
    """

    def __init__(self, size: int, seed: int):
        self.size = size
        self.seed = seed
        self.chunk = 0
        self.num_samples = None

    def set_chunk(self, chunk: int, num_samples: int | None = None) -> None:
        self.chunk = chunk
        self.num_samples = num_samples

    def __len__(self) -> int:
        return self.size if self.num_samples is None else self.num_samples

    def __iter__(self):
        generator = torch.Generator().manual_seed(chunk_seed(self.seed, self.chunk))
        if self.num_samples is None:
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.randint(self.size, (self.num_samples,), generator=generator)
        seeds = torch.randint(2**62, (len(order),), generator=generator)
        return iter(zip(order.tolist(), seeds.tolist()))


def chunk_loader(dataset: Dataset, seed: int, device: torch.device, threads: int, **options):
    """(sampler, loader) for training in chunks: `sampler.set_chunk(...)`, then iterate the
    loader. `options` are DataLoader options (batch_size, drop_last)."""
    sampler = ChunkSampler(len(dataset), seed)
    loader = UserErrorLoader(SeededSamples(dataset), sampler=sampler, **options,
                             **loader_options(device, threads))
    return sampler, loader
