"""Each plug-in distribution here has its own suite, run from its own folder (`make test`)."""

collect_ignore = ["captions"]
