"""python manage.py train --dataset FILE --method lora|qlora --base-model NAME [--epochs N] [--wait]
[--json]"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Team
from expertsite.heartbeat import worker_id
from training.datasets import DatasetInvalid
from training.models import JobStatus, TrainingJob
from training.services import dataset_create_from_upload, training_job_create, training_job_run

FINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Command(BaseCommand):
    help = "Make a dataset from a JSONL/CSV file and queue a LoRA/QLoRA job on the gpu workers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", required=True, type=Path, help="JSONL or CSV file")
        parser.add_argument("--method", choices=["lora", "qlora"], default="lora")
        parser.add_argument("--base-model", default=settings.DEFAULT_BASE_MODEL)
        parser.add_argument("--team", help="team slug (default: the only team, or 'demo')")
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--lr", type=float)
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--eval-fraction", type=float, default=0.1)
        parser.add_argument("--wait", action="store_true", help="wait until the job ends")
        parser.add_argument("--inline", action="store_true", help="train in this process instead of a worker")
        parser.add_argument("--json", action="store_true", help="end with one JSON line")

    def handle(self, *args: Any, **opts: Any) -> None:
        team = self._team(opts["team"])
        path: Path = opts["dataset"]
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        try:
            dataset = dataset_create_from_upload(
                team=team,
                name=path.stem,
                data=path.read_bytes(),
                filename=path.name,
                base_model=opts["base_model"],
                eval_fraction=opts["eval_fraction"],
            )
        except DatasetInvalid as exc:
            raise CommandError(f"{exc} {exc.errors[:5] if exc.errors else ''}".strip()) from None
        errors = dataset.report.get("errors", [])
        self._say(
            opts,
            f"dataset {dataset.pk}: {dataset.train_count} train, {dataset.eval_count} eval, "
            f"{len(errors)} bad lines",
        )
        for err in errors[:20]:
            self._say(opts, f"  line {err['line']}: {err['error']}")
        hp = {
            k: v
            for k, v in {"epochs": opts["epochs"], "lr": opts["lr"], "batch_size": opts["batch_size"]}.items()
            if v is not None
        }
        try:
            job = training_job_create(
                dataset=dataset,
                base_model=opts["base_model"],
                method=opts["method"],
                hyperparams=hp,
                enqueue=not opts["inline"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self._say(opts, f"job {job.pk} queued ({job.method} on {job.base_model})")
        if opts["inline"]:
            training_job_run(job_id=job.pk, worker=f"cli:{worker_id()}")
        elif opts["wait"]:
            last = -1
            while True:
                job.refresh_from_db()
                if job.step != last and job.step:
                    last = job.step
                    self._say(opts, f"step {job.step}/{job.total_steps} loss {job.train_loss:.4f}")
                if job.status in FINAL:
                    break
                time.sleep(1)
        job.refresh_from_db()
        self._report(opts, job)

    def _team(self, slug: str | None) -> Team:
        if slug:
            team = Team.objects.filter(slug=slug).first()
            if team is None:
                raise CommandError(f"no team '{slug}'")
            return team
        teams = list(Team.objects.all()[:2])
        if len(teams) == 1:
            return teams[0]
        demo = Team.objects.filter(slug="demo").first()
        if demo is None:
            raise CommandError("several teams: give --team")
        return demo

    def _say(self, opts: dict[str, Any], text: str) -> None:
        (self.stderr if opts["json"] else self.stdout).write(text)

    def _report(self, opts: dict[str, Any], job: TrainingJob) -> None:
        adapter = getattr(job, "adapter", None)
        losses = [h["loss"] for h in job.history if "loss" in h]
        out = {
            "job": job.pk,
            "status": job.status,
            "adapter": adapter.pk if adapter else None,
            "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None,
            "eval_loss": job.eval_loss,
            "tokens_per_s": job.tokens_per_s,
            "peak_mem_mb": job.peak_mem_mb,
        }
        if job.error:
            out["error"] = job.error
        if opts["json"]:
            self.stdout.write(json.dumps(out))
        else:
            self.stdout.write(" ".join(f"{k}={v}" for k, v in out.items()))
