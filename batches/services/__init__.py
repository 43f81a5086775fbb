"""Writes of the manufacturing record. Keyword-only, typed, role-checked, audited, one transaction each.

Modules: products (product, storage), sources (donor, banks), cultures (culture, passage, harvest),
lots (pooling, processing, transitions, hold), drying (freeze-drying), packaging (vials), vials (vial status),
records (verify, void).
"""
