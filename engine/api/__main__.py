"""``python -m engine.api [--host 127.0.0.1] [--port 8787] [--db URL]``: same as ``python -m engine serve``."""

import sys

from engine.api.server import main

sys.exit(main())
