#!/bin/sh
# Install llama-cpp-python built without OpenMP into the virtualenv whose python is $1.
#
# With OpenMP, llama.cpp decoded at a third of its speed when called from any thread but
# the process's main one, and the product generates in worker threads (measured on 2
# cores: 105 tokens/s on the main thread, 32 on another). pip's wheel cache is keyed by the
# sdist alone and would hand back an OpenMP build, so the wheel lives in a wheelhouse of its
# own, built once per machine. Failure is not fatal: GGUF models then run on transformers.
set -u
PY="$1"
REQ="requirements-llamacpp.txt"
WHEELHOUSE="${LLAMACPP_WHEELHOUSE:-$HOME/.cache/expertsite/wheels/llamacpp-no-openmp}"

from_wheelhouse() {
  "$PY" -m pip install --quiet --no-index --find-links "$WHEELHOUSE" --no-deps --force-reinstall -r "$REQ" 2>/dev/null
}

if ! from_wheelhouse; then
  echo "llama-cpp-python: building from source without OpenMP, once per machine (about 6 minutes)"
  if ! CMAKE_ARGS="-DGGML_OPENMP=OFF ${LLAMACPP_CMAKE_ARGS:-}" "$PY" -m pip wheel --quiet --no-deps \
      --no-cache-dir -w "$WHEELHOUSE" -r "$REQ" || ! from_wheelhouse; then
    echo "llama-cpp-python did not build: GGUF models will run on transformers (slower)" >&2
    exit 0
  fi
fi
# Its own dependencies (numpy, jinja2, diskcache, ...) from the index as usual.
"$PY" -m pip install --quiet -r "$REQ"
