"""Reads of signatures: the ones on a record, newest first per meaning."""

from django.contrib.contenttypes.models import ContentType
from django.db import models

from cmlims.esign.models import Signature


def signatures_of(subject: models.Model, *, meanings: list[str] | None = None):
    """Every signature on ``subject`` (oldest first), signer joined."""
    qs = Signature.objects.select_related("signer").filter(
        content_type=ContentType.objects.get_for_model(type(subject)), object_id=str(subject.pk)
    )
    if meanings:
        qs = qs.filter(meaning__in=meanings)
    return qs.order_by("signed_at", "id")


def signatures_by_subject_ids(model: type[models.Model], ids, *, meanings: list[str]) -> dict[str, list[Signature]]:
    """{object_id: [signatures]} for many records of one model in one query (list pages)."""
    out: dict[str, list[Signature]] = {}
    qs = Signature.objects.select_related("signer").filter(
        content_type=ContentType.objects.get_for_model(model), object_id__in=[str(i) for i in ids],
        meaning__in=meanings,
    ).order_by("signed_at", "id")
    for signature in qs:
        out.setdefault(signature.object_id, []).append(signature)
    return out
