"""Shipping: consignees, shipments of released vials, chain of custody, cold chain, receipt and recall."""
