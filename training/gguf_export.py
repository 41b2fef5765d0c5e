"""A trained peft adapter in llama.cpp's GGUF LoRA format, with llama.cpp's own converter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from chat.basemodels import BaseModelSpec, base_model_prepare


class GGUFExportError(Exception):
    pass


def adapter_export_gguf(*, adapter_dir: Path, base: BaseModelSpec, dest: Path) -> Path:
    """Write dest (a .gguf); the converter needs the base as a Hugging Face directory."""
    tools = Path(settings.LLAMACPP_TOOLS_DIR)
    script = tools / "convert_lora_to_gguf.py"
    if not script.exists():
        raise GGUFExportError(f"llama.cpp's converter is not at {script}: run scripts/llamacpp_tools.py")
    hf_dir = base_model_prepare(spec=base)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp.gguf")
    env = {**os.environ, "PYTHONPATH": str(tools / "gguf-py"), "NO_LOCAL_GGUF": ""}
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "--base",
            str(hf_dir),
            "--outfile",
            str(tmp),
            "--outtype",
            "f16",
            str(adapter_dir),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    if done.returncode or not tmp.exists():
        raise GGUFExportError(f"convert_lora_to_gguf failed: {(done.stderr or done.stdout)[-500:]}")
    tmp.replace(dest)
    return dest
