"""Skiff's node agent (our kubelet): it runs on a worker instance, registers the instance as a Node,
renews its Lease, and runs the pods bound to it as Docker containers, reporting their status through
the cluster's HTTP API with its node credential. It never touches the control plane's tables."""
