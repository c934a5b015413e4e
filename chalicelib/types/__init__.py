"""API types: the resource registry, defaults, validation, quantities and schemas of each group."""
