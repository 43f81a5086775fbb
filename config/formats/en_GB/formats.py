"""Date formats of the site (en-gb): every time shown in the admin names its zone (TIME_ZONE), "2 Dec 2026, 14:05 CET".
Only the output formats change; input formats stay Django's en_GB ones."""

DATETIME_FORMAT = "j M Y, H:i T"
SHORT_DATETIME_FORMAT = "d/m/Y H:i T"
