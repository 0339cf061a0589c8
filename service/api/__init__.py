"""One router per resource; each only translates HTTP to and from the core."""
