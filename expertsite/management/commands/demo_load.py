"""Write the demo company's documents and make them the first team, collection and expert."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.models import Role, Team
from accounts.services import membership_set, team_create
from chat.models import Expert, Mode
from chat.services import expert_create
from knowledge.demo.writer import DEMO_COMPANY, write_demo_corpus
from knowledge.models import Collection
from knowledge.services import collection_create, document_index, document_upload
from training.evaluation import evaluation_create, questions_parse
from training.models import EvaluationRun

DEMO_TEAM_SLUG = "demo"
DEMO_COLLECTION_SLUG = "demo"
DEMO_EXPERT_SLUG = "demo"


class Command(BaseCommand):
    help = "Create (idempotently) the demo team, collection (indexed) and expert."

    def handle(self, *args: Any, **options: Any) -> None:
        paths = write_demo_corpus(settings.DEMO_DIR)
        team = Team.objects.filter(slug=DEMO_TEAM_SLUG).first() or team_create(
            name=DEMO_COMPANY, slug=DEMO_TEAM_SLUG
        )
        admin = get_user_model().objects.filter(username=settings.ADMIN_USERNAME).first()
        if admin is not None:
            membership_set(team=team, user=admin, role=Role.ADMIN)
        collection = Collection.objects.filter(team=team, slug=DEMO_COLLECTION_SLUG).first() or (
            collection_create(
                team=team,
                name=f"{DEMO_COMPANY} handbook",
                slug=DEMO_COLLECTION_SLUG,
                description="Manuals, procedures, policies and prices of the demo company.",
            )
        )
        indexed = 0
        for path in paths:
            outcome = document_upload(
                collection=collection, data=path.read_bytes(), source_path=path.name, enqueue=False
            )
            if outcome.status == "queued" and outcome.document is not None:
                document_index(document_id=outcome.document.pk)
                indexed += 1
        expert = Expert.objects.filter(slug=DEMO_EXPERT_SLUG).first()
        if expert is None:
            expert = expert_create(
                team=team,
                name=f"{DEMO_COMPANY} expert",
                slug=DEMO_EXPERT_SLUG,
                collections=[collection],
                mode=Mode.RAG,
                system_prompt=f"You are the in-house expert of {DEMO_COMPANY}. Answer staff questions "
                "briefly and precisely.",
            )
        if not EvaluationRun.objects.filter(expert=expert).exists():
            # The gpu worker answers "RAG or not?" for the demo while the page loads.
            evaluation_create(
                expert=expert,
                questions=questions_parse((settings.DEMO_DIR / "questions.jsonl").read_bytes()),
                modes=[Mode.BASE, Mode.RAG],
                name="Demo: base model vs RAG",
            )
        self.stdout.write(
            f"demo: expert '{DEMO_EXPERT_SLUG}', team '{team.slug}', collection '{collection.slug}' "
            f"({indexed} indexed, {len(paths) - indexed} unchanged), files in {settings.DEMO_DIR}"
        )
