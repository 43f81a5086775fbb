"""The core's own document kind: printer test labels (alignment and scan check before a print run) of any
registered label template, from the sample its app declares.

They carry GS1's published example GTIN or SSCC and the text TEST LABEL, and are not issued labels (no
LabelPrint rows): nothing of a real product is printed.
"""

from __future__ import annotations

from typing import Any

from cmlims.documents import labels
from cmlims.documents.registry import BuildContext, BuiltDocument, register_builder
from cmlims.exceptions import InvalidInput
from cmlims.roles import LAB_STAFF, SHIPPING_COORDINATOR, require_role

GS1_EXAMPLE_GTIN = "09506000134352"
GS1_EXAMPLE_SSCC = "095060001343528884"
TEST_TEXT = "TEST LABEL"
MAX_TEST_LABELS = 5000


def label_test_params(*, template: str, output_format: str, count: int, layout: str = "page") -> dict[str, Any]:
    """Validated parameters of a test-label job (400 naming the field otherwise)."""
    labels.template_get(template)
    if output_format not in ("pdf", "zpl"):
        raise InvalidInput("Unknown format.", fields={"format": ["must be pdf or zpl"]})
    if not 1 <= count <= MAX_TEST_LABELS:
        raise InvalidInput("Bad count.", fields={"count": [f"must be between 1 and {MAX_TEST_LABELS}"]})
    if layout not in labels.LAYOUTS:
        raise InvalidInput("Unknown layout.", fields={"layout": [f"must be one of {', '.join(labels.LAYOUTS)}"]})
    return {"template": template, "format": output_format, "count": count, "layout": layout}


def build_label_test_print(ctx: BuildContext) -> BuiltDocument:
    params = label_test_params(template=ctx.params["template"], output_format=ctx.params["format"],
                                count=int(ctx.params["count"]), layout=ctx.params.get("layout", "page"))
    template = labels.template_get(params["template"])
    items = [template.sample(i + 1) for i in range(params["count"])]

    def progress(done: int, total: int) -> None:
        ctx.progress(done * 99 // total)

    name = f"test-{template.name}-labels"
    if params["format"] == "zpl":
        content = labels.render_zpl(template, items, on_progress=progress).encode()
        return BuiltDocument(content, f"{name}.zpl", "application/zpl")
    content = labels.render_pdf(template, items, layout=params["layout"], title=name, on_progress=progress)
    return BuiltDocument(content, f"{name}.pdf", "application/pdf")


def _may_print_labels(user, params: dict) -> None:
    require_role(user, (LAB_STAFF, SHIPPING_COORDINATOR), "Printing test labels")


register_builder("label_test_print", build_label_test_print, "labels", _may_print_labels, title="printer test labels")
