"""`skiff-agent`: run the node agent in the foreground until SIGTERM or Ctrl-C.

Why this exists: it is what user data starts on an EC2 worker (and what `skiff up` starts for each
local instance): read the configuration from the environment, connect to Docker, set up image
pulls and CloudWatch log shipping, and run the Agent. A configuration problem exits 2 with the
variable's name; a stop leaves the containers running for the next agent to adopt.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any


def build(config: Any) -> Any:
    """The Agent for `config`, with Docker, the image puller and the log shipper."""
    import docker

    from skiff_agent.agent import Agent
    from skiff_agent.images import ImageConfig, ImagePuller

    client = docker.from_env(timeout=120)
    images = ImagePuller(client, ImageConfig.from_env())
    logs = stream_name = None
    if config.container_logs:
        import boto3

        from skiff_agent import logship

        shipper = logship.LogShipper(boto3.client("logs", region_name=config.region),
                                     logship.log_group(config.cluster_name), client)
        logs, stream_name = shipper, logship.stream_name
    return Agent(config, client, images=images, logs=logs, stream_name=stream_name)


def main(argv: list[str] | None = None) -> int:
    from skiff_agent.config import ConfigError, from_env

    del argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = from_env()
    except ConfigError as e:
        print(f"skiff-agent: {e}", file=sys.stderr)
        return 2
    agent = build(config)
    stopped = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        del frame
        logging.getLogger("skiff.agent").info("signal %d: stopping (containers keep running)", signum)
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.start()
    while not stopped.wait(1.0):
        pass
    agent.stop()
    if agent.context.logs is not None:
        agent.context.logs.close(5.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
