"""The main window's widgets: the image table, the filter bar and the detail pane."""
