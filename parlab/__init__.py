"""parlab: runnable, measurable lessons of parallel Python.

Every kernel takes the keyword-only ``release_gil`` (default True): True runs
the work with the GIL released so other Python threads run meanwhile; False
holds the GIL for the whole call, like pure-Python code or an extension that
forgot to release it.
"""
from parlab._core import Counter, cdist, count_hits, cpu_work, estimate_pi, io_wait
from parlab._info import info
from parlab.tracing import Trace, trace

from parlab._version import __version__

__all__ = ["Counter", "Trace", "cdist", "count_hits", "cpu_work", "estimate_pi", "info",
           "io_wait", "trace", "__version__"]


def __getattr__(name):
    # parlab.plot pulls in matplotlib: load it on first use only.
    if name == "plot":
        import importlib

        return importlib.import_module("parlab.plot")
    raise AttributeError(f"module 'parlab' has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    """``%load_ext parlab``: the %%timeline, %speedup and %gil magics (parlab.magics)."""
    from parlab.magics import load_ipython_extension as load

    load(ipython)
