"""User-facing error types.

Every mistake a user can make (bad config, missing or corrupt file, diverging training)
raises a subclass of `I2CRCError` whose message names the file or key and what is wrong.
Workflow scripts catch `I2CRCError`, print that one message and exit non-zero; anything
else is a bug and keeps its traceback.
"""


class I2CRCError(Exception):
    """Base class of the errors a user can fix."""


class ConfigError(I2CRCError):
    """A configuration key is missing, unknown, of the wrong type or out of range."""


class DatasetError(I2CRCError):
    """A dataset file (image, label, split list) is missing, unreadable or inconsistent."""


class SaliencyError(I2CRCError):
    """A saliency map is missing or unreadable."""


class CamStoreError(I2CRCError):
    """A CAM store (HDF5) is missing, truncated, corrupt, or lacks an image id."""


class CheckpointError(I2CRCError):
    """A checkpoint is corrupt or belongs to another architecture."""


class TrainingError(I2CRCError):
    """Training diverged (NaN/inf loss) or cannot proceed."""


class StorageError(I2CRCError):
    """An output could not be written: the disk is full, or a quota or file size limit hit."""


class FetchError(I2CRCError):
    """A download or archive extraction failed."""


class SchedulerError(I2CRCError):
    """The cluster scheduler that a profile submits to cannot be reached."""
