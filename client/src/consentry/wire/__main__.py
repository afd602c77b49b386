"""Print wire schema v1 as JSON Schema: ``python -m consentry.wire``."""

import json
import sys

from consentry.wire.schema import json_schema

sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
