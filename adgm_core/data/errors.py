"""The one exception type of the data package."""


class DataError(ValueError):
    """Invalid or missing data; the message names the problem and what to do."""
