"""Forms of the training console. They check shapes; the services decide what is valid."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.db.models import QuerySet

from accounts.models import Team

from .datasets import ColumnMap
from .hyperparams import DEFAULTS
from .models import Method
from .selectors import BaseModelChoice, base_model_choice_list

UPLOAD_EXTENSIONS = (".jsonl", ".json", ".csv")


class BaseModelSelect(forms.Select):
    """A select whose unavailable base models are shown, disabled, with the reason in the label."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unavailable: dict[str, str] = {}

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        reason = self.unavailable.get(str(value))
        if reason:
            option["attrs"]["disabled"] = True
            option["attrs"]["title"] = reason
            option["label"] = f"{option['label']} — unavailable: {reason}"
        return option


class BaseModelField(forms.ChoiceField):
    widget = BaseModelSelect

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unavailable: dict[str, str] = {}

    def refresh(self) -> None:
        """Called by each form: whether a model is usable depends on files on this host now,
        and declared fields are built once, at import."""
        specs: list[BaseModelChoice] = base_model_choice_list()
        self.choices = [(s.name, s.label) for s in specs]
        self.unavailable = {s.name: s.unavailable for s in specs if s.unavailable}
        assert isinstance(self.widget, BaseModelSelect)
        self.widget.unavailable = self.unavailable

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value in self.unavailable:
            raise forms.ValidationError(self.unavailable[value])


def _base_model_field(form: forms.Form) -> BaseModelField:
    field = form.fields["base_model"]
    assert isinstance(field, BaseModelField)
    return field


def _default_base_model() -> str:
    return str(settings.DEFAULT_BASE_MODEL)


class _DatasetCommonForm(forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)
    name = forms.CharField(max_length=120)
    base_model = BaseModelField(
        help_text="Whose tokenizer counts the tokens; the job form can still pick another model."
    )
    eval_fraction = forms.FloatField(
        min_value=0.0,
        max_value=0.5,
        initial=0.1,
        help_text="Share of the examples held out to measure eval loss (0 for none).",
    )
    seed = forms.IntegerField(min_value=0, initial=0, help_text="Seeds the train/eval split.")

    def __init__(self, *args: Any, teams: QuerySet[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        team_field = self.fields["team"]
        assert isinstance(team_field, forms.ModelChoiceField)
        team_field.queryset = teams
        _base_model_field(self).refresh()
        self.fields["base_model"].initial = _default_base_model()


class DatasetUploadForm(_DatasetCommonForm):
    file = forms.FileField(help_text="JSONL (messages, question/answer or instruction/output) or CSV.")
    question_column = forms.CharField(
        required=False, max_length=120, help_text="CSV only: the column with the questions."
    )
    answer_column = forms.CharField(
        required=False, max_length=120, help_text="CSV only: the column with the answers."
    )

    field_order = ["team", "name", "file", "base_model", "eval_fraction", "seed"]

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        limit = settings.MAX_UPLOAD_MB * 1024 * 1024
        if upload.size > limit:
            raise forms.ValidationError(f"The file is over the {settings.MAX_UPLOAD_MB} MB limit.")
        if not upload.name.lower().endswith(UPLOAD_EXTENSIONS):
            raise forms.ValidationError("Upload a .jsonl or .csv file.")
        return upload

    def columns(self) -> ColumnMap | None:
        mapping: ColumnMap = {}
        if self.cleaned_data.get("question_column"):
            mapping["question"] = self.cleaned_data["question_column"].strip()
        if self.cleaned_data.get("answer_column"):
            mapping["answer"] = self.cleaned_data["answer_column"].strip()
        return mapping or None


class DatasetFromFeedbackForm(_DatasetCommonForm):
    prefix = "feedback"


HYPERPARAM_HELP: dict[str, str] = {
    "r": "LoRA rank: the size of the low-rank update. Higher learns more and costs more memory.",
    "alpha": "LoRA scaling: the update is multiplied by alpha / r; about twice r is usual.",
    "dropout": "Dropout on the LoRA layers while training (0 to 0.5).",
    "lr": "Peak learning rate (AdamW), reached after warm-up, then a cosine decay.",
    "epochs": "Passes over the training examples.",
    "batch_size": "Examples per forward pass; lower it when memory runs out.",
    "grad_accum": "Batches accumulated per optimizer step (effective batch = batch size times this).",
    "max_seq_len": "Tokens per example; longer examples are truncated (the report counts them).",
    "target_modules": "Which layers get adapters: all-linear, or comma-separated module names.",
    "checkpoint_every": "Steps between checkpoints a retried job resumes from.",
    "seed": "Seeds the data order and the adapter's initialisation.",
    "warmup_ratio": "Share of the steps spent warming the learning rate up from 0.",
}

HYPERPARAM_LABELS: dict[str, str] = {
    "r": "Rank (r)",
    "alpha": "Alpha",
    "dropout": "Dropout",
    "lr": "Learning rate",
    "epochs": "Epochs",
    "batch_size": "Batch size",
    "grad_accum": "Gradient accumulation",
    "max_seq_len": "Max sequence length",
    "target_modules": "Target modules",
    "checkpoint_every": "Checkpoint every (steps)",
    "seed": "Seed",
    "warmup_ratio": "Warm-up ratio",
}


def _hyperparam_field(key: str, default: object) -> forms.Field:
    # No bounds here: hyperparams_clean owns the limits, and its message is shown on the form.
    common: dict[str, Any] = {
        "initial": default,
        "required": False,
        "label": HYPERPARAM_LABELS[key],
        "help_text": HYPERPARAM_HELP[key],
    }
    if isinstance(default, str):
        return forms.CharField(max_length=200, **common)
    if isinstance(default, int):
        return forms.IntegerField(**common)
    return forms.FloatField(**common)


class TrainingJobForm(forms.Form):
    method = forms.ChoiceField(
        choices=Method.choices,
        initial=Method.LORA,
        help_text="QLoRA loads the base model in 4 bits and needs a CUDA worker.",
    )
    base_model = BaseModelField()

    def __init__(self, *args: Any, base_model: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _base_model_field(self).refresh()
        self.fields["base_model"].initial = base_model or _default_base_model()
        for key, default in DEFAULTS.items():
            self.fields[f"hp_{key}"] = _hyperparam_field(key, default)

    def hyperparam_fields(self) -> list[forms.BoundField]:
        return [self[f"hp_{key}"] for key in DEFAULTS]

    def hyperparams(self) -> dict[str, Any]:
        """The values given; a blank one falls back to its default in hyperparams_clean."""
        return {key: self.cleaned_data.get(f"hp_{key}") for key in DEFAULTS}


class AdapterAttachForm(forms.Form):
    expert = forms.SlugField(max_length=60)
