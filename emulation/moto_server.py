"""moto's threaded server with our ECR extension: a local AWS endpoint reached over real HTTP."""

from __future__ import annotations

import logging
import socket

from moto.server import ThreadedMotoServer

from emulation import dynamodb, iam, moto_ecr, workloads
from emulation.cloudformation import ACCOUNT_ID, REGION

# What every process that plays against the local endpoint needs: fake credentials (never real ones) in our account
# and Region. Endpoint URLs come on top, once the servers are up.
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "MOTO_ACCOUNT_ID": ACCOUNT_ID,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_moto_server() -> tuple[ThreadedMotoServer, str]:
    moto_ecr.install()
    dynamodb.install()
    workloads.install()
    iam.install()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request on the console
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"
