"""fedrec: federated learning for recommender systems, from Python.

A thin layer over libfedrec (the C library): data sets from numpy arrays, pandas data
frames or ratings files; training centralized or federated with ``fedrec train``'s
options as keyword arguments (the command's own code parses them, so names, defaults
and checks are the same); a per-round callback; evaluation; top-K recommendation; model
files that the ``fedrec`` command reads too.

    import fedrec
    model = fedrec.train(data="ml-100k/u.data", model="neumf", rounds=30,
                         callback=lambda m: print(m["round"], m.get("hr@10")))
    print(model.evaluate())
    items, scores = model.recommend([1, 2, 3], k=10)
    model.save("neumf.frm")
    again = fedrec.load("neumf.frm")
"""
from ._core import FedrecError, UsageError
from ._data import Dataset
from ._fedrec import ffi as _ffi, lib as _lib
from ._model import Model, Recommender, load, train

__version__: str = _ffi.string(_lib.FR_VERSION_STRING).decode()

__all__ = ["Dataset", "FedrecError", "Model", "Recommender", "UsageError", "load", "train", "__version__"]
