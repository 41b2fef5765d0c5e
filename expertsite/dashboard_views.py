"""The operations dashboard: one page for staff, and the JSON it polls to stay current."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from training.views import staff_required

from .dashboard import DashboardData, HourCount, dashboard_data

POLL_SECONDS = 5
# The chat chart's geometry; static/js/dashboard.js draws the same from the JSON.
VOLUME_W, VOLUME_H, VOLUME_TOP, VOLUME_BOTTOM = 720, 140, 16, 20
STATUS_ORDER = ["ready", "queued", "parsing", "embedding", "failed"]


@dataclass(frozen=True)
class VolumeBar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str
    tick: bool  # every sixth hour is labelled under the axis


def volume_bars(per_hour: list[HourCount]) -> list[VolumeBar]:
    top = max([h["count"] for h in per_hour] + [1])
    slot = VOLUME_W / max(len(per_hour), 1)
    plot = VOLUME_H - VOLUME_TOP - VOLUME_BOTTOM
    bars = []
    for i, hour in enumerate(per_hour):
        height = plot * hour["count"] / top
        bars.append(
            VolumeBar(
                x=round(i * slot + slot * 0.12, 1),
                y=round(VOLUME_H - VOLUME_BOTTOM - height, 1),
                width=round(slot * 0.76, 1),
                height=round(height, 1),
                count=hour["count"],
                label=hour["label"],
                tick=i % 6 == 0,
            )
        )
    return bars


@dataclass(frozen=True)
class Segment:
    status: str
    count: int
    x: float  # percent of the bar
    width: float


def document_segments(documents: dict[str, int]) -> list[Segment]:
    total = sum(documents.values())
    segments, x = [], 0.0
    for status in STATUS_ORDER + sorted(set(documents) - set(STATUS_ORDER)):
        count = documents.get(status, 0)
        width = 100 * count / total if total else 0.0
        segments.append(Segment(status, count, round(x, 2), round(width, 2)))
        x += width
    return segments


@staff_required
def dashboard(request: HttpRequest) -> HttpResponse:
    data: DashboardData = dashboard_data(user=request.user)
    return render(
        request,
        "dashboard.html",
        {
            "data": data,
            "volume_bars": volume_bars(data["chat"]["per_hour"]),
            "volume": {
                "width": VOLUME_W,
                "height": VOLUME_H,
                "baseline": VOLUME_H - VOLUME_BOTTOM,
                "peak": max(h["count"] for h in data["chat"]["per_hour"]),
            },
            "segments": document_segments(data["documents"]),
            "poll_seconds": POLL_SECONDS,
        },
    )


@never_cache
@staff_required
def dashboard_json(request: HttpRequest) -> JsonResponse:
    # JsonResponse's encoder writes the datetimes as ISO 8601.
    return JsonResponse(dashboard_data(user=request.user))
