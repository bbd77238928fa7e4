"""capgate's few named exceptions.

Library code raises these; the CLI turns them into ``Error: ...`` and an exit code in one
place. ``exit_code`` 2 means the input was unusable (a spec, dataset, checkpoint or results
file); 1 means the work itself failed.
"""

from __future__ import annotations

__all__ = [
    "CapgateError",
    "InputError",
    "SpecError",
    "DataError",
    "UnsafePickleError",
    "CheckpointError",
    "StructureMatchError",
    "ResultsError",
    "DivergedError",
    "GridError",
    "StageScoreError",
]


class CapgateError(Exception):
    """Base of every error capgate raises on purpose."""

    exit_code = 1


class InputError(CapgateError):
    """Unusable input: the message names the file or value, the problem and the fix."""

    exit_code = 2


class SpecError(InputError):
    """A grid spec, analysis plan or ``--set`` override is invalid."""


class DataError(InputError):
    """A dataset on disk is malformed, missing files, or escapes its root."""


class UnsafePickleError(DataError):
    """A pickle names a global outside the few a dataset's files are known to hold; it is not loaded."""


class CheckpointError(InputError):
    """A checkpoint cannot be read, or matched too little of the model."""


class StructureMatchError(CheckpointError):
    """A checkpoint's tensors, taken in file order, do not map onto the model's by shape: the match
    is incomplete (no alignment fits) or ambiguous (more than one does)."""


class ResultsError(InputError):
    """A results table or study store violates the results-table contract."""


class DivergedError(CapgateError):
    """Training produced a non-finite loss; the run is recorded as ``diverged``."""


class GridError(CapgateError):
    """A grid finished with failed trials (they are recorded, and listed in the message)."""


class StageScoreError(CapgateError):
    """A pretraining stage ended below the spec's ``min_stage_score``: the grid stops before any run
    fine-tunes from it (the message names the stage, its score, the minimum and the fix)."""
