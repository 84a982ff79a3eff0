"""ECR errors used by the extension, raised like moto's own (``ServiceException`` subclasses).

``code`` is the ``__type`` the client sees; every code below is an error shape of the ECR model,
so moto serialises it the same way as its native ECR errors.
"""

from __future__ import annotations

from moto.core.exceptions import ServiceException
from moto.ecr.exceptions import InvalidParameterException, ValidationException

__all__ = [
    "InvalidParameterException",
    "LimitExceededException",
    "PullThroughCacheRuleAlreadyExistsException",
    "PullThroughCacheRuleNotFoundException",
    "SecretNotFoundException",
    "TemplateAlreadyExistsException",
    "TemplateNotFoundException",
    "UnableToAccessSecretException",
    "UnsupportedUpstreamRegistryException",
    "ValidationException",
]


class LimitExceededException(ServiceException):
    code = "LimitExceededException"


class PullThroughCacheRuleAlreadyExistsException(ServiceException):
    code = "PullThroughCacheRuleAlreadyExistsException"

    def __init__(self, prefix: str, registry_id: str) -> None:
        super().__init__(
            f"The pull through cache rule with prefix '{prefix}' already exists in the registry with id '{registry_id}'"
        )


class PullThroughCacheRuleNotFoundException(ServiceException):
    code = "PullThroughCacheRuleNotFoundException"

    def __init__(self, prefix: str, registry_id: str) -> None:
        super().__init__(
            f"The pull through cache rule with prefix '{prefix}' does not exist in the registry with id '{registry_id}'"
        )


class UnsupportedUpstreamRegistryException(ServiceException):
    code = "UnsupportedUpstreamRegistryException"


class SecretNotFoundException(ServiceException):
    code = "SecretNotFoundException"

    def __init__(self, credential_arn: str) -> None:
        super().__init__(f"The secret with ARN '{credential_arn}' could not be found.")


class UnableToAccessSecretException(ServiceException):
    code = "UnableToAccessSecretException"


class TemplateAlreadyExistsException(ServiceException):
    code = "TemplateAlreadyExistsException"

    def __init__(self, prefix: str, registry_id: str) -> None:
        super().__init__(
            f"The repository creation template with prefix '{prefix}' already exists "
            f"in the registry with id '{registry_id}'"
        )


class TemplateNotFoundException(ServiceException):
    code = "TemplateNotFoundException"

    def __init__(self, prefix: str, registry_id: str) -> None:
        super().__init__(
            f"The repository creation template with prefix '{prefix}' does not exist "
            f"in the registry with id '{registry_id}'"
        )
