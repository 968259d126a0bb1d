"""The admin's sign-in form: unfold's, with the username's length checked before anyone
tries to authenticate it (``UNFOLD["LOGIN"]["form"]``)."""

from django.core.validators import MaxLengthValidator
from unfold.forms import AuthenticationForm


class LoginForm(AuthenticationForm):
    """Django sets the username field's ``max_length`` after the field is built, so no
    validator enforces it: a 10,000-character username reached authentication, and
    django-axes, recording the failed attempt in a 255-character column, failed with a
    500. Too long a username is now a form error, shown like any other."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        username = self.fields["username"]
        username.validators.append(MaxLengthValidator(username.max_length))
