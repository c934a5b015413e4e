"""Helpers of Skiff's Pulumi program (infra/__main__.py): one concern per module.

Kept in a package of its own so that putting infra/ on sys.path (Pulumi does, and so do the tests)
adds one unambiguous name rather than generic ones like `iam` or `tables`.
"""
