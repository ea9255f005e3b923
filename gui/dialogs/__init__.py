"""The dialogs the main window opens: pull, delete, commit, build, build history, about."""
