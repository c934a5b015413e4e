"""Skiff's control-plane logic: API server, store, types, controllers (no Chalice request objects below api/)."""
