"""The study store and the storage under it: locations on a local disk or object storage
(:mod:`capgate.store.location`), the one atomic writer (:mod:`capgate.store.atomic`), the one
inter-process lock (:mod:`capgate.store.locks`) and the study folder's layout, written once and read
(:mod:`capgate.store.study`). Imports only :mod:`capgate.schema` and :mod:`capgate.errors` from capgate.
"""

from __future__ import annotations

from capgate.store.location import Location, is_remote, location
from capgate.store.study import Store

__all__ = ["Location", "location", "is_remote", "Store"]
