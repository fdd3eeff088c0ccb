"""Community bundles (rec-registry v0.7 format): parse, validate, import and export."""
