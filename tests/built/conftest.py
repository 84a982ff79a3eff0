"""The built package reaches AWS over HTTP on moto's server, as the integration tests do."""

from tests.integration.conftest import aws_endpoint, ecr

__all__ = ["aws_endpoint", "ecr"]
