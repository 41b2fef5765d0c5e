"""Fine-tuning: adapters a team trained (datasets and jobs arrive with the training console)."""

from __future__ import annotations

from django.db import models

from accounts.models import Team


class Adapter(models.Model):
    """A LoRA adapter on one base model, stored as a peft directory under media storage."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="adapters")
    name = models.CharField(max_length=120)
    base_model = models.CharField(max_length=80)
    # Directory (relative to MEDIA_ROOT) holding adapter_config.json + adapter_model.safetensors.
    path = models.CharField(max_length=500)
    # The same adapter in llama.cpp's GGUF LoRA format, when converted.
    gguf_path = models.CharField(max_length=500, blank=True)
    dataset_sha256 = models.CharField(max_length=64, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.base_model})"
