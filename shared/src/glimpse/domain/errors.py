"""Domain errors. The API maps each class to one HTTP status in a single table."""


class GlimpseError(Exception):
    """Base of every error the services raise on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(GlimpseError):
    """The request is malformed or a value is invalid (400)."""


class SizeMismatch(InvalidInput):
    """The data is longer or shorter than the client said it would be."""


class NotAuthenticated(GlimpseError):
    """No acceptable identity came with the request (401)."""


class Forbidden(GlimpseError):
    """The caller may see the resource but not do this to it (403)."""


class ReadOnlyAttribute(Forbidden):
    def __init__(self, name: str) -> None:
        super().__init__(f"Attribute '{name}' is read-only.")


class ReservedAttribute(Forbidden):
    def __init__(self, name: str) -> None:
        super().__init__(f"Attribute '{name}' is reserved.")


class NotFound(GlimpseError):
    """The resource does not exist or the caller may not know it does (404)."""


class ImageNotFound(NotFound):
    def __init__(self, image_id: str) -> None:
        super().__init__(f"No image found with ID {image_id}")


class Conflict(GlimpseError):
    """The resource is not in a state that allows the operation (409)."""


class InvalidTransition(Conflict):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"Image status transition from {current} to {target} is not allowed")


class Gone(GlimpseError):
    """The resource vanished while the request ran (410)."""


class LimitExceeded(GlimpseError):
    """A size cap or quota stops the request (413)."""


class UnsupportedMediaType(GlimpseError):
    """The request body's media type is not one the endpoint takes (415)."""

    def __init__(self, message: str, accept_patch: str | None = None) -> None:
        super().__init__(message)
        self.accept_patch = accept_patch


class RangeNotSatisfiable(GlimpseError):
    """The requested byte range lies outside the image data (416)."""

    def __init__(self, size: int | None, message: str = "Requested range not satisfiable") -> None:
        super().__init__(message)
        self.size = size


class MethodNotAllowed(GlimpseError):
    """The resource exists but refuses this method (405); `allow` lists what it takes."""

    def __init__(self, message: str, allow: str) -> None:
        super().__init__(message)
        self.allow = allow


class StoreUnavailable(GlimpseError):
    """The backing store failed or is full (503 unless mapped more precisely)."""


class IdentityUnavailable(GlimpseError):
    """The identity service could not validate the caller's token (503)."""


class InvalidImageData(InvalidInput):
    """The image data is unsafe or is not in the image's declared disk_format (415)."""


class DatabaseUnavailable(GlimpseError):
    """The database is unreachable, hung or refusing work (503 with Retry-After); the
    transaction was rolled back, so nothing of the request was written."""
