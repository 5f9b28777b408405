"""What the product refuses, in its own words.

Services raise these; they know nothing of HTTP. `refiner.http.api` alone turns
them into the SPEC §5 error body and a status, by their class; dashboard views
catch them to show the problem on the page.
"""


class Refused(Exception):
    """A request the product will not carry out. `code` names it in the §5 error body;
    `fields` holds problems by field, `details` further keys of the error object."""

    code = "refused"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict | None = None,
        details: dict | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.fields = fields
        self.details = details or {}


class Invalid(Refused):
    """Input that breaks the product's rules; `fields` says which and why."""

    code = "invalid"

    def __init__(
        self,
        fields: dict,
        message: str = "The request has invalid fields.",
        *,
        code: str | None = None,
    ):
        super().__init__(message, code=code, fields=fields)


class Conflict(Refused):
    """The request is fine but the current state forbids it: in use, already closed."""
