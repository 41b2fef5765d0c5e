"""The training console: staff-only pages scoped to the staff user's teams, the live job
socket, and once in a real Chromium a job trained from upload to adapter while the page watches."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import Team
from chat.models import Expert, Mode
from chat.services import expert_create
from expertsite.asgi import application
from tests.support import LiveServer, logged_in, login, staff
from tests.training.conftest import facts_jsonl
from training.models import Adapter, Dataset, JobStatus, TrainingJob
from training.services import dataset_create_from_upload, training_job_cancel, training_job_create

PHI3 = "phi-3-mini-4k-instruct"


@pytest.fixture
def facts(acme: Team) -> Dataset:
    return dataset_create_from_upload(
        team=acme, name="facts", data=facts_jsonl(repeat=1), filename="facts.jsonl"
    )


@pytest.fixture
def queued_job(facts: Dataset) -> TrainingJob:
    return training_job_create(dataset=facts, hyperparams={"epochs": 1}, enqueue=False)


def adapter_on(team: Team, base_model: str) -> Adapter:
    adapter = Adapter.objects.create(
        team=team, name=f"facts on {base_model}", base_model=base_model, path=f"training/test/{base_model}"
    )
    stored = Path(settings.MEDIA_ROOT) / adapter.path
    stored.mkdir(parents=True)
    (stored / "adapter_config.json").write_text("{}")
    return adapter


# --- who gets in --------------------------------------------------------------------------


def test_only_staff_open_the_console_and_anonymous_people_are_sent_to_login(
    alice: User, bob: User, acme: Team, facts: Dataset, queued_job: TrainingJob
) -> None:
    pages = ["/training/", "/training/datasets/new", f"/training/datasets/{facts.pk}/"]
    pages.append(f"/training/jobs/{queued_job.pk}/")

    for url in pages:
        assert logged_in(bob).get(url).status_code == 403, url
        anonymous = Client().get(url)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/"), url
    assert logged_in(bob).post(f"/training/jobs/{queued_job.pk}/cancel").status_code == 403

    staff(alice)
    client = logged_in(alice)
    for url in pages:
        assert client.get(url).status_code == 200, url
    assert 'href="/training/"' in client.get("/").content.decode()
    assert 'href="/training/"' not in logged_in(bob).get("/").content.decode()


def test_staff_of_another_team_get_404_on_its_datasets_jobs_and_adapters(
    charlie: User, globex: Team, acme: Team, facts: Dataset, queued_job: TrainingJob
) -> None:
    staff(charlie)
    adapter = adapter_on(acme, settings.DEFAULT_BASE_MODEL)
    client = logged_in(charlie)

    assert client.get(f"/training/datasets/{facts.pk}/").status_code == 404
    assert client.post(f"/training/datasets/{facts.pk}/", {"method": "lora"}).status_code == 404
    assert client.get(f"/training/jobs/{queued_job.pk}/").status_code == 404
    assert client.post(f"/training/jobs/{queued_job.pk}/cancel").status_code == 404
    assert client.post(f"/training/adapters/{adapter.pk}/use", {"expert": "x"}).status_code == 404
    overview = client.get("/training/").content.decode()
    assert "facts" not in overview and f"/training/jobs/{queued_job.pk}/" not in overview
    queued_job.refresh_from_db()
    assert queued_job.status == JobStatus.QUEUED


# --- datasets -------------------------------------------------------------------------------


def test_the_upload_form_offers_only_usable_base_models(alice: User, acme: Team) -> None:
    html = logged_in(staff(alice)).get("/training/datasets/new").content.decode()

    usable = re.search(rf'<option value="{settings.DEFAULT_BASE_MODEL}"[^>]*>', html)
    assert usable and "disabled" not in usable.group(0)
    if not settings.BASE_MODELS[PHI3]["path"]:
        phi3 = re.search(rf'<option value="{PHI3}"[^>]*>([^<]*)', html)
        assert phi3 and "disabled" in phi3.group(0) and "PHI3_MINI_PATH" in phi3.group(1)


def test_an_upload_with_a_bad_line_lists_it_by_number_and_keeps_the_good_ones(
    alice: User, acme: Team
) -> None:
    data = facts_jsonl(extra_lines=['{"question": "no answer"', '{"question": "Q", "answer": ""}'], repeat=1)

    resp = logged_in(staff(alice)).post(
        "/training/datasets/new",
        {
            "action": "upload",
            "team": acme.pk,
            "name": "Pump facts",
            "file": SimpleUploadedFile("facts.jsonl", data),
            "base_model": settings.DEFAULT_BASE_MODEL,
            "eval_fraction": "0.2",
            "seed": "3",
        },
        follow=True,
    )

    dataset = Dataset.objects.get(name="Pump facts")
    assert resp.redirect_chain == [(f"/training/datasets/{dataset.pk}/", 302)]
    assert dataset.report["kept"] == 6 and dataset.train_count + dataset.eval_count == 6
    assert [e["line"] for e in dataset.report["errors"]] == [7, 8]
    html = resp.content.decode()
    assert '<tr data-line="7"><td class="num">7</td><td>bad JSON' in html
    assert '<tr data-line="8"><td class="num">8</td><td>the answer is empty</td></tr>' in html
    assert '<dd data-stat="kept">6</dd>' in html and '<dd data-stat="errors" class="error">2</dd>' in html
    assert 'data-stat="p95"' in html and html.count('<li data-ordinal="') == 6
    assert "Tessarine" in html


def test_an_upload_without_a_good_line_is_refused_with_its_line_errors(alice: User, acme: Team) -> None:
    resp = logged_in(staff(alice)).post(
        "/training/datasets/new",
        {
            "action": "upload",
            "team": acme.pk,
            "name": "Broken",
            "file": SimpleUploadedFile("broken.jsonl", b'{"question": "Q"}\n<b>not json</b>\n'),
            "base_model": settings.DEFAULT_BASE_MODEL,
            "eval_fraction": "0.1",
            "seed": "0",
        },
    )

    assert resp.status_code == 422
    html = resp.content.decode()
    assert "no usable examples" in html
    assert "missing field &#x27;answer&#x27;" in html and '<td class="num">2</td>' in html
    assert "<b>not json</b>" not in html  # the page never echoes the upload as markup
    assert not Dataset.objects.filter(name="Broken").exists()


def test_a_csv_upload_uses_the_column_mapping(alice: User, acme: Team) -> None:
    csv = b"frage;antwort\nWho founded Tessarine Pumpworks?;Ilse Varga.\nWhat colour is the CV-240?;Orange.\n"
    resp = logged_in(staff(alice)).post(
        "/training/datasets/new",
        {
            "action": "upload",
            "team": acme.pk,
            "name": "CSV facts",
            "file": SimpleUploadedFile("facts.csv", csv),
            "base_model": settings.DEFAULT_BASE_MODEL,
            "eval_fraction": "0",
            "seed": "0",
            "question_column": "frage",
            "answer_column": "antwort",
        },
    )

    dataset = Dataset.objects.get(name="CSV facts")
    assert resp.status_code == 302 and dataset.train_count == 2 and dataset.report["format"] == "csv"


def test_a_dataset_from_feedback_with_no_rated_answers_says_so(alice: User, acme: Team) -> None:
    resp = logged_in(staff(alice)).post(
        "/training/datasets/new",
        {
            "action": "feedback",
            "feedback-team": acme.pk,
            "feedback-name": "From chat",
            "feedback-base_model": settings.DEFAULT_BASE_MODEL,
            "feedback-eval_fraction": "0",
            "feedback-seed": "0",
        },
    )

    assert resp.status_code == 422 and "no usable examples" in resp.content.decode()


# --- jobs -----------------------------------------------------------------------------------


def test_the_job_form_is_prefilled_with_the_defaults_and_creates_a_job(
    alice: User, acme: Team, facts: Dataset
) -> None:
    client = logged_in(staff(alice))
    html = client.get(f"/training/datasets/{facts.pk}/").content.decode()
    for name, value in [("r", "16"), ("alpha", "32"), ("dropout", "0.05"), ("lr", "0.0002")]:
        assert re.search(rf'name="hp_{name}" value="{re.escape(value)}"', html), name
    assert 'name="hp_target_modules" value="all-linear"' in html
    assert "LoRA rank" in html  # help text

    form = {
        "method": "lora",
        "base_model": settings.DEFAULT_BASE_MODEL,
        "hp_epochs": "1",
        "hp_batch_size": "4",
    }
    resp = client.post(f"/training/datasets/{facts.pk}/", form)

    job = TrainingJob.objects.get(dataset=facts)
    assert resp.status_code == 302 and resp["Location"] == f"/training/jobs/{job.pk}/"
    assert job.status == JobStatus.QUEUED and job.created_by == alice
    assert job.hyperparams["epochs"] == 1 and job.hyperparams["r"] == 16 and job.hyperparams["lr"] == 2e-4
    page = client.get(resp["Location"]).content.decode()
    assert '<span id="job-status" class="badge queued">queued</span>' in page
    assert 'id="cancel-form" >' in page or 'id="cancel-form">' in page
    assert 'id="retry-form" hidden' in page


def test_a_bad_hyperparameter_is_shown_on_its_field_and_no_job_is_made(
    alice: User, acme: Team, facts: Dataset
) -> None:
    form = {"method": "lora", "base_model": settings.DEFAULT_BASE_MODEL, "hp_lr": "1"}
    resp = logged_in(staff(alice)).post(f"/training/datasets/{facts.pk}/", form)

    assert resp.status_code == 422
    html = resp.content.decode()
    field = html.split('id="field-hp_lr"', 1)[1].split("</div>\n</div>", 1)[0]
    assert "lr must be between" in field
    assert not TrainingJob.objects.exists()


def test_cancel_and_retry_go_through_the_services(alice: User, acme: Team, queued_job: TrainingJob) -> None:
    client = logged_in(staff(alice))
    url = f"/training/jobs/{queued_job.pk}/"

    resp = client.post(url + "cancel", follow=True)
    queued_job.refresh_from_db()
    assert queued_job.status == JobStatus.CANCELLED and queued_job.cancel_requested
    html = resp.content.decode()
    assert f"Job {queued_job.pk} cancelled." in html
    assert 'id="cancel-form" hidden' in html and 'id="retry-form" hidden' not in html

    resp = client.post(url + "retry", follow=True)
    queued_job.refresh_from_db()
    assert queued_job.status == JobStatus.QUEUED and not queued_job.cancel_requested
    assert f"Job {queued_job.pk} queued again." in resp.content.decode()

    resp = client.post(url + "retry", follow=True)
    assert "only failed or cancelled jobs can be retried (this one is queued)" in resp.content.decode()
    assert client.get(url + "retry").status_code == 405


def test_a_failed_job_shows_its_error_and_log(alice: User, acme: Team, queued_job: TrainingJob) -> None:
    TrainingJob.objects.filter(pk=queued_job.pk).update(
        status=JobStatus.FAILED,
        error="out of GPU memory at batch size 64",
        log="started\n<script>x</script>\n",
    )

    html = logged_in(staff(alice)).get(f"/training/jobs/{queued_job.pk}/").content.decode()

    assert '<div id="job-error" class="failure" >' in html or '<div id="job-error" class="failure">' in html
    assert "out of GPU memory at batch size 64" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x</script>" not in html


# --- adapters -------------------------------------------------------------------------------


def test_use_in_expert_refuses_an_adapter_on_another_base_model_with_the_reason(
    alice: User, acme: Team
) -> None:
    expert = expert_create(team=acme, name="Plain", slug="plain", mode=Mode.BASE)
    foreign = adapter_on(acme, PHI3)
    client = logged_in(staff(alice))

    resp = client.post(f"/training/adapters/{foreign.pk}/use", {"expert": "plain"}, follow=True)

    expert.refresh_from_db()
    assert expert.adapter is None
    assert (
        f"Could not use the adapter: adapter &#x27;{foreign.name}&#x27; was trained on {PHI3}; "
        f"expert &#x27;plain&#x27; uses {settings.DEFAULT_BASE_MODEL}" in resp.content.decode()
    )

    matching = adapter_on(acme, settings.DEFAULT_BASE_MODEL)
    client.post(f"/training/adapters/{matching.pk}/use", {"expert": "plain"})
    assert Expert.objects.get(pk=expert.pk).adapter == matching


def test_the_succeeded_job_page_offers_the_teams_experts_on_its_base_model(
    alice: User, acme: Team, queued_job: TrainingJob
) -> None:
    expert_create(team=acme, name="Small", slug="small", mode=Mode.BASE)
    expert_create(team=acme, name="Big", slug="big", mode=Mode.BASE, base_model=PHI3)
    TrainingJob.objects.filter(pk=queued_job.pk).update(status=JobStatus.SUCCEEDED)
    adapter = adapter_on(acme, settings.DEFAULT_BASE_MODEL)
    Adapter.objects.filter(pk=adapter.pk).update(job=queued_job)

    html = logged_in(staff(alice)).get(f"/training/jobs/{queued_job.pk}/").content.decode()

    assert f'action="/training/adapters/{adapter.pk}/use"' in html
    assert '<option value="small">' in html
    assert re.search(r'<option value="big" disabled title="uses phi-3', html)


# --- the admin site ------------------------------------------------------------------------


def test_the_admin_lists_jobs_and_cancels_and_retries_them_through_the_services(
    alice: User, acme: Team, facts: Dataset, queued_job: TrainingJob
) -> None:
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client = logged_in(alice)
    for url in [
        "/admin/training/trainingjob/?status__exact=queued",
        f"/admin/training/trainingjob/{queued_job.pk}/change/",
        f"/admin/training/dataset/{facts.pk}/change/",
        "/admin/training/datasetexample/",
        "/admin/training/adapter/",
    ]:
        assert client.get(url).status_code == 200, url
    assert "&quot;kept&quot;: 6" in client.get(f"/admin/training/dataset/{facts.pk}/change/").content.decode()

    changelist = "/admin/training/trainingjob/"
    client.post(changelist, {"action": "cancel", "_selected_action": [queued_job.pk]})
    queued_job.refresh_from_db()
    assert queued_job.status == JobStatus.CANCELLED
    client.post(changelist, {"action": "retry", "_selected_action": [queued_job.pk]})
    queued_job.refresh_from_db()
    assert queued_job.status == JobStatus.QUEUED


# --- the live socket ------------------------------------------------------------------------


async def _ws(user: User | None, job: TrainingJob) -> tuple[WebsocketCommunicator, bool, int | None]:
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if user is not None:
        client = Client()
        await sync_to_async(client.force_login)(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    comm = WebsocketCommunicator(application, f"/ws/training/jobs/{job.pk}/", headers=headers)
    connected, code = await comm.connect()
    return comm, connected, code


async def _frame_for(comm: WebsocketCommunicator, job: TrainingJob, kind: str) -> dict[str, Any]:
    # Other test runs share the Redis channel layer, and job ids repeat across test databases.
    while True:
        frame = await comm.receive_json_from(timeout=10)
        if frame["type"] == kind and frame["id"] == job.pk:
            return frame


@pytest.mark.django_db(transaction=True)
async def test_the_job_socket_sends_a_snapshot_then_every_change(
    alice: User, bob: User, charlie: User, acme: Team, globex: Team
) -> None:
    await sync_to_async(staff)(alice)
    await sync_to_async(staff)(charlie)
    facts = await sync_to_async(dataset_create_from_upload)(
        team=acme, name="facts", data=facts_jsonl(repeat=1), filename="facts.jsonl"
    )
    job = await sync_to_async(training_job_create)(dataset=facts, enqueue=False)
    await TrainingJob.objects.filter(pk=job.pk).aupdate(history=[{"step": 1, "loss": 2.5, "lr": 1e-4}])

    comm, connected, _ = await _ws(alice, job)
    assert connected
    snapshot = await _frame_for(comm, job, "snapshot")
    assert snapshot["status"] == "queued" and snapshot["last"] == [{"step": 1, "loss": 2.5, "lr": 1e-4}]
    await sync_to_async(training_job_cancel)(job=job)
    progress = await _frame_for(comm, job, "progress")
    assert progress["status"] == "cancelled"
    await comm.disconnect()

    for user, code in [(None, 4401), (bob, 4403), (charlie, 4404)]:
        _, connected, refused = await _ws(user, job)
        assert not connected and refused == code


# --- in a real browser ----------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.slow
def test_a_job_started_in_the_browser_is_watched_to_success_without_reloading(
    asgi_server: LiveServer, worker: Any, page: Any, alice: User, acme: Team, tmp_path: Path
) -> None:
    staff(alice)
    upload = tmp_path / "facts.jsonl"
    upload.write_bytes(facts_jsonl(repeat=1))
    frames: list[dict[str, Any]] = []
    page.on(
        "websocket",
        lambda ws: ws.on("framereceived", lambda payload: frames.append(json.loads(payload))),
    )
    login(page, asgi_server, "alice", "alice-pass-123")

    page.goto(f"{asgi_server.url}/training/")
    page.get_by_role("link", name="New dataset").click()
    page.fill("#id_name", "Browser facts")
    page.set_input_files("#id_file", str(upload))
    page.get_by_role("button", name="Upload and check").click()
    page.wait_for_url(re.compile(r".*/training/datasets/\d+/$"), timeout=120_000)
    assert page.locator('[data-stat="kept"]').inner_text() == "6"

    page.fill("#id_hp_epochs", "1")
    page.fill("#id_hp_batch_size", "4")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r".*/training/jobs/\d+/$"))
    job = TrainingJob.objects.get(dataset__name="Browser facts")
    assert job.hyperparams["epochs"] == 1 and job.hyperparams["batch_size"] == 4
    rendered_as = page.locator("#job").get_attribute("data-status")
    page.evaluate("window.__sameDocument = true")
    page.wait_for_selector("#live.ready")

    page.wait_for_selector("#job-status.succeeded", timeout=300_000)

    # Still the document that was first loaded: the status and the chart came over the socket.
    assert rendered_as in ("queued", "running")
    assert page.evaluate("window.__sameDocument") is True
    assert any(f["type"] == "progress" and f["status"] == "succeeded" for f in frames)
    chart = page.locator("#loss-chart")
    job.refresh_from_db()
    losses = [h for h in job.history if "loss" in h]
    assert int(chart.get_attribute("data-loss-points") or 0) == len(losses) >= 1
    assert chart.locator("circle.loss-dot").count() >= 1
    assert chart.locator("polyline.loss-line").get_attribute("points")
    assert int(chart.get_attribute("data-eval-points") or 0) == len(
        [h for h in job.history if "eval_loss" in h]
    )
    assert page.locator("#job-step").inner_text() == str(job.total_steps)
    # The adapter arrives in place too, with the expert picker.
    page.locator("#attach-form").wait_for()
    assert page.locator("#cancel-form").is_hidden()
