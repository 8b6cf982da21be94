#!/usr/bin/env bash
# Print the Python interpreter the test suite installs into and runs with (scripts/test.sh):
# $PYTHON when set; else the active virtualenv's; else ./.venv's, created on first use — never
# the system's own Python, whatever `python3` comes first on PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -n "${PYTHON:-}" ]; then
    echo "$PYTHON"
elif [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
    echo "$VIRTUAL_ENV/bin/python"
else
    if [ ! -x .venv/bin/python ]; then
        echo "test.sh: creating the virtualenv .venv for the test suite" >&2
        python3 -m venv .venv >&2 || {
            echo "test.sh: 'python3 -m venv .venv' failed; activate a virtualenv or set PYTHON=/path/to/python" >&2
            exit 1
        }
    fi
    echo "$PWD/.venv/bin/python"
fi
