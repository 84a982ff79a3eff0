"""Images as the image expiry sweep sees them: push and pull times, status, size, and image indexes with the
manifests they reference (botocore ECR model: DescribeImages, BatchGetImage, BatchDeleteImage).

moto keeps images on its repositories (``moto.ecr.models.Image``); the extension adds the attributes ECR reports
and moto lacks, and answers the three operations the way ECR does:
- DescribeImages pages (``maxResults`` 1 to 1,000, 100 by default, ``nextToken``) and filters by ``tagStatus``
  and ``imageStatus``: without ``filter.imageStatus`` it returns only ``ACTIVE`` images, as the model documents
  (``DescribeImagesFilter.imageStatus``: "If not specified, only images with ACTIVE status are returned"), and
  ``ANY`` returns every status; it reports ``lastRecordedPullTime``, ``imageStatus`` and ``imageSizeInBytes`` (an
  index's is the largest of its manifests', as the API reference says).
- BatchGetImage is a pull: it records the pull time of what it returns.
- BatchDeleteImage reports per-image failures in its answer: ``ImageNotFound``, and
  ``ImageReferencedByManifestList`` for a manifest an index in the repository still references.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from moto.core.responses import ActionResult
from moto.ecr.exceptions import ImageNotFoundException, RepositoryNotFoundException
from moto.ecr.models import Image, ecr_backends

from .models import paginate
from .validation import validate_request

if TYPE_CHECKING:
    from moto.ecr.models import ECRBackend, Repository
    from moto.ecr.responses import ECRResponse

IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE_INDEX = "application/vnd.oci.image.index.v1+json"
DEFAULT_SIZE = 50 * 1024 * 1024


def seed_image(
    account_id: str,
    region: str,
    repository: str,
    *,
    pushed_at: datetime,
    last_pulled_at: datetime | None = None,
    tags: tuple[str, ...] = (),
    size: int = DEFAULT_SIZE,
    status: str = "ACTIVE",
    references: tuple[str, ...] = (),
    name: str = "",
    digest: str = "",
) -> str:
    """Put an image in `repository` (made if missing) as a pull-through cache would; its digest (`digest` when
    given, as `image_records` reports it, else one made from the content).

    With `references` (digests already in the repository), the image is an index of those manifests."""
    backend: ECRBackend = ecr_backends[account_id][region]
    if repository not in backend.repositories:
        backend.create_repository(
            repository_name=repository,
            registry_id=None,
            encryption_config={"encryptionType": "AES256"},
            image_scan_config={"scanOnPush": False},
            image_tag_mutability="MUTABLE",
            tags=[],
        )
    if references:
        manifest = {
            "schemaVersion": 2,
            "mediaType": IMAGE_INDEX,
            "manifests": [{"mediaType": IMAGE_MANIFEST, "digest": digest, "size": 1000} for digest in references],
        }
    else:
        manifest = {
            "schemaVersion": 2,
            "mediaType": IMAGE_MANIFEST,
            "config": {"size": size, "digest": name},
            "layers": [
                {"digest": f"sha256:{hashlib.sha256((repository + name + str(pushed_at)).encode()).hexdigest()}"}
            ],
        }
    text = json.dumps(manifest, sort_keys=True)
    digest = digest or "sha256:" + hashlib.sha256((repository + text + name).encode()).hexdigest()
    make_image: Any = Image  # moto types the tag as str; an untagged image has None
    image: Any = make_image(account_id, tags[0] if tags else None, text, repository, manifest["mediaType"], digest)
    image.image_tags = list(tags)
    image.ext_pushed_at = pushed_at
    image.ext_last_pulled_at = last_pulled_at
    image.ext_status = status
    image.ext_references = tuple(references)
    image.ext_size = size
    backend.repositories[repository].images.append(image)
    return digest


def image_records(account_id: str, region: str, repository: str) -> list[dict[str, Any]]:
    """The repository's images as `seed_image` takes them (times as ISO text), manifests before the indexes that
    reference them: what a snapshot of the registry keeps, to seed them again."""
    records = []
    for image in list(ecr_backends[account_id][region].repositories[repository].images):
        pushed = getattr(image, "ext_pushed_at", None) or datetime.fromtimestamp(image.image_pushed_at, UTC)
        pulled = getattr(image, "ext_last_pulled_at", None)
        records.append(
            {
                "digest": image.image_digest,
                "pushed_at": pushed.isoformat(),
                "last_pulled_at": pulled.isoformat() if pulled else None,
                "tags": list(image.image_tags),
                "size": int(getattr(image, "ext_size", None) or image.image_size_in_bytes or 0),
                "status": getattr(image, "ext_status", "ACTIVE"),
                "references": list(getattr(image, "ext_references", ())),
            }
        )
    return sorted(records, key=lambda record: bool(record["references"]))


def seed_image_record(account_id: str, region: str, repository: str, record: dict[str, Any]) -> str:
    """Seed an image as `image_records` reported it."""
    pulled = record.get("last_pulled_at")
    return seed_image(
        account_id,
        region,
        repository,
        pushed_at=datetime.fromisoformat(record["pushed_at"]),
        last_pulled_at=datetime.fromisoformat(pulled) if pulled else None,
        tags=tuple(record.get("tags", ())),
        size=int(record.get("size", DEFAULT_SIZE)),
        status=record.get("status", "ACTIVE"),
        references=tuple(record.get("references", ())),
        digest=record["digest"],
    )


def _repository(self: ECRResponse, name: str) -> Repository:
    backend = self.ecr_backend
    if name not in backend.repositories:
        raise RepositoryNotFoundException(name, backend.account_id)
    return backend.repositories[name]


def _request(self: ECRResponse, operation: str) -> dict[str, Any]:
    body = self.body.decode("utf-8") if isinstance(self.body, bytes) else self.body
    params: dict[str, Any] = json.loads(body) if body else {}
    validate_request(operation, params)
    return params


def _size(image: Image, images: list[Image]) -> int:
    references = getattr(image, "ext_references", ())
    if references:
        sizes = [_size(other, images) for other in images if other.image_digest in references]
        return max(sizes, default=0)
    return int(getattr(image, "ext_size", None) or image.image_size_in_bytes or 0)


def _detail(image: Image, repository: Repository) -> dict[str, Any]:
    pushed = getattr(image, "ext_pushed_at", None) or datetime.fromtimestamp(image.image_pushed_at, UTC)
    detail: dict[str, Any] = {
        "registryId": repository.registry_id,
        "repositoryName": repository.name,
        "imageDigest": image.image_digest,
        "imageSizeInBytes": _size(image, repository.images),
        "imagePushedAt": pushed,
        "imageManifestMediaType": image.image_manifest_media_type or IMAGE_MANIFEST,
        "imageStatus": getattr(image, "ext_status", "ACTIVE"),
    }
    if image.image_tags:
        detail["imageTags"] = list(image.image_tags)
    pulled = getattr(image, "ext_last_pulled_at", None)
    if pulled is not None:
        detail["lastRecordedPullTime"] = pulled
    return detail


def _is(image: Image, image_id: dict[str, str]) -> bool:
    return image.image_digest == image_id.get("imageDigest") or image_id.get("imageTag") in (image.image_tags or [])


def describe_images(self: ECRResponse) -> ActionResult:
    p = _request(self, "DescribeImages")
    repository = _repository(self, p["repositoryName"])
    images = list(repository.images)
    wanted = p.get("filter", {})
    if wanted.get("tagStatus") == "TAGGED":
        images = [image for image in images if image.image_tags]
    elif wanted.get("tagStatus") == "UNTAGGED":
        images = [image for image in images if not image.image_tags]
    status = wanted.get("imageStatus") or "ACTIVE"  # the model's default: only ACTIVE images when none is asked for
    if status != "ANY":
        images = [image for image in images if getattr(image, "ext_status", "ACTIVE") == status]
    if p.get("imageIds"):
        # ECR fails the whole call for one image it does not have (API reference, DescribeImages:
        # ImageNotFoundException), rather than leaving it out.
        for image_id in p["imageIds"]:  # one the repository has in another status is filtered out, not an error
            if not any(_is(image, image_id) for image in repository.images):
                raise ImageNotFoundException(json.dumps(image_id), repository.name, repository.registry_id)
        images = [image for image in images if any(_is(image, image_id) for image_id in p["imageIds"])]
        return ActionResult({"imageDetails": [_detail(image, repository) for image in images]})
    page, token = paginate(images, lambda image: image.image_digest, p.get("maxResults"), p.get("nextToken"))
    out: dict[str, Any] = {"imageDetails": [_detail(image, repository) for image in page]}
    if token:
        out["nextToken"] = token
    return ActionResult(out)


def batch_get_image(self: ECRResponse) -> ActionResult:
    """A pull: what it returns has its pull time recorded."""
    p = _request(self, "BatchGetImage")
    repository = _repository(self, p["repositoryName"])
    found, failures = [], []
    for image_id in p["imageIds"]:
        matches: list[Any] = [
            image
            for image in repository.images
            if image.image_digest == image_id.get("imageDigest") or image_id.get("imageTag") in image.image_tags
        ]
        if not matches:
            failures.append(
                {"imageId": image_id, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"}
            )
        for image in matches:
            image.ext_last_pulled_at = datetime.now(UTC)
            found.append(
                {
                    "registryId": repository.registry_id,
                    "repositoryName": repository.name,
                    "imageId": {
                        "imageDigest": image.image_digest,
                        **({"imageTag": image.image_tags[0]} if image.image_tags else {}),
                    },
                    "imageManifest": image.image_manifest,
                    "imageManifestMediaType": image.image_manifest_media_type,
                }
            )
    return ActionResult({"images": found, "failures": failures})


def batch_delete_image(self: ECRResponse) -> ActionResult:
    p = _request(self, "BatchDeleteImage")
    repository = _repository(self, p["repositoryName"])
    deleted, failures = [], []
    for image_id in p["imageIds"]:
        digest = image_id.get("imageDigest")
        image = next((image for image in repository.images if image.image_digest == digest), None)
        if image is None:
            failures.append(
                {"imageId": image_id, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"}
            )
            continue
        if any(digest in getattr(other, "ext_references", ()) for other in repository.images):
            failures.append(
                {
                    "imageId": image_id,
                    "failureCode": "ImageReferencedByManifestList",
                    "failureReason": "Requested image is referenced by an image index",
                }
            )
            continue
        repository.images.remove(image)
        deleted += [{"imageDigest": digest, "imageTag": tag} for tag in image.image_tags] or [{"imageDigest": digest}]
    return ActionResult({"imageIds": deleted, "failures": failures})


RESPONSE_METHODS = {function.__name__: function for function in (describe_images, batch_get_image, batch_delete_image)}
