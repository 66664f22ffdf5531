"""Content-addressed blobs (BLAKE3) over a local directory or any fsspec filesystem."""

from dsops.objects.store import ObjectStore, open_object_store

__all__ = ["ObjectStore", "open_object_store"]
