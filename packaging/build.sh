#!/usr/bin/env bash
# Build the self-contained Linux application folder dist/unlearn-studio/ with PyInstaller,
# then check it: the binary prints its version; opens the main window offscreen; loads a tiny random
# model and SAE (made in a temporary folder) and quits; starts a short run and quits during it;
# and (when the demo model is in the user data folder) describes the demo model and SAE. Every
# window check ends with the File menu's Quit, as a user's does, and must exit with code 0.
#
#   bash packaging/build.sh            # build + check
#   bash packaging/build.sh --check    # only check an existing dist/unlearn-studio/
#
# Environment: PYTHON (default .venv/bin/python, else python3), NICE (default 10: the build is
# CPU-heavy), SKIP_INFO=1 skips the `info --demo` check.
# The build takes about 5 minutes on 2 free cores (25-40 on a busy machine), the checks a few minutes;
# the folder is about 1.3 GB in 7,600 files (see docs/guide.md, "Installing").
set -euo pipefail
. "$(dirname "$0")/find_python.sh"
NICE=${NICE:-10}
DIST="$ROOT/dist/unlearn-studio"
BIN="$DIST/unlearn-studio"

if [ "${1:-}" != "--check" ]; then
  "$PY" -c "import unlearn_studio, PySide6, torch" \
    || { echo "build.sh: install the project first (bash scripts/setup.sh)" >&2; exit 1; }
  # A Qt binding that loses references (PySide6 6.12.0 on Python 3.11) builds an app that aborts: say so now.
  "$PY" -c "from unlearn_studio.gui.app import check_bindings; check_bindings()" || exit 1
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

# Each window check runs in its own data folder (never the user's saved layout) and must exit 0:
# an abort while the interpreter shuts down (issue 18) exits 134.
run_window_check() {  # NAME, then VAR=value settings for the launcher's check mode
  local name=$1; shift
  echo "== $name, offscreen"
  set +e
  env UNLEARN_STUDIO_DATA="$CHECK_DIR/data-$name" "$@" timeout 300 "$BIN" > "$CHECK_DIR/$name.txt" 2>&1
  local status=$?
  set -e
  grep -v "propagateSizeHints" "$CHECK_DIR/$name.txt" || true
  echo "build.sh: $name: exit code $status"
  [ "$status" = 0 ] || { echo "build.sh: the $name check did not exit with code 0" >&2; exit 1; }
}

run_window_check window UNLEARN_STUDIO_SMOKE_MS=1500 UNLEARN_STUDIO_SMOKE_SHOT="$ROOT/build/pyinstaller/smoke.png"
grep -q "visible=True" "$CHECK_DIR/window.txt" || { echo "build.sh: the main window did not show" >&2; exit 1; }
grep -q "resources at $DIST/_internal/unlearn_studio/resources" "$CHECK_DIR/window.txt" \
  || { echo "build.sh: the bundled resources were not used" >&2; exit 1; }

# A tiny random model and SAE (tests/tiny.py, made with the build's Python): loading takes seconds.
(cd "$ROOT" && "$PY" -c "import sys; from pathlib import Path; from tests.tiny import make_model_folder, make_sae_folder
make_model_folder(Path(sys.argv[1])); make_sae_folder(Path(sys.argv[2]))" "$CHECK_DIR/tiny-model" "$CHECK_DIR/tiny-sae") >/dev/null 2>&1 \
  || { echo "build.sh: could not make the tiny test model" >&2; exit 1; }
TINY=(UNLEARN_STUDIO_SMOKE_MODEL="$CHECK_DIR/tiny-model" UNLEARN_STUDIO_SMOKE_SAE="$CHECK_DIR/tiny-sae")
run_window_check quit-loaded UNLEARN_STUDIO_SMOKE_QUIT=loaded "${TINY[@]}"
grep -q "job running: none" "$CHECK_DIR/quit-loaded.txt" || { echo "build.sh: the model did not load" >&2; exit 1; }
run_window_check quit-during-run UNLEARN_STUDIO_SMOKE_QUIT=run "${TINY[@]}"
grep -q "job running: run" "$CHECK_DIR/quit-during-run.txt" || { echo "build.sh: the run did not start" >&2; exit 1; }

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
