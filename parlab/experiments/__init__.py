"""The lectures' experiments: ``catalog()`` lists them, ``run(id)`` measures one.

Adding an experiment: read ``README.md`` in this folder.
"""
from parlab.experiments.framework import (
    LESSON_COLUMNS, SAMPLE_COLUMNS, SCALES, TABLE_COLUMNS, VERDICTS, Context, Lesson, Result, Variant, catalog,
    check_scale, default_scale, run,
)
# Importing the lecture modules registers their experiments.
from parlab.experiments import lecture0, lecture1, lecture2, lecture3, lecture4  # noqa: E402,F401
from parlab.experiments import parallel_regions, out_of_core, beyond, lecture6  # noqa: E402,F401

__all__ = ["catalog", "run", "Result", "Context", "Variant", "Lesson", "SCALES", "VERDICTS",
           "TABLE_COLUMNS", "LESSON_COLUMNS", "SAMPLE_COLUMNS", "check_scale", "default_scale"]
