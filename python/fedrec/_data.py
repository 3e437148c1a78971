"""Data sets from numpy arrays, pandas data frames and ratings files, with raw ids of any
type (strings, 64-bit integers, ...) kept and mapped back."""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from ._core import check, cstr, ffi, idmap_values, lib

ArrayLike = Union[np.ndarray, Sequence[Any]]

#: Column names tried, in order, when a data frame's columns are not named explicitly.
USER_COLUMNS = ("user", "user_id", "userId", "userid", "uid", "reviewerID")
ITEM_COLUMNS = ("item", "item_id", "itemId", "itemid", "iid", "movieId", "movie_id", "asin")
RATING_COLUMNS = ("rating", "ratings", "score", "overall", "weight", "count")
TIME_COLUMNS = ("time", "timestamp", "unixReviewTime", "ts")


def _factorize(values: np.ndarray, by_appearance: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """(codes int64, uniques): integer ids numbered in increasing order (as the library
    numbers a file's integer ids), any other ids, or all with by_appearance, in order of
    first appearance (as it interns string ids)."""
    if values.dtype.kind in "iu" and not by_appearance:
        uniques, codes = np.unique(values, return_inverse=True)
        return codes.astype(np.int64, copy=False), uniques
    try:
        import pandas as pd
        codes, uniques = pd.factorize(values, sort=False)
        if (codes < 0).any():
            raise ValueError("ids must not be missing (None/NaN)")
        return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)
    except ImportError:
        seen: dict = {}
        codes = np.fromiter((seen.setdefault(v, len(seen)) for v in values), dtype=np.int64, count=len(values))
        uniques = np.empty(len(seen), dtype=object)
        for v, c in seen.items():
            uniques[c] = v
        return codes, uniques


class Dataset:
    """Interactions (user, item, rating, time) with raw ids of any hashable type.

    The library numbers users and items densely; ``user_ids`` and ``item_ids`` give the
    raw id of each dense id (an int64 array for integer ids, an object array otherwise),
    so recommendations come back in the ids given here, exactly (strings, 64-bit
    integers). Build one with :meth:`from_arrays`, :meth:`from_dataframe` or
    :meth:`from_file`; pass it as ``fedrec.train(data=...)``, which splits it by the
    ``split=`` and ``seed=`` options as ``fedrec train`` splits a file.
    """

    def __init__(self, users: ArrayLike, items: ArrayLike, ratings: Optional[ArrayLike] = None,
                 times: Optional[ArrayLike] = None, name: Optional[str] = None) -> None:
        users = np.asarray(users)
        items = np.asarray(items)
        if users.ndim != 1 or items.shape != users.shape:
            raise ValueError(f"users and items must be 1-D arrays of one length, got {users.shape} and {items.shape}")
        n = len(users)
        # the arrays the library reads: contiguous int64/float32 (no copy when they are already)
        self.ratings = None if ratings is None else np.ascontiguousarray(ratings, dtype=np.float32)
        self.times = None if times is None else np.ascontiguousarray(times, dtype=np.int64)
        for what, a in (("ratings", self.ratings), ("times", self.times)):
            if a is not None and a.shape != (n,):
                raise ValueError(f"{what} must have one value per interaction ({n}), got shape {a.shape}")
        self.users = users
        self.items = items
        self.name = name or "data in memory"
        # a file whose users or items are not all integers is read with string ids for
        # both columns (numbered in order of first appearance): number them alike, so a
        # data frame and the same rows in a file give the same training set and model
        self._strings = users.dtype.kind not in "iu" or items.dtype.kind not in "iu"
        self._ucodes, self.user_ids = _factorize(users, self._strings)
        self._icodes, self.item_ids = _factorize(items, self._strings)
        self._c: Any = None

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_arrays(cls, users: ArrayLike, items: ArrayLike, ratings: Optional[ArrayLike] = None,
                    times: Optional[ArrayLike] = None, name: Optional[str] = None) -> "Dataset":
        """A data set from parallel arrays; ratings None: every interaction 1 (implicit),
        times None: no timestamps (leave-one-out then holds out a seeded random one)."""
        return cls(users, items, ratings, times, name)

    @classmethod
    def from_dataframe(cls, df: Any, user: Optional[str] = None, item: Optional[str] = None,
                       rating: Optional[str] = None, time: Optional[str] = None,
                       name: Optional[str] = None) -> "Dataset":
        """A data set from a pandas DataFrame. Columns not named are looked for by their
        usual names (user/user_id/userId, item/item_id/movieId, rating, time/timestamp);
        rating and time are optional."""
        cols = list(df.columns)

        def pick(given: Optional[str], names: Sequence[str], required: bool) -> Optional[str]:
            if given is not None:
                if given not in cols:
                    raise KeyError(f"column {given!r} is not in the data frame (columns: {cols})")
                return given
            for c in names:
                if c in cols:
                    return c
            if required:
                raise KeyError(f"no {names[0]} column: name it (columns: {cols}; looked for {list(names)})")
            return None

        u, i = pick(user, USER_COLUMNS, True), pick(item, ITEM_COLUMNS, True)
        r, t = pick(rating, RATING_COLUMNS, False), pick(time, TIME_COLUMNS, False)
        return cls(df[u].to_numpy(), df[i].to_numpy(), None if r is None else df[r].to_numpy(),
                   None if t is None else df[t].to_numpy(), name or "data frame")

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike]) -> "Dataset":
        """Reads a ratings file with the library's reader (the formats ``fedrec train
        --data`` reads, detected the same way). Errors name the file and line."""
        p = os.fspath(path)
        out = ffi.new("fr_dataset **")
        check(lib.fr_dataset_load(out, p.encode(), ffi.NULL, ffi.NULL))
        d = ffi.gc(out[0], lib.fr_dataset_free)
        users, items, ratings, times = _rows(d)
        uv, iv = idmap_values(lib.fr_dataset_users(d)), idmap_values(lib.fr_dataset_items(d))
        return cls(uv[users], iv[items], ratings, times if lib.fr_dataset_has_time(d) else None,
                   name=os.path.basename(p))

    # ------------------------------------------------------------------ views

    def __len__(self) -> int:
        return len(self.users)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __repr__(self) -> str:
        def count(n: int, noun: str) -> str:
            return f"{n} {noun}" if n == 1 else f"{n} {noun}s"

        return (f"<fedrec.Dataset {self.name}: {count(self.n_users, 'user')}, {count(self.n_items, 'item')}, "
                f"{count(len(self), 'interaction')}>")

    def to_dataframe(self) -> Any:
        """The interactions as a pandas DataFrame (user, item, rating, time)."""
        import pandas as pd
        cols = {"user": self.users, "item": self.items,
                "rating": self.ratings if self.ratings is not None else np.ones(len(self), np.float32)}
        if self.times is not None:
            cols["time"] = self.times
        return pd.DataFrame(cols)

    def split(self, split: str = "loo", seed: int = 1) -> Tuple["Dataset", "Dataset"]:
        """(train, test) as ``fedrec train --split S --seed N`` splits (the library's
        fr_dataset_split): loo, ratio:R, temporal:R or temporal-user:R."""
        kind = ffi.new("fr_split_kind *")
        ratio = ffi.new("double *")
        check(lib.fr_source_parse_split(split.encode(), kind, ratio), "split")
        tr, te = ffi.new("fr_dataset **"), ffi.new("fr_dataset **")
        check(lib.fr_dataset_split(self.c_dataset(), kind[0], ratio[0], seed, tr, te), "split")
        parts = []
        for p, what in ((tr, "train"), (te, "test")):
            d = ffi.gc(p[0], lib.fr_dataset_free)
            u, i, r, t = _rows(d)
            ucode, icode = idmap_values(lib.fr_dataset_users(d), True), idmap_values(lib.fr_dataset_items(d), True)
            parts.append(Dataset(self.user_ids[ucode[u]], self.item_ids[icode[i]], r,
                                 t if self.times is not None else None, name=f"{self.name} ({what}, split {split})"))
        return parts[0], parts[1]

    # ------------------------------------------------------------------ the C side

    def c_dataset(self) -> Any:
        """The fr_dataset over the codes (built once; freed with this object)."""
        if self._c is None:
            out = ffi.new("fr_dataset **")
            n = len(self)
            ptr = lambda t, a: ffi.NULL if a is None else ffi.from_buffer(t, a)  # noqa: E731
            check(lib.fr_dataset_from_arrays(out, n, ptr("int64_t[]", self._ucodes), ptr("int64_t[]", self._icodes),
                                             ptr("float[]", self.ratings), ptr("int64_t[]", self.times)),
                  self.name)
            d = ffi.gc(out[0], lib.fr_dataset_free)
            if self._strings:
                # the library keeps the ids' text, as it does for a file with string ids: the
                # fingerprint covers it, so the command line accepts the model with --data
                # of the same rows in a file
                keep = [[ffi.new("char[]", str(v).encode()) for v in ids] for ids in (self.user_ids, self.item_ids)]
                arrs = [ffi.new("const char *[]", k) for k in keep]
                check(lib.fr_dataset_set_id_strings(d, arrs[0], len(keep[0]), arrs[1], len(keep[1])), self.name)
            self._c = d
        return self._c


def _rows(d: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every interaction of an fr_dataset as (dense users, dense items, ratings, times)."""
    n = lib.fr_dataset_n_interactions(d)
    users = np.empty(n, np.int64)
    items = np.empty(n, np.int64)
    ratings = np.empty(n, np.float32)
    times = np.empty(n, np.int64)
    ip, rp, tp = ffi.new("uint32_t **"), ffi.new("float **"), ffi.new("int64_t **")
    at = 0
    for u in range(lib.fr_dataset_n_users(d)):
        k = lib.fr_dataset_user(d, u, ip, rp, tp)
        if not k:
            continue
        users[at:at + k] = u
        items[at:at + k] = np.frombuffer(ffi.buffer(ip[0], 4 * k), np.uint32)
        ratings[at:at + k] = np.frombuffer(ffi.buffer(rp[0], 4 * k), np.float32) if rp[0] != ffi.NULL else 1
        times[at:at + k] = np.frombuffer(ffi.buffer(tp[0], 8 * k), np.int64) if tp[0] != ffi.NULL else 0
        at += k
    return users, items, ratings, times


def as_dataset(data: Any) -> Optional[Dataset]:
    """A Dataset for data given as a Dataset or a pandas DataFrame; None for a path."""
    if data is None or isinstance(data, (str, os.PathLike)):
        return None
    if isinstance(data, Dataset):
        return data
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        return Dataset.from_dataframe(data)
    raise TypeError(f"data must be a path, a pandas DataFrame or a fedrec.Dataset, not {type(data).__name__}")


__all__ = ["Dataset", "as_dataset", "cstr"]
