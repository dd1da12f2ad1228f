"""``python -m omgrab``: the ``omgrab`` command."""

from omgrab import cli

if __name__ == "__main__":
    cli.main()
