"""Caffe's data path: Datum records, the LMDB / LevelDB databases that hold them,
the data transformer and prefetching."""
from .datum import DataError, array_to_datum, datum_to_array, parse_datum
from .db import open_db

__all__ = ["DataError", "array_to_datum", "datum_to_array", "parse_datum", "open_db"]
