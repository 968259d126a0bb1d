import pytest

pytestmark = pytest.mark.django_db


def test_it_reports_database_and_broker_ok(client, settings):
    # CELERY_BROKER_URL points at the run's real Redis (make test starts one).
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}


def test_it_reports_a_broker_that_is_down_without_failing(client, monkeypatch):
    from opsdesk.celery import app

    # Nothing listens on port 1: the broker is down.
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(app.conf, "broker_write_url", "redis://127.0.0.1:1/0")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "down"}


def test_it_only_answers_get(client):
    assert client.post("/healthz").status_code == 405
