"""The record API: thin views over ehr.records (writes, the one door) and ehr.record_selectors (reads)."""
