"""Staff accounts: history names its users, so a user is deactivated, never deleted."""

import pytest
from django.contrib.auth.models import User
from django.test import RequestFactory

pytestmark = pytest.mark.django_db


def test_a_user_cannot_be_deleted_from_the_admin_only_deactivated(client, superuser, agent):
    client.force_login(superuser)
    assert client.get(f"/admin/auth/user/{agent.pk}/delete/").status_code == 403
    assert client.post(f"/admin/auth/user/{agent.pk}/delete/", {"post": "yes"}).status_code == 403
    response = client.post(
        "/admin/auth/user/",
        {"action": "delete_selected", "_selected_action": [agent.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    assert User.objects.filter(pk=agent.pk).exists()

    agent.is_active = False
    agent.save()
    # django-axes checks every sign-in against its lockouts, so it needs the request.
    request = RequestFactory().post("/admin/login/")
    assert not client.login(
        request=request, username=agent.username, password="correct-horse-battery-staple"
    )
