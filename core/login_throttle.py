"""Brute-force protection of password logins (django-axes): after AXES_FAILURE_LIMIT wrong
passwords for one user name from one address, that pair is locked out for AXES_COOLOFF_TIME
(429), even with the right password."""

from axes.backends import AxesStandaloneBackend


class LoginThrottleBackend(AxesStandaloneBackend):
    """axes' backend, except that a call without a request (Django's test client `login()`, a
    management command) is not a network login and is left to the next backend instead of
    raising: only requests carry an address to count against."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
