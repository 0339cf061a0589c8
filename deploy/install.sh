#!/bin/sh
# Install what serving needs into a fresh virtual environment: the pinned, hash-checked packages of
# deploy/requirements.txt and nothing else (no torch, no training extras, no compiler).
# The Dockerfile runs this script (make image-test builds it and checks the result).
#   usage: deploy/install.sh VENV_DIR
set -eu
venv="${1:?usage: install.sh VENV_DIR}"
here="$(dirname "$0")"
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --no-cache-dir --disable-pip-version-check --quiet \
    --require-hashes --only-binary=:all: -r "$here/requirements.txt"
# the image installs nothing later: pip and setuptools would only be attack surface and 24 MB
"$venv/bin/python" -m pip uninstall --yes --quiet --disable-pip-version-check pip setuptools
