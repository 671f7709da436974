"""The lectures' experiments: ``catalog()`` lists them, ``run(id)`` measures one."""
from parlab.experiments._base import (
    LESSON_COLUMNS, SCALES, TABLE_COLUMNS, Context, Result, catalog, default_scale, run,
)
# Importing the lecture modules registers their experiments.
from parlab.experiments import lecture0, lecture1, lecture2, lecture3, lecture4  # noqa: E402,F401

__all__ = ["catalog", "run", "Result", "Context", "SCALES", "TABLE_COLUMNS",
           "LESSON_COLUMNS", "default_scale"]
