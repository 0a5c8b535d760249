"""WideSearch-compatible scoring: table extraction, per-column metrics, item/row F1, judges."""
