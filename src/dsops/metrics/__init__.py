"""Delivery metrics: the DORA four keys for models (``DoraService`` in ``dora``)."""
