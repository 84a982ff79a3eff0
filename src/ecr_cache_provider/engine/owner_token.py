"""The owner token at the end of a creation template's description: how the provider proved a template was a
resource's before the ownership ledger existed. The ledger's claim proves it now; the token still lets such a
template be recognised and claimed (template_claim.py), and the description says, for people, who owns it."""

from __future__ import annotations

import hashlib

from ecr_cache_provider.aws.ledger import Owner
from ecr_cache_provider.contract import Request

# ECR's limit on a creation template's description.
DESCRIPTION_LENGTH = 256


def owner_description(request: Request, purpose: str) -> str:
    """The template's description: its purpose, its owner for people, and the owner token at its end."""
    return owner_text(request.owner, purpose)


def owner_text(owner: Owner, purpose: str) -> str:
    """The description of a template `owner` made for `purpose`, ending with its owner token."""
    text = f"{purpose} for cached repositories, managed by {owner}"
    token = owner_token(owner.stack_id, owner.logical_id)
    return f"{text[: DESCRIPTION_LENGTH - len(token) - 1]} {token}"


def owner_token(stack_id: str, logical_id: str) -> str:
    digest = hashlib.sha256(f"{stack_id}/{logical_id}".encode()).hexdigest()[:16]
    return f"[owner:{digest}]"
