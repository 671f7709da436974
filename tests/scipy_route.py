"""A pytest plugin that routes scipy.spatial.distance.cdist to parlab.cdist
for the metrics parlab has, before SciPy's own tests import it. The calls
routed are counted into the file named by PARLAB_ROUTED_COUNT."""
import os

import scipy.spatial.distance as distance

import parlab

_original = distance.cdist
_routed = 0


def cdist(XA, XB, metric="euclidean", *args, out=None, **kwargs):
    global _routed
    if (isinstance(metric, str) and metric.lower() in ("euclidean", "sqeuclidean")
            and not args and not kwargs):
        _routed += 1
        return parlab.cdist(XA, XB, metric, out=out)
    return _original(XA, XB, metric, *args, out=out, **kwargs)


distance.cdist = cdist


def pytest_sessionfinish(session, exitstatus):
    with open(os.environ["PARLAB_ROUTED_COUNT"], "w") as f:
        f.write(str(_routed))
