"""Layerdeck's core: the image back ends and the contract the GUI and CLI use; no Qt here."""
