"""moto 5 extension: what Lambda and ECS report about the container images they run, as AWS reports it.

moto 5.2 gaps this fills (each checked against botocore's model):
- Lambda GetFunction's Code.ResolvedImageUri ("The resolved URI for the image", FunctionCodeLocation): moto makes it
  up (the URI cut at its first ':' plus the SHA-256 of the URI text), so it never names the image's digest. Lambda
  resolves a tag to the digest of the image in ECR when the function (or its code) is created or updated, and
  runs that image from then on (Lambda developer guide, images-create.html: "Lambda resolves the image tag to an
  image digest"). Here: the digest of the image the ECR emulation holds under that tag (or the digest given), at
  CreateFunction and UpdateFunctionCode; an image that is not there fails the call, as Lambda does.
- ECS DescribeTasks' containers: moto makes one container, from the task definition's first container definition,
  with no imageDigest. ECS runs every container definition, and reports each container's imageDigest ("The
  container image manifest digest", Container), resolved when the task starts. Here: one container per definition,
  each with the digest of its image in the ECR emulation when the image is there.

Usage: `workloads.install()` (idempotent), before or inside mock_aws / ThreadedMotoServer.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction
from moto.ecr.models import ecr_backends
from moto.ecs.models import Container, Task

# The registry's IPv4 host, or its dual-stack one (AWS General Reference, ecr.html: dkr-ecr.<region>.on.aws).
IMAGE_URI = re.compile(
    r"^(?P<host>(?P<account>\d{12})\.(dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?"
    r"|dkr-ecr\.(?P<dual_stack_region>[a-z0-9-]+)\.on\.aws))/"
    r"(?P<repository>[a-z0-9._/-]+?)(:(?P<tag>[\w][\w.-]{0,127}))?(@(?P<digest>sha256:[0-9a-f]{64}))?$"
)

_lock = threading.Lock()


def resolve(uri: str) -> tuple[str, str] | None:
    """(repository URI, digest) of the image `uri` names in the ECR emulation; None when it is not there."""
    match = IMAGE_URI.match(uri or "")
    if not match:
        return None
    backend = ecr_backends[match["account"]][match["region"] or match["dual_stack_region"]]
    repository = backend.repositories.get(match["repository"])
    if repository is None:
        return None
    tag = match["tag"] or ("" if match["digest"] else "latest")
    for image in repository.images:
        if (match["digest"] and image.image_digest == match["digest"]) or (tag and tag in image.image_tags):
            return f"{match['host']}/{match['repository']}", str(image.image_digest)
    return None


def _resolving_set_function_code(original: Any) -> Any:
    def set_function_code(self: LambdaFunction, updated_spec: dict[str, Any]) -> None:
        uri = updated_spec.get("ImageUri") if isinstance(updated_spec, dict) else None
        if uri:
            resolved = resolve(str(uri))
            if resolved is None:  # Lambda: "Source image ... does not exist. Provide a valid source image."
                raise LambdaClientError(
                    "InvalidParameterValueException",
                    f"Source image {uri} does not exist. Provide a valid source image.",
                )
            self.ext_resolved_image_uri = f"{resolved[0]}@{resolved[1]}"  # type: ignore[attr-defined]
        original(self, updated_spec)

    set_function_code._workloads_ext = True  # type: ignore[attr-defined]
    return set_function_code


def _resolved_get_code(original: Any) -> Any:
    def get_code(self: LambdaFunction) -> dict[str, Any]:
        answer: dict[str, Any] = original(self)
        resolved = getattr(self, "ext_resolved_image_uri", None)
        if resolved and "Code" in answer:
            answer["Code"]["ResolvedImageUri"] = resolved
        return answer

    get_code._workloads_ext = True  # type: ignore[attr-defined]
    return get_code


def _every_container(original: Any) -> Any:
    def task_init(self: Task, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        task_definition = args[1] if len(args) > 1 else kwargs["task_definition"]
        containers = []
        for definition in task_definition.container_definitions:
            make_container: Any = Container  # moto's model, abstract only for CloudFormation
            container = make_container(task_definition)
            container.image = definition.get("image")
            container.name = definition.get("name")
            resolved = resolve(str(container.image or ""))
            if resolved is not None:
                container.image_digest = resolved[1]
            containers.append(container)
        self.containers = containers

    task_init._workloads_ext = True  # type: ignore[attr-defined]
    return task_init


def install() -> None:
    """Patch moto's Lambda functions and ECS tasks (class level: mock_aws and the threaded server alike)."""
    with _lock:
        if getattr(LambdaFunction._set_function_code, "_workloads_ext", False):
            return
        LambdaFunction._set_function_code = _resolving_set_function_code(LambdaFunction._set_function_code)  # type: ignore[method-assign]
        LambdaFunction.get_code = _resolved_get_code(LambdaFunction.get_code)  # type: ignore[method-assign]
        Task.__init__ = _every_container(Task.__init__)  # type: ignore[method-assign]
