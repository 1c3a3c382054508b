"""Bill documents: what a bill says (``content``, frozen into the stored bill at issue) and the
stored bill rendered as HTML and PDF (``render``, with its fonts and template)."""
