"""Runs one pipeline stage inside a Snakemake job.

The stage's stdout, stderr (progress bars included) and log records go to the rule's log
file. A user-fixable `I2CRCError` ends the job with its one-line message on the terminal and
in the log, and a non-zero exit; Snakemake then removes the job's outputs, so nothing
half-written looks finished. Any other exception is a bug: its traceback is written to the log
too, and it propagates.
"""

import contextlib
import logging
import os
import sys
import time
from pathlib import Path

from .infra.errors import I2CRCError

log = logging.getLogger("i2crc")


def run_stage(log_path, function, /, **kwargs):
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    terminal = sys.__stderr__
    with (
        open(log_path, "w", buffering=1) as log_file,
        contextlib.redirect_stdout(log_file),
        contextlib.redirect_stderr(log_file),
    ):
        handler = logging.StreamHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        started = time.perf_counter()
        log.info("stage %s.%s", function.__module__, function.__qualname__)
        try:
            result = function(**kwargs)
        except I2CRCError as error:
            log.error("%s", error)
            print(f"i2crc error: {error}", file=terminal, flush=True)
            sys.exit(1)
        except Exception:
            # A bug: its traceback goes to the log (where --show-failed-logs shows it) as well
            # as to the terminal, through Snakemake, when it propagates.
            log.exception("stage failed with an unexpected error (a bug; please report it)")
            raise
        log.info("done in %.1f s", time.perf_counter() - started)
        return result


def jobs_import_from(folder) -> None:
    """Put `folder` first on the PYTHONPATH that the jobs started from this process inherit."""
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(folder), os.environ.get("PYTHONPATH")])
    )
