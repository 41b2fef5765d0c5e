"""Experts people chat with, and the conversations they have."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.models import Team


class Mode(models.TextChoices):
    BASE = "base", "Base model only"
    RAG = "rag", "RAG: answer from retrieved passages"
    FT = "ft", "Fine-tuned adapter"
    RAG_FT = "rag_ft", "RAG with the fine-tuned adapter"


DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant for the company's staff. Answer briefly and precisely."


class Expert(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="experts")
    name = models.CharField(max_length=120)
    # Globally unique: it is the `model` name in the OpenAI-compatible API.
    slug = models.SlugField(max_length=60, unique=True)
    base_model = models.CharField(max_length=80)
    adapter = models.ForeignKey(
        "training.Adapter", null=True, blank=True, on_delete=models.SET_NULL, related_name="experts"
    )
    collections = models.ManyToManyField("knowledge.Collection", blank=True, related_name="experts")
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.RAG)
    system_prompt = models.TextField(default=DEFAULT_SYSTEM_PROMPT, blank=True)
    top_k = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(20)]
    )
    temperature = models.FloatField(default=0.2, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    max_new_tokens = models.PositiveIntegerField(
        default=256, validators=[MinValueValidator(1), MaxValueValidator(4096)]
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "name"]

    def __str__(self) -> str:
        return self.name


class Conversation(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    expert = models.ForeignKey(Expert, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated"]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class Role(models.TextChoices):
    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(models.TextChoices):
    COMPLETE = "complete"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True)
    # [{"n": 1, "chunk": id, "document": id, "title": ..., "source": ..., "page": ..., "section": ...}]
    citations = models.JSONField(default=list, blank=True)
    expert = models.ForeignKey(Expert, null=True, on_delete=models.SET_NULL, related_name="+")
    base_model = models.CharField(max_length=80, blank=True)
    adapter = models.ForeignKey(
        "training.Adapter", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    mode = models.CharField(max_length=8, choices=Mode.choices, blank=True)
    status = models.CharField(max_length=12, choices=MessageStatus.choices, default=MessageStatus.COMPLETE)
    error = models.TextField(blank=True)
    ttft_ms = models.FloatField(null=True, blank=True)
    tokens = models.PositiveIntegerField(default=0)
    tokens_per_s = models.FloatField(null=True, blank=True)
    feedback = models.SmallIntegerField(default=0)  # -1, 0 or +1
    feedback_comment = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation_id", "created", "id"]
        indexes = [models.Index(fields=["created"], name="message_created")]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"
