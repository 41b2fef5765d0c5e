"""Unpack llama.cpp's LoRA → GGUF converter from the llama-cpp-python source distribution.

convert_lora_to_gguf.py needs convert_hf_to_gguf.py, the conversion/ package and the
gguf-py it was written against, all from the same sdist as the installed llama-cpp-python.
Idempotent; prints where the tools are, or why they are not (the product then serves
adapters with the transformers backend and says so).
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / "var" / "llamacpp-tools"
WANTED = ("convert_lora_to_gguf.py", "convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def main() -> int:
    try:
        version = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        print("llama.cpp tools: llama-cpp-python is not installed; skipping")
        return 0
    marker = DEST / ".version"
    if marker.exists() and marker.read_text().strip() == version:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"llama-cpp-python=={version}",
                "-d",
                tmp,
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        archives = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if done.returncode or not archives:
            print(f"llama.cpp tools: could not fetch the sdist: {done.stderr.strip()[-300:]}")
            return 0
        staging = Path(tmp) / "out"
        prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
        with tarfile.open(archives[0]) as tar:
            members = [
                m
                for m in tar.getmembers()
                if m.name.startswith(prefix) and m.name[len(prefix) :].startswith(WANTED)
            ]
            for m in members:
                m.name = m.name[len(prefix) :]
            tar.extractall(staging, members=members, filter="data")
        shutil.rmtree(DEST, ignore_errors=True)
        DEST.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), DEST)
    marker.write_text(version)
    print(f"llama.cpp tools: {DEST} (llama-cpp-python {version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
