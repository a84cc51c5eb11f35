"""Reads Prometheus' text exposition format on stdin with prometheus_client's own parser (which
raises on anything malformed) and prints what it found as JSON: each family's type, and every
sample with its labels and value."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = {}
samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = family.type
    samples += [{"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples]
# A NaN (a value the process could not read) fails here, and so the test.
json.dump({"families": families, "samples": samples}, sys.stdout, allow_nan=False)
