"""The web page, driven in a real headless Chromium."""
