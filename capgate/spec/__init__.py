"""Study specs: the frozen, typed run/stage/study specs and their expansion (:mod:`capgate.spec.model`),
YAML loading and validation with fixed precedence, defaults < YAML < ``--set`` (:mod:`capgate.spec.load`),
and the small value checks the loader shares (:mod:`capgate.spec.checks`). Imports neither torch nor ray.
"""

from __future__ import annotations

from capgate.spec.load import DEFAULTS, load_study, parse_override, read_yaml, study_from_dict, study_to_dict
from capgate.spec.model import (Adaptive, DatasetRef, EvalSet, InitDef, PretrainSpec, Recipe, Resources, RunSpec,
                                StageDef, StudySpec, TrainSet, expand)

__all__ = ["Recipe", "DatasetRef", "EvalSet", "TrainSet", "StageDef", "InitDef", "Resources", "Adaptive",
           "StudySpec", "PretrainSpec", "RunSpec", "expand", "DEFAULTS", "load_study", "study_from_dict",
           "parse_override", "study_to_dict", "read_yaml"]

