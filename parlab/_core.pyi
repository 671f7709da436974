from typing import Literal

import numpy as np
import numpy.typing as npt

COMPILER: str
SIMD: Literal["scalar", "avx2", "avx512", "neon"]
_SIMD_SUPPORTED: tuple[str, ...]
_TRACE_FIELDS: tuple[str, ...]
_TRACE_KERNELS: tuple[str, ...]
_TRACE_BUILT: int

def _trace_start(capacity: int, cpu_time: bool, /) -> None: ...
def _trace_stop() -> tuple[npt.NDArray[np.int64], int]: ...
def _thread_seq() -> int: ...
def _held_mode() -> Literal["gil", "emulated"]: ...

def cdist(
    XA: npt.ArrayLike,
    XB: npt.ArrayLike,
    metric: str = "euclidean",
    *,
    out: npt.NDArray[np.float64] | None = None,
    n_threads: int | None = 1,
    release_gil: bool = True,
) -> npt.NDArray[np.float64]: ...
def count_hits(
    n_samples: int,
    *,
    seed: int | np.random.SeedSequence | None = None,
    start: int = 0,
    n_threads: int | None = 1,
    release_gil: bool = True,
) -> int: ...
def estimate_pi(
    n_samples: int,
    *,
    seed: int | np.random.SeedSequence | None = None,
    start: int = 0,
    n_threads: int | None = 1,
    release_gil: bool = True,
) -> float: ...
def cpu_work(iterations: int, *, release_gil: bool = True) -> float: ...
def io_wait(seconds: float, *, release_gil: bool = True) -> None: ...

class Counter:
    value: int
    def __init__(self, value: int = 0) -> None: ...
    def increment(
        self,
        n: int,
        *,
        # Matched ignoring case at run time ("RACY" works); the stub names the
        # spellings the docs use.
        mode: Literal["racy", "locked", "atomic"] = "racy",
        release_gil: bool = True,
    ) -> None: ...
