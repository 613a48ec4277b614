"""Write the generated workflow/v1 JSON Schema to docs/workflow-v1.schema.json (or stdout with ``-``).

Run it after changing engine/model.py; tests/unit/test_workflow_schema.py fails until the file matches.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.workflow_schema import workflow_json_schema  # noqa: E402 - after the path is set

TARGET = ROOT / "docs" / "workflow-v1.schema.json"


def main(argv: list[str]) -> int:
    text = json.dumps(workflow_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if argv[1:2] == ["-"]:
        sys.stdout.write(text)
    else:
        TARGET.write_text(text, encoding="utf-8")
        print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
