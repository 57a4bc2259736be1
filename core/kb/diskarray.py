"""Index arrays read from disk by ranges (pread), never mapped or loaded whole.

A question needs a few hundred kilobytes of a 100k-chunk index: some postings, the term
rows of its candidate chunks, their texts. Reading just those through the page cache keeps
the server's resident memory at its own working set; mapping the files made every page a
question touched (and the kernel's fault-around neighbours) count as the process's own.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path

import numpy as np


class DiskArray:
    """A one-dimensional .npy file (or raw bytes) on disk."""

    def __init__(self, path: Path, *, raw: bool = False) -> None:
        fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, fd)
        self._fd = fd
        if raw:
            self.dtype = np.dtype(np.uint8)
            self._offset = 0
            self._length = os.fstat(fd).st_size
            return
        with open(path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, dtype = header(f)
            self._offset = f.tell()
        if len(shape) != 1:
            raise ValueError(f"{path}: expected a one-dimensional array, got shape {shape}")
        self.dtype = dtype
        self._length = shape[0]

    def __len__(self) -> int:
        return self._length

    def read(self, start: int, stop: int) -> np.ndarray:
        size = self.dtype.itemsize
        data = os.pread(self._fd, (stop - start) * size, self._offset + start * size)
        return np.frombuffer(data, dtype=self.dtype)

    def gather(self, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The ranges [start, start + length) one after another."""
        parts = [self.read(a, a + n) for a, n in zip(starts.tolist(), lengths.tolist(), strict=True) if n]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=self.dtype)


def gather(array: np.ndarray | DiskArray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Ranges of an in-memory or on-disk array, laid end to end."""
    if isinstance(array, DiskArray):
        return array.gather(starts, lengths)
    if not len(lengths) or not lengths.sum():
        return np.zeros(0, dtype=array.dtype)
    ends = np.cumsum(lengths)
    return array[np.arange(ends[-1]) + np.repeat(starts - (ends - lengths), lengths)]
