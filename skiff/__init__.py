"""The local runtime and CLI: `skiff up` runs the control plane on a laptop or CI runner."""
