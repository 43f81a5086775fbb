"""B1–B5, B8–B10 (issue 14) against the dataset on the configured database: each a measured path and its floor.

Nothing here writes to the dataset but the released 30-result lots of B5 and B1s/B2f (``dataset_coa``, built
once through the services) and those lots' stored signature checks (derived state: B1s/B2f refresh them, B1t/B2t
mark them stale). B6 (CSV import) is in ``bench_import``, B7 (Celery fan-out) in
``bench_celery``: see their docstrings for what each writes and undoes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os

import orjson

from benchmarks.harness import Case

PAGE = 500
LABELS = 1_000


def _client(username: str):
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(SERVER_NAME=settings.ALLOWED_HOSTS[0])
    client.force_login(get_user_model().objects.get(username=username))
    return client


def _get(client, url: str):
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    return response


def _sql(query: str, params: list | None = None) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(query, params or [])
        return cursor.fetchall()


_VIAL_COUNTS = ", ".join(
    f"(SELECT COUNT(*) FROM batches_vial v WHERE v.lot_id = l.id AND v.status = '{s}' AND v.voided_at IS NULL)"
    for s in ("available", "allocated", "shipped", "received", "destroyed"))


def lot_cases() -> list[Case]:
    """B1 (API lot list) and B2 (admin changelist: first and last page by status, search by vial serial)."""
    from django.template import engines

    from batches.models import CMLot, LotStatus, Vial
    from cmlims.esign.services import signature_checks_refresh

    api, staff = _client("qc1"), _client("lab1")
    lot_sql = (f"SELECT l.lot_number, p.name, p.gtin, l.status, l.on_hold, l.hold_reason, l.expiry, "  # noqa: S608
               f"l.volume_in_ml, l.volume_out_ml, l.yield_percent, l.created_at, {_VIAL_COUNTS} "
               f"FROM batches_cmlot l JOIN batches_product p ON p.id = l.product_id "
               f"WHERE l.voided_at IS NULL {{where}} ORDER BY l.id DESC LIMIT %s OFFSET %s")

    from batches.lifecycle import LOT_PIPELINE

    statuses = ("available", "allocated", "shipped", "received", "destroyed")
    moves = {status: LOT_PIPELINE.allowed_targets(status, automatic=False) for status in LotStatus.values}

    def cents(value):
        return None if value is None else f"{value:.2f}"

    def api_floor(where: str = "", params: tuple = (), size: int = PAGE) -> bytes:
        # The API's payload (keys, decimals as text, ISO dates, UTC times with Z), page envelope included.
        items = [{"lot_number": r[0], "product": {"name": r[1], "gtin": r[2]}, "status": r[3], "on_hold": r[4],
                  "hold_reason": r[5], "expiry": r[6], "volume_in_ml": cents(r[7]), "volume_out_ml": cents(r[8]),
                  "yield_percent": cents(r[9]), "created_at": r[10], "vials": dict(zip(statuses, r[11:], strict=True)),
                  "release": None, "signoffs": [], "allowed_transitions": list(moves[r[3]])}
                 for r in _sql(lot_sql.format(where=where), [*params, size, 0])]
        return orjson.dumps({"next": None, "previous": None, "results": items}, option=orjson.OPT_UTC_Z)

    from django.contrib import admin

    status = "packaged"
    per_page = admin.site._registry[CMLot].list_per_page  # the rows the changelist shows, page for page
    total = CMLot.objects.filter(status=status, voided_at__isnull=True).count()
    last = max(1, -(-total // per_page))
    serial = Vial.objects.order_by("-id").values_list("serial", flat=True).first()
    template = engines["django"].from_string(
        "<table>{% for r in rows %}<tr>{% for c in r %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</table>")

    # The changelist's own columns (no vial counts: it shows none) with each lot's sign-offs, as it lists them;
    # the page's ids first, so a deep page skips ids, not rows with their sign-offs looked up.
    from django.contrib.contenttypes.models import ContentType

    lot_type = ContentType.objects.get_for_model(CMLot).pk
    changelist_sql = (
        "WITH page AS (SELECT l.id FROM batches_cmlot l WHERE l.voided_at IS NULL {where} "
        "ORDER BY l.id DESC LIMIT %s OFFSET %s) "
        "SELECT l.lot_number, p.name, l.status, l.on_hold, l.volume_in_ml, l.volume_out_ml, l.yield_percent, "
        "l.expiry, (SELECT string_agg(s.printed_name || ' · ' || s.meaning, ', ' ORDER BY s.signed_at, s.id) "
        "FROM esign_signature s WHERE s.content_type_id = %s AND s.object_id = l.id::text "
        "AND s.meaning IN ('released', 'rejected', 'recalled')) "
        "FROM page JOIN batches_cmlot l ON l.id = page.id JOIN batches_product p ON p.id = l.product_id "
        "ORDER BY l.id DESC")

    def admin_floor(where: str, params: list, offset: int) -> None:
        template.render({"rows": _sql(changelist_sql.format(where=where), [*params, per_page, offset, lot_type])})

    by_status = "AND l.status = %s"
    by_serial = "AND l.id IN (SELECT lot_id FROM batches_vial WHERE serial = %s)"
    return [
        *fixed_cost_cases(api, staff, template),
        Case("B1", f"GET /api/v1/lots/?page_size={PAGE}",
             lambda: _get(api, f"/api/v1/lots/?page_size={PAGE}"), api_floor, 1.5,
             note="floor: one SQL query for the same fields, the same items, orjson",
             before=signature_checks_refresh),  # its first page holds the signed lots: their steady state
        Case("B2a", "lot changelist, first page, status=packaged",
             lambda: _get(staff, f"/admin/batches/cmlot/?status__exact={status}"),
             lambda: admin_floor(by_status, [status], 0), 2.0),
        Case("B2b", f"lot changelist, last page ({last}), status=packaged",
             lambda: _get(staff, f"/admin/batches/cmlot/?status__exact={status}&p={last}"),
             lambda: admin_floor(by_status, [status], (last - 1) * per_page), 2.0),
        Case("B2c", "lot changelist, search by vial serial",
             lambda: _get(staff, f"/admin/batches/cmlot/?q={serial}"),
             lambda: admin_floor(by_serial, [serial], 0), 2.0),
        *signed_page_cases(api, staff, api_floor, admin_floor),
        *audit_list_cases(template),
    ]


def fixed_cost_cases(api, staff, template) -> list[Case]:
    """R1/R2, reference figures (no target): what any API answer and any admin list cost on this machine, the
    smallest of each against the same one-query floors as B1 and B2. A floor of 1 ms cannot be met within 2× by
    a page whose framework alone takes longer; these say how much longer."""
    user_sql = ("SELECT u.username, u.first_name, u.last_name, u.email, u.is_superuser, g.name FROM auth_user u "
                "LEFT JOIN auth_user_groups ug ON ug.user_id = u.id LEFT JOIN auth_group g ON g.id = ug.group_id "
                "WHERE u.username = %s")
    locations_sql = ("SELECT l.code, l.name, l.kind, p.code, l.temperature_min_c, l.temperature_max_c "
                     "FROM batches_storagelocation l LEFT JOIN batches_storagelocation p ON p.id = l.parent_id "
                     "WHERE l.voided_at IS NULL ORDER BY l.code")

    def me_floor() -> bytes:
        rows = _sql(user_sql, ["qc1"])
        u = rows[0]
        return orjson.dumps({"username": u[0], "first_name": u[1], "last_name": u[2],
                             "printed_name": f"{u[1]} {u[2]}", "email": u[3], "roles": [r[5] for r in rows if r[5]],
                             "is_superuser": u[4]})

    return [
        Case("R1", "GET /api/v1/me/ (the smallest API answer: who is asking)", lambda: _get(api, "/api/v1/me/"),
             me_floor, None, note="reference: the API's fixed cost (session, user with roles, middleware, DRF)"),
        Case("R2", "storage location changelist (the smallest admin list: 3 rows)",
             lambda: _get(staff, "/admin/batches/storagelocation/"),
             lambda: template.render({"rows": _sql(locations_sql)}), None,
             note="reference: the admin's fixed cost (header, sidebar, filters, actions, pagination)"),
    ]


def signed_page_cases(api, staff, api_floor, admin_floor) -> list[Case]:
    """B1s/B2f: a page of released lots with their sign-offs' "changed after signing" state, as a real site's
    lists are mostly released lots (the clones carry no signatures): read from each signature's stored check,
    fresh as the refresh task leaves it (the steady state). B1t/B2t: the same page just after a write to each
    lot's records (every check stale), so every signature is checked from its records now (results,
    investigations, genealogy, review), until the refresh task stores the answers again. The lots are B5's
    kind (``dataset_coa.coa_lots``, built once through the services: 30 approved results each),
    ``BENCH_SIGNED_LOTS`` of them (default 20). Floors: B1's and B2's, which read no signature."""
    from benchmarks.dataset_coa import coa_lots
    from cmlims.esign.models import SignatureCheck
    from cmlims.esign.services import signature_checks_refresh

    count = int(os.environ.get("BENCH_SIGNED_LOTS", "20"))
    lots = coa_lots(count)
    product = lots[0].product_id
    checks = SignatureCheck.objects.filter(subject_id__in=[str(lot.pk) for lot in lots])

    def stale() -> None:
        checks.update(stale=True)

    by_product = "AND l.product_id = %s"
    list_url = f"/api/v1/lots/?product={product}&page_size=50"
    admin_url = f"/admin/batches/cmlot/?product__id__exact={product}"
    return [
        Case("B1s", f"GET /api/v1/lots/?product=…&page_size=50 ({count} released lots, stored checks)",
             lambda: _get(api, list_url), lambda: api_floor(by_product, (product,), 50), 1.5,
             note="floor: B1's query for the same lots, no signature read", before=signature_checks_refresh),
        Case("B2f", f"lot changelist, the same {count} released lots (stored checks)",
             lambda: _get(staff, admin_url), lambda: admin_floor(by_product, [product], 0), 2.0,
             before=signature_checks_refresh),
        Case("B1t", f"B1s just after a write to each lot (every check stale: {count} signatures rebuilt)",
             lambda: _get(api, list_url), lambda: api_floor(by_product, (product,), 50), 1.5,
             note="floor: B1's query for the same lots, no signature read", before=stale),
        Case("B2t", f"B2f just after a write to each lot (every check stale: {count} signatures rebuilt)",
             lambda: _get(staff, admin_url), lambda: admin_floor(by_product, [product], 0), 2.0, before=stale),
    ]


def audit_list_cases(template) -> list[Case]:
    """B2d/B2e: the audit trail's list (QC officers and inspectors review it, Annex 11 §9), first page whole and
    filtered by object type, against its 100 rows by one query in the minimal template (not in the issue's
    table; the same target as the lot list)."""
    from cmlims.admin import AuditEntryAdmin

    qc = _client("qc1")
    per_page = AuditEntryAdmin.list_per_page
    rows_sql = ("SELECT sequence, at, username, action, object_type, object_repr, reason, request_id "
                "FROM cmlims_auditentry {where} ORDER BY sequence DESC LIMIT %s")

    def floor(where: str, params: list) -> None:
        template.render({"rows": _sql(rows_sql.format(where=where), [*params, per_page])})

    return [
        Case("B2d", "audit trail list, first page (QC officer)", lambda: _get(qc, "/admin/cmlims/auditentry/"),
             lambda: floor("", []), 2.0),
        Case("B2e", "audit trail list, filtered by object type (lots)",
             lambda: _get(qc, "/admin/cmlims/auditentry/?object_type=batches.cmlot"),
             lambda: floor("WHERE object_type = %s", ["batches.cmlot"]), 2.0),
    ]


def trace_cases() -> list[Case]:
    """B8: vial → donor, and donor → every vial and consignee (first 100 rows plus totals), top donor."""
    from django.db.models import Count

    from batches.models import HarvestContribution, Vial

    client = _client("qc1")
    serial = Vial.objects.order_by("-id").values_list("serial", flat=True).first()
    top = (HarvestContribution.objects.values("harvest__culture__bank__source__code")
           .annotate(n=Count("lot", distinct=True)).order_by("-n").first())
    code = top["harvest__culture__bank__source__code"]

    def vial_floor() -> None:
        json.dumps(_sql(
            "SELECT v.serial, v.status, l.lot_number, l.status, h.id, c.code, b.code, s.code "
            "FROM batches_vial v JOIN batches_cmlot l ON l.id = v.lot_id "
            "JOIN batches_harvestcontribution hc ON hc.lot_id = l.id JOIN batches_harvest h ON h.id = hc.harvest_id "
            "JOIN batches_culture c ON c.id = h.culture_id JOIN batches_cellbank b ON b.id = c.bank_id "
            "JOIN batches_cellsource s ON s.id = b.source_id WHERE v.serial = %s", [serial]), default=str)

    def donor_floor() -> None:
        json.dumps(_sql(
            "WITH lots AS (SELECT DISTINCT hc.lot_id FROM batches_harvestcontribution hc "
            "JOIN batches_harvest h ON h.id = hc.harvest_id JOIN batches_culture c ON c.id = h.culture_id "
            "JOIN batches_cellbank b ON b.id = c.bank_id JOIN batches_cellsource s ON s.id = b.source_id "
            "WHERE s.code = %s), "
            "page AS (SELECT v.serial, v.status, l.lot_number FROM batches_vial v JOIN lots ON lots.lot_id = v.lot_id "
            "JOIN batches_cmlot l ON l.id = v.lot_id WHERE v.voided_at IS NULL ORDER BY v.lot_id, v.sequence "
            "LIMIT 100) "
            "SELECT (SELECT json_agg(page) FROM page), (SELECT COUNT(*) FROM lots), "
            "(SELECT COUNT(*) FROM batches_vial v JOIN lots ON lots.lot_id = v.lot_id WHERE v.voided_at IS NULL)",
            [code]), default=str)

    return [
        Case("B8a", "vial → donor trace (API)", lambda: _get(client, f"/api/v1/vials/{serial}/trace/"),
             vial_floor, 2.0, target_text="≤ 2×; p50 < 20 ms", max_ms=20.0),
        Case("B8b", f"donor → vials and consignees (API), top donor {code} ({top['n']:,} lots)",
             lambda: _get(client, f"/api/v1/donors/{code}/trace/"), donor_floor, 2.0,
             target_text="≤ 2×; p50 < 20 ms", max_ms=20.0,
             note="the first 100 lots and vials plus totals and every consignee"),
    ]


def label_cases() -> list[Case]:
    """B3 (PDF) and B4 (ZPL) for 1,000 vial labels."""
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas
    from reportlab.pdfgen.pathobject import PDFPathObject

    from batches.documents.labels import VialLabel
    from cmlims.documents import labels, zpl
    from cmlims.documents.symbols import gs1_datamatrix, human_readable

    data = [VialLabel(product_name="MSC-CM lyophilisate 1 mL", gtin="09506000134352", lot="CM26-0042",
                      expiry=dt.date(2027, 6, 30), serial=f"CM260042{n:06d}", storage="Store at -25 to -15 °C",
                      content="1 mL fill, freeze-dried", manufacturer="cmlims demo site", status="QUARANTINE")
            for n in range(LABELS)]
    template = labels.TEMPLATES["vial"]

    def one_path(symbol) -> PDFPathObject:
        # Pre-encoded by zint, and each symbol made ONE path object of all its module rectangles, in module
        # units (y up): the floor pays neither the encoding nor building the path, only drawing it.
        path = PDFPathObject()
        for r in symbol.rectangles:
            path.rect(r.x, symbol.height - r.y - r.height, r.width, r.height)
        return path

    symbols = [gs1_datamatrix(d.ais()) for d in data]
    paths = [(one_path(symbol), 17 * mm / symbol.width, symbol.height) for symbol in symbols]
    hri = [human_readable(d.ais()) for d in data]

    def pdf_floor() -> bytes:
        # Bare ReportLab: the vial layout's text lines (the same strings, fonts and the sizes the layout fits them
        # to: the name and the HRI line are shrunk), the status box and each symbol drawn as its one path, placed
        # by one transform.
        buffer = io.BytesIO()
        canvas = Canvas(buffer, pagesize=template.size, pageCompression=1)
        for index, (d, (path, module, height), line) in enumerate(zip(data, paths, hri, strict=True)):
            if index:
                canvas.showPage()
            canvas.saveState()
            canvas.translate(2 * mm, 23.5 * mm - height * module)
            canvas.scale(module, module)
            canvas.drawPath(path, stroke=0, fill=1)
            canvas.restoreState()
            canvas.setFont("Helvetica-Bold", 6)
            canvas.drawString(21 * mm, 21 * mm, d.product_name)
            canvas.setFont("Helvetica", 6.5)
            canvas.drawString(21 * mm, 17.6 * mm, f"LOT {d.lot}")
            canvas.drawString(21 * mm, 14.6 * mm, f"SN {d.serial}")
            canvas.drawString(21 * mm, 11.6 * mm, f"EXP {d.expiry:%Y-%m-%d}")
            canvas.setFont("Helvetica", 5)
            canvas.drawString(21 * mm, 8.8 * mm, d.storage)
            canvas.drawString(21 * mm, 6.4 * mm, d.content)
            canvas.setFont("Helvetica", 4.5)
            canvas.drawString(21 * mm, 4 * mm, d.manufacturer)
            canvas.setFont("Helvetica", 3.95)
            canvas.drawString(2 * mm, 1.2 * mm, line)
            canvas.setLineWidth(0.6 * labels.PT * mm)
            canvas.rect(2 * mm, 3.2 * mm, 17 * mm, 2.8 * mm, stroke=1, fill=0)
            canvas.setFont("Helvetica-Bold", 6)
            canvas.drawCentredString(10.5 * mm, 3.9 * mm, d.status)
        canvas.save()
        return buffer.getvalue()

    _same_pages(labels.render_pdf(template, data), pdf_floor(), (0, LABELS - 1))

    def zpl_floor() -> str:
        # The same bytes as render_zpl (asserted below) by one f-string per label: the layout's positions, fonts
        # and blocks written out by hand, each text field escaped (^FH) with the same function, no validation.
        esc = zpl.escape_field
        block = "^FB220,1,0,L,0^FH^FD"
        return "".join([
            f"^XA^CI28^PW400^LL200^LH0,0^FO16,12^BXN,6,200,,,,_^FD_101{d.gtin}17{d.expiry:%y%m%d}10{d.lot}_121"
            f"{d.serial}^FS^FO168,17^A0N,20,20{block}{esc(d.product_name)}^FS^FO168,45^A0N,18,18{block}LOT "
            f"{esc(d.lot)}^FS^FO168,69^A0N,18,18{block}SN {esc(d.serial)}^FS^FO168,93^A0N,18,18{block}EXP "
            f"{d.expiry:%Y-%m-%d}^FS^FO168,119^A0N,14,14{block}{esc(d.storage)}^FS^FO168,138^A0N,14,14{block}"
            f"{esc(d.content)}^FS^FO168,158^A0N,13,13{block}{esc(d.manufacturer)}^FS^FO16,182^A0N,12,12"
            f"^FB368,1,0,L,0^FH^FD(01){d.gtin}(17){d.expiry:%y%m%d}(10){esc(d.lot)}(21){esc(d.serial)}^FS"
            f"^FO16,152^GB136,22,2^FS^FO16,156^A0N,17,17^FB136,1,0,C,0^FH^FD{esc(d.status)}^FS^XZ\n"
            for d in data])

    assert zpl_floor() == labels.render_zpl(template, data), "the B4 floor must write the measured side's bytes"

    return [
        Case("B3", f"{LABELS:,} vial labels to PDF", lambda: labels.render_pdf(template, data), pdf_floor, 1.5,
             items=LABELS),
        Case("B4", f"{LABELS:,} vial labels to ZPL", lambda: labels.render_zpl(template, data), zpl_floor, 2.0,
             target_text="≤ 2×; ≥ 20,000 labels/s", items=LABELS,
             min_per_second=20_000),
    ]


def _same_pages(measured: bytes, floor: bytes, pages: tuple[int, ...]) -> None:
    """B3's floor draws what the measured side draws: every page's text objects (font, size, position, string)
    the same, and on ``pages`` the same DataMatrix read back (pdfium renders, zxing-cpp decodes)."""
    import re
    import zlib

    import pypdfium2 as pdfium
    import zxingcpp
    from reportlab.lib.rl_accel import asciiBase85Decode

    def texts(pdf: bytes) -> list[list[tuple[bytes, bytes]]]:
        found = []
        for head, data in re.findall(rb"<<([^>]*)>>\nstream\r?\n(.*?)\r?\n?endstream", pdf, re.S):
            if b"/FlateDecode" not in head:
                continue
            ops = zlib.decompress(asciiBase85Decode(data) if b"/ASCII85Decode" in head else data)
            font, page = b"", []
            for text in re.findall(rb"BT .*? ET", ops, re.S):
                if b" Tf " in text:
                    font = text
                else:
                    page.append((font, text))
            found.append(sorted(page))
        return found

    def symbols(pdf: bytes) -> list[list[str]]:
        doc = pdfium.PdfDocument(pdf)
        try:
            return [[r.text for r in zxingcpp.read_barcodes(doc[i].render(scale=600 / 72).to_pil())] for i in pages]
        finally:
            doc.close()

    assert texts(floor) == texts(measured), "the B3 floor must draw the measured side's text"
    read = symbols(measured)
    assert symbols(floor) == read and all(read), ("the B3 floor must draw the measured side's symbols", read)


def audit_cases() -> list[Case]:
    """B9: verify_audit over the whole trail against a SHA-256 pass over the same stored bytes."""
    from cmlims.models import AuditEntry
    from cmlims.verification import audit_chain_verify

    entries = AuditEntry.objects.count()
    columns = ("sequence", "at", "user_id", "username", "action", "object_type", "object_id", "object_repr",
               "changes", "reason", "request_id", "prev_hash", "hash")

    def verify() -> None:
        report = audit_chain_verify()
        assert report.ok, report.summary()

    def floor() -> None:
        digest = hashlib.sha256()
        for row in AuditEntry.objects.order_by("sequence").values_list(*columns).iterator(chunk_size=5000):
            digest.update(repr(row).encode())

    return [Case("B9", f"verify_audit over {entries:,} entries", verify, floor, 3.0, items=entries, rounds=2)]


def coa_cases() -> list[Case]:
    """B5: the certificate of analysis of a released lot with 30 results (``dataset_coa``, built once per dataset
    through the services) against the same Report rendered from memory."""
    from django.contrib.auth import get_user_model

    from benchmarks.dataset_coa import coa_lot
    from cmlims.audit import chain_head
    from cmlims.documents.registry import BuildContext
    from cmlims.documents.reports import render_report
    from qc.documents import COA, build_coa, coa_report
    from qc.models import QCResult

    lot = coa_lot()
    results = QCResult.objects.filter(lot=lot).count()
    ctx = BuildContext(job_id=0, kind=COA, params={"lot_number": lot.lot_number},
                       requested_by=get_user_model().objects.get(username="qc1"), subject_type="batches.cmlot",
                       subject_id=str(lot.pk), chain_head=chain_head(), progress=lambda _percent: None)
    report, _lot = coa_report(ctx)  # read once: the floor renders the same content with no ORM
    return [Case("B5", f"certificate of analysis, lot {lot.lot_number} ({results} results)",
                 lambda: build_coa(ctx), lambda: render_report(report), 1.3,
                 target_text="≤ 1.3×; ms per certificate", items=1,
                 note="floor: the same certificate content, read once, rendered with no ORM")]


def home_cases() -> list[Case]:
    """B10: the QC and the lab start pages (/admin/) against the same counts by one SQL query each."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.in_bulk(["qc1", "lab1"], field_name="username")
    qc, lab = _client("qc1"), _client("lab1")
    pending = ("EXISTS (SELECT 1 FROM qc_qcresult r WHERE r.lot_id = l.id AND r.status = 'valid' "
               "AND r.approved_at IS NULL)")
    # Packaged lots, and of those the ones with results to approve: the EXISTS once per lot (the page shows
    # the difference as "waiting for results").
    qc_sql = (f"SELECT COUNT(*) FILTER (WHERE l.status = 'packaged'), "  # noqa: S608
              f"COUNT(*) FILTER (WHERE l.status = 'packaged' AND {pending}), "
              f"COUNT(*) FILTER (WHERE l.status = 'qc_complete'), "
              f"(SELECT COUNT(*) FROM qc_qcresult r WHERE r.status = 'valid' AND r.approved_at IS NULL "
              f"AND r.entered_by_id <> %s AND r.analyst_id <> %s) "
              f"FROM batches_cmlot l WHERE l.status IN ('packaged', 'qc_complete') AND l.voided_at IS NULL")
    steps = ", ".join(
        f"(SELECT COUNT(*) FROM {table} WHERE performed_by_id IS NOT NULL AND verified_by_id IS NULL "  # noqa: S608
        f"AND voided_at IS NULL AND performed_by_id <> %(user)s)"
        for table in ("batches_cellbank", "batches_culture", "batches_passage", "batches_harvest",
                      "batches_lyophilisationrun", "batches_packagingrun"))
    lab_sql = (f"SELECT COUNT(*) FILTER (WHERE l.status = 'pooled'), COUNT(*) FILTER (WHERE l.status = "  # noqa: S608
               f"'freeze_drying'), COUNT(*) FILTER (WHERE l.on_hold), {steps}, "
               f"COUNT(*) FILTER (WHERE l.pooled_by_id IS NOT NULL AND l.pool_verified_by_id IS NULL) "
               f"FROM batches_cmlot l WHERE l.voided_at IS NULL")
    template_text = "<table>{% for c in row %}<tr><td>{{ c }}</td></tr>{% endfor %}</table>"
    from django.template import engines

    template = engines["django"].from_string(template_text)
    qc_id, lab_id = users["qc1"].pk, users["lab1"].pk

    def qc_row(row: tuple) -> tuple:
        packaged, approval, *rest = row
        return (packaged - approval, approval, *rest)
    return [
        Case("B10a", "QC start page (/admin/ as a QC officer)", lambda: _get(qc, "/admin/"),
             lambda: template.render({"row": qc_row(_sql(qc_sql, [qc_id, qc_id])[0])}), 2.0,
             target_text="≤ 2×; constant query count"),
        Case("B10b", "lab start page (/admin/ as lab staff)", lambda: _get(lab, "/admin/"),
             lambda: template.render({"row": _sql(lab_sql, {"user": lab_id})[0]}), 2.0,
             target_text="≤ 2×; constant query count"),
    ]


def import_cases() -> list[Case]:
    from benchmarks.bench_import import import_cases

    return import_cases()


def celery_cases() -> list[Case]:
    from benchmarks.bench_celery import celery_cases

    return celery_cases()


GROUPS = {"lots": lot_cases, "trace": trace_cases, "home": home_cases, "labels": label_cases, "coa": coa_cases,
          "audit": audit_cases}
GROUPS["import"] = import_cases  # B6: benchmarks/bench_import.py
GROUPS["celery"] = celery_cases  # B7: benchmarks/bench_celery.py
GROWTH = ("B1", "B2a", "B2b", "B2c", "B8a", "B8b", "B10a", "B10b")
