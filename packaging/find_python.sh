# Sourced by build.sh and test_wheel.sh: cd to the repo root and set ROOT and PY (an absolute path
# to the Python to use: $PYTHON, else the project's .venv, else python3), since the checks run elsewhere.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
case "$PY" in /*) ;; */*) PY="$ROOT/$PY" ;; esac
