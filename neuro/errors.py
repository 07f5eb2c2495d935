"""The exceptions neuro raises for problems with the contents of a model file."""

from __future__ import annotations

import os

__all__ = ["ModelFileError"]


class ModelFileError(ValueError):
    """A model file's contents cannot be loaded: not HDF5, truncated, unsafe, malformed or out of range.

    The message always names the file and the exact place inside it, for example::

        model file 'net.h5', layers/0/params/kernel: must have shape (5, 4), got (1,)

    A missing file or a folder given as the path is not a content problem and stays
    :class:`FileNotFoundError` / :class:`IsADirectoryError`.

    Args:
        path: the model file, as the caller gave it.
        where: the place inside the file (an object path such as ``layers/0/params/kernel``, an attribute
            such as ``optimizer attribute 'n_slots'``, a config key); empty when the problem concerns the
            whole file.
        problem: what is wrong, in words.

    Attributes:
        path: the model file as a string.
        where: the place inside the file.
        problem: what is wrong.
    """

    def __init__(self, path: str | os.PathLike, where: str, problem: str) -> None:
        path = os.fsdecode(path) if isinstance(path, bytes | os.PathLike) else str(path)
        super().__init__(path, where, problem)
        self.path = path
        self.where = where
        self.problem = problem

    def __str__(self) -> str:
        if self.where:
            return f"model file {self.path!r}, {self.where}: {self.problem}"
        return f"model file {self.path!r}: {self.problem}"
