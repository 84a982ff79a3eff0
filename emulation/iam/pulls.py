"""What IAM authorizes when a client pulls an image through a pull-through cache (`docker pull`): not API calls of
ours, but what ECR checks for the registry's HTTP API, evaluated with the caller's policies and the registry's.

- Logging in: ecr:GetAuthorizationToken, on `*` (identity policy only: ECR user guide, registry_auth.html).
- A first pull, when the cached repository does not exist yet: ecr:CreateRepository and ecr:BatchImportUpstreamImage
  on the repository ARN, which the registry permissions policy may grant too (pull-through-cache-iam.html); ECR then
  creates the repository, with the settings of the namespace's creation template.
- Every pull: ecr:BatchGetImage, ecr:GetDownloadUrlForLayer and ecr:BatchCheckLayerAvailability on the repository
  ARN, which the repository's policy may grant too.
Across accounts both the caller's identity policy and the resource's policy must allow each
(reference_policies_evaluation-logic-cross-account.html); in the registry's own account either suffices.
"""

from __future__ import annotations

from emulation.iam import Authorization, Principal, check
from emulation.iam.authorizations import Account

FIRST_PULL = ("ecr:CreateRepository", "ecr:BatchImportUpstreamImage")
EVERY_PULL = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")


def pull(principal: Principal, repository: str, account: str, region: str) -> None:
    """Pull an image of `repository` (in `account`'s registry) as `principal`; raises emulation.iam.Denied at the
    first authorization IAM denies. A first pull makes the repository as ECR's cache does."""
    from moto.ecr.models import ecr_backends

    from emulation.moto_ecr import simulate_cached_pull

    registry = Account(account, region)
    arn = f"arn:aws:ecr:{region}:{account}:repository/{repository}"
    check(principal, "docker login", [Authorization("ecr:GetAuthorizationToken", "*")], region)
    if repository not in ecr_backends[account][region].repositories:
        needed = [Authorization(action, arn, resource_policy=registry.registry_policy()) for action in FIRST_PULL]
        check(principal, "docker pull (first, through the cache)", needed, region)
        simulate_cached_pull(account, region, repository)
    needed = [
        Authorization(action, arn, resource_policy=registry.repository_policy(repository)) for action in EVERY_PULL
    ]
    check(principal, "docker pull", needed, region)
