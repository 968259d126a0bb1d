"""Storing a notice for each person it tells, and each person's preferences.

``notice_record`` receives kit.notify's ``staff_notice`` signal (connected in
``opsdesk.apps``): one ``Notification`` per recipient and one ``ChatPost`` per chat
webhook, each once however often the notice is sent (the unique constraints decide
between concurrent senders, as the digest's claim does). Sending happens in the worker
(``opsdesk.notifications.delivery``), handed over after commit: the request or task that
caused the notice never waits for a mail or chat server.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable
from contextlib import nullcontext

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction
from django.utils import timezone

from audit.context import UNATTRIBUTED, acting_as, acting_as_user, current_actor
from kit.notify import KIND_NAMES, KINDS, StaffNotice
from kit.publish import publish_after_commit
from kit.text import one_line
from opsdesk.models import ChatPost, Notification, NotificationPreference

logger = logging.getLogger(__name__)

Mode = NotificationPreference.Mode
KEY_MAX = Notification._meta.get_field("dedupe_key").max_length
SUBJECT_MAX = Notification._meta.get_field("subject").max_length
URL_MAX = Notification._meta.get_field("url").max_length
# What a notice's chat message may hold at most (Slack shows 4,000 characters a message).
CHAT_TEXT_MAX = 3000

SEND_TASK = "opsdesk.notification_send"
CHAT_TASK = "opsdesk.chat_post_send"


def _key(key: str) -> str:
    """The dedupe key as stored: a longer one keeps its start and a hash of the whole."""
    if len(key) <= KEY_MAX:
        return key
    return key[: KEY_MAX - 25] + ":" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _path(url: str) -> str:
    """A notice's link: a path of this site, or none (pages and emails link it)."""
    url = (url or "").strip()
    if not url.startswith("/") or url.startswith("//") or "\\" in url or len(url) > URL_MAX:
        return ""
    return url


def notification_preferences(
    users: Iterable[AbstractBaseUser],
) -> dict[int, NotificationPreference]:
    """Each user's preferences by id, the defaults (unsaved) for those without a row."""
    users = list(users)
    saved = {
        p.user_id: p
        for p in NotificationPreference.objects.filter(user_id__in=[u.pk for u in users])
    }
    return {u.pk: saved.get(u.pk) or NotificationPreference(user_id=u.pk) for u in users}


def _recipients(notice: StaffNotice) -> tuple[list[AbstractBaseUser], str]:
    """The active staff a notice tells, and the team it tells them as members of."""
    users = get_user_model().objects.filter(is_active=True, is_staff=True).order_by("pk")
    if isinstance(notice.recipients, str):
        return list(users.filter(groups__name=notice.recipients).distinct()), notice.recipients
    ids = [pk for pk in notice.recipients if isinstance(pk, int) and not isinstance(pk, bool)]
    return list(users.filter(pk__in=ids)), ""


def chat_targets(notice: StaffNotice, people: list[AbstractBaseUser]) -> list[str]:
    """The webhooks a notice is posted to: a team's (``OPSDESK_SLACK_WEBHOOK_URLS``) when
    it is told to that team or to members of it, else the default one
    (``OPSDESK_SLACK_WEBHOOK_URL``, target ""); none when neither is set."""
    teams = settings.OPSDESK_SLACK_WEBHOOK_URLS
    found: list[str] = []
    if teams:
        if isinstance(notice.recipients, str):
            found = [notice.recipients] if notice.recipients in teams else []
        elif people:
            found = list(
                Group.objects.filter(user__in=people, name__in=list(teams))
                .order_by("name")
                .values_list("name", flat=True)
                .distinct()
            )
    if not found and settings.OPSDESK_SLACK_WEBHOOK_URL:
        found = [""]
    return found


def chat_text(notice: StaffNotice) -> str:
    """The chat message: the subject and a link, escaped as Slack's incoming webhooks
    want (&, <, >; other Slack-compatible servers show them as typed)."""
    text = one_line(notice.subject)
    path = _path(notice.url)
    if path:
        text += f"\n{settings.OPSDESK_BASE_URL}{path}"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text[:CHAT_TEXT_MAX]


def _rollup_due(preference: NotificationPreference, now: dt.datetime) -> dt.datetime:
    minutes = preference.rollup_minutes or settings.OPSDESK_NOTIFY_ROLLUP_MINUTES
    return now + dt.timedelta(minutes=minutes)


def notice_record(*, notice: StaffNotice) -> list[Notification]:
    """Store ``notice`` for each person it tells and each chat webhook it goes to, and
    hand what is to be sent now to the worker once this commits. Returns the
    notifications this call made (none for a notice already recorded).

    Idempotent and safe to run concurrently: a recipient already told with the notice's
    ``dedupe_key`` is not told again (nor emailed: only the call that stored the row
    queues its email), and a webhook already given it gets no second post. Each person's
    row is emailed at once, waits for their roll-up, or is kept without an email, as their
    preference for the kind says now. Inactive and non-staff users are not told.
    """
    if notice.kind not in KIND_NAMES:
        raise ValueError(f"unknown kind {notice.kind!r}")
    key = _key(notice.dedupe_key)
    people, team = _recipients(notice)
    preferences = notification_preferences(people)
    now = timezone.now()
    made = []
    # Who caused the notice is the actor of its rows' history (the request's user, the
    # task); a notice told after a block that named nobody names itself.
    named = current_actor().label != UNATTRIBUTED
    actor = nullcontext() if named else acting_as(f"notice:{notice.kind}")
    with transaction.atomic(), actor:
        for person in people:
            mode = preferences[person.pk].mode_for(notice.kind)
            status = {
                Mode.IMMEDIATELY: Notification.Status.PENDING,
                Mode.ROLLUP: Notification.Status.ROLLUP,
            }.get(mode, Notification.Status.OFF)
            row, created = Notification.objects.get_or_create(
                recipient=person,
                dedupe_key=key,
                defaults={
                    "kind": notice.kind,
                    "subject": one_line(notice.subject)[:SUBJECT_MAX],
                    "text": notice.text or "",
                    "url": _path(notice.url),
                    "team": team,
                    "status": status,
                    "due_at": _rollup_due(preferences[person.pk], now)
                    if status == Notification.Status.ROLLUP
                    else None,
                },
            )
            if created:
                made.append(row)
                if status == Notification.Status.PENDING:
                    publish_after_commit(SEND_TASK, row.pk)
        for target in chat_targets(notice, people):
            post, created = ChatPost.objects.get_or_create(
                target=target,
                dedupe_key=key,
                defaults={"kind": notice.kind, "text": chat_text(notice)},
            )
            if created:
                publish_after_commit(CHAT_TASK, post.pk)
    return made


def on_staff_notice(sender, notice: StaffNotice, **kwargs) -> None:
    """kit.notify's ``staff_notice`` receiver."""
    notice_record(notice=notice)


# --- Preferences ----------------------------------------------------------------------

PREFERENCE_FIELDS = (*(kind for kind, _ in KINDS), "rollup_minutes")


class PreferenceError(Exception):
    """A preference that cannot be saved; the message says why. Nothing was changed."""


def notification_preference_set(*, user: AbstractBaseUser, **changes) -> NotificationPreference:
    """Save ``user``'s own preferences (a mode per kind of kit.notify, and
    ``rollup_minutes``, None for the default). Only the person themself sets theirs:
    there is no ``by``, the caller passes the signed-in user. Leaves history naming them.
    Idempotent: the same values again change nothing but the history."""
    unknown = set(changes) - set(PREFERENCE_FIELDS)
    if unknown:
        raise PreferenceError(f"Not a preference: {', '.join(sorted(unknown))}.")
    for kind in KIND_NAMES & changes.keys():
        if changes[kind] not in Mode.values:
            raise PreferenceError(f"“{changes[kind]}” is not a choice.")
    minutes = changes.get("rollup_minutes")
    if minutes is not None and not (isinstance(minutes, int) and 5 <= minutes <= 1440):
        raise PreferenceError("A roll-up comes every 5 to 1440 minutes.")
    if not user.is_active:
        raise PreferenceError("An inactive user has no notifications.")
    with transaction.atomic(), acting_as_user(user, reason="notification preferences"):
        preference = NotificationPreference.objects.select_for_update().filter(
            user=user
        ).first() or NotificationPreference(user=user)
        for name, value in changes.items():
            setattr(preference, name, value)
        preference.save()
    return preference
