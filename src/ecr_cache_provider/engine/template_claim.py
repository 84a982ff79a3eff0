"""A namespace's repository creation template and its claim in the ownership ledger, as one object: the template
and the claim are each read once, and read again only after this object changed them.

The ledger's claim proves who owns the template; a template another resource owns, or nobody does, is never
changed. A template made before the ledger existed is recognised by the owner token at the end of its description
(owner_token.py), and claimed then.
"""

from __future__ import annotations

import logging
from functools import cached_property

from ecr_cache_provider.aws.ecr import CreationTemplate
from ecr_cache_provider.aws.ledger import Claim, Owner, TakeOver, Thing
from ecr_cache_provider.contract import RequestContext
from ecr_cache_provider.engine.owner_token import owner_token

logger = logging.getLogger(__name__)

TEMPLATE_KIND = "repository creation template"


def template_thing(prefix: str) -> Thing:
    return Thing(TEMPLATE_KIND, prefix)


class TemplateClaim:
    """The creation template for `prefix`, and this resource's claim on it."""

    def __init__(self, context: RequestContext, prefix: str) -> None:
        self.context = context
        self.prefix = prefix
        self.thing = template_thing(prefix)

    @cached_property
    def existing(self) -> CreationTemplate | None:
        """The template in ECR; None when there is none."""
        return self.context.ecr.find_template(self.prefix)

    @cached_property
    def claim(self) -> Claim:
        """The template's claim as the ledger holds it."""
        return self.context.ledger.claim_of(self.thing)

    @property
    def take_over(self) -> TakeOver | None:
        return self.claim.take_over

    def claim_changed(self) -> None:
        """The claim was written: it is read again when next asked for."""
        self.__dict__.pop("claim", None)

    def template_changed(self) -> None:
        """The template was written: it is read again when next asked for."""
        self.__dict__.pop("existing", None)

    def holder(self, logical_id: str = "") -> Owner | None:
        """Who owns the template: the claim in the ledger; for a template made before the ledger existed, the
        resource `logical_id` of this stack (this resource by default) if the owner token it wrote into the
        description says so (the claim is recorded now)."""
        request = self.context.request
        candidate = Owner(request.stack_id, logical_id, "") if logical_id else request.owner
        holder = self.claim.owner
        existing = self.existing
        if (
            holder is None
            and existing
            and existing.description.endswith(owner_token(request.stack_id, candidate.logical_id))
        ):
            self.context.ledger.claim(self.thing, candidate)
            self.claim_changed()
            return candidate
        return holder

    def is_ours(self) -> bool:
        holder = self.holder()
        return holder is not None and holder.is_same_resource(self.context.request.owner)

    def write(self, template: CreationTemplate) -> None:
        """Create the template, or update the one there."""
        existing = self.existing
        if existing:
            self.context.ecr.update_template(template, existing)
        else:
            self.context.ecr.create_template(template)
        self.template_changed()

    def release(self) -> None:
        """Delete the template, then its claim, when this resource owns them; anything else is left as it is."""
        existing = self.existing
        if not self.is_ours():
            if existing:
                logger.warning("Creation template left in place: not this resource's", extra={"prefix": self.prefix})
            return
        if existing:
            self.context.ecr.delete_template(self.prefix)
        self.context.ledger.release(self.thing, self.context.request.owner)
        self.template_changed()
        self.claim_changed()
