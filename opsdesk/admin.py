"""Admin pages that read across apps, and the auth models in the admin theme."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from customers.admin import CustomerAdmin
from customers.models import Customer
from opsdesk.selectors import customer_overview

admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    pass


@admin.register(Customer)
class CustomerOverviewAdmin(CustomerAdmin):
    """The customer page: the record, then everything support needs about it."""

    change_form_outer_after_template = "opsdesk/customer_overview.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        customer = self.get_object(request, object_id)
        if customer is not None:
            extra_context = {
                **(extra_context or {}),
                "overview": customer_overview(customer=customer),
            }
        return super().change_view(request, object_id, form_url, extra_context)
