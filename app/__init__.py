"""ragchat: question answering over a folder of documents, with cited, checked answers.

Importing the package does no work: settings, models and stores are built
when an `app.engine.Engine` is created and used.
"""

__version__ = "0.1.0"
