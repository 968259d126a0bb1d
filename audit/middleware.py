from audit.context import acting_as_user


class ActorMiddleware:
    """Attribute every write during a request to the signed-in user."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            with acting_as_user(user):
                return self.get_response(request)
        return self.get_response(request)
