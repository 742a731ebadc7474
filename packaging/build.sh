#!/usr/bin/env bash
# Build the self-contained Linux application folder dist/unlearn-studio/ with PyInstaller,
# then check it: the binary prints its version, opens the main window offscreen, and (when the
# demo model is in the user data folder) describes the demo model and SAE.
#
#   bash packaging/build.sh            # build + check
#   bash packaging/build.sh --check    # only check an existing dist/unlearn-studio/
#
# Environment: PYTHON (default .venv/bin/python, else python3), NICE (default 10: the build is
# CPU-heavy), SKIP_INFO=1 skips the `info --demo` check.
# Takes about 10-20 minutes on 2 cores; the folder is about 1.5-2 GB (torch alone is ~750 MB;
# see docs/guide.md, "Installing").
set -euo pipefail
. "$(dirname "$0")/find_python.sh"
NICE=${NICE:-10}
DIST="$ROOT/dist/unlearn-studio"
BIN="$DIST/unlearn-studio"

if [ "${1:-}" != "--check" ]; then
  "$PY" -c "import unlearn_studio, PySide6, torch" \
    || { echo "build.sh: install the project first (bash scripts/setup.sh)" >&2; exit 1; }
  if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
    echo "build.sh: installing PyInstaller into $("$PY" -c 'import sys; print(sys.prefix)')"
    "$PY" -m pip install -q "pyinstaller>=6.10"
  fi
  "$PY" packaging/render_icon.py >/dev/null  # keep the PNG in step with the SVG
  start=$(date +%s)
  nice -n "$NICE" "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$ROOT/dist" --workpath "$ROOT/build/pyinstaller" packaging/unlearn-studio.spec
  echo "build.sh: built in $(( $(date +%s) - start )) s"
fi

[ -x "$BIN" ] || { echo "build.sh: $BIN is missing" >&2; exit 1; }
echo "build.sh: folder size $(du -sh "$DIST" | cut -f1) ($(find "$DIST" -type f | wc -l) files)"

# Every check runs from outside the repository, so nothing can come from the checkout.
CHECK_DIR=$(mktemp -d)
trap 'rm -rf "$CHECK_DIR"' EXIT
cd "$CHECK_DIR"
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1

echo "== $BIN --version"
version=$("$BIN" --version)
echo "$version"
expected=$(cd "$ROOT" && "$PY" -c "import unlearn_studio; print(unlearn_studio.__version__)")
[ "$version" = "unlearn-studio $expected" ] || { echo "build.sh: expected version $expected" >&2; exit 1; }

echo "== main window, offscreen"
# A separate data folder, so the check never touches the user's saved window layout.
UNLEARN_STUDIO_DATA="$CHECK_DIR/data" UNLEARN_STUDIO_SMOKE_MS=1500 \
  UNLEARN_STUDIO_SMOKE_SHOT="$ROOT/build/pyinstaller/smoke.png" \
  timeout 300 "$BIN" | tee "$CHECK_DIR/smoke.txt"
grep -q "visible=True" "$CHECK_DIR/smoke.txt" || { echo "build.sh: the main window did not show" >&2; exit 1; }
grep -q "resources at $DIST/_internal/unlearn_studio/resources" "$CHECK_DIR/smoke.txt" \
  || { echo "build.sh: the bundled resources were not used" >&2; exit 1; }

if [ "${SKIP_INFO:-0}" != 1 ]; then
  DEMO_DIR=$(cd "$ROOT" && "$PY" -c "from unlearn_studio.engine.paths import user_data_dir; print(user_data_dir() / 'models' / 'SmolLM2-135M-Instruct')")
  if [ -d "$DEMO_DIR" ] && [ -d "$DIST/_internal/unlearn_studio/resources/demo_sae" ]; then
    echo "== $BIN --quiet info --demo"
    timeout 600 "$BIN" --quiet info --demo > "$CHECK_DIR/info.json"
    head -c 1500 "$CHECK_DIR/info.json"; echo
    "$PY" -c "import json, sys; json.load(open(sys.argv[1]))" "$CHECK_DIR/info.json" \
      || { echo "build.sh: info --demo did not print JSON" >&2; exit 1; }
  else
    echo "build.sh: skipped info --demo (needs the demo model at $DEMO_DIR and resources/demo_sae/ in the build)"
  fi
fi
echo "build.sh: OK: $BIN"
