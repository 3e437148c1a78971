"""Training (the embedded ``fedrec train``), models, evaluation, recommendation, model files."""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from ._core import FedrecError, StderrCapture, check, command_error, cstr, eval_dict, ffi, idmap_values, lib
from ._data import Dataset, as_dataset

Metrics = Dict[str, Any]
Callback = Callable[[Metrics], Optional[bool]]
PathLike = Union[str, "os.PathLike[str]"]

#: Keyword arguments of train() that are the package's own, not ``fedrec train`` options.
PYTHON_ONLY = ("data", "callback", "verbose")


def options_argv(options: Dict[str, Any]) -> List[str]:
    """``fedrec train``'s argv for keyword options: ``rounds=5`` is ``--rounds 5``,
    ``clients_per_round=10`` is ``--clients-per-round 10``, ``centralized=True`` is
    ``--centralized`` (False and None leave an option out: its default)."""
    argv = ["train"]
    for key, value in options.items():
        if value is None or value is False:
            continue
        opt = "--" + key.replace("_", "-")
        if value is True:
            argv.append(opt)
        elif isinstance(value, (list, tuple)):  # comma-separated lists (--compress topk:K,q8)
            argv += [opt, ",".join(str(v) for v in value)]
        else:
            argv += [opt, os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    return argv


class _Run:
    """What the step trampoline needs during one run (one at a time: _core._cli_lock)."""

    def __init__(self, callback: Optional[Callback], capture: StderrCapture) -> None:
        self.callback = callback
        self.capture = capture
        self.history: List[Metrics] = []
        self.error: Optional[BaseException] = None
        self.buf = ffi.new("char[]", 1 << 16)


_current: Optional[_Run] = None


def _on_step_error(exc_type: Any, exc: BaseException, tb: Any) -> int:
    """An exception that escaped the trampoline (a KeyboardInterrupt between its lines):
    remembered and re-raised after the run; the run stops after this step."""
    if _current is not None and _current.error is None:
        _current.error = exc
    return 1


@ffi.def_extern(onerror=_on_step_error)
def _fedrec_on_step(user: Any, step: Any) -> int:
    """Called by the library's training loop after each round or epoch, on this thread,
    with the GIL taken back for the call. Returns nonzero to stop after this step:
    the callback asked, or it raised (KeyboardInterrupt included: Ctrl-C lands here, as
    Python runs signal handlers between bytecodes of the main thread)."""
    run: _Run = ffi.from_handle(user)
    run.capture.pause()
    try:
        check(lib.fr_loop_step_json(step, run.buf, 1 << 16, ffi.NULL), "a step's metrics")
        metrics = json.loads(ffi.string(run.buf).decode())
        run.history.append(metrics)
        if run.callback is not None and run.callback(metrics):
            return 1
        return 0
    except BaseException as e:  # noqa: B902 - KeyboardInterrupt must stop the run, not escape into C
        run.error = e
        return 1
    finally:
        run.capture.resume()


class _Owner:
    """Owns an embed struct's C objects; frees them when the last Model using them goes."""

    def __init__(self, emb: Any, free: Callable[[Any], None]) -> None:
        self.emb = emb
        self._free = free

    def __del__(self) -> None:
        self._free(self.emb)


class Model:
    """A trained or loaded model with the data it was trained on.

    ``history`` holds one dict per round or epoch (the ``--metrics-out`` records:
    ``round``/``epoch``, ``loss``, the metrics, ``clients``, ``bytes_up``, ...);
    ``summary`` how the run ended (``completed``, ``stop``, ``final`` and ``best``
    metrics). ``user_ids`` / ``item_ids`` map the library's dense ids back to raw ids.
    """

    def __init__(self, owner: Any, model: Any, data: Any, user_map: Any, item_map: Any,
                 dataset: Optional[Dataset], history: List[Metrics], summary: Dict[str, Any],
                 save: Callable[[str], None]) -> None:
        self._owner = owner  # the C struct that owns model and data (freed with self)
        self._m = model
        self._data = data
        self._user_map = user_map
        self._item_map = item_map
        self._save = save
        self.history = history
        self.summary = summary
        tr = lib.fr_data_train(data)
        num = dataset is not None  # the library's raw ids (a string map's numbers) are the data set's codes
        uv, iv = idmap_values(lib.fr_dataset_users(tr), num), idmap_values(lib.fr_dataset_items(tr), num)
        if dataset is not None:
            uv, iv = dataset.user_ids[uv], dataset.item_ids[iv]
        self.user_ids: np.ndarray = uv
        self.item_ids: np.ndarray = iv
        self._user_index: Any = None

    # ------------------------------------------------------------------ facts

    @property
    def kind(self) -> str:
        """The model kind: mf, bpr, gmf, mlp, neumf, lightgcn, lightfm, fm, sasrec, pop, bias."""
        return cstr(lib.fr_model_kind_name(lib.fr_model_config_of(self._m).kind)) or "?"

    @property
    def data_description(self) -> str:
        """What the model was trained on (fr_data_describe)."""
        return cstr(lib.fr_data_describe(self._data)) or ""

    @property
    def params(self) -> np.ndarray:
        """The parameter slab (shared tensors first, then the users' private rows), as a
        read-only float32 view of the library's memory (no copy; valid while the model lives)."""
        n = lib.fr_model_n_params(self._m)
        a = np.frombuffer(ffi.buffer(lib.fr_model_params_const(self._m), 4 * n), dtype=np.float32)
        a.flags.writeable = False
        return a

    def __repr__(self) -> str:
        return f"<fedrec.Model {self.kind} on {self.data_description}>"

    # ------------------------------------------------------------------ use

    def _scorer(self) -> Any:
        out = ffi.new("fr_model_scorer **")
        um = ffi.NULL if self._user_map is None else self._user_map
        im = ffi.NULL if self._item_map is None else self._item_map
        check(lib.fr_model_scorer_create(out, self._m, ffi.NULL, um, im), "scorer")
        return ffi.gc(out[0], lib.fr_model_scorer_free)

    def evaluate(self) -> Metrics:
        """The model's metrics on its test data, as ``fedrec eval`` computes them (rmse and
        mae for rating models; hr@K, ndcg@K, mrr@K, auc on the sampled negatives, or the
        ``_full`` catalogue metrics, for ranking models)."""
        sc = self._scorer()
        r = ffi.new("fr_eval_result *")
        check(lib.fr_model_evaluate_with(sc, self._m, lib.fr_data_train(self._data), lib.fr_data_test(self._data),
                                         lib.fr_data_negatives(self._data), ffi.NULL, ffi.NULL, r), "evaluate")
        check(lib.fr_model_scorer_status(sc), "evaluate")
        return eval_dict(r)

    def _dense_users(self, users: np.ndarray) -> np.ndarray:
        if self._user_index is None:
            try:
                import pandas as pd
                self._user_index = pd.Index(self.user_ids)
            except ImportError:
                self._user_index = {v: i for i, v in enumerate(self.user_ids.tolist())}
        if isinstance(self._user_index, dict):
            dense = np.array([self._user_index.get(u, -1) for u in users.tolist()], dtype=np.int64)
        else:
            dense = np.asarray(self._user_index.get_indexer(users), dtype=np.int64)
        if (dense < 0).any():
            raise KeyError(f"user {users[dense < 0][0]!r} is not in the model's training data ({self.data_description})")
        if self._user_map is not None:
            rows = np.frombuffer(ffi.buffer(self._user_map, 4 * len(self.user_ids)), np.uint32)
            bad = rows[dense] == np.uint32(0xFFFFFFFF)
            if bad.any():
                raise KeyError(f"user {users[bad][0]!r} is not in the model ({self.data_description})")
        return dense

    def recommend(self, users: Any, k: int = 10, exclude_seen: bool = True) -> Tuple[np.ndarray, np.ndarray]:
        """The top-k items for one user or many (raw ids as in the data), best first, ties
        by the smaller dense id, as ``fedrec recommend``. One user: (items[k], scores[k]);
        many: (items[n, k], scores[n, k]) numpy arrays, items as raw ids (the data's
        dtype). With exclude_seen the user's training items are left out. Where fewer
        than k items remain, scores are NaN and items the raw id -1 (integer ids) or None."""
        if k < 1:
            raise ValueError("k must be >= 1")
        one = np.ndim(users) == 0
        uarr = np.asarray([users] if one else list(users), dtype=self.user_ids.dtype if self.user_ids.dtype != object else object)
        dense = self._dense_users(uarr)
        n = len(dense)
        items = np.zeros((n, k), dtype=np.uint32)
        scores = np.full((n, k), np.nan, dtype=np.float32)
        counts = np.zeros(n, dtype=np.int64)
        sc = self._scorer()
        lib.fr_model_scorer_set_history(sc, lib.fr_data_train(self._data))
        tr = lib.fr_data_train(self._data)
        got = ffi.new("size_t *")
        fn = ffi.addressof(lib, "fr_model_scorer_fn")
        for row, du in enumerate(dense.tolist()):
            # each row written in place by the library (no copy)
            check(lib.fr_eval_topk(fn, sc, tr, du, k, exclude_seen, ffi.from_buffer("uint32_t[]", items[row]),
                                   ffi.from_buffer("float[]", scores[row]), got), "recommend")
            counts[row] = got[0]
        check(lib.fr_model_scorer_status(sc), "recommend")
        raw = self.item_ids[items]
        if (counts < k).any():
            short = np.arange(k)[None, :] >= counts[:, None]
            if raw.dtype == object:
                raw[short] = None
            else:
                raw[short] = -1
            scores[short] = np.nan
        return (raw[0], scores[0]) if one else (raw, scores)

    def save(self, path: PathLike) -> None:
        """Writes the model file, as ``fedrec train --out`` writes it (the same bytes for
        the same run): ``fedrec eval --model`` and ``fedrec recommend --model`` read it."""
        self._save(os.fspath(path))


def _summary(s: Any) -> Dict[str, Any]:
    short = {lib.FR_LOOP_DONE: "done", lib.FR_LOOP_CALLBACK: "callback", lib.FR_LOOP_PATIENCE: "patience",
             lib.FR_LOOP_TIME: "time", lib.FR_LOOP_PRIVACY: "privacy"}
    out: Dict[str, Any] = {"completed": s.completed, "ran": s.ran, "stop": short.get(s.stop, str(s.stop)),
                           "stop_reason": cstr(lib.fr_loop_stop_name(s.stop))}
    out["final"] = eval_dict(ffi.addressof(s, "last")) if s.evaluated else None
    out["best_step"] = s.best_step
    out["best"] = eval_dict(ffi.addressof(s, "best_eval")) if s.best_step else None
    out["epsilon"] = None if s.epsilon != s.epsilon else s.epsilon
    return out


def train(data: Any = None, *, callback: Optional[Callback] = None, verbose: bool = False, **options: Any) -> Model:
    """Trains a model as ``fedrec train`` does, with its options as keyword arguments
    (same names with ``_`` for ``-``, same defaults, same checks: the command's own code
    parses them), and returns it.

    data: a ratings file or NCF directory (``--data``), a pandas DataFrame or a
    :class:`Dataset` (split by ``split=`` and ``seed=``), or None: the built-in synthetic
    set. callback(metrics) is called after each round or epoch with that step's metrics
    (a dict, as a ``--metrics-out`` line); a true return stops the run after the step.
    The library trains with the GIL released; Ctrl-C (KeyboardInterrupt) stops the run
    after the round in progress and is raised once the library has cleaned up.
    verbose: print the command's header, progress lines and summary (else silent: the
    command's notes go to the "fedrec" logger). Errors: UsageError (an option refused,
    with the command's message), FedrecError (the library's message: file and line)."""
    global _current
    argv = options_argv(options)
    ds = as_dataset(data)
    if data is not None and ds is None:
        argv += ["--data", os.fspath(data)]
    cargv_keep = [ffi.new("char[]", a.encode()) for a in argv]
    cargv = ffi.new("char *[]", cargv_keep + [ffi.NULL])
    emb = ffi.new("cli_train_embed *")
    if ds is not None:
        emb.dataset = ds.c_dataset()
        desc = ffi.new("char[]", ds.name.encode())
        emb.describe = desc
    emb.silent = not verbose
    with _core._cli_lock:
        capture = StderrCapture(enabled=not verbose)
        run = _Run(callback, capture)
        handle = ffi.new_handle(run)
        emb.on_step = lib._fedrec_on_step
        emb.user = handle
        _current = run
        try:
            with capture:
                rc = lib.cli_train_embedded(len(argv), cargv, emb)
        except BaseException:  # a KeyboardInterrupt raised as the call returned (Ctrl-C after the last step)
            if emb.model != ffi.NULL:
                lib.cli_train_embed_free(emb)
            raise
        finally:
            _current = None
    owned = rc == 0 and emb.model != ffi.NULL
    if run.error is not None:
        if owned:
            lib.cli_train_embed_free(emb)
        raise run.error
    if rc != 0:
        raise command_error(rc, capture.text, verbose)
    _core.log_lines(capture.text)
    owner = _Owner(emb, lib.cli_train_embed_free)  # frees model, data, provenance with the Model

    def save(path: str) -> None:
        check(lib.fr_provenance_save_model(emb.model, path.encode(), ffi.addressof(emb, "prov"), emb.data),
              f"saving {path}")

    return Model(owner, emb.model, emb.data, None, None, ds, run.history, _summary(emb.summary), save)


def load(path: PathLike, data: Any = None) -> Model:
    """Reads a model file as ``fedrec eval`` and ``fedrec recommend`` read it: the data its
    provenance records is loaded again (or ``data``: a path, DataFrame or Dataset, for a
    model trained on data in memory) and checked against the file's fingerprint of the
    training set."""
    p = os.fspath(path)
    ds = as_dataset(data)
    emb = ffi.new("cli_model_embed *")
    dpath = ffi.NULL if data is None or ds is not None else ffi.new("char[]", os.fspath(data).encode())
    desc = ffi.new("char[]", ds.name.encode()) if ds is not None else ffi.NULL
    with _core._cli_lock:
        with StderrCapture() as capture:
            rc = lib.cli_load_embedded(p.encode(), dpath, ds.c_dataset() if ds is not None else ffi.NULL, desc, emb)
    if rc != 0:
        raise command_error(rc, capture.text, False)
    _core.log_lines(capture.text)
    owner = _Owner(emb, lib.cli_load_embed_free)
    meta = emb.meta

    def save(out: str) -> None:
        check(lib.fr_model_save(emb.model, out.encode(), meta), f"saving {out}")

    summary = {"completed": max(meta.round, meta.epoch), "config": json.loads(cstr(meta.config_json) or "{}")}
    return Model(owner, emb.model, emb.data, emb.user_map, emb.item_map, ds, [], summary, save)


class Recommender:
    """A Surprise/LightFM-style estimator over :func:`train`: ``Recommender(**options)``
    takes ``fedrec train``'s options, ``fit(data)`` trains, then ``evaluate``,
    ``recommend`` and ``save`` as :class:`Model`."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.model_: Optional[Model] = None

    def fit(self, data: Any = None, callback: Optional[Callback] = None) -> "Recommender":
        self.model_ = train(data, callback=callback, **self.options)
        return self

    def _model(self) -> Model:
        if self.model_ is None:
            raise FedrecError("not fitted: call fit(data) first", "state")
        return self.model_

    def evaluate(self) -> Metrics:
        return self._model().evaluate()

    def recommend(self, users: Any, k: int = 10, exclude_seen: bool = True) -> Tuple[np.ndarray, np.ndarray]:
        return self._model().recommend(users, k, exclude_seen)

    def save(self, path: PathLike) -> None:
        self._model().save(path)


__all__ = ["Model", "Recommender", "train", "load", "options_argv"]
_unused: Sequence[Any] = (FedrecError,)
