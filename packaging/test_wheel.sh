#!/usr/bin/env bash
# Build the wheel, install it into a fresh virtual environment outside the repository, and check
# that it carries its resources and runs `unlearn-studio --version` and `unlearn-studio info --demo`.
#
#   bash packaging/test_wheel.sh
#
# Environment: PYTHON (the interpreter for the build and the new venv; default .venv/bin/python,
# else python3), KEEP_VENV=1 keeps the temporary venv and prints its path.
# The demo model must already be in the user data folder (bash scripts/setup.sh fetches it);
# `info --demo` also needs the demo SAE in resources/demo_sae/ (it then travels in the wheel).
# Takes a few minutes: the new venv installs torch and every dependency.
set -euo pipefail
. "$(dirname "$0")/find_python.sh"
fail() { echo "test_wheel.sh: FAIL: $*" >&2; exit 1; }

# 1. The wheel.
"$PY" -c "import build" 2>/dev/null || "$PY" -m pip install -q "build>=1.2"
rm -f dist/unlearn_studio-*.whl
mkdir -p build
nice -n 10 "$PY" -m build --wheel --outdir dist . > build/wheel.log 2>&1 || { tail -30 build/wheel.log; fail "python -m build --wheel"; }
WHEEL=$(ls dist/unlearn_studio-*.whl 2>/dev/null | head -1)
[ -n "$WHEEL" ] || fail "no wheel in dist/ (see build/wheel.log)"
echo "wheel: $WHEEL ($(du -h "$WHEEL" | cut -f1))"

# 2. It carries resources/ as unlearn_studio/resources/.
"$PY" - "$WHEEL" "$ROOT/resources" <<'PYEOF'
import sys, zipfile
from pathlib import Path
wheel, resources = sys.argv[1], Path(sys.argv[2])
names = set(zipfile.ZipFile(wheel).namelist())
required = ["entities/known.json", "entities/unknown.json", "entities/templates.json",
            "icons/unlearn-studio.svg", "icons/unlearn-studio.png", "unlearn-studio.desktop"]
if (resources / "demo_sae").is_dir():
    required += [f"demo_sae/{p.relative_to(resources / 'demo_sae')}" for p in (resources / "demo_sae").rglob("*") if p.is_file()]
else:
    print("note: resources/demo_sae/ does not exist yet, so the wheel has no demo SAE")
shipped = sorted(str(p.relative_to(resources)) for p in resources.rglob("*") if p.is_file())
missing = [r for r in sorted(set(required) | set(shipped)) if f"unlearn_studio/resources/{r}" not in names]
for r in sorted(set(required) | set(shipped)):
    print(("  ok      " if r not in missing else "  MISSING ") + f"unlearn_studio/resources/{r}")
if missing:
    sys.exit(f"test_wheel.sh: FAIL: the wheel lacks {len(missing)} resource file(s)")
PYEOF

# 3. A fresh venv outside the repository.
WORK=$(mktemp -d)
if [ "${KEEP_VENV:-0}" = 1 ]; then echo "venv kept at $WORK/venv"; else trap 'rm -rf "$WORK"' EXIT; fi
"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q --upgrade pip
# The CPU build of torch first (it is on this machine's disk); a bare `torch` would pull CUDA.
nice -n 10 "$VPY" -m pip install -q torch==2.13.0
nice -n 10 "$VPY" -m pip install -q "$ROOT/$WHEEL"

cd "$WORK"
export HF_HUB_OFFLINE=1
where=$("$VPY" -c "import unlearn_studio, unlearn_studio.engine.paths as p; print(unlearn_studio.__file__); print(p.resources_dir())")
echo "$where"
case "$where" in *"$ROOT"*) fail "the new venv imported the checkout, not the wheel";; esac
case "$where" in *site-packages/unlearn_studio/resources*) ;; *) fail "resources_dir() is not inside the installed package";; esac

echo "== unlearn-studio --version"
version=$("$WORK/venv/bin/unlearn-studio" --version)
echo "$version"
expected=$("$PY" -c "import sys; sys.path.insert(0, '$ROOT'); import unlearn_studio; print(unlearn_studio.__version__)")
[ "$version" = "unlearn-studio $expected" ] || fail "expected 'unlearn-studio $expected'"

echo "== unlearn-studio --quiet info --demo"
"$WORK/venv/bin/unlearn-studio" --quiet info --demo > "$WORK/info.json" || fail "info --demo exited $?"
head -c 2000 "$WORK/info.json"; echo
"$VPY" -c "import json, sys; json.load(open(sys.argv[1]))" "$WORK/info.json" || fail "info --demo did not print JSON"
echo "test_wheel.sh: OK"
