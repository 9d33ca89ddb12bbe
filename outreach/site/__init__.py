"""The site generator: one MkDocs site per language, built from an agency profile.

It sits beside the report service (``form_service``) and imports only the core modules of
``outreach``; the two never import each other (see ``[tool.importlinter]``).
"""
