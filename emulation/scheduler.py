"""The provider's image expiry schedule group and scheduler role, as template.yaml makes them, on whichever AWS the
caller's boto3 reaches (moto in-process, or moto's server)."""

from __future__ import annotations

from typing import Any

from emulation import iam
from emulation.cloudformation import ACCOUNT_ID

SCHEDULE_GROUP = "ecr-pull-through-cache-image-expiry"
SCHEDULER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/ecr-pull-through-cache-scheduler"


def create_schedule_group(endpoint_url: str | None = None) -> str:
    client: Any = iam.admin_client("scheduler", endpoint_url=endpoint_url)
    client.create_schedule_group(Name=SCHEDULE_GROUP)
    return SCHEDULE_GROUP
