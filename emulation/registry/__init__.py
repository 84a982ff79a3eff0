"""The registry's HTTP API (OCI distribution spec v2), emulated: a local upstream registry serving fixtures made in
code (upstream.py, fixtures.py), and a local ECR registry endpoint with pull-through cache semantics over moto's
ECR backend (ecr.py), whose address GetAuthorizationToken gives as `proxyEndpoint` (tokens.py). Both are real HTTP
servers on 127.0.0.1 threads, so they serve `mock_aws` tests and moto's threaded server alike.

Usage::

    upstream = UpstreamRegistry(latency=0.01)
    upstream.add_image("library/nginx", "1.27", layer_sizes=(4096, 8192))
    endpoint = EcrRegistryEndpoint(ACCOUNT_ID, REGION)
    endpoint.serve_upstream("registry-1.docker.io", upstream)
    ...  # a pull through ecr.get_authorization_token()["authorizationData"][0]["proxyEndpoint"]
    endpoint.close(); upstream.close()
"""

from __future__ import annotations

from .ecr import EcrRegistryEndpoint
from .upstream import UpstreamRegistry

__all__ = ["EcrRegistryEndpoint", "UpstreamRegistry"]
