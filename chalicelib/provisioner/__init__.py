"""The provisioner: EC2 worker nodes for pods that fit on no node, and their removal when idle.

Karpenter's model on Skiff's terms: a NodePool (skiff.io/v1) says what may be bought; pending
unschedulable pods are batched, packed onto the cheapest instances that hold them, and each planned
node is written as a NodeClaim before it is launched; claims are followed until their Node registers
(or are terminated when it never does); empty nodes are removed. Everything is derived from the store
and EC2 on each pass (invariants 1 and 4), so the entry point is one level-triggered function:
`chalicelib.provisioner.reconcile.reconcile`.

This package's __init__ imports nothing: the API types import `prices` from here, and the rest of
the package imports the API.
"""
