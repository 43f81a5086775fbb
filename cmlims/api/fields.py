"""Serializer fields every API body uses where DRF's own would guess."""

import datetime as dt

from django.db import models
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

NO_OFFSET = "has no UTC offset (add Z or ±hh:mm): local times are ambiguous"


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time with its offset. DRF reads a time without one in the server's zone, which is a guess
    (the server's zone is not necessarily the lab's): a GMP record's time is refused instead, naming the field."""

    default_error_messages = {"naive": NO_OFFSET, "out_of_range": "is out of range once converted to UTC"}

    def to_internal_value(self, value):
        if isinstance(value, str) and value.strip():
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None  # DRF's own message says it is no date-time
            if parsed is not None and parsed.tzinfo is None:
                self.fail("naive")
        elif isinstance(value, dt.datetime) and value.tzinfo is None:
            self.fail("naive")
        parsed = super().to_internal_value(value)
        try:
            parsed.astimezone(dt.UTC)
        except OverflowError:
            self.fail("out_of_range")
        return parsed


class InputModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose date-time fields need an offset (``AwareDateTimeField``)."""

    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping,
                                models.DateTimeField: AwareDateTimeField}
