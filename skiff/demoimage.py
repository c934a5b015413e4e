"""`python -m skiff.demoimage`: make sure the demo's base image exists on the local Docker engine.

Why this exists: no public registry is reachable from our machines or CI, so `docker build` cannot
pull a base image. `examples/demo-app/Dockerfile` builds on the busybox-static test image instead,
which `skiff.testimage` imports from the machine's own busybox; `make demo` (scripts/demo.sh) runs
this module first so that `FROM skiff-test/busybox:1` resolves offline.
"""

from __future__ import annotations

import argparse
import sys

from skiff.testimage import DEFAULT_NAME, TestImageError, ensure_test_image


def main(argv: list[str] | None = None) -> int:
    """Import the base image unless it exists; print its name. Exit 1 with a reason when that fails."""
    parser = argparse.ArgumentParser(prog="python -m skiff.demoimage",
                                     description="Ensure the demo's base image exists on the local Docker engine.")
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"the image to ensure (default {DEFAULT_NAME})")
    args = parser.parse_args(argv)
    try:
        import docker

        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as e:  # noqa: BLE001 - any failure means the same thing to the user
        print(f"skiff.demoimage: Docker is not reachable ({type(e).__name__}: {e}); start dockerd", file=sys.stderr)
        return 1
    try:
        image_id = ensure_test_image(client, args.name)
    except TestImageError as e:
        print(f"skiff.demoimage: {e}", file=sys.stderr)
        return 1
    print(f"{args.name} {image_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
