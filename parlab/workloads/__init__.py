"""The work the lectures parallelise, as plain functions: distance matrices, Monte
Carlo pi, pandas rows, waiting and computing tasks, counters, matrix products.

Nothing here starts a thread or a process (that is
:mod:`parlab.experiments.runners`); every task is a module-level function so
that threads and processes can both run it.
"""
