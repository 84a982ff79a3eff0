"""The Lambda entry point. It imports only the standard library and crhelper before its responder exists, so that
a failure to load anything else (Powertools, the schema validator, a resource module, a missing library in the
package) is still answered FAILED, naming what is missing, instead of leaving the stack waiting for an hour."""

from __future__ import annotations

import gc
from typing import Any

# Loading makes objects that live as long as the process, and next to no garbage: the cyclic collector, run again
# and again over ever more of them, cost about 15 ms of processor time at each cold start (bench/cold_start.py).
gc.disable()

from ecr_cache_provider.responder import CloudFormationResponder  # noqa: E402

helper = CloudFormationResponder()

try:
    from ecr_cache_provider import dispatch
except Exception as error:
    helper.init_failure(error)
    dispatch = None  # type: ignore[assignment]
else:
    dispatch.attach(helper)
finally:
    gc.freeze()  # what loading made is never collected: later collections need not look at it again
    gc.enable()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    if dispatch is None:
        if "ResponseURL" not in event:  # a scheduled sweep: no request to answer, so the load error is raised
            raise RuntimeError("The provider failed to load") from helper._init_failed
        helper(event, context)  # answers FAILED with the load error
        return None
    summary: dict[str, Any] | None = dispatch.serve(event, context)  # a health check's; None for everything else
    return summary
