"""Serializer fields every API body uses where DRF's own would guess."""

import datetime as dt

from django.db import models
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

NO_OFFSET = "has no UTC offset (add Z or ±hh:mm): local times are ambiguous"
OUT_OF_RANGE = "is out of range once converted to UTC"


def offset_missing(value) -> bool:
    """A time (ISO text or datetime) given without its UTC offset; text that is no time at all is not this
    check's to refuse (the field's own message says so)."""
    if isinstance(value, str) and value.strip():
        try:
            value = parse_datetime(value.strip())
        except ValueError:
            return False
    return isinstance(value, dt.datetime) and value.tzinfo is None


def utc_out_of_range(value: dt.datetime) -> bool:
    """0001-01-01T00:00+01:00 is a valid time with its zone that does not exist in UTC."""
    try:
        value.astimezone(dt.UTC)
    except OverflowError:
        return True
    return False


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time with its offset. DRF reads a time without one in the server's zone, which is a guess
    (the server's zone is not necessarily the lab's): a GMP record's time is refused instead, naming the field."""

    default_error_messages = {"naive": NO_OFFSET, "out_of_range": OUT_OF_RANGE}

    def to_internal_value(self, value):
        if offset_missing(value):
            self.fail("naive")
        parsed = super().to_internal_value(value)
        if utc_out_of_range(parsed):
            self.fail("out_of_range")
        return parsed


class InputModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose date-time fields need an offset (``AwareDateTimeField``)."""

    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping,
                                models.DateTimeField: AwareDateTimeField}
