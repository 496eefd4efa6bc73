"""`veil review`: a local web page to check and correct every redaction before export.

`session` holds the plan being reviewed and every edit operation (saved to disk after each
one, with undo/redo); `frames` decodes photos and video frames for display; `follow`
carries a drawn box across frames with a tracker; `app` is the web API and page; `cli`
starts it all from the command line.
"""
