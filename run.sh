#!/usr/bin/env bash
# Set everything up (first time only) and open Unlearn Studio on the embedded demo model.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec .venv/bin/unlearn-studio "$@"
