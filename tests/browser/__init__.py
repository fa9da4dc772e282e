"""Browser tests: the pages in Debian's Chromium against the whole running system."""
