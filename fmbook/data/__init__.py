"""Data for the book: a registry with provenance, a checked ``fetch``, and per-data-set helpers."""

from . import audio, fra_eng, fsdd, milestones, shakespeare
from .registry import (
    REGISTRY,
    ChecksumError,
    DataError,
    Dataset,
    DownloadError,
    ManualDownloadError,
    UnknownDatasetError,
    fetch,
    lookup,
)
from .shakespeare import load_text as load_shakespeare
from .shakespeare import split as split_shakespeare

__all__ = [
    "REGISTRY",
    "ChecksumError",
    "DataError",
    "Dataset",
    "DownloadError",
    "ManualDownloadError",
    "UnknownDatasetError",
    "audio",
    "fetch",
    "fra_eng",
    "fsdd",
    "load_shakespeare",
    "lookup",
    "milestones",
    "shakespeare",
    "split_shakespeare",
]
