#!/usr/bin/env bash
# Set everything up (first time only) and run the whole test suite, demo-model tests included.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 UNLEARN_STUDIO_REQUIRE_DEMO=1
exec .venv/bin/python -m pytest -q "$@"
