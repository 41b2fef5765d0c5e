"""python manage.py evaluate --qa FILE (--expert SLUG | --collection SLUG) [--modes base,rag,ft,rag_ft]
[--json]"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat.models import Expert, Mode
from chat.services import expert_create
from expertsite.heartbeat import worker_id
from knowledge.management.commands._common import resolve_collection, resolve_user
from training.evaluation import EvaluationInvalid, evaluation_create, evaluation_run, questions_parse
from training.models import EvaluationStatus

COLUMNS = ["hit_at_5", "mrr", "f1", "containment", "citation_precision", "refusal_rate", "p50_ms", "p95_ms"]


class Command(BaseCommand):
    help = "Run held-out questions through an expert's modes and print the metrics per mode."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--qa", required=True, type=Path, help="JSONL of {question, answer, source?}")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--expert")
        which.add_argument("--collection", help="evaluate an ad-hoc RAG expert over this collection")
        parser.add_argument("--team")
        parser.add_argument("--user")
        parser.add_argument("--modes", default="base,rag")
        parser.add_argument("--queue", action="store_true", help="run on the gpu workers and wait")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        if not opts["qa"].is_file():
            raise CommandError(f"no such file: {opts['qa']}")
        user = resolve_user(opts["user"])
        expert = self._expert(opts, user)
        try:
            questions = questions_parse(opts["qa"].read_bytes())
            run = evaluation_create(
                expert=expert,
                questions=questions,
                modes=[m.strip() for m in opts["modes"].split(",") if m.strip()],
                enqueue=opts["queue"],
                created_by=user,
            )
        except EvaluationInvalid as exc:
            raise CommandError(str(exc)) from None
        if opts["queue"]:
            while run.status not in (EvaluationStatus.SUCCEEDED, EvaluationStatus.FAILED):
                time.sleep(1)
                run.refresh_from_db()
        else:
            evaluation_run(run_id=run.pk, worker=f"cli:{worker_id()}")
            run.refresh_from_db()
        if run.status == EvaluationStatus.FAILED:
            raise CommandError(f"evaluation {run.pk} failed: {run.error}")
        if opts["json"]:
            self.stdout.write(json.dumps({"run": run.pk, "modes": run.metrics}))
            return
        self.stdout.write(f"evaluation {run.pk}: {len(questions)} questions")
        self.stdout.write("mode    " + "".join(f"{c:>20}" for c in COLUMNS))
        for mode, m in run.metrics.items():
            self.stdout.write(
                f"{mode:<8}" + "".join(f"{'-' if m.get(c) is None else m[c]:>20}" for c in COLUMNS)
            )
        self.stdout.write(run.recommendation)

    def _expert(self, opts: dict[str, Any], user: Any) -> Expert:
        if opts["expert"]:
            expert = Expert.objects.filter(slug=opts["expert"]).first()
            if expert is None or (
                user is not None and not expert.team.memberships.filter(user=user).exists()
            ):
                raise CommandError(f"No expert '{opts['expert']}'")
            return expert
        collection = resolve_collection(slug=opts["collection"], team_slug=opts["team"], user=user)
        # Evaluation rows point at an expert: the ad-hoc one is kept, reused per collection.
        slug = f"adhoc-{collection.team.slug}-{collection.slug}"[:60]
        existing = Expert.objects.filter(slug=slug).first()
        return existing or expert_create(
            team=collection.team,
            name=f"Ad-hoc RAG over {collection.name}",
            slug=slug,
            collections=[collection],
            mode=Mode.RAG,
            base_model=settings.DEFAULT_BASE_MODEL,
        )
