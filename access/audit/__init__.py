"""The access log: the hash-chained entries, their anchoring on chain, verification and export, and
break-glass (emergency access that is always logged and reviewed)."""
