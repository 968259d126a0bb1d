import copy

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal
from unfold.contrib.filters.admin import AutocompleteSelectFilter
from unfold.decorators import display

from audit.admin import (
    AuditedModelAdmin,
    RecordPageMixin,
    SafeAutocompleteSelect,
    SystemMadeMixin,
    choice_badge,
)
from customers import admin_crm_import  # noqa: F401  (the CRM imports' pages)
from customers.access import customers_editable_by, user_may_edit_customer
from customers.admin_trace import EntitlementTraceMixin, OrderTraceMixin
from customers.admin_workflows import EntitlementWorkflowsMixin
from customers.answers import contract_seat_changes
from customers.crm import crm_linked, crm_owned_fields
from customers.models import Contact, Contract, Customer, Entitlement, Order, Product, UsageDaily
from kit.indexed_search import holding as _holding
from kit.indexed_search import matching


class IndexedSearchMixin:
    """The changelist search of ``search_fields`` (each term in any of them, any case, as
    Django's), run so that every part reads an index at any table size.

    Django's search ORs ``UPPER(col) LIKE '%term%'`` over joined tables (or, through a
    to-many relation, wraps the query in an ``EXISTS`` per row): PostgreSQL then scans
    the whole table. Here each term keeps the rows whose id is in a UNION of one SELECT
    per own field and one per related lookup (``search_related``: lookup -> (model,
    column, fields), itself such a UNION), so every SELECT reads its index and a row
    matching twice is listed once. A whole email address matches an email field whole.
    """

    search_related: dict[str, tuple[type, str, list[str]]] = {}

    def get_search_results(self, request, queryset, search_term):
        model = queryset.model
        own = [field for field in self.get_search_fields(request) if "__" not in field]
        if not own and not self.search_related:
            return queryset, False
        for bit in smart_split(search_term):
            if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
                bit = unescape_string_literal(bit)
            selects = [_holding(model, field, bit).order_by().values("pk") for field in own]
            for lookup, (related, column, fields) in self.search_related.items():
                ids = matching(related, fields, bit, column=column)
                selects.append(model.objects.filter(**{f"{lookup}__in": ids}).values("pk"))
            queryset = queryset.filter(pk__in=selects[0].union(*selects[1:]))
        return queryset, False


CUSTOMER_BY_NAME = {"customer_id": (Customer, "pk", ["name"])}


class ManagedByUserMixin:
    """Account managers edit only the customers they manage and what belongs to them
    (``customers.access.user_may_edit_customer``), by every path of the admin.

    A write must keep the row with a customer the person may edit, before and after: the
    row as loaded (change, delete), and the customer it would belong to once saved (add and
    change, the customer chosen in the form, a customer's own account manager). The form
    offers only those customers and refuses any other with a form error; saving checks
    again (the row, its inlines' rows), and admin actions run only on such rows.
    ``customer_path`` is the lookup from the model to its customer (None: the model is
    Customer)."""

    customer_path: str | None = "customer"
    not_yours = "Choose a customer you manage: account managers add and move records only there."
    not_yours_to_hand_over = (
        "Account managers may not hand a customer to someone else or take one over: "
        "ask a superuser to change the account manager."
    )

    def _customer_of(self, obj):
        if self.customer_path is None:
            return obj
        for part in self.customer_path.split("__"):
            obj = getattr(obj, part, None)  # an unset relation is None
            if obj is None:
                return None
        return obj

    def _may_write(self, request, obj) -> bool:
        return self._may_write_onto(request, self._customer_of(obj))

    @staticmethod
    def _may_write_onto(request, customer) -> bool:
        if customer is None:  # a row of no customer: superuser business
            return request.user.is_active and request.user.is_superuser
        return user_may_edit_customer(request.user, customer)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        if not allowed or obj is None:
            return allowed
        return self._may_write(request, obj)

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        if not allowed or obj is None:
            return allowed
        return self._may_write(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if self.customer_path and db_field.name == self.customer_path.split("__")[0]:
            related = db_field.related_model
            lookup = self.customer_path.split("__", 1)[1] if "__" in self.customer_path else ""
            editable = customers_editable_by(request.user)
            kwargs["queryset"] = (
                editable if not lookup else related.objects.filter(**{f"{lookup}__in": editable})
            )
            if related is Customer and db_field.name in self.get_autocomplete_fields(request):
                kwargs["widget"] = EditableCustomersAutocomplete(
                    db_field, self.admin_site, using=kwargs.get("using")
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        model_admin = self

        class CustomerRuleForm(form):
            def clean(self):
                cleaned_data = super().clean()
                model_admin._check_form_customer(request, self)
                return cleaned_data

        CustomerRuleForm.__name__ = form.__name__
        return CustomerRuleForm

    def _check_form_customer(self, request, form) -> None:
        """The customer the form's row would belong to once saved must be one the person
        may edit: a crafted POST naming another is a form error and nothing is saved."""
        if self.customer_path is None:
            if "account_manager" not in form.cleaned_data:
                return
            after = copy.copy(form.instance)
            after.account_manager = form.cleaned_data["account_manager"]
            if not user_may_edit_customer(request.user, after):
                form.add_error("account_manager", self.not_yours_to_hand_over)
            return
        first, _, rest = self.customer_path.partition("__")
        if first in form.errors:  # already refused (not a choice it offers)
            return
        if first in form.cleaned_data:
            customer = form.cleaned_data[first]
            for part in rest.split("__") if rest else []:
                customer = getattr(customer, part, None)
        else:
            customer = self._customer_of(form.instance)
        if not self._may_write_onto(request, customer):
            form.add_error(first if first in form.fields else None, self.not_yours)

    # The last line, whatever form, inline or view saves through this admin: a row whose
    # customer (after the write) the person may not edit is refused, inside the admin's
    # transaction, so nothing of the request is kept.
    def save_model(self, request, obj, form, change):
        if not self._may_write(request, obj):
            raise PermissionDenied(self.not_yours)
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        for inline_form in formset.forms:
            for related in _customers_of_row(inline_form.instance):
                if not user_may_edit_customer(request.user, related):
                    raise PermissionDenied(self.not_yours)
        super().save_formset(request, form, formset, change)

    def response_action(self, request, queryset):
        """An admin action runs on the selected rows only if the person may edit every one
        of them; otherwise nothing runs and the page says why."""
        if not request.user.is_superuser:
            chosen = queryset
            if request.POST.get("select_across") != "1":
                pk = self.opts.pk
                selected = []
                for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                    try:
                        selected.append(pk.get_prep_value(pk.to_python(value)))
                    except (ValidationError, ValueError, TypeError):
                        continue
                chosen = queryset.filter(pk__in=selected)
            lookup = "pk" if self.customer_path is None else self.customer_path
            if chosen.exclude(**{f"{lookup}__in": customers_editable_by(request.user)}).exists():
                self.message_user(
                    request,
                    "Nothing was done: the selection has records of customers you do not manage.",
                    messages.ERROR,
                )
                return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)


def _customers_of_row(obj) -> list:
    """The customers a row belongs to: itself, or each customer its foreign keys name."""
    if isinstance(obj, Customer):
        return [obj]
    found = []
    for field in obj._meta.concrete_fields:
        if field.is_relation and field.related_model is Customer:
            customer = getattr(obj, field.name, None)
            if customer is not None:
                found.append(customer)
    return found


class EditableCustomersAutocomplete(SafeAutocompleteSelect):
    """The customer field of a form: its search lists only the customers the person may
    edit (``CustomerAdmin.get_search_results`` reads ``editable=1``). A list filter by
    customer keeps listing every customer: reading is not limited."""

    def get_url(self):
        return super().get_url() + "?editable=1"


class CrmOwnedMixin:
    """A record the CRM has sent (``customers.crm``): the fields the CRM owns are read-only
    in its form, under a note naming the CRM as their source; the fields opsdesk owns stay
    editable, and a record the CRM has not sent is edited as before."""

    crm_record = "record"  # how the note names it: "account", "contract"

    def get_readonly_fields(self, request, obj=None):
        owned = crm_owned_fields(obj)
        # First: a form without a field left lists its read-only fields in this order.
        readonly = super().get_readonly_fields(request, obj)
        return [*owned, *(name for name in readonly if name not in owned)]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not crm_linked(obj):
            return fieldsets
        (name, options), *rest = fieldsets
        return [(name, {**options, "description": self.crm_note(obj)}), *rest]

    def crm_note(self, obj):
        return format_html(
            '<p class="od-crm-note" data-testid="crm-note">From the CRM: this {} is CRM '
            "{} <strong>{}</strong>, last changed there on {}. What the CRM sends is shown "
            "read-only here; change it in the CRM, and opsdesk takes the change as soon as "
            "the CRM sends it. What opsdesk keeps itself stays editable.</p>",
            self.crm_record,
            self.crm_record,
            obj.crm_id,
            date_format(obj.crm_updated_at, "DATETIME_FORMAT"),
        )


class AccountManagerFilter(admin.SimpleListFilter):
    """Whose customers: me, anyone (all), unassigned, or one account manager by name.
    Its parameter is the one Django's own filter of the field used, so links that name a
    manager (the home page's "your customers") keep working."""

    title = "account manager"
    parameter_name = "account_manager__id__exact"

    def lookups(self, request, model_admin):
        from kit.people import person_name

        managers = (
            get_user_model()
            .objects.filter(managed_customers__isnull=False)
            .distinct()
            .order_by("first_name", "last_name", "username")
        )
        return [
            ("me", "Me"),
            ("none", "Unassigned"),
            *((str(user.pk), person_name(user)) for user in managers),
        ]

    def choices(self, changelist):
        for choice in super().choices(changelist):
            if choice["display"] == "All":
                choice = {**choice, "display": "Anyone"}
            yield choice

    def queryset(self, request, queryset):
        value = self.value()
        if value == "me":
            return queryset.filter(account_manager=request.user)
        if value == "none":
            return queryset.filter(account_manager__isnull=True)
        if value:
            if not value.isdigit():
                raise IncorrectLookupParameters("The account manager is not one.")
            return queryset.filter(account_manager_id=int(value))
        return queryset


class CustomerAdmin(IndexedSearchMixin, CrmOwnedMixin, ManagedByUserMixin, AuditedModelAdmin):
    """Registered by ``opsdesk.admin`` with the cross-app overview on its change page."""

    customer_path = None
    crm_record = "account"
    list_display = [
        "name",
        "external_id",
        "status_badge",
        "account_manager",
        "crm_id",
        "created_at",
    ]
    list_select_related = ["account_manager"]
    list_filter = ["status", AccountManagerFilter]
    search_fields = ["name", "external_id", "crm_id", "contacts__email"]
    search_related = {"pk": (Contact, "customer_id", ["email"])}
    search_help_text = (
        "Name, tenant id, CRM id or a contact's email (a whole address matches only itself)"
    )
    readonly_fields = ["crm_updated_at", "created_at", "updated_at"]
    autocomplete_fields = ["account_manager"]
    fieldsets = [
        (None, {"fields": ["name", "external_id", "status", "account_manager", "crm_id"]}),
        (
            "Record",
            {"fields": ["crm_updated_at", "created_at", "updated_at"], "classes": ["collapse"]},
        ),
    ]

    def get_search_results(self, request, queryset, search_term):
        # The customer field of a form (EditableCustomersAutocomplete) offers only the
        # customers the person may edit; its form refuses any other anyway.
        if request.GET.get("editable") == "1":
            queryset = queryset.filter(pk__in=customers_editable_by(request.user).values("pk"))
        return super().get_search_results(request, queryset, search_term)

    status_badge = choice_badge(
        "status",
        {
            Customer.Status.ACTIVE: "success",
            Customer.Status.ONBOARDING: "info",
            Customer.Status.PAUSED: "warning",
            Customer.Status.CHURNED: "danger",
        },
    )


@admin.register(Contact)
class ContactAdmin(IndexedSearchMixin, ManagedByUserMixin, AuditedModelAdmin):
    list_display = ["name", "email", "customer", "role", "is_primary"]
    list_select_related = ["customer"]
    list_filter = ["role", "is_primary", ("customer", AutocompleteSelectFilter)]
    list_filter_submit = True
    search_fields = ["name", "email", "customer__name"]
    search_related = CUSTOMER_BY_NAME
    search_help_text = "Name, email (a whole address matches only itself) or customer name"
    autocomplete_fields = ["customer"]


@admin.register(Contract)
class ContractAdmin(CrmOwnedMixin, ManagedByUserMixin, AuditedModelAdmin):
    # Who changed the seats, when, from what and why (customers.answers), above the form.
    change_form_before_template = "customers/seat_changes.html"
    crm_record = "contract"

    list_display = [
        "customer",
        "plan",
        "seats",
        "monthly_fee",
        "currency",
        "start_date",
        "end_date",
        "status_badge",
    ]
    list_select_related = ["customer"]
    list_filter = ["status", "plan", "currency", ("customer", AutocompleteSelectFilter)]
    list_filter_submit = True
    search_fields = ["customer__name", "customer__external_id"]
    autocomplete_fields = ["customer"]
    readonly_fields = ["crm_updated_at", "created_at", "updated_at"]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk is not None:
            context["seat_changes"] = contract_seat_changes(contract=obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    status_badge = choice_badge(
        "status",
        {
            Contract.Status.ACTIVE: "success",
            Contract.Status.DRAFT: "info",
            Contract.Status.ENDED: "warning",
            Contract.Status.CANCELLED: "danger",
        },
    )


@admin.register(Product)
class ProductAdmin(AuditedModelAdmin):
    list_display = ["sku", "name", "status", "term_days", "entitlement_count"]
    list_filter = ["status"]
    search_fields = ["sku", "name"]

    def get_queryset(self, request):
        # Products are few; counting their entitlements per page is one grouped query.
        return super().get_queryset(request).annotate(_entitlements=Count("entitlements"))

    @display(description="Entitlements", ordering="_entitlements")
    def entitlement_count(self, obj):
        return obj._entitlements


class OrderAdmin(RecordPageMixin, OrderTraceMixin, AuditedModelAdmin):
    """Registered by ``opsdesk.record_pages`` with what happened to it and its open cases
    above the record."""

    list_display = [
        "external_id",
        "customer",
        "tenant_id",
        "sku",
        "quantity",
        "amount",
        "currency",
        "paid_at",
        "fulfilment",
    ]
    list_select_related = ["customer"]
    list_filter = ["fulfilment", "currency", ("customer", AutocompleteSelectFilter)]
    list_filter_submit = True
    search_fields = ["external_id", "tenant_id", "customer__name"]
    autocomplete_fields = ["customer", "product"]

    # What the product sold is the order event's (support.order_events); an order that
    # could not be fulfilled ends through its failed-fulfilment case (customers.orders:
    # fulfil, or record the refund, which check customers.change_order themselves). The
    # order's page is the record (RecordPageMixin).
    def has_add_permission(self, request):
        return False

    def get_readonly_fields(self, request, obj=None):
        from kit.service_owned import service_owned

        return service_owned(Order)


class EntitlementAdmin(
    RecordPageMixin,
    IndexedSearchMixin,
    EntitlementTraceMixin,
    EntitlementWorkflowsMixin,
    AuditedModelAdmin,
):
    """Registered by ``opsdesk.record_pages`` with whether its person has access (and why
    not) and its open cases above the record."""

    list_display = [
        "code",
        "customer",
        "product",
        "state_badge",
        "assignee_email",
        "valid_until",
        "order",
    ]
    list_select_related = ["customer", "product", "order"]
    list_filter = [
        "state",
        ("product", admin.RelatedOnlyFieldListFilter),
        ("customer", AutocompleteSelectFilter),
    ]
    list_filter_submit = True
    search_fields = ["code", "assignee_email", "redeemed_by_email", "customer__name"]
    search_related = CUSTOMER_BY_NAME
    search_help_text = (
        "Code, assignee or redeemer email (a whole address matches only itself), customer name"
    )
    autocomplete_fields = ["customer", "product", "order"]

    # An entitlement changes only through its workflows (the actions above the form,
    # customers.entitlements), which check the state and keep the reason; orders issue
    # them. The form shows the record.
    def has_add_permission(self, request):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.opts.concrete_fields]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        nothing_to_save = {
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(
            request, object_id, form_url, {**(extra_context or {}), **nothing_to_save}
        )

    state_badge = choice_badge(
        "state",
        {
            Entitlement.State.ISSUED: "info",
            Entitlement.State.ASSIGNED: "primary",
            Entitlement.State.REDEEMED: "success",
            Entitlement.State.REVOKED: "danger",
            Entitlement.State.EXPIRED: "warning",
        },
    )


@admin.register(UsageDaily)
class UsageDailyAdmin(SystemMadeMixin, AuditedModelAdmin):  # reported by the product
    list_display = [
        "customer",
        "date",
        "active_users_1d",
        "active_users_7d",
        "requests",
        "errors",
        "error_rate_display",
        "last_login_at",
    ]
    list_select_related = ["customer"]
    list_filter = [("customer", AutocompleteSelectFilter), "date"]
    list_filter_submit = True
    search_fields = ["customer__name", "customer__external_id"]
    autocomplete_fields = ["customer"]

    @display(description="Error rate")
    def error_rate_display(self, obj):
        rate = obj.error_rate
        return "—" if rate is None else f"{rate:.2%}"
