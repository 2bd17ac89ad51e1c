"""Pure curation: validate, classify, dedup, sample, split, ICL selection and dataset formats.

Nothing here does I/O or imports Temporal, clients or platforms: functions take and return plain
data, so they are fast and unit-tested hard.
"""
