from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from opsdesk import views
from support.views import inbound_email_webhook, product_webhook

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("webhooks/product/", product_webhook, name="product-webhook"),
    path("webhooks/inbound-email/", inbound_email_webhook, name="inbound-email-webhook"),
]
