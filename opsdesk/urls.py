from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from opsdesk import views
from opsdesk.scorecard import views as scorecard
from opsdesk.search.views import search_view
from support.views import crm_webhook, inbound_email_webhook, product_webhook

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("healthz", views.healthz, name="healthz"),
    # Browsers and bookmarks ask for /favicon.ico whatever the page's icon link says.
    path("favicon.ico", views.favicon, name="favicon"),
    # Before the admin's own URLs: the address is the theme's search too (search_view).
    path("admin/search/", admin.site.admin_view(search_view), name="search"),
    # Before the admin: its catch-all would answer /admin/scorecard/ with a 404.
    path("admin/scorecard/", include((scorecard.urlpatterns, "scorecard"))),
    path("admin/", admin.site.urls),
    path("webhooks/product/", product_webhook, name="product-webhook"),
    path("webhooks/crm/", crm_webhook, name="crm-webhook"),
    path("webhooks/inbound-email/", inbound_email_webhook, name="inbound-email-webhook"),
]
