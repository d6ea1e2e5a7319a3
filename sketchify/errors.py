class SketchifyError(Exception):
    """A problem the user can fix: printed as one line, never as a traceback."""
