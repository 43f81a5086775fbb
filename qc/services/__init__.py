"""QC write services: specifications, results (entry, correction, retest, approval, import), hold and sign-off."""
