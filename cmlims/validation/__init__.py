"""The validation pack: the requirements register, the pytest marker that ties tests to it, the
traceability matrix built from a test run and the IQ/OQ report (README "Validation pack")."""
