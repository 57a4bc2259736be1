"""Knowledge read where it lives: sources that sync on a schedule.

A source (YAML ``sources:``) feeds one collection. A sync reads the source through its
connector (``web.py``; a ``folder`` source is read in place), writes what changed into the
source's copy on disk (``mirror.py``: one Markdown file a document, with its address), and
then runs the ordinary ingest, whose versioned store swaps the new index in atomically and
whose vector cache embeds only what changed. ``sync.py`` holds the rules that lose nothing —
a failed sync removes nothing, one sync per source at a time — and ``schedule.py`` runs
them every ``every``.
"""
