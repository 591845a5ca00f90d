"""`python -m app` runs the ragchat command line."""

from app.cli import main

main()
