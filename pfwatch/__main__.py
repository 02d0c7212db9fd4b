"""``python -m pfwatch``: the same as the ``pfwatch`` console script."""

from pfwatch.cli.main import main

if __name__ == "__main__":
    main()
