"""Signatures are read-only everywhere: they are created by the signing services only."""

from django.contrib import admin

from cmlims.admin import ReadOnlyAdmin
from cmlims.esign.models import Signature, SigningFailure


@admin.register(Signature)
class SignatureAdmin(ReadOnlyAdmin):
    list_display = ("signed_at", "printed_name", "meaning", "content_type", "object_id", "reason")
    list_filter = ("meaning",)
    search_fields = ("printed_name", "signer__username", "object_id")
    list_select_related = ("content_type",)
    readonly_fields = [f.name for f in Signature._meta.fields]


@admin.register(SigningFailure)
class SigningFailureAdmin(ReadOnlyAdmin):
    list_display = ("user", "consecutive", "locked_until")
    readonly_fields = ("user", "consecutive", "locked_until")
