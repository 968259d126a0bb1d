"""The auth models in the admin theme, and the admin pages of opsdesk's features (each
registers its ModelAdmins when imported here, where Django's autodiscovery looks)."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django.urls import path
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

# The features' admin pages register their ModelAdmins on import.
import opsdesk.casework.admin
import opsdesk.customer_page.admin
import opsdesk.health.admin
import opsdesk.health.admin_signals
import opsdesk.notifications.admin
import opsdesk.record_pages.admin
import opsdesk.saved_views.admin  # noqa: F401
from kit.admin import AdminParamsMixin
from kit.people import PeopleAutocompleteView
from opsdesk.freshness.views import admin_urls as freshness_urls

# The index page is each person's home (opsdesk.home), not a list of applications.
admin.site.index_title = "Home"
# Pages of the admin frame that are no model's: unfold's site puts the URLs its
# ``extra_urls`` returns before its own (the freshness panel, ``admin:freshness``).
admin.site.extra_urls = lambda: freshness_urls(admin.site)

admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(AdminParamsMixin, BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm

    def get_urls(self):
        # The autocomplete of every field naming a person (audit.admin's
        # PeopleAutocompleteSelect): allowed by the form's model, not by this admin.
        people = self.admin_site.admin_view(
            PeopleAutocompleteView.as_view(admin_site=self.admin_site)
        )
        return [path("people/", people, name="auth_user_people"), *super().get_urls()]

    def has_delete_permission(self, request, obj=None):
        # History is append-only and names its users: someone who leaves is made
        # inactive (they can no longer sign in), never deleted.
        return False


@admin.register(Group)
class GroupAdmin(AdminParamsMixin, BaseGroupAdmin, ModelAdmin):
    pass
